"""Layer labels: the evenly spaced depths ``auto`` picks, and ``auto | all | 1,4,6`` specs.

Shared by extraction (``featstore extract --layers``) and evaluation (``--layers``): layer
0 is the embeddings, 1..L the blocks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from featstore.errors import InputError

N_AUTO_LAYERS = 5


def auto_layers(n_layers: int) -> list[int]:
    """Evenly spaced relative depths: ``round(linspace(1, L, 5))``, unique.

    ``n_layers`` is the number of blocks ``L`` (layer labels 1..L; 0 is the
    embeddings), so 12 blocks → 1, 4, 6, 9, 12 and 6 → 1, 2, 4, 5, 6. A feature set
    without blocks (``L = 0``) has only layer 0.
    """
    if n_layers < 0:
        raise InputError(f"number of layers must be >= 0, got {n_layers}")
    if n_layers == 0:
        return [0]
    points = np.round(np.linspace(1, n_layers, N_AUTO_LAYERS)).astype(int)
    return [int(x) for x in np.unique(points)]


LayerSpec = str | Sequence[int]


def parse_layers(text: str, option: str = "`layers`") -> LayerSpec:
    """``"auto"``, ``"all"`` or a comma list (``"1,4,6"`` → ``[1, 4, 6]``).

    ``option`` names where the text came from in error messages.
    """
    text = str(text).strip().lower()
    if text in ("auto", "all"):
        return text
    return comma_integers(text, option, "auto, all or a list such as 1,4,6")


def comma_integers(text: str, option: str, expected: str) -> list[int]:
    """The integers of a comma list (``"1,4,6"`` → ``[1, 4, 6]``), or an error naming
    ``option`` and what was ``expected`` if it has none or something else."""
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"{option} {text!r}: expected {expected}") from None
    if not values:
        raise InputError(f"{option} is empty: expected {expected}")
    return values
