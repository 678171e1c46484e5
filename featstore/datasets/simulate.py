"""Simulated fMRI with a planted response, for the demo and for tests.

Each planted source is a feature matrix (TRs × dims, e.g. one layer of a stored feature
set) that drives a set of ROIs: the features are z-scored, projected on a few random
directions, mixed per ROI, delayed by a hemodynamic-like kernel spread over lags of 1–4 TRs
(inside the evaluator's default FIR window, so a linear encoding model can recover it
exactly), scaled per subject and added to autocorrelated noise. ROIs that no source drives
hold noise only. Everything is generated from one seed, so the same store always gets the
same fMRI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from featstore.errors import InputError

# weights of lags 1..4 TRs (a coarse hemodynamic response peaking at lag 2)
DEFAULT_KERNEL = (0.35, 1.0, 0.75, 0.3)


@dataclass(frozen=True)
class PlantedSource:
    """Features that drive some ROIs.

    Attributes
    ----------
    name
        Label of the source (stored in the fmri attrs), e.g. ``minilm/ctx32/layer4``.
    features
        ``(n_tr, dim)`` array on the fMRI TR grid.
    roi_names
        Bare ROI names driven by this source (both hemispheres).
    n_directions
        Random feature directions mixed into each ROI; more directions make the response
        specific to this exact layer rather than to anything correlated with it.
    """

    name: str
    features: np.ndarray
    roi_names: Sequence[str]
    n_directions: int = 8
    kernel: Sequence[float] = field(default=DEFAULT_KERNEL)


def _zscore(values: np.ndarray) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    std = values.std(axis=0)
    std[std == 0] = 1.0
    return (values - values.mean(axis=0)) / std


def _delay(signal: np.ndarray, kernel: Sequence[float]) -> np.ndarray:
    """Convolve (T, k) signals with weights on lags 1..len(kernel), no wrap-around."""
    out = np.zeros_like(signal)
    for lag, weight in enumerate(kernel, start=1):
        out[lag:] += weight * signal[:-lag]
    return out


def _ar1_noise(rng: np.random.Generator, shape: tuple[int, int], rho: float) -> np.ndarray:
    noise = rng.standard_normal(shape)
    for t in range(1, shape[0]):
        noise[t] = rho * noise[t - 1] + np.sqrt(1 - rho**2) * noise[t]
    return noise


def simulate_bold(
    sources: Sequence[PlantedSource],
    roi_names: Sequence[str],
    *,
    n_subjects: int = 5,
    snr: float = 1.5,
    noise_rho: float = 0.3,
    seed: int = 0,
) -> tuple[np.ndarray, list[str], dict[str, list[int]]]:
    """Simulate ``bold(subject, tr, roi)`` from planted sources.

    Parameters
    ----------
    sources
        The planted sources; all share the TR count.
    roi_names
        Name of every ROI (both hemispheres; names may repeat across hemispheres).
    n_subjects
        Number of simulated subjects.
    snr
        Standard deviation of the planted signal over that of the noise, in driven ROIs.
    noise_rho
        Lag-1 autocorrelation of the noise (fMRI noise is autocorrelated).
    seed
        Seed of every random draw.

    Returns
    -------
    bold
        ``(n_subjects, n_tr, n_roi)`` float32.
    subjects
        Subject ids ``sim01`` ….
    planted
        Source name → indices of the ROIs it drives.
    """
    if not sources:
        raise InputError("simulate_bold needs at least one planted source")
    n_tr = {np.shape(s.features)[0] for s in sources}
    if len(n_tr) != 1:
        raise InputError(f"planted sources disagree on the TR count: {sorted(n_tr)}")
    n_tr = n_tr.pop()
    names = list(roi_names)
    rng = np.random.default_rng(seed)
    signal = np.zeros((n_tr, len(names)))
    planted: dict[str, list[int]] = {}
    for source in sources:
        indices = [i for i, name in enumerate(names) if name in set(source.roi_names)]
        unknown = sorted(set(source.roi_names) - set(names))
        if unknown:
            raise InputError(f"planted source {source.name!r}: unknown ROI names {unknown}")
        features = _zscore(source.features)
        directions = rng.standard_normal((features.shape[1], source.n_directions))
        latent = _delay(_zscore(features @ directions), source.kernel)
        mixing = rng.standard_normal((source.n_directions, len(indices)))
        driven = _zscore(latent @ mixing)
        signal[:, indices] += driven
        planted[source.name] = indices
    driven_mask = signal.std(axis=0) > 0
    signal[:, driven_mask] = _zscore(signal[:, driven_mask])
    bold = np.empty((n_subjects, n_tr, len(names)), dtype=np.float32)
    for subject in range(n_subjects):
        gain = snr * rng.uniform(0.8, 1.2)
        noise = _ar1_noise(rng, (n_tr, len(names)), noise_rho)
        bold[subject] = (gain * signal + noise).astype(np.float32)
    subjects = [f"sim{index + 1:02d}" for index in range(n_subjects)]
    return bold, subjects, planted
