"""``featstore dataset import-eeg``: continuous EEG/MEG read by MNE into the ``eeg`` group.

Every file MNE reads (BrainVision, EDF/BDF, FIF, EEGLAB …) is one subject's recording
of the story. The story's onset in each recording comes from an annotation (BrainVision
markers, EDF+ annotations and FIF annotations all arrive as MNE annotations), from a
stim-channel event code, or from a given offset. Optional band-pass filtering and
resampling are MNE's own (``raw.filter``, ``raw.resample``) and are recorded in attrs.

The group holds ``data (subject, time, channel)`` float32 in SI units (V for EEG, T for
MEG), with ``time`` in seconds on the story clock (0 = story onset, as the word
onsets of ``stimulus``), channel names, types and montage positions as coordinates.
Everything is read and checked before anything is written.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from featstore.errors import GroupExistsError, InputError
from featstore.store import _schema as S
from featstore.store.groups import StorePath, group_exists, open_group, write_group

_SUBJECT_RE = re.compile(r"(sub-[A-Za-z0-9]+)")
#: A word may end this long after the last EEG sample (one sample at 200 Hz and less).
_END_SLACK_S = 0.005


@dataclass(frozen=True)
class Recording:
    """One subject's recording, filtered and resampled, with the story onset located."""

    subject: str
    path: Path
    raw: Any
    onset_s: float
    sfreq_original: float


@dataclass(frozen=True)
class EegImportReport:
    """What :func:`import_eeg` wrote."""

    store: str
    subjects: list[str]
    n_channels: int
    sfreq: float
    tmin: float
    tmax: float
    onsets: dict[str, float]
    filter: dict[str, Any]

    def lines(self) -> list[str]:
        """The report as short lines (what the CLI prints)."""
        shown = ", ".join(self.subjects[:5]) + (" …" if len(self.subjects) > 5 else "")
        band = self.filter
        return [
            f"eeg        {len(self.subjects)} subject(s) ({shown}); {self.n_channels} channels "
            f"at {self.sfreq:g} Hz",
            f"time       {self.tmin:.3f} … {self.tmax:.3f} s on the story clock",
            "onsets     " + ", ".join(f"{s} {t:.3f} s" for s, t in self.onsets.items()),
            f"filter     l_freq={band['l_freq']} h_freq={band['h_freq']} "
            f"resampled from {band['sfreq_original']}",
        ]


def expand_eeg_paths(patterns: list[str]) -> list[Path]:
    """Files named by ``patterns`` (paths or shell globs), sorted, each once."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.expanduser(pattern)))
        if not matches:
            raise InputError(f"eeg={pattern}: no such file")
        found += [Path(m) for m in matches if Path(m).resolve() not in {p.resolve() for p in found}]
    return found


def subject_of(path: Path) -> str:
    """``sub-XX`` from a BIDS-like file name, else the file name without its extension."""
    match = _SUBJECT_RE.search(path.name)
    return match.group(1) if match else path.name.split(".")[0]


def _read_raw(path: Path) -> Any:
    import mne

    try:
        return mne.io.read_raw(path, preload=True, verbose="error")
    except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"eeg={path}: MNE cannot read it ({first})") from None


def story_onset(raw: Any, path: Path, *, onset_event: str, onset: float | None) -> float:
    """Seconds from the recording's first sample to the story onset.

    ``onset`` (seconds) wins when given; otherwise the first annotation whose description
    is ``onset_event``, or, for a number, the first event of that code on a stim channel.
    """
    duration = raw.n_times / raw.info["sfreq"]
    if onset is not None:
        if not 0 <= onset < duration:
            raise InputError(f"onset={onset:g} s: outside {path} (which lasts {duration:.3f} s)")
        return float(onset)
    import mne

    descriptions = sorted(set(raw.annotations.description))
    if onset_event in descriptions:
        events, _ = mne.events_from_annotations(raw, event_id={onset_event: 1}, verbose="error")
        return float(events[0, 0] - raw.first_samp) / raw.info["sfreq"]
    stim = mne.pick_types(raw.info, meg=False, stim=True)
    if onset_event.isdigit() and len(stim):
        events = mne.find_events(raw, shortest_event=1, verbose="error")
        hits = events[events[:, 2] == int(onset_event)]
        if len(hits):
            return float(hits[0, 0] - raw.first_samp) / raw.info["sfreq"]
    shown = ", ".join(repr(d) for d in descriptions[:8]) or "none"
    raise InputError(
        f"eeg={path}: no onset event {onset_event!r} (annotations: {shown}); pass "
        "`onset_event` (a name) or `onset` (seconds)"
    )


def _prepare(
    path: Path,
    *,
    onset_event: str,
    onset: float | None,
    l_freq: float | None,
    h_freq: float | None,
    sfreq: float | None,
    montage: str | None,
    reader: Callable[[Path], Any] = _read_raw,
) -> Recording:
    raw = reader(path)
    onset_s = story_onset(raw, path, onset_event=onset_event, onset=onset)
    raw.pick("data", exclude=())
    if montage is not None:
        try:
            raw.set_montage(montage, match_case=False, on_missing="ignore", verbose="error")
        except ValueError as exc:
            raise InputError(f"montage={montage}: {str(exc).splitlines()[0]}") from None
    original = float(raw.info["sfreq"])
    if l_freq is not None or h_freq is not None:
        try:
            raw.filter(l_freq, h_freq, picks="data", verbose="error")
        except ValueError as exc:
            raise InputError(f"`l_freq`/`h_freq` on {path}: {str(exc).splitlines()[0]}") from None
    if sfreq is not None and sfreq != raw.info["sfreq"]:
        raw.resample(sfreq, verbose="error")
    return Recording(subject_of(path), path, raw, onset_s, original)


def _check_consistent(recordings: list[Recording]) -> None:
    first = recordings[0]
    names = first.raw.ch_names
    seen: dict[str, Path] = {}
    for rec in recordings:
        if rec.subject in seen:
            raise InputError(
                f"eeg={rec.path} and {seen[rec.subject]} are both subject {rec.subject!r}; "
                "expected one file per subject"
            )
        seen[rec.subject] = rec.path
        if rec.raw.ch_names != names:
            raise InputError(
                f"eeg={rec.path} has {len(rec.raw.ch_names)} data channels but {first.path} "
                f"has {len(names)} (or other names); expected the same channels in every file"
            )
        if rec.raw.info["sfreq"] != first.raw.info["sfreq"]:
            raise InputError(
                f"eeg={rec.path} is sampled at {rec.raw.info['sfreq']:g} Hz but {first.path} "
                f"at {first.raw.info['sfreq']:g} Hz; pass `sfreq` (Hz) to resample"
            )


def _positions(raw: Any) -> np.ndarray:
    """Sensor positions (m, head frame) from the montage; NaN where none is known."""
    loc = np.array([ch["loc"][:3] for ch in raw.info["chs"]], dtype=np.float64)
    loc[~np.isfinite(loc).all(axis=1) | (loc == 0).all(axis=1)] = np.nan
    return loc


def eeg_dataset(
    recordings: list[Recording], *, tmin: float, last_word_end: float, settings: dict
) -> xr.Dataset:
    """The ``eeg`` group: every recording cut to the common span around the story onset.

    ``tmin`` (seconds, <= 0) is how much before the onset to keep where every recording
    has it. Raises :class:`InputError` when a word of the story ends after a recording.
    """
    sfreq = float(recordings[0].raw.info["sfreq"])
    onsets = [round(rec.onset_s * sfreq) for rec in recordings]
    n_pre = min(round(-tmin * sfreq), *onsets)
    n_post = min(rec.raw.n_times - start for rec, start in zip(recordings, onsets, strict=True))
    end = (n_post - 1) / sfreq
    if last_word_end > end + _END_SLACK_S:
        shortest = min(
            zip(recordings, onsets, strict=True), key=lambda pair: pair[0].raw.n_times - pair[1]
        )[0]
        raise InputError(
            f"eeg={shortest.path}: the recording ends {end:.3f} s after the story onset but "
            f"the story's last word ends at {last_word_end:.3f} s; words past the recording's "
            "end (wrong file or onset?)"
        )
    data = np.stack(
        [
            rec.raw.get_data()[:, start - n_pre : start + n_post].T
            for rec, start in zip(recordings, onsets, strict=True)
        ]
    ).astype(np.float32)
    raw = recordings[0].raw
    pos = _positions(raw)
    channel = raw.ch_names
    bad = np.array([[name in rec.raw.info["bads"] for name in channel] for rec in recordings])
    return xr.Dataset(
        {
            S.EEG_DATA_VAR: (S.EEG_DIMS, data),
            "bad": ((S.SUBJECT_DIM, S.CHANNEL_DIM), bad),
        },
        coords={
            S.SUBJECT_DIM: np.array([rec.subject for rec in recordings], dtype=object),
            S.TIME_DIM: (np.arange(-n_pre, n_post) / sfreq),
            S.CHANNEL_DIM: np.array(channel, dtype=object),
            "ch_type": (S.CHANNEL_DIM, np.array(raw.get_channel_types(), dtype=object)),
            "x": (S.CHANNEL_DIM, pos[:, 0]),
            "y": (S.CHANNEL_DIM, pos[:, 1]),
            "z": (S.CHANNEL_DIM, pos[:, 2]),
        },
        attrs={
            "sfreq": sfreq,
            "onsets": {rec.subject: rec.onset_s for rec in recordings},
            "source": {rec.subject: str(rec.path) for rec in recordings},
            "time_origin": "story onset (0 s = onset 0 of stimulus)",
            **settings,
        },
    )


def _last_word_end(store: StorePath) -> float:
    stimulus = open_group(store, S.STIMULUS)
    ends = np.asarray(stimulus["offset"].values, dtype=np.float64)
    ends = ends[np.isfinite(ends)]
    return float(ends.max()) if ends.size else 0.0


def import_eeg(
    store: StorePath,
    eeg: list[str],
    *,
    onset_event: str = "story_onset",
    onset: float | None = None,
    l_freq: float | None = None,
    h_freq: float | None = None,
    sfreq: float | None = None,
    tmin: float = -1.0,
    montage: str | None = None,
    overwrite: bool = False,
    reader: Callable[[Path], Any] = _read_raw,
) -> EegImportReport:
    """Read every EEG/MEG file of ``eeg`` with MNE and write the store's ``eeg`` group.

    Parameters
    ----------
    store
        A store made by ``featstore dataset import`` (its ``stimulus`` gives the words).
    eeg
        Paths or globs, one file per subject (``sub-XX`` in the name names the subject).
    onset_event, onset
        Where the story starts: an annotation description (or stim event code), or
        seconds from the first sample (wins when given).
    l_freq, h_freq
        Band-pass edges in Hz for MNE's ``raw.filter`` (None: that edge is not filtered).
    sfreq
        Resample to this rate (MNE's ``raw.resample``) after filtering.
    tmin
        Seconds before the story onset to keep (where every recording has them).
    montage
        Name of an MNE standard montage (``standard_1020``) for files without sensor
        positions (EDF, BrainVision); channels it lacks keep NaN positions.
    overwrite
        Replace an existing ``eeg`` group.
    reader
        Reads one file into a preloaded MNE Raw (default ``mne.io.read_raw``; BIDS
        datasets pass mne-bids' reader, see :mod:`featstore.datasets.eeg_bids`).

    Raises
    ------
    InputError
        Unreadable files, no onset event, channels or rates that differ between files,
        words past a recording's end. Nothing is written then.
    """
    if tmin > 0:
        raise InputError(f"tmin={tmin:g}: expected seconds <= 0 (before the story onset)")
    if sfreq is not None and not sfreq > 0:
        raise InputError(f"sfreq={sfreq:g}: expected a rate in Hz > 0")
    if group_exists(store, S.EEG) and not overwrite:
        raise GroupExistsError(
            f"group 'eeg' already exists in {os.fspath(store)}; pass `overwrite` to replace it"
        )
    last_word_end = _last_word_end(store)
    paths = expand_eeg_paths(eeg)
    recordings = [
        _prepare(
            path,
            onset_event=onset_event,
            onset=onset,
            l_freq=l_freq,
            h_freq=h_freq,
            sfreq=sfreq,
            montage=montage,
            reader=reader,
        )
        for path in paths
    ]
    _check_consistent(recordings)
    import mne

    original = sorted({rec.sfreq_original for rec in recordings})
    settings = {
        "filter": {
            "l_freq": l_freq,
            "h_freq": h_freq,
            "method": "MNE raw.filter defaults (FIR, firwin, zero-phase)",
            "highpass": float(recordings[0].raw.info["highpass"]),
            "lowpass": float(recordings[0].raw.info["lowpass"]),
            "sfreq_original": original,
            "resample": sfreq,
        },
        "onset_rule": f"offset {onset:g} s" if onset is not None else f"event {onset_event!r}",
        "montage": montage,
        "mne_version": mne.__version__,
    }
    ds = eeg_dataset(recordings, tmin=tmin, last_word_end=last_word_end, settings=settings)
    encoding = {S.EEG_DATA_VAR: {"chunks": (1, ds.sizes[S.TIME_DIM], ds.sizes[S.CHANNEL_DIM])}}
    write_group(store, S.EEG, ds, overwrite=overwrite, encoding=encoding)
    times = ds[S.TIME_DIM].values
    return EegImportReport(
        store=os.fspath(store),
        subjects=[rec.subject for rec in recordings],
        n_channels=ds.sizes[S.CHANNEL_DIM],
        sfreq=float(ds.attrs["sfreq"]),
        tmin=float(times[0]),
        tmax=float(times[-1]),
        onsets={rec.subject: rec.onset_s for rec in recordings},
        filter=settings["filter"],
    )
