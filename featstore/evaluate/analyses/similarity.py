"""``evaluate similarity``: several model–brain similarity metrics, layer by layer.

For one feature set, every selected layer and every subject, on one chronological
train/test split (the encoding settings'):

* ``cka`` (linear CKA) and ``rsa`` (RDM comparison) on the test TRs;
* ``cca`` (SVCCA: mean held-out correlation of the leading canonical pairs) and
  ``procrustes`` (held-out cosine after the orthogonal map) fitted on the train TRs and
  scored on the test TRs (:func:`featstore.evaluate.metrics.similarity.similarity_scores`);
* ``encoding``: the ridge encoding model itself (:func:`featstore.evaluate.encoding.pipeline.encode`
  with the same settings), its test r averaged over the ROIs.

The model side of the first four is the encoding design of the layer (z-score, PCA on
train, FIR delays); the brain side the ROIs' BOLD (one ROI group, or every ROI),
z-scored with train statistics.

Layout of ``results/<run_id>`` (attr ``analysis = "similarity"``): ``score`` (metric,
layer, subject) float32; attrs ``settings``, ``request``, ``features``, ``fmri``,
``roi_group`` and ``rois`` (the ROIs used), ``warnings`` (of the encoding model),
``train_range``, ``test_range``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.evaluate.analyses.runner import Analysis, AnalysisInputs, run_analysis
from featstore.evaluate.encoding.pipeline import encode
from featstore.evaluate.metrics import rsa
from featstore.evaluate.metrics.similarity import METRICS, similarity_scores
from featstore.evaluate.runs.configs import Config
from featstore.evaluate.runs.grid import run_warnings
from featstore.store import _schema as S

ENCODING = "encoding"
ALL_METRICS = (*METRICS, ENCODING)
ALL_ROIS = "all"


def parse_metrics(values: Sequence[str]) -> list[str]:
    """Metric names, checked, in the order given, without repeats."""
    metrics = list(dict.fromkeys(values))
    unknown = [m for m in metrics if m not in ALL_METRICS]
    if unknown or not metrics:
        raise InputError(
            f"metrics={unknown[0] if unknown else ''!r}: expected any of {', '.join(ALL_METRICS)}"
        )
    return metrics


@dataclass
class _Similarity(Analysis):
    """Every metric for every layer and subject (options as :func:`run_similarity`)."""

    kind: ClassVar[str] = "similarity"
    metrics: list[str]
    roi_group: str | None
    roi_groups_file: Any
    rsa_distance: str
    rsa_compare: str
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics = parse_metrics(self.metrics)
        if self.rsa_distance not in rsa.DISTANCES or self.rsa_compare not in rsa.COMPARISONS:
            raise InputError(
                f"rsa_distance={self.rsa_distance!r} / rsa_compare={self.rsa_compare!r}: "
                f"expected one of {', '.join(rsa.DISTANCES)} / {', '.join(rsa.COMPARISONS)}"
            )

    def prepare(self, inputs: AnalysisInputs) -> int:
        if self.roi_group:
            self.groups = inputs.roi_groups([self.roi_group], self.roi_groups_file)
        else:
            self.groups = {ALL_ROIS: np.arange(inputs.fmri.n_roi)}
        return len(inputs.layers)

    def compute(self, inputs, advance):
        metrics = self.metrics
        rois = self.groups[self.roi_group or ALL_ROIS]
        geometric = [m for m in metrics if m != ENCODING]
        n_subjects = inputs.fmri.n_subjects
        brain = [inputs.bold_zscored(s, rois) for s in range(n_subjects)] if geometric else []
        score = np.full((len(metrics), len(inputs.layers), n_subjects), np.nan, dtype=np.float32)
        for k, part in enumerate(inputs.layers):
            if ENCODING in metrics:
                result = encode([inputs.read(part)], inputs.bold[:, :, rois], inputs.settings)
                # ROIs constant in a subject have r = NaN and are left out of its mean
                score[metrics.index(ENCODING), k] = np.nanmean(result.r, axis=1)
                self.warnings[Config(part).label] = list(result.warnings)
            if geometric:
                design = inputs.design(part)
                for subject in range(n_subjects):
                    values = similarity_scores(
                        design,
                        brain[subject],
                        inputs.train_index,
                        inputs.test_index,
                        geometric,
                        rsa_distance=self.rsa_distance,
                        rsa_compare=self.rsa_compare,
                    )
                    for metric, value in values.items():
                        score[metrics.index(metric), k, subject] = value
            advance(1)
        data_vars = {"score": ((S.METRIC_DIM, S.LAYER_DIM, S.SUBJECT_DIM), score)}
        return data_vars, {S.METRIC_DIM: np.asarray(metrics, dtype=object)}

    def settings(self):
        return {"rsa_distance": self.rsa_distance, "rsa_compare": self.rsa_compare}

    def provenance(self):
        return [], {"metrics": self.metrics}

    def attrs(self, inputs):
        group = self.roi_group or ALL_ROIS
        return {
            "roi_group": group,
            "rois": inputs.roi_group_members(self.groups)[group],
            "warnings": run_warnings(self.warnings),
        }


@fill_doc
def run_similarity(
    store,
    model: str,
    *,
    metrics: Sequence[str] = ALL_METRICS,
    roi_group: str | None = None,
    roi_groups_file=None,
    rsa_distance: str = "correlation",
    rsa_compare: str = "spearman",
    **options: Any,
) -> str:
    """Score every metric for every layer and subject; write ``results/<run_id>``.

    Parameters
    ----------
    %(analysis_store_model)s
    metrics
        Any of ``cka``, ``rsa``, ``cca``, ``procrustes``, ``encoding``.
    roi_group, roi_groups_file
        The ROIs compared (a group name; default every ROI) and a file of more groups.
    rsa_distance, rsa_compare
        RDM distance and comparison of the ``rsa`` metric.
    %(analysis_options)s

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.evaluate.analyses import run_similarity
    >>> run_similarity(example_store(), "toy-speech:tr1", metrics=["cka", "procrustes"])
    'similarity-...'
    """
    analysis = _Similarity(list(metrics), roi_group, roi_groups_file, rsa_distance, rsa_compare)
    return run_analysis(
        store,
        analysis,
        model,
        **options,
    )
