"""Named groups of HCP-MMP1.0 ROIs for region-level summaries.

The built-in groups are those of the speech-model alignment literature (Oota et al.,
2024; Desai et al., 2023; Moussa et al., brain-tuning): early auditory cortex, the
late-language regions of the angular gyrus, lateral temporal cortex, inferior and middle
frontal gyrus. A bare area name (``"A1"``) selects it in both hemispheres; ``"L_A1"`` or
``"R_A1"`` selects one hemisphere. Users add or replace groups with a JSON or TOML file
mapping group names to lists of area names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from featstore.datasets.atlas import split_label
from featstore.errors import InputError

BUILTIN_ROI_GROUPS: dict[str, tuple[str, ...]] = {
    "auditory": ("A1", "PBelt", "MBelt", "LBelt", "RI", "A4"),
    "late-language": ("PFm", "PGs", "PGi", "TPOJ2", "TPOJ3"),
    "lateral-temporal": (
        "STSda",
        "STSva",
        "STGa",
        "TE1a",
        "TE2a",
        "TGv",
        "TGd",
        "A5",
        "STSdp",
        "STSvp",
        "PSL",
        "STV",
        "TPOJ1",
    ),
    "inferior-frontal": ("44", "45", "IFJa", "IFSp"),
    "middle-frontal": ("55b",),
}


def roi_labels(roi_names: Sequence[str], hemispheres: Sequence[str] | None = None) -> list[str]:
    """``"L_A1"``-style labels: hemisphere prefix and bare name (the name alone if the
    hemisphere is unknown)."""
    if hemispheres is None:
        return [str(n) for n in roi_names]
    return [f"{h}_{n}" if h else str(n) for n, h in zip(roi_names, hemispheres, strict=True)]


def roi_group_indices(
    roi_names: Sequence[str],
    hemispheres: Sequence[str],
    group: Sequence[str],
    *,
    group_name: str = "group",
) -> np.ndarray:
    """Positions of a group's ROIs among the ROIs of a dataset.

    Parameters
    ----------
    roi_names : sequence of str
        Bare area names of the dataset's ROIs (the ``roi_name`` coordinate).
    hemispheres : sequence of str
        ``"L"``/``"R"`` per ROI (the ``hemisphere`` coordinate; ``""`` if unknown).
    group : sequence of str
        Area names: ``"A1"`` (both hemispheres) or ``"L_A1"``/``"R_A1"`` (one).
    group_name : str
        For the error message.

    Returns
    -------
    ndarray of int
        Sorted ROI positions.

    Raises
    ------
    InputError
        Naming every entry of the group that matches no ROI.
    """
    names = [str(n) for n in roi_names]
    hemis = [str(h) for h in hemispheres]
    if len(names) != len(hemis):
        raise InputError(f"{len(names)} ROI names but {len(hemis)} hemispheres")
    selected: set[int] = set()
    unknown = []
    for entry in group:
        name, hemi = split_label(str(entry))
        hits = [
            i
            for i, (n, h) in enumerate(zip(names, hemis, strict=True))
            if n == name and hemi in ("", h)
        ]
        if not hits:
            unknown.append(str(entry))
        selected.update(hits)
    if unknown:
        raise InputError(
            f"ROI group {group_name!r}: {', '.join(unknown)} match no ROI of the data "
            "(expected HCP-MMP1.0 area names such as 'A1' or 'L_44')"
        )
    return np.array(sorted(selected), dtype=np.int64)


def load_roi_groups(path: str | os.PathLike) -> dict[str, tuple[str, ...]]:
    """Read user ROI groups from a JSON or TOML file: ``{"name": ["A1", "L_44", ...]}``.

    TOML files use one key per group (``auditory = ["A1", "PBelt"]``); a ``[groups]``
    table is accepted too.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"ROI group file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError as exc:  # Python 3.10
            raise InputError(
                f"{path}: reading TOML needs Python >= 3.11; write the groups as JSON"
            ) from exc
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"{path} is not valid TOML: {exc}") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(data, Mapping) and set(data) == {"groups"}:
        data = data["groups"]
    if not isinstance(data, Mapping) or not data:
        raise InputError(f"{path}: expected a mapping of group name to a list of ROI names")
    groups = {}
    for name, entries in data.items():
        if isinstance(entries, str) or not isinstance(entries, Sequence) or not entries:
            raise InputError(
                f"{path}: group {name!r} must be a non-empty list of ROI names, got {entries!r}"
            )
        groups[str(name)] = tuple(str(e) for e in entries)
    return groups


def roi_groups(path: str | os.PathLike | None = None) -> dict[str, tuple[str, ...]]:
    """The built-in groups, updated with (and overridden by) the groups of ``path``."""
    groups = dict(BUILTIN_ROI_GROUPS)
    if path is not None:
        groups.update(load_roi_groups(path))
    return groups
