"""Shared plumbing of the analyses beyond encoding: their inputs and their results groups.

``evaluate rsa``, ``evaluate similarity`` and ``evaluate lowlevel`` each write one group
``results/<run_id>`` (ids ``rsa-YYYYmmdd-HHMMSS`` … by default) whose attr ``analysis``
names the kind, so encoding-run listings (:func:`featstore.evaluate.runs.results.complete_runs`)
leave them out. Every group is written with :func:`featstore.store.write_group` (complete
flag last) under the group's lock, and its attrs name its inputs: ``features`` (the
provenance of every feature set read), ``fmri`` (fingerprint and sizes), ``settings`` and
``request``. The layouts are in ``docs/analyses.md`` and :data:`featstore.store._schema.ANALYSIS_VARS`.

Every analysis sees a feature layer as the encoding model does — z-scored with train
statistics, PCA fitted on the train TRs, FIR delays (:func:`layer_design`) — and the BOLD
z-scored with train statistics, on the same chronological split.
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import xarray as xr

from featstore.errors import GroupExistsError, InputError
from featstore.evaluate.encoding.design import design_matrix
from featstore.evaluate.encoding.preprocess import zscore_train
from featstore.evaluate.encoding.settings import EncodingSettings
from featstore.evaluate.encoding.split import chronological_split
from featstore.evaluate.roi_groups import roi_group_indices, roi_groups, roi_labels
from featstore.evaluate.runs import inputs
from featstore.evaluate.runs.configs import (
    FeatureLayer,
    LayerSpec,
    StoreCatalog,
    build_configs,
    stored_layers,
)
from featstore.evaluate.runs.labels import parse_config, parse_model_request
from featstore.evaluate.runs.writing import auto_run_id
from featstore.store import _schema as S
from featstore.store.features import FeatureSetInfo
from featstore.store.groups import (
    StorePath,
    child_names,
    group_attrs,
    is_complete,
    open_group,
    write_group,
)
from featstore.store.paths import result_group
from featstore.store.staging import group_lock

ANALYSES = tuple(S.ANALYSIS_VARS)
_LAYER_SUFFIX = re.compile(r"/(?:layer)?\d+$")


def analysis_runs(store: StorePath, kind: str | None = None) -> list[str]:
    """Ids of the complete analysis groups of a store (of one ``kind``), oldest first."""
    found = []
    for run_id in child_names(store, S.RESULTS):
        attrs = group_attrs(store, result_group(run_id))
        if attrs.get(S.COMPLETE_ATTR) and attrs.get(S.ANALYSIS_ATTR) in (
            (kind,) if kind else ANALYSES
        ):
            found.append((str(attrs.get("created", "")), run_id))
    return [run_id for _, run_id in sorted(found)]


def open_analysis(store: StorePath, run_id: str, kind: str | None = None) -> xr.Dataset:
    """A complete analysis group, loaded (raises naming the ones present if absent)."""
    present = analysis_runs(store, kind)
    if run_id not in present:
        what = f"{kind} analysis" if kind else "analysis"
        raise InputError(
            f"no complete {what} {run_id!r} in {os.fspath(store)}; present: "
            f"{', '.join(present) or 'none'}"
        )
    return open_group(store, result_group(run_id)).load()


def write_analysis(
    store: StorePath, kind: str, ds: xr.Dataset, *, run_id: str | None, overwrite: bool
) -> str:
    """Write ``ds`` as ``results/<run_id>`` (``<kind>-<time>`` by default); return the id."""
    if kind not in ANALYSES:
        raise InputError(f"analysis {kind!r}: expected one of {', '.join(ANALYSES)}")
    run_id = run_id or auto_run_id(store, prefix=kind)
    group = result_group(run_id)
    with group_lock(store, group):
        check_run_id(store, run_id, overwrite)
        ds = ds.copy()
        ds.attrs = {S.ANALYSIS_ATTR: kind, "run_id": run_id, **ds.attrs}
        # overwrite: also replaces a group left incomplete by a killed write
        write_group(store, group, ds, overwrite=True)
    return run_id


def check_run_id(store: StorePath, run_id: str | None, overwrite: bool) -> None:
    """Refuse a ``--run`` that exists, unless ``overwrite`` (checked again before writing)."""
    if run_id is not None and is_complete(store, result_group(run_id)) and not overwrite:
        raise GroupExistsError(
            f"{result_group(run_id)} already exists in {os.fspath(store)}; choose another "
            "`run_id` or pass `overwrite`"
        )


@dataclass(frozen=True)
class AnalysisInputs:
    """What every analysis reads: the fMRI, one feature set's layers, the split.

    Attributes
    ----------
    store : str
        Store location (absolute for local stores).
    catalog : StoreCatalog
    fmri : FmriInfo
        Fingerprint, sizes and ROI / subject coordinates of ``fmri``.
    bold : ndarray, shape (n_subjects, n_tr, n_roi)
    feature : FeatureSetInfo
        The analysed feature set.
    layers : list of FeatureLayer
        Its selected layers, in order.
    settings : EncodingSettings
        Split, PCA and delays (and, for the encoding metric, the ridge settings).
    train_index, test_index : ndarray of int64
    """

    store: str
    catalog: StoreCatalog
    fmri: inputs.FmriInfo
    bold: np.ndarray
    feature: FeatureSetInfo
    layers: list[FeatureLayer]
    settings: EncodingSettings
    train_index: np.ndarray
    test_index: np.ndarray

    @property
    def roi_names(self) -> list[str]:
        """Bare ROI names of ``fmri``."""
        return [str(n) for n in self.fmri.coords[S.ROI_NAME_COORD][1]]

    @property
    def hemispheres(self) -> list[str]:
        """Hemisphere of each ROI of ``fmri``."""
        return [str(h) for h in self.fmri.coords[S.HEMISPHERE_COORD][1]]

    @property
    def subjects(self) -> np.ndarray:
        """Subject ids of ``fmri``."""
        return self.fmri.coords[S.SUBJECT_DIM]

    def roi_groups(
        self,
        requested: Sequence[str] | None = None,
        groups_file: str | os.PathLike | None = None,
        *,
        required: bool = True,
    ) -> dict[str, np.ndarray]:
        """ROI positions of the requested groups on ``fmri`` (see :func:`select_roi_groups`)."""
        return select_roi_groups(
            self.roi_names, self.hemispheres, requested, groups_file, required=required
        )

    def roi_group_members(self, groups: Mapping[str, np.ndarray]) -> dict[str, list[str]]:
        """The ROI labels of each group, for the attrs (see :func:`group_members`)."""
        return group_members(self.roi_names, self.hemispheres, groups)

    def design(self, part: FeatureLayer) -> np.ndarray:
        """The encoding design of one feature layer (see :func:`layer_design`)."""
        return layer_design(self.read(part), self.train_index, self.settings)

    def read(self, part: FeatureLayer) -> np.ndarray:
        """One stored layer on the fMRI TR grid, checked (float32, TR × dim)."""
        return inputs.read_layer(self.store, part, self.fmri.n_tr)

    def bold_zscored(self, subject: int, rois: np.ndarray | slice = slice(None)) -> np.ndarray:
        """One subject's BOLD (TR × ROI), z-scored with the train TRs' statistics."""
        return zscore_train(self.bold[subject][:, rois], self.train_index)

    def common_attrs(
        self,
        model: str,
        layers: LayerSpec | None,
        extra: Sequence[FeatureLayer] = (),
        **request: Any,
    ) -> dict[str, Any]:
        """The attrs every analysis group has: what was asked and what was read.

        ``request`` (the model, its feature group, the layers asked for and ``request``'s
        items), ``features`` (provenance of the analysed set and of the ``extra`` layers'
        sets), ``fmri`` (fingerprint and sizes), ``train_range`` and ``test_range``
        (``[first, stop, count]``, as encoding runs store them).
        """
        groups = {self.feature.group: self.feature}
        for part in extra:
            groups[part.group] = self.catalog.info(part.key, part.window)

        def span(index: np.ndarray) -> list[int]:
            return [int(index[0]), int(index[-1]) + 1, int(index.size)]

        return {
            "request": {
                "model": model,
                "feature_group": self.feature.group,
                "layers": layers if isinstance(layers, str) or layers is None else list(layers),
                **request,
            },
            "features": {
                group: inputs.feature_provenance(info.attrs) for group, info in groups.items()
            },
            "fmri": {
                "fingerprint": self.fmri.fingerprint,
                "n_subjects": self.fmri.n_subjects,
                "n_tr": self.fmri.n_tr,
                "n_roi": self.fmri.n_roi,
            },
            "train_range": span(self.train_index),
            "test_range": span(self.test_index),
        }


def layer_design(
    features: np.ndarray, train_index: np.ndarray, settings: EncodingSettings
) -> np.ndarray:
    """A layer as the encoding model sees it: z-scored and PCA'd on train, FIR-delayed.

    The delays stand in for the hemodynamic lag: the representation of TR t holds the
    stimulus of TRs ``t − d`` for every delay d, so geometry-based metrics (RSA, CKA …)
    compare the brain at t with the stimulus that drove it.
    """
    return design_matrix([features], train_index, settings.pca, settings.delays)


def load_inputs(
    store: StorePath,
    model: str,
    *,
    windows: Sequence[str] = (),
    layers: LayerSpec | None = "auto",
    settings: EncodingSettings | None = None,
) -> AnalysisInputs:
    """Resolve one model's feature set and layers, read and check the fMRI, split the TRs.

    ``model`` is ``NAME`` or ``NAME:WINDOWS`` as for ``evaluate grid``; ``windows`` apply
    by kind (``ctx200`` to text). The request must resolve to a single feature set.
    """
    location = inputs.store_location(store)
    settings = settings or EncodingSettings()
    configs = build_configs(
        location, models=[parse_model_request(model)], windows=windows, layers=layers
    )
    groups = list(dict.fromkeys(c.a.group for c in configs))
    if len(groups) != 1:
        windows_found = ", ".join(dict.fromkeys(c.a.window for c in configs))
        raise InputError(
            f"model={model!r} matches {len(groups)} feature sets ({windows_found}); give one "
            "window with `windows`"
        )
    catalog = StoreCatalog(location)
    part = configs[0].a
    feature = catalog.info(part.key, part.window)
    fmri = inputs.inspect_fmri(location)
    if feature.n_tr != fmri.n_tr:
        raise InputError(inputs.tr_mismatch_message(fmri.n_tr, feature.group, feature.n_tr))
    train_index, test_index = chronological_split(
        fmri.n_tr,
        trim=settings.resolved_trim,
        test_frac=settings.test_frac,
        gap=settings.resolved_gap,
    )
    return AnalysisInputs(
        store=location,
        catalog=catalog,
        fmri=fmri,
        bold=inputs.load_bold(location),
        feature=feature,
        layers=[c.a for c in configs],
        settings=settings,
        train_index=train_index,
        test_index=test_index,
    )


def resolve_feature_layer(catalog: StoreCatalog, text: str) -> FeatureLayer:
    """A stored layer named like ``wavlm/tr6/9``, ``wavlm/9``, ``spectral/tr1`` or ``spectral``.

    Without a layer the feature set must have a single one (the low-level features);
    without a window the model must have a single stored window.
    """
    text = str(text).strip().strip("/")
    if _LAYER_SUFFIX.search(text):
        return parse_config(text, catalog).a
    name, _, window = text.partition("/")
    key = catalog.resolve_key(name)
    window = window or catalog.only_window(key)
    layers = stored_layers(catalog.info(key, window))
    if len(layers) != 1:
        raise InputError(
            f"{text} has {len(layers)} layers; say which one, e.g. {name}/{window}/{layers[-1]}"
        )
    return FeatureLayer(key, window, layers[0])


def split_names(values: Sequence[str] | None) -> list[str]:
    """Repeatable, comma-separated CLI values as one list (``["a,b", "c"]`` → a, b, c)."""
    return [
        part.strip() for value in values or [] for part in str(value).split(",") if part.strip()
    ]


def select_roi_groups(
    roi_names: Sequence[str],
    hemispheres: Sequence[str],
    requested: Sequence[str] | None = None,
    groups_file: str | os.PathLike | None = None,
    *,
    required: bool = True,
) -> dict[str, np.ndarray]:
    """ROI positions of the requested groups, or of every group the data can resolve.

    Groups are the built-in ones (:data:`~featstore.evaluate.roi_groups.BUILTIN_ROI_GROUPS`)
    updated with those of ``groups_file``. A requested group must exist and match the ROI
    names; without a request, the groups whose areas are all present are used (none is an
    error when ``required``, else an empty dict).
    """
    groups = roi_groups(groups_file)
    if requested:
        unknown = [name for name in requested if name not in groups]
        if unknown:
            raise InputError(
                f"ROI group {unknown[0]!r} is not defined; known groups: {', '.join(groups)} "
                "(add yours with `roi_groups_file`)"
            )
        return {
            name: roi_group_indices(roi_names, hemispheres, groups[name], group_name=name)
            for name in dict.fromkeys(requested)
        }
    usable = {}
    for name, members in groups.items():
        try:
            usable[name] = roi_group_indices(roi_names, hemispheres, members, group_name=name)
        except InputError:
            continue
    if not usable and required:
        raise InputError(
            "no ROI group matches the ROI names of fmri (the built-in groups use HCP-MMP1.0 "
            "names); define groups with `roi_groups_file`"
        )
    return usable


def group_members(
    names: Sequence[str], hemispheres: Sequence[str], groups: Mapping[str, np.ndarray]
) -> dict[str, list[str]]:
    """``{"auditory": ["L_A1", …]}``: the ROIs each group resolved to, for the attrs."""
    labels = roi_labels(names, hemispheres)
    return {group: [labels[int(i)] for i in index] for group, index in groups.items()}


Variables = dict[str, tuple[tuple[str, ...], np.ndarray]]


class Analysis(ABC):
    """What one analysis adds to the skeleton that :func:`run_analysis` runs.

    The skeleton: check the run id, read the inputs, compute with a progress bar, build
    the dataset (``layer`` and ``subject`` coords, the common attrs) and write it. An
    analysis checks its own options when constructed and supplies the rest.
    """

    #: The attr ``analysis`` of its groups and the prefix of its run ids.
    kind: ClassVar[str]

    def prepare(self, inputs: AnalysisInputs) -> int:
        """Resolve what depends on the data (ROI groups, controls …); return the number of
        progress steps (one per layer unless overridden)."""
        return len(inputs.layers)

    @abstractmethod
    def compute(
        self, inputs: AnalysisInputs, advance: Callable[[int], None]
    ) -> tuple[Variables, dict[str, Any]]:
        """The data variables and the coords beyond ``layer`` and ``subject``."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The analysis's own settings (the attr ``settings`` adds the encoding ones)."""

    def provenance(self) -> tuple[list[FeatureLayer], dict[str, Any]]:
        """Other stored layers read (their sets' provenance is kept) and what the request
        adds beyond the model and its layers."""
        return [], {}

    def attrs(self, inputs: AnalysisInputs) -> dict[str, Any]:
        """Attrs beyond the settings and :meth:`AnalysisInputs.common_attrs`."""
        return {}


def check_region_targets(store: StorePath, kind: str) -> None:
    """Refuse an fMRI of vertices or voxels: RSA, similarity and low-level impact compare
    regions (ROI groups of parcels), and read the whole BOLD at once.

    Raises
    ------
    InputError
        One line naming the targets and saying how to get parcels.
    """
    from featstore.evaluate.runs.targets import target_kind

    attrs = group_attrs(store, S.FMRI)
    targets = target_kind(attrs)
    if targets != "parcel":
        raise InputError(
            f"evaluate {kind} compares regions, but the fmri of {store} has {targets} "
            f"targets ({attrs.get('space', 'unknown space')}); import it with "
            "parcellate=ATLAS (hcp-mmp for fsLR32k, a .label.gii or .annot, a NIfTI label "
            "image) into a store of parcels and run it there"
        )


def run_analysis(
    store: StorePath,
    analysis: Analysis,
    model: str,
    *,
    windows: Sequence[str] = (),
    layers: LayerSpec | None = "auto",
    settings: EncodingSettings | None = None,
    run_id: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> str:
    """Run ``analysis`` on one model's layers and write ``results/<run_id>``; return the id.

    ``model``, ``windows`` and ``layers`` select the feature set and its layers
    (:func:`load_inputs`); ``run_id`` defaults to ``<kind>-YYYYmmdd-HHMMSS``.
    """
    from featstore.progress import progress_bar

    check_run_id(store, run_id, overwrite)
    check_region_targets(store, analysis.kind)
    inputs = load_inputs(store, model, windows=windows, layers=layers, settings=settings)
    steps = analysis.prepare(inputs)
    title = f"{analysis.kind} {inputs.feature.group}"
    with progress_bar(title, steps, enabled=progress) as advance:
        data_vars, coords = analysis.compute(inputs, advance)
    extra, request = analysis.provenance()
    ds = xr.Dataset(
        data_vars,
        coords={
            S.LAYER_DIM: np.asarray([p.layer for p in inputs.layers], dtype=np.int64),
            S.SUBJECT_DIM: inputs.subjects,
            **coords,
        },
        attrs={
            "settings": {**analysis.settings(), "encoding": inputs.settings.to_dict()},
            **inputs.common_attrs(model, layers, extra, **request),
            **analysis.attrs(inputs),
        },
    )
    return write_analysis(store, analysis.kind, ds, run_id=run_id, overwrite=overwrite)
