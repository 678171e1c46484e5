"""``evaluate rsa``: layer-wise RSA of one feature set against ROI groups, from the store.

Items are TRs (the test part, or every TR after trimming), optionally averaged over
segments of consecutive TRs. Each layer's representation of a TR is the encoding design
(z-score, PCA fitted on train, FIR delays: :func:`analysis_runs.layer_design`); each ROI
group's pattern is its ROIs' BOLD, z-scored with train statistics. Condensed RDMs are
compared with :func:`featstore.evaluate.metrics.rsa_layers.rsa_layers`: one RSA value per
layer and subject, the subject mean tested by permuting blocks of items (the same
permutations for every layer and group), optionally partialling out another model's RDM.

Layout of ``results/<run_id>`` (attr ``analysis = "rsa"``), dims ``roi_group``, ``layer``,
``subject``:

* ``rho`` (roi_group, layer, subject), ``rho_mean`` (roi_group, layer): RSA value
  (Spearman rho, Pearson r or Kendall tau-a) and its mean over subjects;
* ``p``, ``p_fwe`` (roi_group, layer): one-sided permutation p of ``rho_mean``, and the
  same against the maximum over layers (family-wise over the layers of a group);
* with ``partial``: ``rho_partial``, ``rho_partial_mean``, ``p_partial``, ``p_partial_fwe``;
* coords ``n_rois`` (roi_group); attrs ``settings``, ``request``, ``features``, ``fmri``,
  ``roi_groups`` (the ROIs of each group), ``n_items``, ``train_range``, ``test_range``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from featstore._docs import fill_doc
from featstore.errors import InputError
from featstore.evaluate.analyses.runner import (
    Analysis,
    AnalysisInputs,
    resolve_feature_layer,
    run_analysis,
)
from featstore.evaluate.metrics import rsa, rsa_layers
from featstore.evaluate.runs.configs import Config, FeatureLayer
from featstore.store import _schema as S

SUBSETS = ("all", "test")


def rsa_items(inputs: AnalysisInputs, subset: str) -> np.ndarray:
    """TR indices of the items: the test part, or every TR left after trimming."""
    if subset not in SUBSETS:
        raise InputError(f"subset={subset!r}: expected one of {', '.join(SUBSETS)}")
    if subset == "test":
        return inputs.test_index
    trim = inputs.settings.resolved_trim
    return np.arange(trim, inputs.fmri.n_tr - trim, dtype=np.int64)


def _segments(n_items: int, segment: int) -> np.ndarray | None:
    if segment < 1:
        raise InputError(f"segment={segment}: expected a number of TRs >= 1")
    if segment == 1:
        return None
    if n_items // segment < 3:
        raise InputError(
            f"segment={segment} leaves {n_items // segment} segments of {n_items} TRs; "
            "expected at least 3"
        )
    return np.arange(n_items) // segment


def _item_rdm(
    rows: np.ndarray, segments: np.ndarray | None, distance: str, compare: str
) -> np.ndarray:
    """Condensed RDM of item rows (segment-averaged first), standardized unless Kendall."""
    if segments is not None:
        rows, _ = rsa.segment_average(rows, segments)
    condensed = rsa.rdm(rows, distance)
    return condensed if compare == "kendall" else rsa.standardize_rdm(condensed, compare)


def _curves(
    name: str, result: rsa_layers.LayerRSA
) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    dims = (S.LAYER_DIM, S.SUBJECT_DIM)
    return {
        name: (dims, result.rho.astype(np.float32)),
        f"{name}_mean": ((S.LAYER_DIM,), result.mean.astype(np.float32)),
        "p" + name.removeprefix("rho"): ((S.LAYER_DIM,), result.p_value),
        "p" + name.removeprefix("rho") + "_fwe": ((S.LAYER_DIM,), result.p_fwe),
    }


@dataclass
class _RSA(Analysis):
    """RSA of each layer against each ROI group's BOLD (options as :func:`run_rsa`)."""

    kind: ClassVar[str] = "rsa"
    roi_groups: Sequence[str] | None
    roi_groups_file: Any
    partial: str | None
    distance: str
    compare: str
    n_perm: int
    block: int
    min_lag: int
    seed: int
    subset: str
    segment: int
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    small: list[str] = field(default_factory=list)
    control: FeatureLayer | None = None
    items: np.ndarray | None = None
    segments: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.compare not in rsa.COMPARISONS:
            raise InputError(
                f"compare={self.compare!r}: expected one of {', '.join(rsa.COMPARISONS)}"
            )
        if self.distance not in rsa.DISTANCES:
            raise InputError(
                f"distance={self.distance!r}: expected one of {', '.join(rsa.DISTANCES)}"
            )
        if self.partial and self.compare == "kendall":
            raise InputError("`partial` needs compare='spearman' or 'pearson' (no partial tau-a)")

    def prepare(self, inputs: AnalysisInputs) -> int:
        groups = inputs.roi_groups(self.roi_groups or None, self.roi_groups_file)
        # a correlation across 2 ROIs is ±1: such patterns have no geometry to compare
        small = (
            [n for n, i in groups.items() if i.size < 3] if self.distance == "correlation" else []
        )
        if small and (self.roi_groups or len(small) == len(groups)):
            raise InputError(
                f"ROI group {small[0]!r} has {groups[small[0]].size} ROIs: a correlation "
                "distance across fewer than 3 ROIs is degenerate; use distance='euclidean'"
            )
        self.small = small
        self.groups = {name: index for name, index in groups.items() if name not in small}
        self.control = resolve_feature_layer(inputs.catalog, self.partial) if self.partial else None
        self.items = rsa_items(inputs, self.subset)
        self.segments = _segments(self.items.size, self.segment)
        n_groups = len(self.groups)
        return len(inputs.layers) + (self.control is not None) + n_groups * inputs.fmri.n_subjects

    def _rdm(self, rows: np.ndarray) -> np.ndarray:
        return _item_rdm(rows[self.items], self.segments, self.distance, self.compare)

    def compute(self, inputs, advance):
        model_rdms = []
        for part in inputs.layers:
            model_rdms.append(self._rdm(inputs.design(part)))
            advance(1)
        model_rdms = np.stack(model_rdms)
        control_rdm = None
        if self.control is not None:
            control_rdm = self._rdm(inputs.design(self.control))
            advance(1)
        options = {
            "method": self.compare,
            "n_perm": self.n_perm,
            "block": self.block,
            "seed": self.seed,
            "min_lag": self.min_lag,
        }
        per_group = []
        for index in self.groups.values():
            brain = []
            for subject in range(inputs.fmri.n_subjects):
                brain.append(self._rdm(inputs.bold_zscored(subject, index)))
                advance(1)
            brain = np.stack(brain)
            variables = _curves("rho", rsa_layers.rsa_layers(model_rdms, brain, **options))
            if control_rdm is not None:
                partial_result = rsa_layers.rsa_layers(
                    model_rdms, brain, control_rdms=control_rdm, **options
                )
                variables.update(_curves("rho_partial", partial_result))
            per_group.append(variables)
        data_vars = {
            name: (
                (S.ROI_GROUP_DIM, *per_group[0][name][0]),
                np.stack([variables[name][1] for variables in per_group]),
            )
            for name in per_group[0]
        }
        coords = {
            S.ROI_GROUP_DIM: np.asarray(list(self.groups), dtype=object),
            "n_rois": (S.ROI_GROUP_DIM, np.asarray([i.size for i in self.groups.values()])),
        }
        return data_vars, coords

    def settings(self):
        return {
            "distance": self.distance,
            "compare": self.compare,
            "n_perm": int(self.n_perm),
            "block": int(self.block),
            "min_lag": int(self.min_lag),
            "seed": int(self.seed),
            "subset": self.subset,
            "segment": int(self.segment),
        }

    def provenance(self):
        control = self.control
        return ([control] if control else []), {
            "partial": Config(control).label if control else None
        }

    def attrs(self, inputs):
        n_items = self.items.size if self.segments is None else int(self.segments[-1]) + 1
        return {
            "roi_groups": inputs.roi_group_members(self.groups),
            "skipped_roi_groups": self.small,
            "n_items": n_items,
        }


@fill_doc
def run_rsa(
    store,
    model: str,
    *,
    roi_groups: Sequence[str] | None = None,
    roi_groups_file=None,
    partial: str | None = None,
    distance: str = "correlation",
    compare: str = "spearman",
    n_perm: int = 1000,
    block: int = 10,
    min_lag: int | None = None,
    seed: int = 0,
    subset: str = "all",
    segment: int = 1,
    **options: Any,
) -> str:
    """Layer-wise RSA of ``model`` against ROI groups; write ``results/<run_id>``.

    Parameters
    ----------
    %(analysis_store_model)s
    roi_groups, roi_groups_file
        Group names (default: every group the ROI names resolve, less those of fewer than
        3 ROIs with the correlation distance, listed in the attr ``skipped_roi_groups``)
        and a JSON/TOML file of more groups.
    partial
        A stored layer (``wavlm/tr6/9``) whose RDM is partialled out of every comparison.
    distance, compare
        RDM distance (correlation, cosine, euclidean) and RDM comparison (spearman,
        pearson, kendall = tau-a).
    n_perm, block, seed
        Permutations of blocks of ``block`` consecutive items (0: no test).
    min_lag
        Pairs of items fewer than ``min_lag`` items apart are left out of the comparison
        (default: ``block``; 0 keeps them): neighbouring TRs are alike in every
        autocorrelated series, which would make any two RDMs agree.
    subset, segment
        Items: ``all`` TRs after trimming or the ``test`` part; averaged over segments of
        ``segment`` consecutive TRs.
    %(analysis_options)s

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.evaluate.analyses import run_rsa
    >>> run_rsa(example_store(), "toy-speech:tr1", n_perm=0, run_id="rsa")
    'rsa'
    """
    analysis = _RSA(
        roi_groups,
        roi_groups_file,
        partial,
        distance,
        compare,
        n_perm,
        block,
        block if min_lag is None else min_lag,
        seed,
        subset,
        segment,
    )
    return run_analysis(
        store,
        analysis,
        model,
        **options,
    )
