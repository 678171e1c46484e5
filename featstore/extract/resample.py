"""Word-level features → TR-level features.

``words_to_trs`` is the one place that turns word vectors into the TR axis of the
fMRI, so other resampling methods (e.g. Lanczos) plug in beside the reference
study's mean-per-TR.
"""

from __future__ import annotations

import numpy as np

from featstore.errors import InputError

TO_TR_METHODS = ("mean",)


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


def words_to_trs(
    word_values: np.ndarray,
    tr_index: np.ndarray,
    n_tr: int,
    method: str = "mean",
    *,
    used: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample word vectors onto the TR axis.

    ``mean``: the feature of TR t is the mean of the vectors of the words with
    ``tr_index == t``; TRs without words get zeros (and ``has_words`` False).
    Words with ``tr_index`` outside ``[0, n_tr)`` or ``used`` False are ignored.

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

    Returns
    -------
    tr_values
        ``(n_tr, dim)`` float64.
    has_words
        ``(n_tr,)`` bool.
    """
    if method not in TO_TR_METHODS:
        raise InputError(f"--to-tr {method!r}: expected one of {', '.join(TO_TR_METHODS)}")
    word_values = np.asarray(word_values)
    if word_values.ndim != 2 or word_values.shape[0] != np.shape(tr_index)[0]:
        raise InputError(
            f"word_values must be (word={np.shape(tr_index)[0]}, dim), got {word_values.shape}"
        )
    counted, has_words = tr_membership(tr_index, n_tr, used)
    trs = np.asarray(tr_index, dtype=np.int64)[counted]
    counts = np.bincount(trs, minlength=n_tr)[:n_tr]
    sums = np.zeros((n_tr, word_values.shape[1]), dtype=np.float64)
    np.add.at(sums, trs, word_values[counted].astype(np.float64))
    return sums / np.maximum(counts, 1)[:, None], has_words
