"""The stimulus timeline: which TR each word belongs to, and the timeline's identity.

Two clocks meet here. Word times are on the story clock (0 = start of the story
audio); TRs are on the scan clock, and the story starts ``stim_onset`` seconds after
the scan. TR t covers scan time ``[t·TR, (t+1)·TR)``.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

from featstore.errors import InputError
from featstore.store._schema import TR_ASSIGN_RULES

# Times within this fraction of a TR of a boundary count as on it, so that float
# noise (0.1 + 0.2 = 0.30000000000000004) never moves a word across a boundary.
_BOUNDARY_DECIMALS = 9
# Plausible ranges: no fMRI sequence has a TR outside them (a TR given in milliseconds is
# the usual mistake), and beyond them TR indices overflow.
MIN_TR_SECONDS, MAX_TR_SECONDS = 0.01, 60.0
MAX_STIM_ONSET_SECONDS = 3600.0


def check_timing(tr: float, stim_onset: float, tr_assign: str) -> None:
    """Raise :class:`InputError` unless the TR, the stim onset and the rule are plausible.

    TR: between ``MIN_TR_SECONDS`` and ``MAX_TR_SECONDS``; stim onset: between 0 and
    ``MAX_STIM_ONSET_SECONDS``.
    """
    if not (isinstance(tr, (int, float)) and math.isfinite(tr) and tr > 0):
        raise InputError(f"tr={tr!r}: expected a positive number of seconds")
    if not MIN_TR_SECONDS <= tr <= MAX_TR_SECONDS:
        raise InputError(
            f"tr={tr!r}: expected a repetition time in seconds between {MIN_TR_SECONDS:g} "
            f"and {MAX_TR_SECONDS:g} (is it in milliseconds?)"
        )
    if not (
        isinstance(stim_onset, (int, float))
        and math.isfinite(stim_onset)
        and 0 <= stim_onset <= MAX_STIM_ONSET_SECONDS
    ):
        raise InputError(
            f"stim_onset={stim_onset!r}: expected the seconds of scan before the story "
            f"starts, between 0 and {MAX_STIM_ONSET_SECONDS:g}"
        )
    if tr_assign not in TR_ASSIGN_RULES:
        raise InputError(f"tr_assign={tr_assign!r}: expected one of {', '.join(TR_ASSIGN_RULES)}")


def scan_trs(seconds: np.ndarray | float, tr: float) -> np.ndarray:
    """Scan-clock seconds in TR units, rounded so boundaries are exact."""
    return np.round(np.asarray(seconds, dtype=np.float64) / tr, _BOUNDARY_DECIMALS)


def assign_tr(
    onset: np.ndarray, *, tr: float, stim_onset: float = 0.0, rule: str = "ceil"
) -> np.ndarray:
    """TR index of each word from its onset.

    Parameters
    ----------
    onset
        Word onsets in seconds on the story clock.
    tr
        Repetition time in seconds.
    stim_onset
        Seconds of scan before the story starts.
    rule
        ``"ceil"`` (default, the reference study's rule): ``ceil((onset + stim_onset) / tr)``,
        so a word joins the TR whose end is the first boundary at or after its onset.
        ``"floor"``: ``floor((onset + stim_onset) / tr)``, the TR during which it starts.

    Returns
    -------
    numpy.ndarray
        int64 TR indices, one per word.

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.datasets import assign_tr
    >>> assign_tr(np.array([0.2, 1.5, 1.6]), tr=1.5), assign_tr(np.array([0.2]), tr=1.5, rule="floor")
    (array([1, 1, 2]), array([0]))
    """
    check_timing(tr, stim_onset, rule)
    position = scan_trs(np.asarray(onset, dtype=np.float64) + stim_onset, tr)
    index = np.ceil(position) if rule == "ceil" else np.floor(position)
    return index.astype(np.int64)


def audio_tr_count(duration_s: float, *, tr: float, stim_onset: float = 0.0) -> int:
    """TRs the scan needs to cover the story: ``ceil((stim_onset + duration) / tr)``."""
    return int(np.ceil(scan_trs(stim_onset + duration_s, tr)))


def stimulus_sha256(
    audio_sha256: str, align_sha256: str, *, tr: float, stim_onset: float, tr_assign: str
) -> str:
    """Identity of a stimulus timeline: same audio, words, TR and TR rule → same hash.

    Feature sets copy it, so features extracted on another timeline can be detected.

    Parameters
    ----------
    audio_sha256, align_sha256 : str
        Hex sha256 of the audio and alignment files.
    tr, stim_onset : float
        Repetition time; seconds of scan before the story starts.
    tr_assign : str
        The TR rule, ``"ceil"`` or ``"floor"``.

    Returns
    -------
    str
        64 hex digits: the sha256 of the five values, one per line.

    Examples
    --------
    >>> from featstore.datasets import stimulus_sha256
    >>> a = stimulus_sha256("a" * 64, "b" * 64, tr=1.5, stim_onset=0.0, tr_assign="ceil")
    >>> a == stimulus_sha256("a" * 64, "b" * 64, tr=2.0, stim_onset=0.0, tr_assign="ceil")
    False
    """
    text = "\n".join(
        [audio_sha256, align_sha256, repr(float(tr)), repr(float(stim_onset)), tr_assign]
    )
    return hashlib.sha256(text.encode()).hexdigest()
