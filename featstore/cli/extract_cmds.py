"""``featstore extract``: every layer of a model, once, into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

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
from featstore.cli._option_groups import Flag, given, option_group
from featstore.cli._options import OverwriteFeaturesOption
from featstore.errors import InputError

# The options ``featstore extract`` hands to the extractor (``featstore.extract.run.extract``),
# by topic, in ``--help`` order; :func:`_extractor_options` makes its keyword arguments.

#: The windows a model reads, and how a text model's words become TRs.
_WINDOW_OPTIONS = (
    Flag("ctx", int, "Text models: words per window (the word + its context)."),
    Flag("tr_win", str, "Audio/multimodal models: window(s) in TRs, e.g. 1,2,3,6."),
    Flag("pool", str, "Text: pool a word's tokens, `last` (default) or `mean`."),
    Flag(
        "stride",
        int,
        "Text fast mode: read K consecutive words from one window of ctx+K-1 words "
        "(each word still sees >= ctx words). Default: exact mode.",
    ),
    Flag(
        "to_tr",
        str,
        "Text: word → TR resampling, `mean` (default: mean of each TR's words) or "
        "`lanczos` (Lanczos-filtered sum of the words, see docs/analyses.md).",
    ),
    Flag("lanczos_window", int, "Text, --to-tr lanczos: kernel lobes. [default: 3]"),
    Flag(
        "lanczos_cutoff",
        float,
        "Text, --to-tr lanczos: cutoff as a multiple of the TR Nyquist frequency "
        "1/(2 TR). [default: 1.0]",
    ),
)
#: How the model is loaded and run.
_FORWARD_PASS_OPTIONS = (
    Flag("batch_size", int, "Windows per forward pass."),
    Flag("device", str, "cpu, cuda, cuda:N, mps or auto (default)."),
    Flag("dtype", str, "Storage dtype: float32 or float16.", "float32"),
    Flag(
        "precision",
        str,
        "Arithmetic of the forward pass: float32 (default, exact), bfloat16 (CPUs "
        "with AVX512-BF16/AMX, GPUs) or float16 (GPUs); features differ by ~1 %.",
    ),
    Flag("revision", str, "Model revision (branch, tag or commit)."),
    Flag(
        "weights",
        Path,
        "Load the model from this local directory (an offline copy, or the output "
        "of `featstore models import-ct2`), keeping the alias's feature key.",
    ),
    Flag("threads", int, "Torch intra-op threads (default: torch's)."),
)
#: What one family of models does besides: text blocks and layers, Whisper's padding, a
#: text model spread over devices.
_FAMILY_OPTIONS = (
    Flag(
        "block_words",
        int,
        "Text: words per resumable block (default: up to 256, bounded by memory).",
    ),
    Flag(
        "whisper_unpadded",
        bool,
        "Whisper: run the encoder on each window's frames only, not on 30 s of "
        "padding (~9x faster at 1.5 s; features differ: see docs/performance.md).",
        False,
    ),
    Flag(
        "layers",
        str,
        "Text: layers to store, `all` (default), `auto` (the evenly spaced depths "
        "evaluation picks) or labels such as 0,8,16,24,32 (0 = embeddings).",
    ),
    Flag(
        "device_map",
        str,
        "Text: spread a model too large for one device with Accelerate, e.g. `auto` "
        "(GPUs, then CPU memory, then --offload-folder on disk).",
    ),
    Flag("max_memory", str, "Text, with --device-map: memory per device, e.g. 0=20GiB,cpu=30GiB."),
    Flag(
        "offload_folder",
        Path,
        "Text, with --device-map: where layers that fit in no memory are kept.",
    ),
)
#: Audio models: per-word features and the transcript heard.
_WORD_OPTIONS = (
    Flag(
        "words",
        bool,
        "Audio models: pool every layer over each word's span (stimulus onset.."
        "offset) into features/<key>.words/tr1 word_hidden, for evaluate trf / "
        "similarity-eeg (see docs/eeg.md).",
        False,
    ),
    Flag(
        "word_context",
        float,
        "With --words: seconds of audio heard before each word (only the word's "
        "frames are pooled; 0: the word alone). [default: 2]",
    ),
    Flag(
        "transcript",
        int,
        "Audio LLMs: read each window with the last N words heard by its end "
        "(stored as <key>.transcriptN).",
    ),
)
_EXTRACTOR_OPTIONS = (*_WINDOW_OPTIONS, *_FORWARD_PASS_OPTIONS, *_FAMILY_OPTIONS, *_WORD_OPTIONS)


def _extractor_options(**options: Any) -> dict[str, Any]:
    """The extractor's keyword arguments from the options: those given, with
    ``--tr-win``, ``--whisper-unpadded``, ``--max-memory`` and ``--offload-folder`` read."""
    from featstore.extract.text_model import parse_max_memory

    given_options = given(**options)
    lanczos = {"lanczos_window", "lanczos_cutoff"} & given_options.keys()
    if lanczos and given_options.get("to_tr") != "lanczos":
        raise InputError("--lanczos-window and --lanczos-cutoff go with --to-tr lanczos")
    if "tr_win" in given_options:
        given_options["tr_wins"] = parse_window_sizes(given_options.pop("tr_win"), "--tr-win")
    if given_options.pop("whisper_unpadded", False):
        given_options["pad_to_30s"] = False
    if "max_memory" in given_options:
        given_options["max_memory"] = parse_max_memory(given_options["max_memory"])
    if "offload_folder" in given_options:
        given_options["offload_folder"] = str(given_options["offload_folder"])
    return given_options


@option_group("options", _EXTRACTOR_OPTIONS, build=_extractor_options)
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
    options: dict,
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

    note = resolve_model(model).note
    if note and "weights" not in options:
        err_console.print(f"note: {note}", highlight=False, markup=False, soft_wrap=True)
    with printing_warnings():
        groups = run_extract(
            store,
            model,
            story=parse_story_list(story),
            overwrite=overwrite,
            progress=progress_enabled(quiet),
            **options,
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
