"""Audio windows ending at each TR, cut sample-exactly from a story read once.

Time convention (docs/extraction-audio.md): TR ``t`` covers scan time
``[t·TR, (t+1)·TR)``. The window of ``w`` TRs for TR ``t`` is the ``w·TR`` seconds of
audio ending at scan time ``(t+1)·TR``, i.e. story time
``[(t+1−w)·TR − stim_onset, (t+1)·TR − stim_onset)``, zero-padded wherever it falls
outside the story audio (before its start, or after its end).

Rounding, the same everywhere: the TR boundaries ``(t+1)·TR·sr`` and the onset
``stim_onset·sr`` are each rounded to the nearest sample (ties up, computed exactly
on the decimal values of TR and onset), the window ends at their difference, and
every window of ``w`` TRs has exactly ``round(w·TR·sr)`` samples. Windows of one
size therefore batch without padding.

:class:`AudioStream` reads the story audio from the store sequentially, each sample
at most once for all window sizes, and keeps only the span the current block of TRs
needs: memory is bounded by a block, never by the story.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any

import numpy as np

from featstore.errors import InputError


def exact_seconds(seconds: float) -> Fraction:
    """The decimal a float was written as (``0.7`` → 7/10), so rounding sees true ties."""
    return Fraction(repr(float(seconds)))


def round_half_up(value: Fraction) -> int:
    """Round an exact fraction to the nearest integer, ties up."""
    return math.floor(value + Fraction(1, 2))


@dataclass(frozen=True)
class WindowGrid:
    """Sample positions of the audio windows of a store's TRs.

    Parameters
    ----------
    tr_seconds
        Repetition time (s).
    n_tr
        Number of TRs (the store's ``n_tr``).
    stim_onset
        Scan time (s) at which the story audio starts.
    sample_rate
        Audio sample rate (Hz).
    """

    tr_seconds: float
    n_tr: int
    stim_onset: float = 0.0
    sample_rate: int = 16_000

    def __post_init__(self) -> None:
        if not self.tr_seconds > 0:
            raise InputError(f"TR must be positive, got {self.tr_seconds!r} s")
        if self.n_tr < 1:
            raise InputError(f"n_tr must be >= 1, got {self.n_tr}")

    def length(self, tr_win: int) -> int:
        """Samples in a window of ``tr_win`` TRs: ``round(tr_win·TR·sr)``.

        A window may span the whole story (``n_tr`` TRs), not more: what a longer one
        adds is zero padding only, and its label (``tr200``) would claim otherwise.
        """
        if not isinstance(tr_win, (int, np.integer)) or tr_win < 1:
            raise InputError(
                f"tr_wins={tr_win!r}: expected a positive whole number of TRs, e.g. 1,2,3,6"
            )
        if tr_win > self.n_tr:
            raise InputError(
                f"tr_wins={tr_win}: longer than the story ({self.n_tr} TRs of "
                f"{self.tr_seconds:g} s); expected at most {self.n_tr}"
            )
        return round_half_up(tr_win * exact_seconds(self.tr_seconds) * self.sample_rate)

    @cached_property
    def _ends(self) -> np.ndarray:
        # exact rational arithmetic: float products such as 23 · 0.70003125 · 16000
        # land just below a tie and would round the other way
        tr = exact_seconds(self.tr_seconds) * self.sample_rate
        onset = round_half_up(exact_seconds(self.stim_onset) * self.sample_rate)
        ends = [round_half_up((t + 1) * tr) - onset for t in range(self.n_tr)]
        return np.asarray(ends, dtype=np.int64)

    def ends(self) -> np.ndarray:
        """Story sample (exclusive) at which the window of each TR ends, shape ``(n_tr,)``."""
        return self._ends.copy()

    def bounds(self, tr_win: int) -> tuple[np.ndarray, np.ndarray]:
        """``(starts, ends)`` in story samples of every TR's window; may lie outside the audio."""
        ends = self.ends()
        return ends - self.length(tr_win), ends


class AudioStream:
    """Zero-padded spans of a 1-D audio array, read forward with no sample read twice.

    ``source`` is anything sliced like a numpy array (a Zarr array in the store). A
    span request keeps what the previous span already holds and reads only the new
    samples; requests are expected in non-decreasing order (a step back re-reads).
    """

    def __init__(self, source: Any) -> None:
        if len(getattr(source, "shape", ())) != 1:
            raise InputError(f"audio must be 1-D, got shape {getattr(source, 'shape', None)}")
        self.source = source
        self.n_samples = int(source.shape[0])
        self._start = 0
        self._buffer = np.zeros(0, dtype=np.float32)

    def _read(self, start: int, stop: int) -> np.ndarray:
        return np.asarray(self.source[start:stop], dtype=np.float32)

    def span(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` of the story, zeros where outside ``[0, n_samples)``."""
        lo, hi = min(max(start, 0), self.n_samples), min(max(stop, 0), self.n_samples)
        kept_from = max(lo, self._start)
        kept_to = min(hi, self._start + self._buffer.size)
        if kept_from < kept_to and kept_from == lo:
            kept = self._buffer[kept_from - self._start : kept_to - self._start]
            inside = np.concatenate([kept, self._read(kept_to, hi)]) if kept_to < hi else kept
        else:
            inside = self._read(lo, hi)
        self._start, self._buffer = lo, inside
        out = np.zeros(stop - start, dtype=np.float32)
        out[lo - start : hi - start] = inside
        return out


@dataclass(frozen=True)
class WindowBatch:
    """Windows of one size for consecutive TRs: ``samples`` is ``(len(trs), n_samples)``."""

    tr_win: int
    trs: np.ndarray
    samples: np.ndarray


def block_windows(
    stream: AudioStream,
    grid: WindowGrid,
    tr_wins: Sequence[int],
    trs: range,
    batch_size: int,
) -> Iterator[WindowBatch]:
    """Batches of windows of every size in ``tr_wins`` for the block of TRs ``trs``.

    The block's audio (from the start of its longest first window to the end of its
    last TR) is taken from ``stream`` once; batches of at most ``batch_size`` TRs are
    cut from it for each window size in turn, so memory is one block span plus one
    batch.
    """
    if batch_size < 1:
        raise InputError(f"`batch_size` must be >= 1, got {batch_size}")
    ends = grid.ends()[trs.start : trs.stop]
    lookback = max(grid.length(w) for w in tr_wins)
    origin = int(ends[0]) - lookback
    audio = stream.span(origin, int(ends[-1]))
    for tr_win in tr_wins:
        n = grid.length(tr_win)
        for first in range(0, len(ends), batch_size):
            rel_ends = ends[first : first + batch_size] - origin
            samples = np.stack([audio[end - n : end] for end in rel_ends])
            batch_trs = np.arange(trs.start + first, trs.start + first + len(rel_ends))
            yield WindowBatch(tr_win=tr_win, trs=batch_trs, samples=samples)
