"""The loop every audio-window extractor shares: plan, stage, batch, resume, write.

A family module (``audio``, ``whisper``, ``clap``, ``lowlevel``) supplies a
:class:`WindowEncoder` — a function from a batch of windows ``(batch, samples)`` to
pooled vectors ``(layer, batch, dim)`` — and this module does the rest:

* one :class:`~featstore.store.staging.BlockStage` per window size under
  ``_work/features/<key>/tr<w>``, in blocks of ``BATCHES_PER_BLOCK`` batches of TRs;
  a killed run started again with the same settings skips the blocks already staged;
* the story audio read once, forward, for all window sizes (:class:`AudioStream`);
* every group locked for the run; a complete group is replaced only with ``overwrite``;
* the final ``features/<key>/tr<w>`` written lazily from the stage, one layer at a
  time, then the stage discarded. Memory is bounded by a block, not by the story.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featstore.errors import GroupExistsError, InputError, ModelError
from featstore.extract.audio_windows import AudioStream, WindowBatch, WindowGrid, block_windows
from featstore.extract.common import (
    DEFAULT_RUN,
    RunOptions,
    check_dtype,
    check_precision,
    load_once,
    progress_label,
    provenance_attrs,
    resolved_revision,
    stimulus_identity,
    torch_threads,
)
from featstore.extract.registry import ModelSpec
from featstore.extract.transcript import Transcript
from featstore.progress import progress_bar
from featstore.store import _schema as S
from featstore.store.features import write_feature_set
from featstore.store.groups import (
    StorePath,
    group_attrs,
    group_exists,
    is_complete,
    open_root,
    store_n_tr,
    store_tr_seconds,
)
from featstore.store.paths import feature_group, window_name
from featstore.store.staging import BlockStage, StagedArray, discard_stage, group_lock

# A block (the unit of resumption) is this many batches of TRs: small enough that a
# kill loses little work, large enough that staging writes are few.
BATCHES_PER_BLOCK = 4

WINDOW_RULE = (
    "TR t, window w: story time [(t+1-w)*TR - stim_onset, (t+1)*TR - stim_onset), "
    "zero-padded outside the story; ends rounded to the nearest sample (ties up), "
    "round(w*TR*sr) samples"
)


@dataclass
class WindowEncoder:
    """What the shared loop needs from a model family.

    Attributes
    ----------
    encode
        ``(batch, samples)`` float32 windows at 16 kHz → ``(layer, batch, dim)`` float32.
    layer_names
        One name per stored layer (``embeddings``, ``block1`` …), stored as ``layer_names``.
    dim
        Width of the stored vectors.
    pooling
        How frames become one vector per window (stored as ``pooling``).
    settings
        Family settings that determine the output (stored, and part of the resume key).
    model
        The loaded model (for the revision it was loaded at), or ``None``.
    revision
        The revision asked for.
    layer_dims
        True width of each layer when they differ (narrower ones are zero-filled).
    max_window_s
        Longest window (s) the model can take, or ``None``.
    frame_samples
        Audio samples per output frame, for families whose ``encode`` takes
        ``pool_samples=N`` (pool only the frames of the window's last ``N`` samples; per-word
        features with context, :mod:`featstore.extract.audio_words`), else ``None``.
    transcript_words
        For an encoder reading the transcript so far (``encode(windows, transcripts=[...])``,
        one text per window): the most words it is given; ``None`` for audio only.
    """

    encode: Callable[[np.ndarray], np.ndarray]
    layer_names: list[str]
    dim: int
    pooling: str
    settings: dict[str, Any] = field(default_factory=dict)
    model: Any = None
    revision: str | None = None
    layer_dims: list[int] | None = None
    max_window_s: float | None = None
    frame_samples: int | None = None
    transcript_words: int | None = None


@dataclass(frozen=True)
class WindowPlan:
    """A checked request: which windows of which model go to which groups."""

    store: StorePath
    spec: ModelSpec
    grid: WindowGrid
    tr_wins: tuple[int, ...]
    groups: dict[int, str]
    dtype: str
    overwrite: bool
    stimulus: dict[str, Any]
    precision: str = "float32"


def check_writable(store: StorePath, groups: Sequence[str], overwrite: bool) -> list[str]:
    """The groups still to write: all with ``overwrite``, else those not complete.

    Raises :class:`GroupExistsError` when every group is complete (and not
    ``overwrite``). Some complete and some not is what a run killed between two
    windows' final writes leaves: the rerun writes the others, so "rerun the same
    command" resumes it. A stage left next to a complete group is removed.
    """
    done = [group for group in groups if is_complete(store, group)]
    if overwrite:
        return list(groups)
    for group in done:
        discard_stage(store, group)  # left by a run killed after its last write
    if done and len(done) == len(groups):
        raise GroupExistsError(
            f"{', '.join(done)} already extracted in {store}; pass `overwrite` to replace"
        )
    return [group for group in groups if group not in done]


def stimulus_sample_rate(store: StorePath) -> int:
    """The sample rate of the store's stimulus audio, refused unless the models' 16 kHz.

    Opens the store first, so an unreadable store fails before any work.
    """
    open_root(store)
    sample_rate = int(group_attrs(store, S.STIMULUS).get("sample_rate", S.AUDIO_SAMPLE_RATE))
    if sample_rate != S.AUDIO_SAMPLE_RATE:
        raise InputError(
            f"stimulus audio of {store} is at {sample_rate} Hz; expected {S.AUDIO_SAMPLE_RATE}"
        )
    return sample_rate


def plan_windows(
    store: StorePath,
    spec: ModelSpec,
    tr_wins: Sequence[int],
    *,
    dtype: str = "float32",
    overwrite: bool = False,
    precision: str = "float32",
) -> WindowPlan:
    """Check the store and the request before any model is loaded.

    Raises :class:`InputError` for a missing stimulus or a bad window list and
    :class:`GroupExistsError` for a window already extracted (without ``overwrite``).
    """
    check_dtype(dtype)
    check_precision(precision)
    if not tr_wins:
        raise InputError(f"{spec.name} needs `tr_wins` N[,N...] (audio window in TRs)")
    wins = tuple(sorted({int(w) for w in tr_wins}))
    stimulus = stimulus_identity(store)
    sample_rate = stimulus_sample_rate(store)
    grid = WindowGrid(
        tr_seconds=store_tr_seconds(store),
        n_tr=store_n_tr(store),
        stim_onset=stimulus["stim_onset"],
        sample_rate=sample_rate,
    )
    for w in wins:
        grid.length(w)
    groups = {w: feature_group(spec.key, window_name(tr_win=w)) for w in wins}
    todo = check_writable(store, list(groups.values()), overwrite)
    wins = tuple(w for w in wins if groups[w] in todo)
    groups = {w: groups[w] for w in wins}
    return WindowPlan(store, spec, grid, wins, groups, dtype, overwrite, stimulus, precision)


def encoder_settings(spec: ModelSpec, encoder: WindowEncoder) -> dict[str, Any]:
    """The settings every encoder run stores: the family's, the model id and its revision."""
    return {
        **encoder.settings,
        "model_id": spec.model_id,
        "revision": resolved_revision(encoder.model, encoder.revision),
    }


def encoder_attrs(
    spec: ModelSpec, encoder: WindowEncoder, pooling: str, settings: dict, stimulus: dict
) -> dict[str, Any]:
    """Provenance attrs of a feature set an encoder wrote, with its layer names and widths."""
    attrs = provenance_attrs(
        spec,
        model=encoder.model,
        revision=encoder.revision,
        pooling=pooling,
        settings=settings,
        stimulus=stimulus,
    )
    attrs["layer_names"] = list(encoder.layer_names)
    if encoder.layer_dims is not None:
        attrs["layer_dims"] = list(encoder.layer_dims)
    return attrs


def open_audio_inputs(
    store: StorePath, encoder: WindowEncoder, sample_rate: int
) -> tuple[AudioStream, Transcript | None]:
    """The story audio to read forward, and its transcript when ``encoder`` reads one."""
    stream = AudioStream(open_root(store)[f"{S.STIMULUS}/{S.STIMULUS_AUDIO_VAR}"])
    if encoder.transcript_words is None:
        return stream, None
    return stream, Transcript.from_store(store, sample_rate)


def _settings(plan: WindowPlan, encoder: WindowEncoder, tr_win: int, batch_size: int) -> dict:
    return {
        **encoder_settings(plan.spec, encoder),
        "tr_win": tr_win,
        "tr_seconds": plan.grid.tr_seconds,
        "n_tr": plan.grid.n_tr,
        "stim_onset": plan.grid.stim_onset,
        "sample_rate": plan.grid.sample_rate,
        "window_samples": plan.grid.length(tr_win),
        "stimulus_sha256": plan.stimulus["stimulus_sha256"],
        "dtype": plan.dtype,
        "precision": plan.precision,
        "batch_size": batch_size,
        "block_trs": batch_size * BATCHES_PER_BLOCK,
    }


def _feature_attrs(plan: WindowPlan, encoder: WindowEncoder, settings: dict) -> dict[str, Any]:
    """Provenance attrs of one window's feature set."""
    attrs = encoder_attrs(plan.spec, encoder, encoder.pooling, settings, plan.stimulus)
    attrs.update(
        tr_seconds=plan.grid.tr_seconds,
        stim_onset=plan.grid.stim_onset,
        sample_rate=plan.grid.sample_rate,
        window_samples=settings["window_samples"],
        window_rule=WINDOW_RULE,
    )
    return attrs


def _check_limits(plan: WindowPlan, encoder: WindowEncoder) -> None:
    if encoder.max_window_s is None:
        return
    for w in plan.tr_wins:
        seconds = w * plan.grid.tr_seconds
        if seconds > encoder.max_window_s + 1e-9:
            longest = int(encoder.max_window_s // plan.grid.tr_seconds)
            raise InputError(
                f"tr_wins={w} is {seconds:g} s of audio but {plan.spec.name} takes at most "
                f"{encoder.max_window_s:g} s; use tr_wins={longest} or less"
            )


def run_windows(
    plan: WindowPlan,
    encoder: WindowEncoder,
    *,
    batch_size: int = 8,
    progress: bool = False,
) -> list[str]:
    """Extract every window of ``plan`` with ``encoder``; return the groups written."""
    if batch_size < 1:
        raise InputError(f"`batch_size` must be >= 1, got {batch_size}")
    _check_limits(plan, encoder)
    store, grid = plan.store, plan.grid
    block_trs = batch_size * BATCHES_PER_BLOCK
    shape = (len(encoder.layer_names), grid.n_tr, encoder.dim)
    with contextlib.ExitStack() as locks:
        for group in plan.groups.values():
            locks.enter_context(group_lock(store, group))
        # another run may have finished some windows since the plan was made
        todo = check_writable(store, list(plan.groups.values()), plan.overwrite)
        wins = tuple(w for w in plan.tr_wins if plan.groups[w] in todo)
        plan = dataclasses.replace(plan, tr_wins=wins, groups={w: plan.groups[w] for w in wins})
        settings = {w: _settings(plan, encoder, w, batch_size) for w in plan.tr_wins}
        stages = {
            w: BlockStage(
                store,
                plan.groups[w],
                {S.HIDDEN_VAR: StagedArray(shape, plan.dtype, block_axis=1)},
                block_size=block_trs,
                settings=settings[w],
            )
            for w in plan.tr_wins
        }
        pending = {w: set(stage.pending_blocks()) for w, stage in stages.items()}
        stream, transcript = open_audio_inputs(store, encoder, grid.sample_rate)
        first = stages[plan.tr_wins[0]]
        sizes = {i: len(range(grid.n_tr)[first.block_slice(i)]) for i in range(first.n_blocks)}
        total = sum(sizes[i] for blocks in pending.values() for i in blocks)
        label = progress_label(store, f"{plan.spec.name} tr{','.join(map(str, plan.tr_wins))}")
        with progress_bar(label, total, enabled=progress, unit="TRs") as advance:
            for index in sorted(set().union(*pending.values())):
                wins = [w for w in plan.tr_wins if index in pending[w]]
                trs = range(grid.n_tr)[first.block_slice(index)]
                batches = block_windows(stream, grid, wins, trs, batch_size)
                encoded = _encode_block(plan, encoder, batches, trs, advance, transcript)
                for w, block in encoded.items():
                    stages[w].write_block(index, **{S.HIDDEN_VAR: block})
        return [_finalize(plan, encoder, stages[w], settings[w], w) for w in plan.tr_wins]


def _encode_block(
    plan: WindowPlan,
    encoder: WindowEncoder,
    batches: Iterable[WindowBatch],
    trs: range,
    advance: Callable[[int], None],
    transcript: Transcript | None = None,
) -> dict[int, np.ndarray]:
    """Pooled features ``(layer, len(trs), dim)`` of one block of TRs, per window size.

    An encoder reading the transcript gets, per window, the words heard by its end.
    """
    blocks: dict[int, np.ndarray] = {}
    for batch in batches:
        if transcript is None:
            pooled = encoder.encode(batch.samples)
        else:
            ends = plan.grid.ends()[batch.trs]
            texts = transcript.before_each(ends, encoder.transcript_words)
            pooled = encoder.encode(batch.samples, transcripts=texts)
        expected = (len(encoder.layer_names), len(batch.trs), encoder.dim)
        if pooled.shape != expected:
            raise ModelError(
                f"{plan.spec.name} returned features of shape {pooled.shape}, expected {expected}"
            )
        if batch.tr_win not in blocks:
            blocks[batch.tr_win] = np.zeros((expected[0], len(trs), expected[2]), np.float32)
        blocks[batch.tr_win][:, batch.trs - trs.start] = pooled
        advance(len(batch.trs))
    return blocks


def _finalize(
    plan: WindowPlan, encoder: WindowEncoder, stage: BlockStage, settings: dict, tr_win: int
) -> str:
    hidden = stage.dask_arrays()[S.HIDDEN_VAR].rechunk((1, -1, -1))
    group = write_feature_set(
        plan.store,
        plan.spec.key,
        window_name(tr_win=tr_win),
        hidden,
        attrs=_feature_attrs(plan, encoder, settings),
        # an incomplete group left by a killed final write is replaced, never kept
        overwrite=plan.overwrite or group_exists(plan.store, plan.groups[tr_win]),
    )
    stage.discard()
    return group


def extract_model_windows(
    store: StorePath,
    spec: ModelSpec,
    load_encoder: Callable[..., WindowEncoder],
    *,
    tr_wins: Sequence[int],
    run: RunOptions = DEFAULT_RUN,
    **load_options: Any,
) -> list[str]:
    """Extract every layer of a model family for each window in ``tr_wins``.

    Checks the request before loading, loads the model with
    ``load_encoder(spec, device=, revision=, precision=, **load_options)`` under the
    requested torch threads (all from ``run``), and runs every window; writes
    ``features/<key>/tr<w>`` per window and returns the groups written.
    Example: ``extract_model_windows("s.zarr", resolve_model("hubert"), load_audio_encoder,
    tr_wins=[1, 2, 3, 6], run=RunOptions(batch_size=4))``.
    """
    plan = plan_windows(
        store, spec, tr_wins, dtype=run.dtype, overwrite=run.overwrite, precision=run.precision
    )
    with torch_threads(run.threads):
        encoder = load_once(
            load_encoder,
            spec,
            device=run.device,
            revision=run.revision,
            precision=run.precision,
            **load_options,
        )
        return run_windows(plan, encoder, batch_size=run.batch_size, progress=run.progress)
