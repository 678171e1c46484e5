"""``featstore features import``: features computed elsewhere, stored as a feature set."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from featstore.cli._common import (
    StoreOption,
    StoryOption,
    console,
    new_app,
    one_story,
    printing_warnings,
    story_prefix,
)
from featstore.cli._options import OverwriteFeaturesOption
from featstore.errors import InputError

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
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            help="Layer labels of the files, in order, e.g. 0,1,2 when the first is an "
            "embedding layer. [default: 1..N]",
        ),
    ] = None,
    overwrite: OverwriteFeaturesOption = False,
    story: StoryOption = None,
) -> None:
    """Store features computed elsewhere so the evaluator can use them like any other.

    The TR axis must match the store's n_tr; provenance records model_id
    `imported:NAME` and the sha256 of the files as revision. Layers are labelled 1..N
    in file order (an imported set has no embedding layer 0), so `--layers auto`
    evaluates them all; `--layers` names them otherwise. On a store of stories the
    features go to the story `--story` names, and their TR axis is that story's.

    Examples:

        featstore features import --store stores/21styear.zarr --name my-lm --window ctx200 --modality text layer1.npy layer2.npy layer3.npy

        featstore features import --store stores/narr.zarr --story pieman --name my --window tr1 --modality text f.npy

        featstore features import -s S --name my-speech --window tr6 --modality audio --layers 0,4,8 all_layers.npy
    """
    from featstore.datasets.byo import import_features
    from featstore.layers import parse_layers
    from featstore.store import open_feature_set

    labels = None
    if layers is not None:
        labels = parse_layers(layers)
        if isinstance(labels, str):
            raise InputError(f"--layers {layers!r}: expected layer labels such as 0,1,2")
    target = one_story(store, story)
    with printing_warnings():
        group = import_features(
            target,
            name=name,
            window=window,
            modality=modality,
            files=files,
            overwrite=overwrite,
            layers=labels,
        )
        stored = [int(x) for x in open_feature_set(target, name, window).layer.values]
        console.print(
            f"wrote {story_prefix(store, target)}{group} from {len(files)} file(s): layers {', '.join(map(str, stored))}",
            highlight=False,
            markup=False,
        )


def register(root: typer.Typer) -> None:
    """Add ``featstore features …`` to ``root``."""
    root.add_typer(app, name="features")
