"""What ``featstore dataset import`` wrote and noticed, as the lines the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from featstore._docs import fill_doc


@fill_doc
@dataclass(frozen=True)
class ImportReport:
    """What ``import_dataset`` wrote and noticed.

    ``tr_mismatch`` is the fMRI TR count minus the TRs the story audio spans after
    ``stim_onset`` (``audio_n_tr``); None without fMRI.

    Attributes
    ----------
    store : Path
        The store written.
    n_words, n_tr, audio_n_tr : int
        Words; TRs of the store; TRs the audio spans after ``stim_onset``.
    tr_mismatch : int or None
        fMRI TRs minus ``audio_n_tr`` (None without fMRI).

    Examples
    --------
    %(example_import)s
    >>> report.n_words, report.n_tr, report.tr_mismatch
    (830, 206, None)
    """

    store: Path
    dataset: str
    tr_seconds: float
    stim_onset: float
    tr_assign: str
    n_words: int
    n_time_filled: int
    n_word_missing: int
    duration_s: float
    n_tr: int
    audio_n_tr: int
    n_words_after_scan: int
    stimulus_sha256: str
    subjects: list[str] = field(default_factory=list)
    n_roi: int = 0
    atlas: str = ""
    tr_mismatch: int | None = None
    trimmed: dict[str, int] = field(default_factory=dict)
    story: str = ""
    target_kind: str = "roi"
    space: str = ""
    dropped_targets: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as short human-readable lines (what the CLI prints)."""
        where = f"story {self.story!r} of dataset" if self.story else "dataset"
        out = [
            f"store      {self.store}  ({where} {self.dataset!r})",
            f"words      {self.n_words}  ({self.n_time_filled} timestamps back-filled, "
            f"{self.n_word_missing} missing words)",
            f"audio      {self.duration_s:.2f} s at 16 kHz; story starts {self.stim_onset:g} s "
            f"into the scan",
            f"TRs        n_tr={self.n_tr} of {self.tr_seconds:g} s; words → TRs by "
            f"{self.tr_assign}; the audio spans {self.audio_n_tr} TRs",
        ]
        if self.subjects:
            shown = ", ".join(self.subjects[:5]) + (" …" if len(self.subjects) > 5 else "")
            out.append(f"fMRI       {len(self.subjects)} subjects ({shown}); {self._targets()}")
            out.append(
                f"TR check   fMRI {self.n_tr} TRs vs audio {self.audio_n_tr} TRs: "
                f"difference {self.tr_mismatch:+d}"
            )
        else:
            out.append("fMRI       none (n_tr from the audio)")
        if self.trimmed:
            out.append(
                f"trimmed    {len(self.trimmed)} subject(s) cut to {self.n_tr} TRs: "
                + ", ".join(f"{s} (-{n})" for s, n in self.trimmed.items())
            )
        if self.n_words_after_scan:
            out.append(
                f"warning    {self.n_words_after_scan} word(s) fall after the last TR; "
                "features ignore them"
            )
        out += [f"note       {note}" for note in self.notes]
        return out

    def _targets(self) -> str:
        if self.target_kind == "roi":
            return f"{self.n_roi} ROIs ({self.atlas})"
        return (
            f"{self.n_roi} {'vertices' if self.target_kind == 'vertex' else 'voxels'} in {self.space} ({self.dropped_targets} "
            "dropped: medial wall, outside the mask, NaN or constant in a subject)"
        )
