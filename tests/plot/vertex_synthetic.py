"""Synthetic vertex, voxel and cross-story stores, in the target-axis and cross-story
results contracts (docs/store-spec.md), written directly with ``write_group``.

fsaverage5 targets: both hemispheres' 10,242 vertices minus every 10th (the "medial
wall", 2,050 dropped), 18,434 targets. A FreeSurfer annotation pair labels vertex v of
each hemisphere with parcel ``v // 2048`` (0 = ``unknown``, background): ``auditory``,
``language``, ``visual``, ``motor``, ``frontal``. r is planted in ``auditory``.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import xarray as xr

from featstore import store as fs
from featstore.store.stories import create_collection, story_path
from tests.plot.synthetic import SETTINGS, TR_SECONDS

FS5 = 10_242
PARCELS = ("unknown", "auditory", "language", "visual", "motor", "frontal")
PLANTED = "auditory"
CONFIGS = ("wavlm/tr1/layer1", "wavlm/tr1/layer2", "gpt2/ctx8/layer1")


def fsaverage5_targets() -> tuple[np.ndarray, np.ndarray]:
    """(hemisphere, vertex) of the kept targets: every vertex but each 10th."""
    kept = np.flatnonzero(np.arange(FS5) % 10 != 0)
    hemis = np.repeat(["L", "R"], kept.size)
    return hemis.astype(object), np.concatenate([kept, kept]).astype(np.int64)


def parcel_of(vertex: np.ndarray) -> np.ndarray:
    """The annotation's label of each vertex (both hemispheres alike)."""
    return np.asarray(vertex) // 2048


def write_annot(folder: Path) -> Path:
    """``lh.test.annot`` and ``rh.test.annot``; returns the left one."""
    labels = parcel_of(np.arange(FS5)).astype(np.int32)
    ctab = np.array([[10 * i, 20, 30, 0, 0] for i in range(len(PARCELS))], dtype=np.int32)
    names = [n.encode() for n in PARCELS]
    for hemi in ("lh", "rh"):
        nib.freesurfer.write_annot(folder / f"{hemi}.test.annot", labels, ctab, names)
    return folder / "lh.test.annot"


def _config_coords(configs) -> dict:
    model = [c.split("/")[0] for c in configs]
    window = [c.split("/")[1] for c in configs]
    layer = [int(c.split("layer")[1]) for c in configs]
    kind = ["audio" if w.startswith("tr") else "text" for w in window]
    empty = np.array([""] * len(configs), dtype=object)
    return {
        "config": np.array(configs, dtype=object),
        "feature": ("config", np.array(model, dtype=object)),
        "model": ("config", np.array(model, dtype=object)),
        "window": ("config", np.array(window, dtype=object)),
        "layer": ("config", np.array(layer, dtype=np.int64)),
        "partner": ("config", empty),
        "partner_model": ("config", empty),
        "partner_window": ("config", empty),
        "partner_layer": ("config", np.full(len(configs), -1, dtype=np.int64)),
        "method": ("config", np.array(["single"] * len(configs), dtype=object)),
        "kind": ("config", np.array(kind, dtype=object)),
        "n_layers": ("config", np.full(len(configs), 2, dtype=np.int64)),
    }


def target_coords(hemis, vertex, *, names: bool) -> dict:
    roi_name = (
        np.array([PARCELS[p] if p else "" for p in parcel_of(vertex)], dtype=object)
        if names
        else np.array([""] * vertex.size, dtype=object)
    )
    return {
        "roi": np.arange(vertex.size, dtype=np.int64),
        "roi_name": ("roi", roi_name),
        "hemisphere": ("roi", hemis),
        "vertex": ("roi", vertex),
    }


VERTEX_ATTRS = {"target_kind": "vertex", "space": "fsaverage5", "atlas": ""}


def vertex_results(
    hemis, vertex, *, n_subjects: int = 4, names: bool = False, stories=None, seed=0
) -> xr.Dataset:
    """r (config, subject, roi): 0.3 + noise in the planted parcel for the audio configs,
    ~0.02 elsewhere; with ``stories`` also ``r_story`` and the cross-story attrs."""
    rng = np.random.default_rng(seed)
    planted = parcel_of(vertex) == PARCELS.index(PLANTED)
    shape = (len(CONFIGS), n_subjects, vertex.size)
    r = 0.02 + 0.01 * rng.standard_normal(shape)
    r[:2, :, planted] += 0.3
    data = {
        "r": (("config", "subject", "roi"), r.astype(np.float32)),
        "alpha": (("config", "subject", "roi"), np.full(shape, 10.0, dtype=np.float32)),
    }
    attrs = {"settings": SETTINGS, "features": {}, **VERTEX_ATTRS}
    coords = _config_coords(CONFIGS)
    coords["subject"] = np.array([f"sub-{i + 1:02d}" for i in range(n_subjects)], dtype=object)
    coords.update(target_coords(hemis, vertex, names=names))
    if stories:
        by_story = np.stack([r * (1.0 + 0.5 * k) for k in range(len(stories))], axis=1)
        by_story[:, -1, -1] = np.nan  # the last subject lacks the last story
        data["r_story"] = (("config", "story", "subject", "roi"), by_story.astype(np.float32))
        coords["story"] = np.array(stories, dtype=object)
        attrs.update(
            split="test-stories",
            stories=["train1", *stories],
            test_stories=list(stories),
            subjects_left_out={stories[-1]: [str(coords["subject"][-1])]},
        )
    return xr.Dataset(data, coords=coords, attrs=attrs)


def shared_bold(n_subjects: int, n_tr: int, n_roi: int, seed: int) -> np.ndarray:
    """Shared signal (weight rising across targets) + each subject's noise."""
    rng = np.random.default_rng(seed)
    weight = np.linspace(0.0, 2.0, n_roi)
    shared = rng.standard_normal((1, n_tr, n_roi)) * weight
    return (shared + rng.standard_normal((n_subjects, n_tr, n_roi))).astype(np.float32)


def vertex_fmri(bold: np.ndarray, subjects, hemis, vertex, *, names: bool) -> xr.Dataset:
    return xr.Dataset(
        {"bold": (("subject", "tr", "roi"), bold)},
        coords={"subject": np.array(subjects, dtype=object)}
        | target_coords(hemis, vertex, names=names),
        attrs={**VERTEX_ATTRS, "source": "synthetic"},
    )


#: stories of the synthetic collection: (name, TRs, subjects)
STORIES = (
    ("train1", 40, ("sub-01", "sub-02", "sub-03", "sub-04")),
    ("pieman", 50, ("sub-01", "sub-02", "sub-03", "sub-04")),
    ("tunnel", 36, ("sub-01", "sub-02", "sub-03")),
)


def make_collection(path: Path, *, n_per_hemi: int = 37, run_id: str = "cross-test") -> Path:
    """A store of 3 stories with vertex fMRI (2 × ``n_per_hemi`` targets, named parcels)
    and one complete cross-story run testing on ``pieman`` and ``tunnel``."""
    create_collection(path, dataset="narr", tr_seconds=TR_SECONDS)
    vertex = np.concatenate([np.arange(n_per_hemi) * 250] * 2).astype(np.int64)
    hemis = np.repeat(["L", "R"], n_per_hemi).astype(object)
    for k, (story, n_tr, subjects) in enumerate(STORIES):
        story_root = story_path(path, story)
        fs.create_store(
            story_root,
            dataset="narr",
            tr_seconds=TR_SECONDS,
            n_tr=n_tr,
            extra_attrs={"story": story},
        )
        bold = shared_bold(len(subjects), n_tr, vertex.size, seed=10 + k)
        fs.write_group(story_root, "fmri", vertex_fmri(bold, subjects, hemis, vertex, names=True))
    results = vertex_results(hemis, vertex, names=True, stories=["pieman", "tunnel"])
    fs.write_group(path, fs.result_group(run_id), results)
    return path
