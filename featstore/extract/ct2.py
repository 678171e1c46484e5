"""Read CTranslate2 ``model.bin`` files (binary versions 4-6) into numpy arrays.

The format, as CTranslate2's ``ModelSpec._serialize`` writes it (little endian)::

    uint32  binary version
    string  spec name            (e.g. "WhisperSpec")
    uint32  spec revision
    uint32  number of variables
    per variable:
        string  name             (e.g. "encoder/layer_0/self_attention/linear_0/weight")
        uint8   rank, then rank x uint32 dimensions
        uint8   dtype id         (0 float32, 1 int8, 2 int16, 3 int32, 4 float16, 5 bfloat16)
        uint32  number of bytes, then the raw bytes (C order)
    uint32  number of aliases
    per alias: string alias, string name of the variable it repeats

where ``string`` is a uint16 length (including a trailing NUL), the UTF-8 bytes and the
NUL. Quantized weights (int8, int16) come with a ``<name>_scale`` variable: the value is
``quantized / scale`` (int8: one scale per output row; int16: one scalar). Some
distributions split ``model.bin`` into parts that concatenate back to the file.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from featstore.errors import ModelError

SUPPORTED_BINARY_VERSIONS = (4, 5, 6)
_DTYPES: tuple[str, ...] = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
_QUANTIZED = ("int8", "int16")

PathLike = str | os.PathLike


@dataclass
class Ct2Model:
    """The content of a CTranslate2 ``model.bin``.

    Attributes
    ----------
    spec
        Specification name (``WhisperSpec``, ``TransformerSpec`` …).
    revision
        Specification revision.
    binary_version
        Version of the binary layout.
    variables
        Every variable by name, aliases included (an alias maps to the same array),
        as stored: quantized weights stay integer next to their ``*_scale``.
    aliases
        ``{alias: name}`` as stored in the file.
    source
        The file(s) read.
    """

    spec: str
    revision: int
    binary_version: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)
    source: tuple[Path, ...] = ()


def model_bin_parts(path_or_parts: PathLike | Sequence[PathLike]) -> list[Path]:
    """The file(s) that make up a ``model.bin``, in order.

    Accepts a ``model.bin`` file, a directory holding ``model.bin`` (or
    ``model.bin.part1``, ``model.bin.part2`` …), or an explicit list of parts.
    """
    if isinstance(path_or_parts, (str, os.PathLike)):
        path = Path(path_or_parts).expanduser()
        if path.is_dir():
            if (path / "model.bin").is_file():
                return [path / "model.bin"]
            parts = sorted(path.glob("model.bin.part*"), key=_part_number)
            if not parts:
                raise ModelError(f"{path} has no model.bin (nor model.bin.part* files)")
            return parts
        paths = [path]
    else:
        paths = [Path(p).expanduser() for p in path_or_parts]
    if not paths:
        raise ModelError("no model.bin given")
    for part in paths:
        if not part.is_file():
            raise ModelError(f"{part} is not a file; expected a CTranslate2 model.bin (or part)")
    return paths


def _part_number(path: Path) -> int:
    suffix = path.name.rsplit("part", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


class _Cursor:
    """Sequential little-endian reads from one buffer, with errors naming the file."""

    def __init__(self, buffer: bytes, label: str):
        self.buffer = memoryview(buffer)
        self.pos = 0
        self.label = label

    def take(self, n_bytes: int) -> memoryview:
        if self.pos + n_bytes > len(self.buffer):
            raise ModelError(
                f"{self.label} ends at byte {len(self.buffer)} but the header asks for "
                f"{n_bytes} bytes at {self.pos}; is the file (or a part) truncated or missing?"
            )
        view = self.buffer[self.pos : self.pos + n_bytes]
        self.pos += n_bytes
        return view

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def string(self) -> str:
        raw = bytes(self.take(self.unpack("H")))
        return raw.rstrip(b"\0").decode("utf-8")


def _array(raw: memoryview, dtype_name: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype_name == "bfloat16":
        # bfloat16 is the top half of a float32
        halves = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return halves.view(np.float32).reshape(shape)
    return np.frombuffer(raw, dtype=np.dtype(dtype_name).newbyteorder("<")).reshape(shape)


def load_ct2(path_or_parts: PathLike | Sequence[PathLike]) -> Ct2Model:
    """Read a CTranslate2 ``model.bin`` (or its parts) without converting anything.

    Parameters
    ----------
    path_or_parts
        ``model.bin``, its directory, or the list of its parts in order.

    Returns
    -------
    Ct2Model
        Arrays are read-only views of the file's bytes (no copy).

    Raises
    ------
    ModelError
        Unreadable, truncated or unsupported files, naming the file and what was expected.
    """
    parts = model_bin_parts(path_or_parts)
    label = " + ".join(str(p) for p in parts)
    try:
        buffer = b"".join(p.read_bytes() for p in parts)
    except OSError as exc:
        raise ModelError(f"cannot read {label}: {exc}") from exc
    cursor = _Cursor(buffer, label)
    version = cursor.unpack("I")
    if version not in SUPPORTED_BINARY_VERSIONS:
        raise ModelError(
            f"{label}: binary version {version} is not supported (expected one of "
            f"{', '.join(map(str, SUPPORTED_BINARY_VERSIONS))}); is it a CTranslate2 model.bin?"
        )
    spec = cursor.string()
    revision = cursor.unpack("I")
    variables: dict[str, np.ndarray] = {}
    for _ in range(cursor.unpack("I")):
        name = cursor.string()
        shape = tuple(cursor.unpack("I") for _ in range(cursor.unpack("B")))
        type_id = cursor.unpack("B")
        if type_id >= len(_DTYPES):
            raise ModelError(f"{label}: variable {name} has unknown dtype id {type_id}")
        n_bytes = cursor.unpack("I")
        dtype_name = _DTYPES[type_id]
        itemsize = 2 if dtype_name == "bfloat16" else np.dtype(dtype_name).itemsize
        if n_bytes != itemsize * int(np.prod(shape, dtype=np.int64)):
            raise ModelError(
                f"{label}: variable {name} has {n_bytes} bytes but shape {shape} of "
                f"{dtype_name} needs {itemsize * int(np.prod(shape))}"
            )
        variables[name] = _array(cursor.take(n_bytes), dtype_name, shape)
    aliases: dict[str, str] = {}
    for _ in range(cursor.unpack("I")):
        alias, target = cursor.string(), cursor.string()
        if target not in variables:
            raise ModelError(f"{label}: alias {alias} points to missing variable {target}")
        aliases[alias] = target
        variables[alias] = variables[target]
    if cursor.pos != len(buffer):
        raise ModelError(
            f"{label}: {len(buffer) - cursor.pos} unread bytes after the aliases; "
            "are the parts in the right order?"
        )
    return Ct2Model(spec, revision, version, variables, aliases, tuple(parts))


def dequantize(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The float32 value of variable ``name``, undoing int8/int16 quantization.

    int8 weights carry one scale per output row (``weight * scale[:, None]`` was
    rounded); int16 weights carry one scalar scale.
    """
    value = variables[name]
    if value.dtype.kind == "f":
        return value.astype(np.float32)
    scale = variables.get(f"{name}_scale")
    if scale is None or value.dtype.name not in _QUANTIZED:
        raise ModelError(
            f"variable {name} is {value.dtype} without a {name}_scale; expected a float or a "
            "quantized (int8/int16 + scale) weight"
        )
    if f"{name}_zero" in variables:
        raise ModelError(f"variable {name} is AWQ-quantized ({name}_zero); not supported")
    scale = scale.astype(np.float32)
    if scale.ndim == 1:  # per output row (first axis)
        scale = scale.reshape((-1,) + (1,) * (value.ndim - 1))
    return value.astype(np.float32) / scale


def float_tensors(model: Ct2Model) -> dict[str, np.ndarray]:
    """The variables of a loaded model with quantized weights dequantized to float32.

    ``*_scale`` variables are dropped; aliases map to the same array as their target;
    scalars (``encoder/num_heads`` …) and plain integer data keep their type.
    """
    raw = model.variables
    out: dict[str, np.ndarray] = {}
    for name, value in raw.items():
        if name in model.aliases or (name.endswith("_scale") and name[: -len("_scale")] in raw):
            continue
        if value.ndim == 0 or (value.dtype.kind in "iu" and f"{name}_scale" not in raw):
            out[name] = np.array(value)  # scalars and integer data: copy, keep the type
        else:
            out[name] = dequantize(raw, name)
    for alias, target in model.aliases.items():
        out[alias] = out[target]
    return out


def read_ct2_model(path_or_parts: PathLike | Sequence[PathLike]) -> dict[str, np.ndarray]:
    """Every tensor of a CTranslate2 model as float32 (or its integer/scalar type).

    Quantized weights are dequantized and their ``*_scale`` variables dropped; aliases
    appear under both names; scalars (``encoder/num_heads`` …) keep their integer type.

    Examples
    --------
    >>> tensors = read_ct2_model("faster-whisper-base/model.bin")  # doctest: +SKIP
    >>> tensors["encoder/conv1/weight"].shape  # doctest: +SKIP
    (512, 80, 3)
    """
    return float_tensors(load_ct2(path_or_parts))
