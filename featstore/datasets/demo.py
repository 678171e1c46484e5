"""The bundled demo story: synthetic speech with exact word timings (see demo_data/README.md)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

DEMO_PACKAGE = "featstore.datasets"
DEMO_DIR = "demo_data"


def demo_story_paths() -> tuple[Path, Path]:
    """Paths of the bundled demo story audio and its word alignment.

    Returns
    -------
    audio_path, csv_path
        ``story.ogg`` (Ogg Opus, mono 16 kHz, 5 minutes) and ``story_align.csv``
        (Gentle format: word, word_lower, onset, offset; with a header).

    Examples
    --------
    >>> audio, align = demo_story_paths()
    >>> audio.name, align.name
    ('story.ogg', 'story_align.csv')
    """
    root = files(DEMO_PACKAGE).joinpath(DEMO_DIR)
    # featstore installs as plain files (never zipped), so the traversables are real paths
    return Path(str(root.joinpath("story.ogg"))), Path(str(root.joinpath("story_align.csv")))
