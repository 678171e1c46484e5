"""``featstore features import``: features computed elsewhere, stored as a feature set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from featstore.cli._common import StoreOption, console, new_app

app = new_app(
    "Manage feature sets that were not extracted by featstore.\n\n"
    "Example:\n\n"
    "    featstore features import --store stores/21styear.zarr --name my-lm --window ctx200 "
    "--modality text layer0.npy layer1.npy"
)


@app.command("import")
def import_(
    store: StoreOption,
    name: Annotated[
        str, typer.Option("--name", help="Feature key, e.g. my-model (letters, digits, . _ -).")
    ],
    window: Annotated[
        str,
        typer.Option("--window", help="ctxN (text, N words of context) or trN (N TRs of audio)."),
    ],
    modality: Annotated[
        str, typer.Option("--modality", help="text, audio, multimodal or lowlevel.")
    ],
    files: Annotated[
        list[Path],
        typer.Argument(
            help="One .npy (tr, dim) per layer, in layer order, or one .npy/.npz holding "
            "(layer, tr, dim)."
        ),
    ],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing feature set.")
    ] = False,
) -> None:
    """Store features computed elsewhere so the evaluator can use them like any other.

    The TR axis must match the store's n_tr; provenance records model_id
    `imported:NAME` and the sha256 of the files as revision.

    Example:

        featstore features import --store stores/21styear.zarr --name my-lm --window ctx200 --modality text layer0.npy layer1.npy layer2.npy
    """
    from featstore.datasets.byo import import_features

    group = import_features(
        store, name=name, window=window, modality=modality, files=files, overwrite=overwrite
    )
    console.print(f"wrote {group} from {len(files)} file(s)", highlight=False, markup=False)


def register(root: typer.Typer) -> None:
    """Add ``featstore features …`` to ``root``."""
    root.add_typer(app, name="features")
