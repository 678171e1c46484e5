"""Pieces every model extractor shares: device, threads, provenance, stimulus identity."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, fields
from typing import Any

from featstore import __version__
from featstore.errors import InputError, ModelError
from featstore.extract.registry import ModelSpec
from featstore.store import _schema as S
from featstore.store.groups import StorePath, group_attrs, now_iso, root_attrs

# models loaded inside sharing_loaded_models(), by what they were loaded with
_LOADED: ContextVar[dict[str, Any] | None] = ContextVar("featstore_loaded_models", default=None)

DTYPES = ("float32", "float16")
# arithmetic of the forward pass (autocast); features are pooled and stored as --dtype
PRECISIONS = ("float32", "bfloat16", "float16")


def resolve_device(device: str | None) -> str:
    """``None``/``auto`` → ``cuda`` when available else ``cpu``; checks explicit names."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={device}: no CUDA device is available here; use device=cpu")
    if device not in ("cpu", "mps") and not device.startswith("cuda"):
        raise InputError(f"device={device!r}: expected cpu, cuda, cuda:N, mps or auto")
    return device


def check_dtype(dtype: str) -> str:
    """Validate the storage dtype of features."""
    if dtype not in DTYPES:
        raise InputError(f"dtype={dtype!r}: expected one of {', '.join(DTYPES)}")
    return dtype


def check_precision(precision: str, device: str | None = None) -> str:
    """Validate the forward pass's arithmetic; ``float16`` needs a GPU (CPUs have bfloat16)."""
    if precision not in PRECISIONS:
        raise InputError(f"precision={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if precision == "float16" and device is not None and device.split(":")[0] == "cpu":
        raise InputError("precision=float16 needs a GPU; on a CPU use precision=bfloat16")
    return precision


@dataclass(frozen=True)
class RunOptions:
    """How a model is run, the options every audio, word and low-level extractor takes.

    They travel together from :func:`featstore.extract.run.extract` (which takes them as
    keywords) to the loader, the window loop and the writer. Only ``dtype`` and
    ``precision`` change the features (both are recorded and part of the resume key).
    Checked when made: a bad batch size, dtype or precision raises :class:`InputError`.

    Attributes
    ----------
    batch_size
        Windows (or words) per forward pass.
    device
        Torch device; ``None`` or ``auto``: CUDA when available, else the CPU.
    dtype
        Storage dtype, ``float32`` or ``float16``.
    precision
        Arithmetic of the forward pass: ``float32``, ``bfloat16`` or ``float16``.
    revision
        Model revision to load (recorded).
    overwrite
        Replace complete feature sets.
    progress
        Show a progress bar.
    threads
        Torch intra-op threads (``None``: torch's setting).
    """

    batch_size: int = 8
    device: str | None = None
    dtype: str = "float32"
    precision: str = "float32"
    revision: str | None = None
    overwrite: bool = False
    progress: bool = False
    threads: int | None = None

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise InputError(f"batch_size={self.batch_size}: expected at least 1")
        check_dtype(self.dtype)
        check_precision(self.precision, self.device)

    @classmethod
    def split(cls, options: Mapping[str, Any]) -> tuple[RunOptions, dict[str, Any]]:
        """The run options named in ``options`` (``None`` or absent: the default), and the rest."""
        names = {option.name for option in fields(cls)}
        given = {name: value for name, value in options.items() if name in names}
        run = cls(**{name: value for name, value in given.items() if value is not None})
        return run, {name: value for name, value in options.items() if name not in names}


#: The run options when none are given (a frozen instance, safe to share as a default).
DEFAULT_RUN = RunOptions()


def compute_precision(precision: str, device: str) -> contextlib.AbstractContextManager:
    """Context in which the model's forward pass runs at ``precision``.

    ``float32`` runs the model as loaded. ``bfloat16``/``float16`` use torch's autocast:
    matrix products and convolutions in half width, reductions and norms in float32.
    Hidden states are cast back to float32 before pooling.
    """
    import torch

    check_precision(precision, device)
    if precision == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, precision))


def fast_bfloat16_cpu() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX), so ``bfloat16``
    pays off; elsewhere torch emulates it and it is slower than float32."""
    import torch

    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


@contextlib.contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Pin torch's intra-op threads for the duration (None keeps the current setting).

    On small shared machines one thread per process is often faster than two
    (oversubscription); extraction takes ``--threads`` and benchmarks measure both.
    """
    import torch

    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n_threads)))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def stimulus_identity(store: StorePath) -> dict[str, Any]:
    """``stimulus_sha256`` and timing attrs of the store's stimulus (for provenance)."""
    try:
        attrs = group_attrs(store, S.STIMULUS)
    except KeyError:
        attrs = {}
    if not attrs.get(S.COMPLETE_ATTR):
        raise InputError(
            f"{os.fspath(store)} has no complete stimulus group; run `featstore dataset import` first"
        )
    return {
        "stimulus_sha256": attrs.get("stimulus_sha256", ""),
        "stim_onset": float(attrs.get("stim_onset", 0.0)),
        "tr_assign": attrs.get("tr_assign", "ceil"),
    }


def resolved_revision(model: Any, requested: str | None) -> str:
    """The commit a hub model was loaded at (or what was requested, or ``local``).

    With no model (weight-free features) it is what was requested, or ``""``.
    """
    if model is None:
        return requested or ""
    commit = getattr(getattr(model, "config", None), "_commit_hash", None)
    return str(commit or requested or "local")


def provenance_attrs(
    spec: ModelSpec,
    *,
    model: Any = None,
    revision: str | None = None,
    pooling: str,
    settings: dict[str, Any],
    stimulus: dict[str, Any],
) -> dict[str, Any]:
    """The provenance attrs every feature set carries (schema + extraction settings)."""
    return {
        "model_id": spec.model_id,
        "model_alias": spec.alias or "",
        "model_family": spec.family,
        "revision": resolved_revision(model, revision),
        "modality": spec.modality,
        "pooling": pooling,
        "stimulus_sha256": stimulus["stimulus_sha256"],
        "featstore_version": __version__,
        "extracted": now_iso(),
        "settings": settings,
    }


def load_errors() -> tuple[type[BaseException], ...]:
    """What loading a model raises on missing, damaged or incompatible files.

    safetensors reports a truncated or corrupt weights file with its own
    ``SafetensorError``, which is none of the built-in exceptions.
    """
    from safetensors import SafetensorError

    return (OSError, ValueError, KeyError, ImportError, RuntimeError, SafetensorError)


def load_error(spec: ModelSpec, exc: Exception) -> ModelError:
    """A one-line error for a model that could not be loaded, with the likely fix."""
    hint = (
        "it is offline-only; check the package that ships it is installed"
        if spec.local_files_only
        else "check the id, your network, or pass a local directory (see `featstore models`)"
    )
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelError(f"cannot load model {spec.model_id!r}: {first}; {hint}")


@contextlib.contextmanager
def quiet_loading(*, report: bool = True) -> Iterator[None]:
    """Silence transformers' own weight-loading bars (and, with ``report=False``, its loading
    report) while a model loads; Hugging Face Hub download bars stay visible.

    featstore shows one bar per extraction; the loading report lists every checkpoint
    weight the class does not use (a CTC head, CLAP's text tower), which is expected here.
    A first download of a large model, though, takes minutes and must show its progress:
    transformers' ``disable_progress_bar`` also turns the hub's bars off, so they are
    turned back on for the duration.
    """
    from huggingface_hub.utils import are_progress_bars_disabled, enable_progress_bars
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    downloads = not are_progress_bars_disabled()
    if not report:
        hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    if downloads:
        enable_progress_bars()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_pretrained(loader: Any, spec: ModelSpec, revision: str | None, **kwargs: Any) -> Any:
    """``loader.from_pretrained`` for ``spec`` at ``revision``, quietly, errors as :class:`ModelError`.

    See :func:`quiet_loading`: downloads show their progress, the loading report does not.
    """
    try:
        with quiet_loading(report=False):
            return loader.from_pretrained(
                spec.model_id, revision=revision, local_files_only=spec.local_files_only, **kwargs
            )
    except Exception as exc:  # any failure to load is reported as one ModelError line
        raise load_error(spec, exc) from exc


@dataclass(frozen=True)
class LoadedModel:
    """A window encoder's processor and model, as :func:`load_for_inference` loads them.

    Attributes
    ----------
    processor
        The feature extractor or processor (``processor_loader.from_pretrained``).
    model
        The model, in eval mode on ``device``.
    device
        The torch device it runs on (resolved: never ``None`` or ``auto``).
    precision
        Arithmetic of the forward pass (see :func:`compute_precision`).
    revision
        The revision loaded (recorded with the features).
    """

    processor: Any
    model: Any
    device: str
    precision: str
    revision: str | None

    def forward_precision(self) -> contextlib.AbstractContextManager:
        """:func:`compute_precision` for this model: the context of its forward pass."""
        return compute_precision(self.precision, self.device)


def load_for_inference(
    processor_loader: Any,
    model_loader: Any,
    spec: ModelSpec,
    *,
    device: str | None = None,
    revision: str | None = None,
    precision: str = "float32",
) -> LoadedModel:
    """A window encoder's processor and model, the model in eval mode on the device.

    Resolves ``device`` (``None``/``auto``: the best available) and checks that
    ``precision`` runs there before anything is downloaded or loaded. The window
    encoders' loaders pass their ``device``, ``revision`` and ``precision`` keywords
    on to this function.

    Returns
    -------
    LoadedModel
        The processor (``processor_loader.from_pretrained``), the model, the device,
        the precision and the revision.
    """
    device = resolve_device(device)
    check_precision(precision, device)
    processor = load_pretrained(processor_loader, spec, revision)
    model = load_pretrained(model_loader, spec, revision).eval().to(device)
    return LoadedModel(processor, model, device, precision, revision)


@contextlib.contextmanager
def sharing_loaded_models() -> Iterator[None]:
    """Within the block, :func:`load_once` loads a model once and hands it out again.

    Extraction over the stories of a store runs the single-story extractor on each
    story inside this block, so the model is loaded for the first story that needs it
    and reused for the others; the models are released when the block ends.
    """
    token = _LOADED.set({})
    try:
        yield
    finally:
        _LOADED.reset(token)


def load_once(load: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``load(*args, **kwargs)``, or the model it returned earlier with the same
    arguments inside :func:`sharing_loaded_models` (outside it: always loads)."""
    loaded = _LOADED.get()
    if loaded is None:
        return load(*args, **kwargs)
    key = repr((load, args, sorted(kwargs.items())))
    if key not in loaded:
        loaded[key] = load(*args, **kwargs)
    return loaded[key]


def progress_label(store: StorePath, what: str) -> str:
    """``extract <what>``, and the story for a story of a store of stories
    (``extract gpt2/ctx200 [pieman]``), so progress lines say which story they count."""
    story = root_attrs(store).get(S.STORY_ATTR)
    return f"extract {what} [{story}]" if story else f"extract {what}"
