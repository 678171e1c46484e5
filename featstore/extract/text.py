"""Text extraction: every layer of a language model for every word, then per TR.

The words come from the store's ``stimulus`` group. Word vectors are staged block by
block under ``_work/`` (so a killed run resumes), then the feature set
``features/<key>/ctx<N>`` is written from the stage lazily, one layer at a time:
``word_hidden(layer, word, dim)``, ``hidden(layer, tr, dim)`` (the mean of the words
of each TR, or their Lanczos-filtered sum with ``to_tr="lanczos"``), ``has_words(tr)``
and ``context_words(word)``. See ``docs/extraction-text.md`` and ``docs/analyses.md``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from featstore.errors import GroupExistsError, InputError
from featstore.extract.common import (
    check_dtype,
    check_precision,
    load_once,
    progress_label,
    provenance_attrs,
    resolve_device,
    stimulus_identity,
    torch_threads,
)
from featstore.extract.registry import ModelSpec
from featstore.extract.resample import (
    LANCZOS_CUTOFF,
    LANCZOS_WINDOW,
    TO_TR_METHODS,
    lanczos_tr_times,
    tr_membership,
    words_to_trs,
)
from featstore.extract.text_model import (
    POOLINGS,
    LoadOptions,
    TextModel,
    check_layers,
    load_text_model,
    word_vectors,
)
from featstore.progress import progress_bar
from featstore.store import _schema as S
from featstore.store.features import write_feature_set
from featstore.store.groups import (
    StorePath,
    is_complete,
    open_group,
    store_n_tr,
    store_tr_seconds,
)
from featstore.store.paths import feature_group, window_name
from featstore.store.staging import BlockStage, StagedArray, discard_stage, group_lock

# A staged block holds at most this many bytes of word vectors (and 16..256 words).
_BLOCK_BYTES = 64 << 20
CONTEXT_WORDS_VAR = "context_words"


@dataclass(frozen=True)
class StimulusWords:
    """The words of a store's stimulus, as :func:`read_stimulus_words` reads them.

    Every array has one entry per word of the stimulus, missing words included, so
    entry ``i`` is word ``i`` of the store's ``word`` dim (as in ``word_hidden``).

    Attributes
    ----------
    words
        Every word of the alignment, stripped ("" where missing).
    is_input
        ``(word,)`` True for words that go into the model (not missing, not blank).
    tr_index
        ``(word,)`` TR of each word.
    scan_times
        ``(word,)`` middle of each word in seconds on the scan clock,
        ``(onset + offset) / 2 + stim_onset`` (the onset where the offset is missing).
    tr_assign
        The stimulus' word → TR rule (``ceil`` or ``floor``).
    """

    words: list[str]
    is_input: np.ndarray
    tr_index: np.ndarray
    scan_times: np.ndarray
    tr_assign: str

    @property
    def inputs(self) -> list[str]:
        """The model's input words, in order (missing words left out)."""
        return [w for w, keep in zip(self.words, self.is_input, strict=True) if keep]

    @property
    def input_position(self) -> np.ndarray:
        """``(word,)`` position of each word among the inputs (meaningless where not input)."""
        return np.cumsum(self.is_input) - 1


def read_stimulus_words(store: StorePath) -> StimulusWords:
    """Read words, missing-word flags, TR indices and word times from ``stimulus``."""
    stimulus = open_group(store, S.STIMULUS)
    names = [n for n in ("word", "word_missing", "tr_index", "onset", "offset") if n in stimulus]
    ds = stimulus[names].compute()
    words = [str(w).strip() for w in ds["word"].values]
    if not words:
        raise InputError(f"the stimulus of {os.fspath(store)} has no words")
    missing = (
        ds["word_missing"].values.astype(bool)
        if "word_missing" in ds
        else np.zeros(len(words), bool)
    )
    is_input = ~missing & np.array([bool(w) for w in words])
    onset = ds["onset"].values.astype(np.float64)
    offset = ds["offset"].values.astype(np.float64) if "offset" in ds else onset
    middle = np.where(np.isfinite(offset), (onset + offset) / 2, onset)
    return StimulusWords(
        words,
        is_input,
        ds["tr_index"].values.astype(np.int64),
        middle + float(stimulus.attrs.get("stim_onset", 0.0)),
        str(stimulus.attrs.get("tr_assign", "ceil")),
    )


def default_block_words(n_layers: int, dim: int, itemsize: int, stride: int | None) -> int:
    """Words per staged block: bounded in bytes, a multiple of the stride."""
    words = max(16, min(256, _BLOCK_BYTES // max(1, n_layers * dim * itemsize)))
    step = stride or 1
    return max(step, words // step * step)


def _check_options(ctx, pool, stride, batch_size, dtype, to_tr, block_words, lanczos) -> None:
    window_name(ctx=ctx)
    check_dtype(dtype)
    if pool not in POOLINGS:
        raise InputError(f"pool={pool!r}: expected one of {', '.join(POOLINGS)}")
    if stride is not None and (not isinstance(stride, int) or stride < 1):
        raise InputError(f"`stride` must be a positive number of words, got {stride!r}")
    if batch_size < 1:
        raise InputError(f"`batch_size` must be >= 1, got {batch_size}")
    if to_tr not in TO_TR_METHODS:
        raise InputError(f"to_tr={to_tr!r}: expected one of {', '.join(TO_TR_METHODS)}")
    if block_words is not None and block_words < 1:
        raise InputError(f"`block_words` must be >= 1, got {block_words}")
    window, cutoff = lanczos
    if not (isinstance(window, int) and window >= 1 and cutoff > 0):
        raise InputError(
            f"lanczos_window={window} and lanczos_cutoff={cutoff}: expected a whole "
            "number of lobes >= 1 and a positive multiple of the TR Nyquist frequency"
        )


def extract_text(
    store: StorePath,
    spec: ModelSpec,
    *,
    ctx: int,
    pool: str = "last",
    stride: int | None = None,
    batch_size: int = 16,
    device: str | None = None,
    dtype: str = "float32",
    precision: str = "float32",
    revision: str | None = None,
    overwrite: bool = False,
    progress: bool = False,
    threads: int | None = None,
    to_tr: str = "mean",
    lanczos_window: int = LANCZOS_WINDOW,
    lanczos_cutoff: float = LANCZOS_CUTOFF,
    block_words: int | None = None,
    layers: str | Sequence[int] | None = None,
    device_map: str | None = None,
    max_memory: dict[str, str] | None = None,
    offload_folder: str | None = None,
) -> list[str]:
    """Extract every layer of a text model into ``features/<key>/ctx<ctx>``.

    Parameters
    ----------
    store
        Store with a complete ``stimulus`` group.
    spec
        The resolved model (``featstore.extract.registry.resolve_model``).
    ctx
        Words per window: word i is read from the ``ctx`` words ending at word i.
    pool
        ``last`` token of the word (default, as the reference study) or ``mean``.
    stride
        Fast mode: read ``stride`` consecutive words from one window of
        ``ctx + stride - 1`` words; every word still sees at least ``ctx`` words.
    batch_size
        Windows per forward pass.
    device, threads
        Torch device (``auto`` by default) and intra-op threads.
    dtype
        Storage dtype, ``float32`` or ``float16``.
    precision
        Dtype of the weights and arithmetic of the forward pass: ``float32`` (default,
        exact), or ``bfloat16`` / ``float16`` (weights loaded in that dtype, half the
        memory, and run under torch's autocast; faster on GPUs and on CPUs with native
        bfloat16; features differ from float32 by about 1 %). Part of the resume key.
    revision
        Model revision to load (recorded).
    overwrite
        Replace an existing complete feature set.
    progress
        Show a progress bar.
    to_tr
        Word → TR resampling, one of :data:`featstore.extract.resample.TO_TR_METHODS`:
        ``mean`` of each TR's words, or ``lanczos`` (sum of the words filtered by a
        Lanczos kernel, sampled at :func:`featstore.extract.resample.lanczos_tr_times`).
    lanczos_window, lanczos_cutoff
        ``lanczos`` only: lobes of the kernel, and cutoff as a multiple of the TR grid's
        Nyquist frequency (defaults 3 and 1.0, as in Huth et al. 2016).
    block_words
        Words per resumable block (default: bounded by memory, at most 256).
    layers
        Layers to store: ``None``/``"all"`` (every layer), ``"auto"`` (the evenly spaced
        depths the evaluator's ``--layers auto`` picks) or labels (0 = embeddings).
    device_map, max_memory, offload_folder
        Place a model too large for one device with Accelerate (``device_map="auto"``):
        see :class:`featstore.extract.text_model.LoadOptions`. Not part of the resume key.

    Returns
    -------
    list of str
        The group written.
    """
    lanczos = (lanczos_window, float(lanczos_cutoff))
    _check_options(ctx, pool, stride, batch_size, dtype, to_tr, block_words, lanczos)
    if device_map is None and (max_memory or offload_folder):
        raise InputError("`max_memory` and `offload_folder` go with `device_map` (e.g. auto)")
    device = resolve_device(device)
    check_precision(precision, device)
    stimulus = stimulus_identity(store)
    n_tr, tr_seconds = store_n_tr(store), store_tr_seconds(store)
    window = window_name(ctx=ctx)
    group = feature_group(spec.key, window)
    with group_lock(store, group):
        if is_complete(store, group) and not overwrite:
            discard_stage(store, group)  # left by a run killed after its last write
            raise GroupExistsError(
                f"feature set {group!r} already exists in {os.fspath(store)}; "
                "pass `overwrite` to replace it"
            )
        words = read_stimulus_words(store)
        with torch_threads(threads):
            placement = LoadOptions(precision, device_map, max_memory, offload_folder)
            text_model = load_once(
                load_text_model, spec, revision=revision, device=device, options=placement
            )
            text_model = dataclasses.replace(
                text_model, layers=_pick_layers(layers, text_model, spec.model_id)
            )
            itemsize = np.dtype(dtype).itemsize
            block = block_words or default_block_words(
                len(text_model.layers), text_model.dim, itemsize, stride
            )
            numbers = {
                "layers": list(text_model.layers),
                "ctx": ctx,
                "pool": pool,
                "stride": stride,
                "dtype": dtype,
                "block": block,
                "precision": precision,
            }
            stage = _open_stage(store, group, spec, text_model, words, stimulus, numbers)
            _run_blocks(stage, text_model, words, ctx, pool, stride, batch_size, progress)
        settings = {
            "ctx": ctx,
            "pool": pool,
            "stride": stride,
            "batch_size": batch_size,
            "dtype": dtype,
            "precision": precision,
            "to_tr": to_tr,
            **(
                {"lanczos_window": lanczos_window, "lanczos_cutoff": float(lanczos_cutoff)}
                if to_tr == "lanczos"
                else {}
            ),
            "block_words": block,
            "max_tokens": text_model.max_tokens,
            "device": text_model.device,
            "layers": list(text_model.layers),
            "device_map": device_map,
        }
        attrs = provenance_attrs(
            spec,
            model=text_model.model,
            revision=revision,
            pooling=pool,
            settings=settings,
            stimulus=stimulus,
        )
        resample = {"method": to_tr}
        if to_tr == "lanczos":
            resample.update(
                word_times=words.scan_times,
                tr_times=lanczos_tr_times(n_tr, tr_seconds, words.tr_assign),
                window=lanczos_window,
                cutoff_mult=float(lanczos_cutoff),
            )
        _finalize(store, spec, window, stage, words, n_tr, dtype, resample, attrs)
    return [group]


def _pick_layers(layers, text_model: TextModel, model_id: str) -> tuple[int, ...]:
    """The layer labels to store: all, ``auto`` (evenly spaced depths) or a list."""
    from featstore.layers import auto_layers, parse_layers

    if isinstance(layers, str):
        layers = parse_layers(layers)
    if layers is None or layers == "all":
        return tuple(range(text_model.n_layers))
    if layers == "auto":
        return tuple(auto_layers(text_model.n_layers - 1))
    return check_layers(layers, text_model.n_layers, model_id)


def _open_stage(store, group, spec, text_model: TextModel, words, stimulus, numbers) -> BlockStage:
    n_words = len(words.words)
    shape = (len(text_model.layers), n_words, text_model.dim)
    # everything that changes the numbers; batch size, device and threads do not
    settings = {
        "model_id": spec.model_id,
        "revision": text_model.revision,
        "stimulus_sha256": stimulus["stimulus_sha256"],
        "words": n_words,
        "shape": shape,
        "max_tokens": text_model.max_tokens,
        **numbers,
    }
    arrays = {
        S.WORD_HIDDEN_VAR: StagedArray(shape, numbers["dtype"], block_axis=1),
        CONTEXT_WORDS_VAR: StagedArray((n_words,), "int32"),
        "truncated": StagedArray((n_words,), "bool"),
    }
    return BlockStage(store, group, arrays, block_size=numbers["block"], settings=settings)


def _run_blocks(
    stage: BlockStage,
    text_model: TextModel,
    words: StimulusWords,
    ctx: int,
    pool: str,
    stride: int | None,
    batch_size: int,
    progress: bool,
) -> None:
    inputs, position = words.inputs, words.input_position
    pending = stage.pending_blocks()
    total = sum(int(words.is_input[stage.block_slice(i)].sum()) for i in pending)
    name = stage.group.split("/", 1)[-1]
    label = progress_label(stage.store, name)
    with progress_bar(label, total, enabled=progress, unit="words") as advance:
        for index in pending:
            span = stage.block_slice(index)
            keep = words.is_input[span]
            result = word_vectors(
                text_model,
                inputs,
                position[span][keep],
                ctx=ctx,
                pool=pool,
                stride=stride,
                batch_size=batch_size,
                on_batch=advance,
            )
            n = span.stop - span.start
            hidden = np.zeros((len(text_model.layers), n, text_model.dim), np.float32)
            hidden[:, keep] = result.values
            context = np.zeros(n, np.int32)
            context[keep] = result.context_words
            truncated = np.zeros(n, bool)
            truncated[keep] = result.truncated
            stage.write_block(
                index,
                **{S.WORD_HIDDEN_VAR: hidden, CONTEXT_WORDS_VAR: context, "truncated": truncated},
            )


def _finalize(store, spec, window, stage, words, n_tr, dtype, resample, attrs) -> None:
    staged = stage.dask_arrays()
    context = np.asarray(staged[CONTEXT_WORDS_VAR]).astype(np.int32)
    truncated = np.asarray(staged["truncated"]).astype(bool)
    used = context > 0
    counted, has_words = tr_membership(words.tr_index, n_tr, used)
    word_hidden = staged[S.WORD_HIDDEN_VAR].rechunk((1, -1, -1))
    n_layers, _, dim = word_hidden.shape

    def layer_to_trs(layer):
        values, _ = words_to_trs(layer[0], words.tr_index, n_tr, used=used, **resample)
        return values.astype(dtype)[None]

    hidden = word_hidden.map_blocks(
        layer_to_trs, chunks=((1,) * n_layers, (n_tr,), (dim,)), dtype=np.dtype(dtype)
    )
    counts = {
        "n_words": len(words.words),
        "n_words_used": int(counted.sum()),
        "n_words_missing": int((~words.is_input).sum()),
        "n_words_without_tokens": int((words.is_input & ~used).sum()),
        "n_words_outside_trs": int((used & ~counted).sum()),
        "n_words_truncated": int(truncated.sum()),
        "n_trs_without_words": int((~has_words).sum()),
        "resumed_blocks": stage.resumed_blocks,
    }
    write_feature_set(
        store,
        spec.key,
        window,
        hidden,
        attrs={**attrs, **counts},
        layers=attrs["settings"]["layers"],
        word_hidden=word_hidden,
        has_words=has_words,
        extra_vars={CONTEXT_WORDS_VAR: ((S.WORD_DIM,), context)},
        overwrite=True,  # the lock is held and a complete group was refused above
    )
    stage.discard()
