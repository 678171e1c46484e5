"""``featstore models``: list the model aliases; ``featstore models import-ct2``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from featstore.cli._common import console, new_app

models_app = new_app(
    "List the model aliases, or import a model into Hugging Face format.\n\n"
    "Examples:\n\n"
    "    featstore models\n\n"
    "    featstore models import-ct2 ~/faster-whisper-base --out models/whisper-base"
)


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context) -> None:
    """List the model aliases with modality, stored layers and model id.

    Example: `featstore models`
    """
    if ctx.invoked_subcommand is not None:
        return
    from featstore.extract.registry import KNOWN_TEXT_FAMILIES, aliases

    table = Table()
    for column in ("alias", "modality", "layers"):
        table.add_column(column, no_wrap=True)
    table.add_column("model id", overflow="fold")
    table.add_column("description")
    for spec in aliases().values():
        layers = "?" if spec.n_layers is None else str(spec.n_layers)
        table.add_row(spec.name, spec.modality, layers, spec.model_id, spec.description)
    console.print(table)
    console.print(
        "Any Hugging Face id or local directory of these families works too: "
        "`featstore extract --model microsoft/wavlm-large ...`"
    )
    console.print(
        f"Text families tested: {', '.join(KNOWN_TEXT_FAMILIES)}. Any other language model "
        "transformers loads (with hidden states) works with a notice: "
        "`featstore extract --model Qwen/Qwen2.5-0.5B --ctx 200 ...`",
        soft_wrap=True,
    )


@models_app.command("import-ct2")
def import_ct2(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="CTranslate2 Whisper model directory, its model.bin, or the model.bin parts "
            "in order (config.json and tokenizer.json are read from the first one's directory).",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write the model to.")],
    dtype: Annotated[
        str, typer.Option(help="Weights' dtype in the output: float32 or float16.")
    ] = "float32",
    overwrite: Annotated[
        bool, typer.Option(help="Replace the files of a non-empty --out.")
    ] = False,
    check: Annotated[
        bool,
        typer.Option(
            help="Then transcribe the first 30 s of the bundled demo story and print the "
            "word error rate (a converted model that works scores well under 0.3)."
        ),
    ] = False,
) -> None:
    """Convert a CTranslate2 (faster-whisper) Whisper model to a Hugging Face directory.

    The output loads with `WhisperForConditionalGeneration.from_pretrained(DIR)` and works
    as `featstore extract --model DIR`.

    Examples:

        featstore models import-ct2 ~/.cache/faster-whisper-base --out models/whisper-base

        featstore models import-ct2 model.bin.part1 model.bin.part2 --out models/whisper-base --check
    """
    from featstore.extract.ct2_whisper import convert_ct2_whisper

    started = time.perf_counter()
    source = paths[0] if len(paths) == 1 else paths
    out_dir = convert_ct2_whisper(source, out, dtype=dtype, overwrite=overwrite)
    from transformers import WhisperConfig

    config = WhisperConfig.from_pretrained(out_dir)
    console.print(
        f"wrote {out_dir} in {time.perf_counter() - started:.1f} s: Whisper with "
        f"{config.encoder_layers} encoder / {config.decoder_layers} decoder layers, "
        f"d_model {config.d_model}, {config.num_mel_bins} mel bins, vocabulary {config.vocab_size}"
    )
    console.print(f"use it with: featstore extract --model {out_dir} --tr-win 6 --store ...")
    if check:
        from featstore.extract.ct2_check import check_transcription

        result = check_transcription(out_dir, max_seconds=30)
        console.print(
            f"demo story, first {result.seconds_of_audio:.0f} s: word error rate "
            f"{result.wer:.3f} over {result.n_words} words\n  heard: {result.hypothesis}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``models`` group to the ``featstore`` app."""
    app.add_typer(models_app, name="models", no_args_is_help=False)
