"""Lanczos resampling of word-level features to TRs (Huth et al. 2016; Deniz et al. 2019).

Each word is a spike at its time; the TR series is the spike train low-pass filtered with
a Lanczos kernel and sampled at the TR times:

    out[k] = Σ_i  L(tr_times[k] − times[i]) · values[i]
    L(t)   = sinc(t / τ) · sinc(t / (a τ))  for |t| ≤ a τ, else 0,   sinc(x) = sin(πx)/(πx)

with ``τ = TR / cutoff_mult`` and ``a = window`` lobes. The kernel's first zero is at
``t = τ``, i.e. a low-pass at ``cutoff = cutoff_mult / (2 TR)`` Hz: the Nyquist frequency
of the TR grid for ``cutoff_mult = 1``. As in the published code the words are summed, not
averaged: TRs with more words get larger vectors, so the word rate stays in the features
(z-scoring at evaluation removes the overall scale). Dividing by the local sum of kernel
weights is not offered: with irregular word times that sum of a signed kernel can come
close to zero and blow a TR up.
"""

from __future__ import annotations

import numpy as np

from featstore.errors import InputError

# TRs handled per step: bounds the (TRs × words) kernel block to a few MB
_TR_BLOCK = 256


def lanczos_kernel(t: np.ndarray, *, window: int = 3) -> np.ndarray:
    """Lanczos kernel ``sinc(t) sinc(t / window)`` on ``|t| <= window`` (t in units of τ)."""
    t = np.asarray(t, dtype=np.float64)
    return np.where(np.abs(t) <= window, np.sinc(t) * np.sinc(t / window), 0.0)


def lanczos_resample(
    values: np.ndarray,
    times: np.ndarray,
    tr_times: np.ndarray,
    window: int = 3,
    cutoff_mult: float = 1.0,
) -> np.ndarray:
    """Resample word features to the TR grid with a Lanczos low-pass filter.

    Parameters
    ----------
    values : ndarray, shape (n_words, dim)
        One feature vector per word.
    times : ndarray, shape (n_words,)
        Time of each word in seconds (e.g. the middle of the word), any order.
    tr_times : ndarray, shape (n_tr,)
        Times of the TR samples on the same clock, evenly spaced; the TR is their mean step.
    window : int
        Number of lobes ``a`` of the kernel on each side (3 in the published code).
    cutoff_mult : float
        Cutoff frequency as a multiple of the TR grid's Nyquist frequency ``1 / (2 TR)``.

    Returns
    -------
    ndarray of float64, shape (n_tr, dim)
    """
    values = np.asarray(values, dtype=np.float64)
    times = np.asarray(times, dtype=np.float64)
    tr_times = np.asarray(tr_times, dtype=np.float64)
    if values.ndim != 2 or times.shape != (values.shape[0],):
        raise InputError(
            f"values must be (n_words, dim) with one time per word; got values "
            f"{values.shape} and times {times.shape}"
        )
    if tr_times.ndim != 1 or tr_times.size < 2:
        raise InputError(f"tr_times must hold at least 2 TR times, got shape {tr_times.shape}")
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(tr_times))):
        raise InputError("word times and TR times must be finite")
    steps = np.diff(tr_times)
    tr_seconds = float(steps.mean())
    if tr_seconds <= 0 or not np.allclose(steps, tr_seconds, rtol=1e-3, atol=1e-6):
        raise InputError("tr_times must be increasing and evenly spaced (one TR apart)")
    if window < 1 or cutoff_mult <= 0:
        raise InputError(f"window={window} and cutoff_mult={cutoff_mult} must be positive")
    tau = tr_seconds / cutoff_mult
    support = window * tau

    order = np.argsort(times, kind="stable")
    times = times[order]
    values = values[order]
    out = np.zeros((tr_times.size, values.shape[1]))
    for start in range(0, tr_times.size, _TR_BLOCK):
        block_times = tr_times[start : start + _TR_BLOCK]
        # only words within the kernel's support of the block's TRs contribute
        lo = np.searchsorted(times, block_times[0] - support, side="left")
        hi = np.searchsorted(times, block_times[-1] + support, side="right")
        if lo == hi:
            continue
        weights = lanczos_kernel((block_times[:, None] - times[None, lo:hi]) / tau, window=window)
        out[start : start + block_times.size] = weights @ values[lo:hi]
    return out
