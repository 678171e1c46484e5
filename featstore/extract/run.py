"""Entry point of extraction: resolve the model, then run the extractor for its kind."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path

from featstore.errors import GroupExistsError, InputError
from featstore.extract.common import RunOptions, sharing_loaded_models
from featstore.extract.registry import (
    AUDIO,
    AUDIO_LLM,
    CLAP,
    LOWLEVEL,
    TEXT,
    WHISPER,
    resolve_model,
)
from featstore.store import _schema as S
from featstore.store.groups import StorePath
from featstore.store.stories import is_collection, list_stories, story_store

logger = logging.getLogger(__name__)


# extractor name → "module:function" loading the model as a WindowEncoder; these
# families all run through the shared window loop (window_run.extract_model_windows)
_WINDOW_ENCODERS = {
    AUDIO: "featstore.extract.audio:load_audio_encoder",
    WHISPER: "featstore.extract.whisper:load_whisper_encoder",
    CLAP: "featstore.extract.clap:load_clap_encoder",
    AUDIO_LLM: "featstore.extract.audio_llm:load_audio_llm",
}

# options only the text extractor takes
_TEXT_ONLY = (
    "pool",
    "stride",
    "to_tr",
    "lanczos_window",
    "lanczos_cutoff",
    "block_words",
    "layers",
    "device_map",
    "max_memory",
    "offload_folder",
)


def extract(
    store: StorePath,
    model: str,
    *,
    ctx: int | None = None,
    tr_wins: Sequence[int] | None = None,
    weights: str | Path | None = None,
    words: bool = False,
    story: str | Sequence[str] | None = None,
    **options,
) -> list[str]:
    """Extract every layer of ``model`` into ``store`` and return the groups written.

    On a store of stories, every story (or those named by ``story``) is extracted in
    turn with one model load: the single-story extractor runs on each story's own store
    (:func:`featstore.store.stories.story_store`), so contexts and windows never cross a
    story boundary. A story whose groups are complete is skipped (logged), an interrupted
    one resumes; the groups written are returned as ``stories/<story>/features/...``.
    Every story already extracted (and no ``overwrite``) raises
    :class:`~featstore.errors.GroupExistsError`.

    Text models take ``ctx`` (words of context); audio and multimodal models take
    ``tr_wins`` (one or more windows, in TRs). Low-level features take ``tr_wins``
    (``spectral``, ``envelope``) or neither (``wordrate``). Other options
    (``batch_size``, ``device``, ``dtype``, ``precision``, ``revision``, ``overwrite``, ``progress``,
    ``threads``, and the text-only ``pool``, ``stride``, ``to_tr``, ``lanczos_window``,
    ``lanczos_cutoff``, ``block_words``, ``layers``, ``device_map``, ``max_memory``,
    ``offload_folder``, and Whisper's ``pad_to_30s``) go to the extractor.

    ``words=True`` pools an audio model's frames over each word's span instead of TR
    windows (:mod:`featstore.extract.audio_words`; no ``tr_wins``), after
    ``word_context`` seconds of preceding audio (default 2). ``transcript=N`` gives an
    audio LLM the last ``N`` words heard by each window's end (key ``<key>.transcriptN``).

    ``weights`` loads the model from a local directory (an offline copy, or one made by
    ``featstore models import-ct2``) while keeping the feature key of ``model``, so
    ``--model whisper-base --weights DIR`` is stored as ``openai--whisper-base``.

    Parameters
    ----------
    store : str, os.PathLike or Store
        The store (a path, an fsspec URL or a :class:`featstore.Store`).
    model : str
        Alias, Hugging Face id or local directory (:func:`resolve_model`).
    ctx : int, optional
        Words of context (text models).
    tr_wins : sequence of int, optional
        Audio windows in TRs (audio, multimodal and spectral models).
    weights : str or Path, optional
        Local directory to load the model from, keeping ``model``'s feature key.
    story : str or sequence of str, optional
        Stories to extract (a store of stories; default: all). On a one-story store,
        its one story's name or nothing.
    **options
        Passed to the extractor (see above).

    Returns
    -------
    list of str
        The feature groups written.

    Examples
    --------
    >>> import tempfile
    >>> from featstore.datasets import import_dataset
    >>> from featstore.datasets.demo import demo_story_paths
    >>> from featstore.extract import extract
    >>> audio, align = demo_story_paths()  # the bundled 5-minute story
    >>> store = tempfile.mkdtemp() + "/demo.zarr"
    >>> _ = import_dataset(store, align=align, audio=audio, tr=1.5)
    >>> extract(store, "spectral", tr_wins=[1, 2], progress=False)
    ['features/spectral/tr1', 'features/spectral/tr2']
    >>> extract(store, "gpt2", ctx=200)  # doctest: +SKIP
    ['features/gpt2/ctx200']
    """
    request = {"ctx": ctx, "tr_wins": tr_wins, "weights": weights, "words": words, **options}
    names = [story] if isinstance(story, str) else story
    if not is_collection(store):
        for name in names or []:
            story_store(store, name)  # a one-story store answers only to its own name
        return _extract_story(store, model, **request)
    names = list(names) if names else list_stories(store)
    if not names:
        raise InputError(f"{os.fspath(store)} holds no stories yet; import one first")
    handles = {name: story_store(store, name) for name in names}  # unknown names fail here
    written: list[str] = []
    with sharing_loaded_models():
        for number, (name, handle) in enumerate(handles.items(), start=1):
            logger.info("story %s (%d of %d): extracting %s", name, number, len(names), model)
            try:
                groups = _extract_story(handle, model, **request)
            except GroupExistsError:
                logger.info("story %s: %s already extracted, skipped", name, model)
                continue
            written += [f"{S.STORIES}/{name}/{group}" for group in groups]
    if not written:
        raise GroupExistsError(
            f"{model} is already extracted for every story asked for ({', '.join(names)}) "
            f"in {os.fspath(store)}; pass `overwrite` to replace"
        )
    return written


def _extract_story(
    store: StorePath,
    model: str,
    *,
    ctx: int | None,
    tr_wins: Sequence[int] | None,
    weights: str | Path | None,
    words: bool,
    **options,
) -> list[str]:
    """:func:`extract` on one story's store."""
    spec = resolve_model(model)
    if weights is not None:
        spec = with_weights(spec, weights)
    if spec.extractor == TEXT:
        if words:
            raise InputError(f"`words`: {model} is a text model; its word_hidden comes with `ctx`")
        if ctx is None or tr_wins:
            raise InputError(
                f"{model} is a text model: give `ctx` N (words of context), not `tr_wins`"
            )
        if isinstance(ctx, bool) or not isinstance(ctx, int) or ctx < 1:
            raise InputError(
                f"ctx={ctx!r}: expected a positive whole number of words (the word and "
                "its context), e.g. 200"
            )
        kwargs = {"ctx": ctx}
    else:
        if ctx is not None:
            raise InputError(f"{model} is a {spec.modality} model: give `tr_wins`, not `ctx`")
        text_only = [name for name in _TEXT_ONLY if options.get(name) is not None]
        if text_only:
            raise InputError(
                f"{model} is a {spec.modality} model: `{text_only[0]}` is for text models"
            )
        kwargs = {"tr_wins": list(tr_wins or [])}
        if spec.extractor != LOWLEVEL and not tr_wins and not words:
            raise InputError(f"{model} needs `tr_wins` N[,N...] (audio window in TRs)")
    spec = _audio_llm_context(spec, model, words, options)
    if options.get("pad_to_30s") is not None and spec.extractor != WHISPER:
        raise InputError(f"pad_to_30s: only Whisper pads its input to 30 s, not {model}")
    options = {k: v for k, v in options.items() if not (k == "pad_to_30s" and v is None)}
    if spec.extractor == TEXT:
        from featstore.extract.text import extract_text

        return extract_text(store, spec, **kwargs, **options)
    run, options = RunOptions.split(options)
    if words:
        return _extract_words(store, spec, tr_wins, run, options)
    if spec.extractor == LOWLEVEL:
        if run.precision != "float32":
            raise InputError(f"precision={run.precision}: {spec.name} has no weights (low-level)")
        from featstore.extract.lowlevel import extract_lowlevel

        return extract_lowlevel(store, spec, **kwargs, run=run, **options)
    from featstore.extract.window_run import extract_model_windows

    load_encoder = _function(_WINDOW_ENCODERS[spec.extractor])
    return extract_model_windows(store, spec, load_encoder, **kwargs, run=run, **options)


def _audio_llm_context(spec, model: str, words: bool, options: dict):
    """Check ``word_context`` (with ``words``) and ``transcript`` (audio LLMs: a key suffix)."""
    if options.get("word_context") is None:
        options.pop("word_context", None)
    elif not words:
        raise InputError("`word_context` is the audio heard before each word: it goes with `words`")
    if options.get("transcript") is None:
        options.pop("transcript", None)
        return spec
    from featstore.extract.transcript import check_transcript_words

    if spec.extractor != AUDIO_LLM:
        raise InputError(f"`transcript`: {model} is not an audio LLM; only those read text")
    n_words = check_transcript_words(options["transcript"])
    return dataclasses.replace(spec, key=f"{spec.key}.transcript{n_words}")


def _function(target: str):
    """The function named by ``"module:function"``, its module imported on first use."""
    module_name, function_name = target.split(":")
    return getattr(import_module(module_name), function_name)


def _extract_words(store: StorePath, spec, tr_wins, run: RunOptions, options) -> list[str]:
    if tr_wins:
        raise InputError(f"`words` pools {spec.name} over each word's span: drop `tr_wins`")
    from featstore.extract.audio_words import extract_audio_words

    return extract_audio_words(store, spec, run=run, **options)


def with_weights(spec, weights: str | Path):
    """``spec`` loading from the local directory ``weights`` (key and alias unchanged)."""
    path = Path(weights).expanduser()
    if spec.extractor == LOWLEVEL:
        raise InputError(f"`weights`: {spec.name} has no weights (a low-level feature)")
    if not (path / "config.json").is_file():
        raise InputError(f"weights={path}: no config.json there; expected a model directory")
    local = resolve_model(str(path))
    if local.family != spec.family:
        raise InputError(
            f"weights={path} holds a {local.family} model, but {spec.name} is {spec.family}"
        )
    return dataclasses.replace(spec, model_id=str(path), local_files_only=True)
