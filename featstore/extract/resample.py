"""Word-level features → TR-level features.

``words_to_trs`` is the one place that turns word vectors into the TR axis of the
fMRI. Two methods:

* ``mean`` (the reference study's): the feature of TR t is the mean of the vectors of the
  words assigned to it (``tr_index == t``);
* ``lanczos`` (Huth et al. 2016; Deniz et al. 2019): each word is a spike at its time;
  the TR series is the spike train low-pass filtered with a Lanczos kernel and sampled at
  the TR times,

      out[k] = Σ_i  L(tr_times[k] − times[i]) · values[i]
      L(t)   = sinc(t / τ) · sinc(t / (a τ))  for |t| ≤ a τ, else 0,   sinc(x) = sin(πx)/(πx)

  with ``τ = TR / cutoff_mult`` and ``a = window`` lobes. The kernel's first zero is at
  ``t = τ``, i.e. a low-pass at ``cutoff_mult / (2 TR)`` Hz: the Nyquist frequency of the
  TR grid for ``cutoff_mult = 1``. As in the published code the words are summed, not
  averaged: TRs with more words get larger vectors, so the word rate stays in the
  features (z-scoring at evaluation removes the overall scale). Dividing by the local sum
  of kernel weights is not offered: with irregular word times that sum of a signed kernel
  can come close to zero and blow a TR up.

Times are on the scan clock (see :func:`lanczos_tr_times` for where a TR is sampled).
"""

from __future__ import annotations

import numpy as np

from featstore.errors import InputError

TO_TR_METHODS = ("mean", "lanczos")
#: Lanczos defaults of the story-listening encoding work: 3 lobes, cutoff at the TR Nyquist.
LANCZOS_WINDOW = 3
LANCZOS_CUTOFF = 1.0
# TRs handled per step: bounds the (TRs × words) kernel block to a few MB
_TR_BLOCK = 256


def tr_membership(
    tr_index: np.ndarray, n_tr: int, used: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Which words count towards a TR, and which TRs have any.

    Parameters
    ----------
    tr_index
        ``(word,)`` TR of each word (scan clock).
    n_tr
        Length of the TR axis.
    used
        ``(word,)`` bool, False for words without a vector (missing words); all True
        when omitted.

    Returns
    -------
    counted
        ``(word,)`` bool: used and ``0 <= tr_index < n_tr``.
    has_words
        ``(n_tr,)`` bool: the TR has at least one counted word.
    """
    tr_index = np.asarray(tr_index, dtype=np.int64)
    if tr_index.ndim != 1:
        raise InputError(f"tr_index must be 1-D (word,), got shape {tr_index.shape}")
    used = np.ones(tr_index.shape, bool) if used is None else np.asarray(used, dtype=bool)
    if used.shape != tr_index.shape:
        raise InputError(f"used has shape {used.shape}, expected {tr_index.shape} like tr_index")
    counted = used & (tr_index >= 0) & (tr_index < n_tr)
    has_words = np.bincount(tr_index[counted], minlength=n_tr)[:n_tr] > 0
    return counted, has_words


def lanczos_tr_times(n_tr: int, tr_seconds: float, tr_assign: str = "ceil") -> np.ndarray:
    """Scan time (s) at which the Lanczos filter samples each TR.

    The centre of the span of scan time whose words the ``mean`` method puts into TR
    ``k``, so both methods share the timing and differ only in the kernel: with the
    ``floor`` rule TR k holds the words starting in ``[k TR, (k+1) TR)``, sampled at
    ``(k + 0.5) TR`` (the TR centre, as in Huth et al.'s code); with the default ``ceil``
    rule it holds those of ``((k-1) TR, k TR]``, sampled at ``(k − 0.5) TR``.
    """
    offsets = {"floor": 0.5, "ceil": -0.5}
    if tr_assign not in offsets:
        raise InputError(f"tr_assign {tr_assign!r}: expected one of {', '.join(offsets)}")
    return (np.arange(n_tr, dtype=np.float64) + offsets[tr_assign]) * float(tr_seconds)


def lanczos_kernel(t: np.ndarray, *, window: int = LANCZOS_WINDOW) -> np.ndarray:
    """Lanczos kernel ``sinc(t) sinc(t / window)`` on ``|t| <= window`` (t in units of τ)."""
    t = np.asarray(t, dtype=np.float64)
    return np.where(np.abs(t) <= window, np.sinc(t) * np.sinc(t / window), 0.0)


def lanczos_resample(
    values: np.ndarray,
    times: np.ndarray,
    tr_times: np.ndarray,
    window: int = LANCZOS_WINDOW,
    cutoff_mult: float = LANCZOS_CUTOFF,
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
        raise InputError(
            f"lanczos_window={window} and lanczos_cutoff={cutoff_mult} must be positive"
        )
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


def words_to_trs(
    word_values: np.ndarray,
    tr_index: np.ndarray,
    n_tr: int,
    method: str = "mean",
    *,
    used: np.ndarray | None = None,
    word_times: np.ndarray | None = None,
    tr_times: np.ndarray | None = None,
    window: int = LANCZOS_WINDOW,
    cutoff_mult: float = LANCZOS_CUTOFF,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample word vectors onto the TR axis.

    ``mean``: the feature of TR t is the mean of the vectors of the words with
    ``tr_index == t``; TRs without words get zeros. Words with ``tr_index`` outside
    ``[0, n_tr)`` or ``used`` False are ignored.

    ``lanczos``: :func:`lanczos_resample` of the used words at ``word_times``, sampled at
    ``tr_times`` (see :func:`lanczos_tr_times`). Every used word counts, also one just
    past the last TR: the kernel reaches ``window`` TRs on both sides. ``has_words`` is
    the same as for ``mean``.

    Parameters
    ----------
    word_values
        ``(word, dim)`` word vectors.
    tr_index
        ``(word,)`` TR of each word.
    n_tr
        Number of TRs of the output.
    method
        One of :data:`TO_TR_METHODS`.
    used
        ``(word,)`` bool mask of words that have a vector.
    word_times, tr_times
        ``lanczos`` only: ``(word,)`` time of each word and ``(n_tr,)`` sample time of
        each TR, in seconds on the scan clock.
    window, cutoff_mult
        ``lanczos`` only: lobes of the kernel and cutoff as a multiple of the TR Nyquist.

    Returns
    -------
    tr_values
        ``(n_tr, dim)`` float64.
    has_words
        ``(n_tr,)`` bool.
    """
    if method not in TO_TR_METHODS:
        raise InputError(f"to_tr={method!r}: expected one of {', '.join(TO_TR_METHODS)}")
    word_values = np.asarray(word_values)
    if word_values.ndim != 2 or word_values.shape[0] != np.shape(tr_index)[0]:
        raise InputError(
            f"word_values must be (word={np.shape(tr_index)[0]}, dim), got {word_values.shape}"
        )
    counted, has_words = tr_membership(tr_index, n_tr, used)
    if method == "lanczos":
        if word_times is None or tr_times is None:
            raise InputError("to_tr=lanczos needs the word times and the TR times")
        if np.shape(tr_times) != (n_tr,):
            raise InputError(f"tr_times has shape {np.shape(tr_times)}, expected ({n_tr},)")
        keep = np.ones(word_values.shape[0], bool) if used is None else np.asarray(used, bool)
        values = lanczos_resample(
            word_values[keep],
            np.asarray(word_times)[keep],
            tr_times,
            window=window,
            cutoff_mult=cutoff_mult,
        )
        return values, has_words
    trs = np.asarray(tr_index, dtype=np.int64)[counted]
    counts = np.bincount(trs, minlength=n_tr)[:n_tr]
    sums = np.zeros((n_tr, word_values.shape[1]), dtype=np.float64)
    np.add.at(sums, trs, word_values[counted].astype(np.float64))
    return sums / np.maximum(counts, 1)[:, None], has_words
