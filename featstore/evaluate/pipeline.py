"""TEMPORARY stand-in for evalnum's encode (deleted when the real one lands)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from featstore.errors import InputError


@dataclass
class EncodingResult:
    r: np.ndarray
    alpha: np.ndarray
    band_alphas: np.ndarray | None
    partition: dict[str, np.ndarray] | None
    predictions: np.ndarray | None
    test_index: np.ndarray
    train_index: np.ndarray
    n_edge_alpha: np.ndarray
    warnings: list[str] = field(default_factory=list)


def _prep(x, train, n_pca):
    mu, sd = x[train].mean(0), x[train].std(0)
    sd[sd == 0] = 1
    z = (x - mu) / sd
    if n_pca:
        _, _, vt = np.linalg.svd(z[train], full_matrices=False)
        z = z @ vt[:n_pca].T
    return z


def _delay(x, delays):
    out = np.zeros((x.shape[0], x.shape[1] * len(delays)), x.dtype)
    for i, d in enumerate(delays):
        out[d:, i * x.shape[1] : (i + 1) * x.shape[1]] = x[: x.shape[0] - d]
    return out


def _fit(x, bold, train, test, alpha):
    xt = x[train]
    w = np.linalg.solve(xt.T @ xt + alpha * np.eye(x.shape[1]), xt.T)
    preds = np.stack([x[test] @ (w @ bold[s, train]) for s in range(bold.shape[0])])
    y = bold[:, test]
    pc, yc = preds - preds.mean(1, keepdims=True), y - y.mean(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (pc * yc).sum(1) / np.sqrt((pc**2).sum(1) * (yc**2).sum(1))
    return r, preds


def encode(
    features: Sequence[np.ndarray], bold, settings, *, return_predictions=False, partition=False
):
    bold = np.asarray(bold, dtype=settings.dtype)
    n = bold.shape[1]
    trim = max(settings.delays) if settings.trim is None else settings.trim
    idx = np.arange(trim, n - trim)
    n_test = round(len(idx) * settings.test_frac)
    train, test = idx[: len(idx) - n_test - settings.gap], idx[len(idx) - n_test :]
    if n_test <= max(settings.delays):
        raise InputError(f"test part has {n_test} TRs, shorter than the delays {settings.delays}")
    if settings.pca > len(train):
        raise InputError(f"--pca {settings.pca} > {len(train)} train samples")
    alpha = (
        settings.alpha
        if settings.alpha is not None
        else float(settings.alphas[len(settings.alphas) // 2])
    )

    def fit(feats):
        x = np.concatenate([_prep(np.asarray(f, settings.dtype), train, 0) for f in feats], 1)
        x = _delay(_prep(x, train, settings.pca), settings.delays)
        return _fit(x, bold, train, test, alpha)

    r, preds = fit(features)
    part = None
    if partition and len(features) == 2:
        ra, _ = fit(features[:1])
        rb, _ = fit(features[1:])
        r2, a2, b2 = np.sign(r) * r**2, np.sign(ra) * ra**2, np.sign(rb) * rb**2
        part = {"unique_a": r2 - b2, "unique_b": r2 - a2, "shared": a2 + b2 - r2}
    banded = settings.method == "banded" and len(features) == 2
    s, v = r.shape
    return EncodingResult(
        r=r,
        alpha=np.full((s, v), np.nan if banded else alpha),
        band_alphas=np.full((s, v, 2), alpha) if banded else None,
        partition=part,
        predictions=preds if return_predictions else None,
        test_index=test,
        train_index=train,
        n_edge_alpha=np.zeros(s, dtype=np.int64),
        warnings=[],
    )
