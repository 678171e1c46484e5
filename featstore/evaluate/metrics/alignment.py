"""Representational alignment metrics behind one registry, one signature for all.

Every metric takes the model's matrix ``(n_items, d1)`` and the brain's ``(n_items, d2)``
(the same items, e.g. the words of a sentence, in the same order) and returns one
float, larger meaning more similar. ``ALIGNMENT_METRICS`` maps a metric's name to it;
the time-resolved analyses (``evaluate similarity-eeg``) look metrics up there.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from featstore.errors import InputError
from featstore.evaluate.metrics.rsa import compare_rdms, rdm
from featstore.evaluate.metrics.similarity import linear_cka

AlignmentMetric = Callable[[np.ndarray, np.ndarray], float]


def _rsa(model: np.ndarray, brain: np.ndarray, method: str) -> float:
    if len(model) != len(brain) or len(model) < 3:
        raise InputError(
            f"RSA needs the same items (at least 3) on both sides; got {len(model)} and "
            f"{len(brain)}"
        )
    return compare_rdms(
        rdm(model, "correlation", dtype=np.float64),
        rdm(brain, "correlation", dtype=np.float64),
        method,
    )


def rsa_spearman(model: np.ndarray, brain: np.ndarray) -> float:
    """Spearman's rho between the correlation-distance RDMs of the two sides."""
    return _rsa(model, brain, "spearman")


def rsa_pearson(model: np.ndarray, brain: np.ndarray) -> float:
    """Pearson's r between the correlation-distance RDMs of the two sides."""
    return _rsa(model, brain, "pearson")


ALIGNMENT_METRICS: dict[str, AlignmentMetric] = {
    "rsa_spearman": rsa_spearman,
    "rsa_pearson": rsa_pearson,
    "linear_cka": linear_cka,
}


def resolve_metrics(names: list[str]) -> list[str]:
    """Metric names as asked (``all``: every registered one), checked against the registry."""
    if names == ["all"]:
        return list(ALIGNMENT_METRICS)
    unknown = [name for name in names if name not in ALIGNMENT_METRICS]
    if unknown or not names:
        raise InputError(
            f"--metrics {','.join(names)}: unknown {', '.join(unknown) or 'none given'}; expected "
            f"'all' or some of {', '.join(ALIGNMENT_METRICS)}"
        )
    return list(dict.fromkeys(names))
