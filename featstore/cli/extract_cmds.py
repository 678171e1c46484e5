"""``featstore extract``: every layer of a model, once, into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from featstore.cli._common import (
    QuietOption,
    StoreOption,
    StoryListOption,
    console,
    err_console,
    parse_story_list,
    printing_warnings,
    progress_enabled,
)
from featstore.cli._encoding_options import parse_window_sizes
from featstore.cli._options import OverwriteFeaturesOption
from featstore.errors import InputError


def extract(
    model: Annotated[
        str,
        typer.Option(
            "--model",
            "-m",
            help="Alias (gpt2, bert, roberta, minilm, wavlm, …), Hugging Face id or local "
            "model directory.",
        ),
    ],
    store: StoreOption,
    ctx: Annotated[
        int | None,
        typer.Option("--ctx", help="Text models: words per window (the word + its context)."),
    ] = None,
    tr_win: Annotated[
        str | None,
        typer.Option("--tr-win", help="Audio/multimodal models: window(s) in TRs, e.g. 1,2,3,6."),
    ] = None,
    pool: Annotated[
        str | None,
        typer.Option("--pool", help="Text: pool a word's tokens, `last` (default) or `mean`."),
    ] = None,
    stride: Annotated[
        int | None,
        typer.Option(
            "--stride",
            help="Text fast mode: read K consecutive words from one window of ctx+K-1 words "
            "(each word still sees >= ctx words). Default: exact mode.",
        ),
    ] = None,
    to_tr: Annotated[
        str | None,
        typer.Option(
            "--to-tr",
            help="Text: word → TR resampling, `mean` (default: mean of each TR's words) or "
            "`lanczos` (Lanczos-filtered sum of the words, see docs/analyses.md).",
        ),
    ] = None,
    lanczos_window: Annotated[
        int | None,
        typer.Option("--lanczos-window", help="Text, --to-tr lanczos: kernel lobes. [default: 3]"),
    ] = None,
    lanczos_cutoff: Annotated[
        float | None,
        typer.Option(
            "--lanczos-cutoff",
            help="Text, --to-tr lanczos: cutoff as a multiple of the TR Nyquist frequency "
            "1/(2 TR). [default: 1.0]",
        ),
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option("--batch-size", help="Windows per forward pass.")
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="cpu, cuda, cuda:N, mps or auto (default).")
    ] = None,
    dtype: Annotated[
        str, typer.Option("--dtype", help="Storage dtype: float32 or float16.")
    ] = "float32",
    precision: Annotated[
        str | None,
        typer.Option(
            "--precision",
            help="Arithmetic of the forward pass: float32 (default, exact), bfloat16 (CPUs "
            "with AVX512-BF16/AMX, GPUs) or float16 (GPUs); features differ by ~1 %.",
        ),
    ] = None,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Model revision (branch, tag or commit).")
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option(
            "--weights",
            help="Load the model from this local directory (an offline copy, or the output "
            "of `featstore models import-ct2`), keeping the alias's feature key.",
        ),
    ] = None,
    threads: Annotated[
        int | None, typer.Option("--threads", help="Torch intra-op threads (default: torch's).")
    ] = None,
    block_words: Annotated[
        int | None,
        typer.Option(
            "--block-words",
            help="Text: words per resumable block (default: up to 256, bounded by memory).",
        ),
    ] = None,
    whisper_unpadded: Annotated[
        bool,
        typer.Option(
            "--whisper-unpadded",
            help="Whisper: run the encoder on each window's frames only, not on 30 s of "
            "padding (~9x faster at 1.5 s; features differ: see docs/performance.md).",
        ),
    ] = False,
    layers: Annotated[
        str | None,
        typer.Option(
            "--layers",
            help="Text: layers to store, `all` (default), `auto` (the evenly spaced depths "
            "evaluation picks) or labels such as 0,8,16,24,32 (0 = embeddings).",
        ),
    ] = None,
    device_map: Annotated[
        str | None,
        typer.Option(
            "--device-map",
            help="Text: spread a model too large for one device with Accelerate, e.g. `auto` "
            "(GPUs, then CPU memory, then --offload-folder on disk).",
        ),
    ] = None,
    max_memory: Annotated[
        str | None,
        typer.Option(
            "--max-memory",
            help="Text, with --device-map: memory per device, e.g. 0=20GiB,cpu=30GiB.",
        ),
    ] = None,
    offload_folder: Annotated[
        Path | None,
        typer.Option(
            "--offload-folder",
            help="Text, with --device-map: where layers that fit in no memory are kept.",
        ),
    ] = None,
    words: Annotated[
        bool,
        typer.Option(
            "--words",
            help="Audio models: pool every layer over each word's span (stimulus onset.."
            "offset) into features/<key>.words/tr1 word_hidden, for evaluate trf / "
            "similarity-eeg (see docs/eeg.md).",
        ),
    ] = False,
    word_context: Annotated[
        float | None,
        typer.Option(
            "--word-context",
            help="With --words: seconds of audio heard before each word (only the word's "
            "frames are pooled; 0: the word alone). [default: 2]",
        ),
    ] = None,
    transcript: Annotated[
        int | None,
        typer.Option(
            "--transcript",
            help="Audio LLMs: read each window with the last N words heard by its end "
            "(stored as <key>.transcriptN).",
        ),
    ] = None,
    overwrite: OverwriteFeaturesOption = False,
    story: StoryListOption = None,
    quiet: QuietOption = False,
) -> None:
    """Extract every layer of a model into `features/<model>/<window>` of a store.

    An interrupted run resumes where it stopped when started again with the same options.
    On a store of stories every story (or `--story A,B`) is extracted with one model
    load; stories already extracted are skipped.

    Examples:

        featstore extract --model gpt2 --ctx 200 --store stores/21styear.zarr

        featstore extract --model gpt2 --ctx 200 --store stores/narr.zarr --story pieman,tunnel

        featstore extract --model gpt2 --ctx 200 --stride 16 --batch-size 8 --store S

        featstore extract --model gpt2 --ctx 200 --to-tr lanczos --store S

        featstore extract --model wavlm --tr-win 1,2,3,6 --store stores/21styear.zarr

        featstore extract --model wavlm --tr-win 6 --precision bfloat16 --store S

        featstore extract --model whisper-base --words --store stores/eeg.zarr

        featstore extract --model qwen2-audio --words --word-context 3 --transcript 32 -s S

        featstore extract --model whisper-base --weights models/whisper-base --tr-win 6 -s S

        featstore extract --model Qwen/Qwen2.5-0.5B --ctx 200 --precision bfloat16 --store S

        featstore extract --model meta-llama/Llama-2-13b-hf --ctx 200 --device-map auto --offload-folder off --layers auto -s S
    """
    from featstore import store as fs
    from featstore.extract.registry import resolve_model
    from featstore.extract.run import extract as run_extract
    from featstore.extract.text_model import parse_max_memory

    if to_tr != "lanczos" and (lanczos_window is not None or lanczos_cutoff is not None):
        raise InputError("--lanczos-window and --lanczos-cutoff go with --to-tr lanczos")

    optional = {
        "pool": pool,
        "stride": stride,
        "to_tr": to_tr,
        "lanczos_window": lanczos_window,
        "lanczos_cutoff": lanczos_cutoff,
        "batch_size": batch_size,
        "device": device,
        "precision": precision,
        "revision": revision,
        "threads": threads,
        "block_words": block_words,
        "pad_to_30s": False if whisper_unpadded else None,
        "layers": layers,
        "device_map": device_map,
        "max_memory": parse_max_memory(max_memory),
        "offload_folder": None if offload_folder is None else str(offload_folder),
        "word_context": word_context,
        "transcript": transcript,
    }
    note = resolve_model(model).note
    if note and weights is None:
        err_console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    with printing_warnings():
        groups = run_extract(
            store,
            model,
            ctx=ctx,
            tr_wins=parse_window_sizes(tr_win, "--tr-win"),
            weights=weights,
            words=words,
            story=parse_story_list(story),
            dtype=dtype,
            overwrite=overwrite,
            progress=progress_enabled(quiet),
            **{name: value for name, value in optional.items() if value is not None},
        )
        for group in groups:
            ds = fs.open_group(store, group)
            shapes = ", ".join(
                f"{name}({', '.join(f'{d}={n}' for d, n in ds[name].sizes.items())}) "
                f"{ds[name].dtype}"
                for name in sorted(ds.data_vars)
                if ds[name].ndim >= 2
            )
            console.print(f"wrote {group}: {shapes}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add ``featstore extract`` to ``app``."""
    app.command("extract")(extract)
