"""The tests' own CTranslate2 writer: a model.bin serializer and a HF → CT2 Whisper mapping.

Written from the format description (not from featstore's reader), so reader bugs
cannot cancel out. ``to_ct2_whisper`` does what CTranslate2's converter does: fuse
q|k|v (k bias = 0), fuse cross-attention k|v, alias the output projection.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

TYPE_IDS = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4, "bfloat16": 5}


class BFloat16:
    """A bfloat16 tensor for :func:`write_ct2` (numpy has no bfloat16): truncated float32."""

    def __init__(self, values: np.ndarray):
        self.bits = (np.asarray(values, dtype=np.float32).view(np.uint32) >> 16).astype("<u2")
        self.shape = self.bits.shape

    def as_float32(self) -> np.ndarray:
        return (self.bits.astype(np.uint32) << 16).view(np.float32)


def _string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return struct.pack("<H", len(raw)) + raw


def ct2_bytes(
    variables: dict,
    aliases: dict[str, str] | None = None,
    *,
    spec: str = "WhisperSpec",
    revision: int = 3,
    version: int = 6,
) -> bytes:
    """Serialize ``{name: array}`` (+ aliases) the way CTranslate2 writes model.bin."""
    out = [struct.pack("<I", version), _string(spec), struct.pack("<I", revision)]
    out.append(struct.pack("<I", len(variables)))
    for name in sorted(variables):
        value = variables[name]
        if isinstance(value, BFloat16):
            type_id, payload = TYPE_IDS["bfloat16"], value.bits.tobytes()
        else:
            value = np.asarray(value)
            type_id = TYPE_IDS[value.dtype.name]
            payload = value.astype(value.dtype.newbyteorder("<")).tobytes()
        out.append(_string(name) + struct.pack("<B", len(value.shape)))
        out.extend(struct.pack("<I", d) for d in value.shape)
        out.append(struct.pack("<BI", type_id, len(payload)) + payload)
    aliases = aliases or {}
    out.append(struct.pack("<I", len(aliases)))
    out.extend(_string(a) + _string(t) for a, t in aliases.items())
    return b"".join(out)


def write_ct2(path: Path, variables: dict, aliases: dict[str, str] | None = None, **kw) -> Path:
    path.write_bytes(ct2_bytes(variables, aliases, **kw))
    return path


def quantize_int8(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CTranslate2's int8 scheme: per output row, scale = 127 / max|row|."""
    rows = weight.reshape(weight.shape[0], -1).astype(np.float32)
    scale = 127.0 / np.abs(rows).max(axis=1)
    return np.rint(rows * scale[:, None]).astype(np.int8).reshape(weight.shape), scale


def to_ct2_whisper(state: dict[str, np.ndarray], config, quantization: str = "float32") -> dict:
    """HF Whisper state dict (numpy) → CTranslate2 WhisperSpec variables (and aliases)."""
    v: dict = {}

    def linear(ct2: str, hf: str) -> None:
        v[f"{ct2}/weight"], v[f"{ct2}/bias"] = state[f"{hf}.weight"], state[f"{hf}.bias"]

    def norm(ct2: str, hf: str) -> None:
        v[f"{ct2}/gamma"], v[f"{ct2}/beta"] = state[f"{hf}.weight"], state[f"{hf}.bias"]

    def fused(ct2: str, hf: str, names: list[str]) -> None:
        v[f"{ct2}/weight"] = np.concatenate([state[f"{hf}.{n}.weight"] for n in names])
        v[f"{ct2}/bias"] = np.concatenate(
            [state.get(f"{hf}.{n}.bias", np.zeros(config.d_model, np.float32)) for n in names]
        )

    def block(ct2: str, hf: str, decoder: bool) -> None:
        fused(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ["q_proj", "k_proj", "v_proj"])
        linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
        norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")
        if decoder:
            linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
            fused(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ["k_proj", "v_proj"])
            linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
            norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
        linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
        linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
        norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")

    linear("encoder/conv1", "model.encoder.conv1")
    linear("encoder/conv2", "model.encoder.conv2")
    v["encoder/position_encodings/encodings"] = state["model.encoder.embed_positions.weight"]
    for i in range(config.encoder_layers):
        block(f"encoder/layer_{i}", f"model.encoder.layers.{i}", decoder=False)
    norm("encoder/layer_norm", "model.encoder.layer_norm")
    v["decoder/embeddings/weight"] = state["model.decoder.embed_tokens.weight"]
    v["decoder/position_encodings/encodings"] = state["model.decoder.embed_positions.weight"]
    for i in range(config.decoder_layers):
        block(f"decoder/layer_{i}", f"model.decoder.layers.{i}", decoder=True)
    norm("decoder/layer_norm", "model.decoder.layer_norm")

    if quantization == "float16":
        v = {k: x.astype(np.float16) for k, x in v.items()}
    elif quantization == "int8":
        for name in [k for k in v if k.endswith("/weight")]:
            v[name], v[f"{name}_scale"] = quantize_int8(v[name])
    elif quantization != "float32":
        raise ValueError(quantization)
    v.update(
        {
            "encoder/num_heads": np.int16(config.encoder_attention_heads),
            "decoder/num_heads": np.int16(config.decoder_attention_heads),
            "decoder/pre_norm": np.int8(1),
            "decoder/activation": np.int8(3),
            "decoder/alibi": np.int8(0),
            "decoder/scale_embeddings": np.int8(0),
            "decoder/start_from_zero_embedding": np.int8(0),
        }
    )
    return v
