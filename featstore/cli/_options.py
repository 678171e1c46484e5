"""Option types that several commands share, each defined once.

A command names its parameter with one of these ``Annotated`` types and gets the flag,
its help and its parsing; the default stays in the command's signature, as Typer wants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

#: ``--run`` of a command writing ``results/<run>`` (an analysis, an EEG run).
ResultsRunOption = Annotated[
    str | None,
    typer.Option("--run", help="Id of the results group. [default: <command>-YYYYmmdd-HHMMSS]"),
]
#: ``--overwrite`` of a command writing ``results/<run>``.
OverwriteResultsOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing results group of that id.")
]
#: ``--overwrite`` of a command writing ``features/<key>/<window>`` (extract, features import).
OverwriteFeaturesOption = Annotated[
    bool, typer.Option("--overwrite", help="Replace an existing feature set.")
]
#: ``--roi-groups-file`` of the analyses.
RoiGroupsFileOption = Annotated[
    Path | None,
    typer.Option(
        "--roi-groups-file",
        help='JSON/TOML file of more ROI groups, e.g. {"language": ["44", "45", "L_55b"]}.',
    ),
]
#: ``--distance`` of RSA (``evaluate rsa``, the rsa metric of ``evaluate similarity``).
RdmDistanceOption = Annotated[
    str, typer.Option("--distance", help="RDM distance: correlation, cosine or euclidean.")
]
#: ``--compare`` of RSA (``evaluate rsa``, the rsa metric of ``evaluate similarity``).
RdmCompareOption = Annotated[
    str, typer.Option("--compare", help="RDM comparison: spearman, pearson or kendall (tau-a).")
]
