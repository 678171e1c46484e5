"""``evaluate lowlevel``: how much of a model's brain alignment a low-level control explains.

For every selected layer of one feature set: residualize the layer on the controls (the
stored ``spectral``, ``envelope``, ``wordrate`` features or any stored layer,
concatenated; the map is learnt on the train TRs only,
:func:`featstore.evaluate.encoding.residualize.residualize`), evaluate the original and the
residual features with the same encoding model (:func:`featstore.evaluate.encoding.pipeline.encode`),
and compare:

* per ROI: ``drop = 100 · (r_orig − r_resid) / r_orig`` of the subject-mean r (NaN where
  ``r_orig <= 0``), with a one-sided paired Wilcoxon test across subjects that r_orig >
  r_resid (``p``) and Benjamini–Hochberg q across the ROIs of a layer (``q``);
* per ROI group: the same on each subject's mean r over the group's ROIs.

Layout of ``results/<run_id>`` (attr ``analysis = "lowlevel"``), dims ``layer``,
``subject``, ``roi``, ``roi_group``:

* ``r_orig``, ``r_resid`` (layer, subject, roi) float32: test-set r of the encoding model;
* ``drop``, ``p``, ``q`` (layer, roi);
* ``group_r_orig``, ``group_r_resid`` (layer, subject, roi_group), ``group_drop``,
  ``group_p`` (layer, roi_group), when ROI groups resolve on the data;
* ``control_alpha``, ``explained_train``, ``explained_test`` (layer): the control → model
  ridge penalty and the share of the layer's variance the controls predict;
* coords ``roi_name``, ``hemisphere`` (roi); attrs ``controls`` (their labels),
  ``settings``, ``request``, ``features`` (model and controls), ``fmri``, ``roi_groups``,
  ``warnings``, ``train_range``, ``test_range``.
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
from featstore.evaluate.encoding.pipeline import encode
from featstore.evaluate.encoding.residualize import percent_drop, residualize
from featstore.evaluate.metrics.stats import fdr_bh, paired_wilcoxon
from featstore.evaluate.runs.configs import Config, FeatureLayer
from featstore.evaluate.runs.grid import run_warnings
from featstore.store import _schema as S


def _drop_and_test(r_orig: np.ndarray, r_resid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """% drop of the subject-mean r and the one-sided Wilcoxon p, per column of (S, V)."""
    with np.errstate(invalid="ignore"):
        drop = percent_drop(np.nanmean(r_orig, axis=0), np.nanmean(r_resid, axis=0))
    test = paired_wilcoxon(r_orig, r_resid, axis=0, alternative="greater")
    return drop, np.asarray(test.p_value, dtype=np.float64)


@dataclass
class _LowLevel(Analysis):
    """Each layer against its residual on the controls (options as :func:`run_lowlevel`)."""

    kind: ClassVar[str] = "lowlevel"
    controls: list[str]
    roi_groups: Sequence[str] | None
    roi_groups_file: Any
    parts: list[FeatureLayer] = field(default_factory=list)
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    n_folds: int = 0

    def __post_init__(self) -> None:
        if not self.controls:
            raise InputError("`controls`: give at least one control, e.g. spectral,wordrate")

    def prepare(self, inputs: AnalysisInputs) -> int:
        self.parts = [
            resolve_feature_layer(inputs.catalog, c) for c in dict.fromkeys(self.controls)
        ]
        clash = [p for p in self.parts if p.group == inputs.feature.group]
        if clash:
            raise InputError(
                f"control {Config(clash[0]).label} is a layer of the analysed feature set; "
                "a model cannot be its own control"
            )
        # on a custom atlas no built-in group may resolve: per-ROI results only
        self.groups = inputs.roi_groups(
            self.roi_groups or None, self.roi_groups_file, required=False
        )
        self.n_folds = inputs.settings.cv
        return len(inputs.layers)

    def compute(self, inputs, advance):
        control = np.concatenate([inputs.read(p) for p in self.parts], axis=1)
        settings = inputs.settings
        n_layers, n_subjects, n_roi = len(inputs.layers), inputs.fmri.n_subjects, inputs.fmri.n_roi
        r_orig = np.empty((n_layers, n_subjects, n_roi))
        r_resid = np.empty_like(r_orig)
        fits = np.empty((3, n_layers))
        for k, part in enumerate(inputs.layers):
            features = inputs.read(part)
            residual = residualize(
                features,
                control,
                inputs.train_index,
                n_folds=settings.cv,
                gap=settings.resolved_gap,
            )
            fits[:, k] = residual.alpha, residual.explained_train, residual.explained_test
            label = Config(part).label
            for out, values, what in (
                (r_orig, features, label),
                (r_resid, residual.features, f"{label} residual"),
            ):
                result = encode([values], inputs.bold, settings)
                out[k] = result.r
                self.warnings[what] = list(result.warnings)
            advance(1)
        return self._variables(inputs, r_orig, r_resid, fits)

    def _variables(self, inputs, r_orig, r_resid, fits):
        n_layers = len(inputs.layers)
        tested = [_drop_and_test(r_orig[k], r_resid[k]) for k in range(n_layers)]
        drop, p = zip(*tested, strict=True)
        layer_subject_roi = (S.LAYER_DIM, S.SUBJECT_DIM, S.ROI_DIM)
        data_vars = {
            "r_orig": (layer_subject_roi, r_orig.astype(np.float32)),
            "r_resid": (layer_subject_roi, r_resid.astype(np.float32)),
            "drop": ((S.LAYER_DIM, S.ROI_DIM), np.stack(drop)),
            "p": ((S.LAYER_DIM, S.ROI_DIM), np.stack(p)),
            "q": ((S.LAYER_DIM, S.ROI_DIM), fdr_bh(np.stack(p), axis=1)),
            "control_alpha": ((S.LAYER_DIM,), fits[0]),
            "explained_train": ((S.LAYER_DIM,), fits[1]),
            "explained_test": ((S.LAYER_DIM,), fits[2]),
        }
        coords = {
            name: inputs.fmri.coords[name]
            for name in (S.ROI_DIM, S.ROI_NAME_COORD, S.HEMISPHERE_COORD)
        }
        groups = self.groups
        if groups:
            group_orig = np.stack(
                [np.nanmean(r_orig[..., i], axis=-1) for i in groups.values()], -1
            )
            group_resid = np.stack(
                [np.nanmean(r_resid[..., i], axis=-1) for i in groups.values()], -1
            )
            tested = [_drop_and_test(group_orig[k], group_resid[k]) for k in range(n_layers)]
            dims = (S.LAYER_DIM, S.SUBJECT_DIM, S.ROI_GROUP_DIM)
            data_vars.update(
                group_r_orig=(dims, group_orig.astype(np.float32)),
                group_r_resid=(dims, group_resid.astype(np.float32)),
                group_drop=((S.LAYER_DIM, S.ROI_GROUP_DIM), np.stack([t[0] for t in tested])),
                group_p=((S.LAYER_DIM, S.ROI_GROUP_DIM), np.stack([t[1] for t in tested])),
            )
            coords[S.ROI_GROUP_DIM] = np.asarray(list(groups), dtype=object)
        return data_vars, coords

    def settings(self):
        return {"control_folds": self.n_folds}

    def provenance(self):
        return self.parts, {"controls": list(self.controls)}

    def attrs(self, inputs):
        return {
            "controls": [Config(p).label for p in self.parts],
            "roi_groups": inputs.roi_group_members(self.groups),
            "warnings": run_warnings(self.warnings),
        }


@fill_doc
def run_lowlevel(
    store,
    model: str,
    controls: Sequence[str],
    *,
    roi_groups: Sequence[str] | None = None,
    roi_groups_file=None,
    **options: Any,
) -> str:
    """Residualize each layer on the controls, re-evaluate, write ``results/<run_id>``.

    Parameters
    ----------
    %(analysis_store_model)s
    controls
        Stored layers regressed out: ``spectral``, ``wordrate`` (one-layer sets need no
        layer), ``wavlm/tr6/3`` …; concatenated into one control.
    roi_groups, roi_groups_file
        Groups to summarise (default: every group the ROI names resolve; none on a
        custom atlas) and a JSON/TOML file of more groups.
    %(analysis_options)s

    Examples
    --------
    >>> from featstore.datasets import example_store
    >>> from featstore.evaluate.analyses import run_lowlevel
    >>> store = example_store()
    >>> run_lowlevel(store, "toy-speech:tr1", ["toy-lm/ctx8/1"], run_id="speech-less-text")
    'speech-less-text'
    """
    return run_analysis(
        store,
        _LowLevel(list(controls), roi_groups, roi_groups_file),
        model,
        **options,
    )
