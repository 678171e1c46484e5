"""A small synthetic store with fMRI and evaluation results, for figures, stats and the report.

The results follow the evaluator's layout (``results/<run_id>``: ``r``/``alpha`` (config,
subject, roi) and the config coordinates), written directly with ``write_group`` so
these tests do not depend on running a grid. Effects are planted: audio configs are
best in the auditory ROIs, the ``layer`` profile peaks in the middle, fusion adds a bit.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from featstore import store as fs
from featstore.datasets.atlas import hcp_mmp_rois
from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS, roi_group_indices

N_TR = 83
N_SUBJECTS = 4
TR_SECONDS = 1.5
SETTINGS = {
    "trim": None,
    "test_frac": 0.25,
    "gap": 0,
    "pca": 20,
    "delays": [1, 2, 3, 4],
    "alphas": [1.0, 10.0, 100.0],
    "cv": 3,
    "alpha": None,
    "method": "concat",
    "dtype": "float32",
}

# (feature key, display name, window, kind, n_layers, layers evaluated)
SINGLES = [
    ("gpt2", "gpt2", "ctx200", "text", 12, (1, 4, 6, 9, 12)),
    ("roberta-base", "roberta", "ctx200", "text", 12, (1, 4, 6, 9, 12)),
    ("microsoft--wavlm-base-plus", "wavlm", "tr1", "audio", 12, (1, 4, 6, 9, 12)),
    ("microsoft--wavlm-base-plus", "wavlm", "tr6", "audio", 12, (1, 4, 6, 9, 12)),
    ("openai--whisper-base", "whisper-base", "tr6", "multimodal", 6, (1, 2, 4, 5, 6)),
]
FUSION = ("gpt2", "gpt2", "ctx200", "microsoft--wavlm-base-plus", "wavlm", "tr6")
FUSION_LAYERS = ((4, 6), (4, 9), (9, 6), (9, 9))


def _config_rows():
    rows = []
    for key, name, window, kind, n_layers, layers in SINGLES:
        for layer in layers:
            rows.append(
                {
                    "config": f"{name}/{window}/layer{layer}",
                    "feature": key,
                    "model": name,
                    "window": window,
                    "layer": layer,
                    "partner": "",
                    "partner_model": "",
                    "partner_window": "",
                    "partner_layer": -1,
                    "method": "single",
                    "kind": kind,
                    "n_layers": n_layers,
                }
            )
    key_a, name_a, win_a, key_b, name_b, win_b = FUSION
    for layer_a, layer_b in FUSION_LAYERS:
        rows.append(
            {
                "config": f"{name_a}/{win_a}+{name_b}/{win_b}/{layer_a}x{layer_b}",
                "feature": key_a,
                "model": f"{name_a}+{name_b}",
                "window": win_a,
                "layer": layer_a,
                "partner": key_b,
                "partner_model": name_b,
                "partner_window": win_b,
                "partner_layer": layer_b,
                "method": "concat",
                "kind": "fusion",
                "n_layers": 12,
            }
        )
    return rows


def planted_roi_mask() -> np.ndarray:
    """The ROIs where audio configs are planted to predict well (auditory + lateral temporal)."""
    names, hemis = hcp_mmp_rois()
    mask = np.zeros(len(names), dtype=bool)
    for group in ("auditory", "lateral-temporal"):
        mask[roi_group_indices(names, hemis, BUILTIN_ROI_GROUPS[group])] = True
    return mask


def results_dataset(seed: int = 0) -> xr.Dataset:
    """A results dataset with planted effects, in the evaluator's layout."""
    rng = np.random.default_rng(seed)
    names, hemis = hcp_mmp_rois()
    rows = _config_rows()
    planted = planted_roi_mask()
    n_roi = len(names)
    r = np.empty((len(rows), N_SUBJECTS, n_roi), dtype=np.float32)
    for i, row in enumerate(rows):
        depth = row["layer"] / row["n_layers"]
        base = {"text": 0.02, "audio": 0.05, "multimodal": 0.045, "fusion": 0.06}[row["kind"]]
        if row["window"] == "tr1":
            base *= 0.5
        profile = base * (1.0 - 0.8 * (depth - 0.6) ** 2)
        effect = np.where(planted, 4.0 * profile, profile)
        r[i] = effect + 0.01 * rng.normal(size=(N_SUBJECTS, n_roi))
    coords = {"config": np.array([row["config"] for row in rows], dtype=object)}
    for field in (
        "feature",
        "model",
        "window",
        "partner",
        "partner_model",
        "partner_window",
        "method",
        "kind",
    ):
        coords[field] = ("config", np.array([row[field] for row in rows], dtype=object))
    for field in ("layer", "partner_layer", "n_layers"):
        coords[field] = ("config", np.array([row[field] for row in rows], dtype=np.int64))
    coords["subject"] = np.array([f"sub-{i + 1:02d}" for i in range(N_SUBJECTS)], dtype=object)
    coords["roi"] = np.arange(n_roi, dtype=np.int64)
    coords["roi_name"] = ("roi", np.array(names, dtype=object))
    coords["hemisphere"] = ("roi", np.array(hemis, dtype=object))
    fusion = np.array([row["kind"] == "fusion" for row in rows])
    shares = {}
    for name, scale in (("unique_a", 0.1), ("unique_b", 0.5), ("shared", 0.4)):
        values = np.full_like(r, np.nan)
        values[fusion] = scale * r[fusion] ** 2
        shares[name] = (("config", "subject", "roi"), values)
    return xr.Dataset(
        {
            "r": (("config", "subject", "roi"), r),
            "alpha": (("config", "subject", "roi"), np.full_like(r, 10.0)),
            **shares,
        },
        coords=coords,
        attrs={
            "settings": SETTINGS,
            "features": {"gpt2/ctx200": {"model_id": "gpt2", "revision": "main"}},
            "test_range": [60, 79, 19],
            "train_range": [4, 60, 56],
        },
    )


def fmri_dataset(seed: int = 1) -> xr.Dataset:
    """fMRI with a shared (stimulus-driven) component in the planted ROIs."""
    rng = np.random.default_rng(seed)
    names, hemis = hcp_mmp_rois()
    n_roi = len(names)
    shared = rng.normal(size=(1, N_TR, n_roi))
    weight = np.where(planted_roi_mask(), 1.0, 0.05)
    bold = weight * shared + rng.normal(size=(N_SUBJECTS, N_TR, n_roi))
    return xr.Dataset(
        {"bold": (("subject", "tr", "roi"), bold.astype(np.float32))},
        coords={
            "subject": np.array([f"sub-{i + 1:02d}" for i in range(N_SUBJECTS)], dtype=object),
            "roi": np.arange(n_roi, dtype=np.int64),
            "roi_name": ("roi", np.array(names, dtype=object)),
            "hemisphere": ("roi", np.array(hemis, dtype=object)),
        },
        attrs={"atlas": "HCP-MMP1.0", "source": "synthetic", "n_subjects": N_SUBJECTS},
    )


def make_store(path: Path, *, run_id: str = "grid-test") -> Path:
    """A store with ``fmri`` and one complete run ``results/<run_id>``."""
    fs.create_store(path, dataset="synthetic", tr_seconds=TR_SECONDS, n_tr=N_TR)
    fs.write_group(path, "fmri", fmri_dataset(), encoding={"bold": {"chunks": (1, N_TR, 360)}})
    fs.write_group(path, fs.result_group(run_id), results_dataset())
    return path


GRID_TR = 300
GRID_SUBJECTS = 4
AUDIO_KEY = "microsoft--wavlm-base-plus"


def _feature_attrs(model_id: str, modality: str) -> dict:
    return {
        "model_id": model_id,
        "revision": "test",
        "modality": modality,
        "pooling": "mean",
        "stimulus_sha256": "0" * 64,
    }


def make_grid_store(path: Path) -> Path:
    """A store for a real grid: feature sets (text ``gpt2/ctx20``, audio ``wavlm/tr2``, 4
    layers of 10 dims) and simulated fMRI (4 subjects × 300 TRs × 360 HCP-MMP ROIs) in
    which audio layer 2 drives the auditory ROIs and text layer 3 the inferior-frontal ones.
    """
    from featstore.datasets.simulate import PlantedSource, simulate_bold

    rng = np.random.default_rng(2)
    white = rng.normal(size=(2, 4, GRID_TR + 2, 10))
    # autocorrelated features, as stimulus features are
    text, audio = (white[..., :-2, :] + white[..., 1:-1, :] + white[..., 2:, :]).astype(np.float32)
    names, hemis = hcp_mmp_rois()
    sources = [
        PlantedSource("wavlm/tr2/layer2", audio[2], BUILTIN_ROI_GROUPS["auditory"]),
        PlantedSource("gpt2/ctx20/layer3", text[3], BUILTIN_ROI_GROUPS["inferior-frontal"]),
    ]
    bold, subjects, _ = simulate_bold(sources, names, n_subjects=GRID_SUBJECTS, seed=3)
    fs.create_store(path, dataset="simulated", tr_seconds=TR_SECONDS, n_tr=GRID_TR)
    fmri = xr.Dataset(
        {"bold": (("subject", "tr", "roi"), bold)},
        coords={
            "subject": np.array(subjects, dtype=object),
            "roi": np.arange(len(names), dtype=np.int64),
            "roi_name": ("roi", np.array(names, dtype=object)),
            "hemisphere": ("roi", np.array(hemis, dtype=object)),
        },
        attrs={"atlas": "HCP-MMP1.0", "source": "simulated", "n_subjects": GRID_SUBJECTS},
    )
    fs.write_group(path, "fmri", fmri, encoding={"bold": {"chunks": (1, GRID_TR, len(names))}})
    fs.write_feature_set(path, "gpt2", "ctx20", text, attrs=_feature_attrs("gpt2", "text"))
    fs.write_feature_set(
        path, AUDIO_KEY, "tr2", audio, attrs=_feature_attrs("microsoft/wavlm-base-plus", "audio")
    )
    return path
