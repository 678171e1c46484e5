"""The CTranslate2 model.bin reader against files written by the tests' own serializer."""

from __future__ import annotations

import numpy as np
import pytest

from featstore.errors import ModelError
from featstore.extract.ct2 import load_ct2, model_bin_parts, read_ct2_model
from tests.ct2._ct2_format import BFloat16, ct2_bytes, quantize_int8, write_ct2

RNG = np.random.default_rng(7)
LINEAR = RNG.standard_normal((5, 3)).astype(np.float32)
CONV = RNG.standard_normal((4, 3, 2)).astype(np.float32)
INT16_WEIGHT = RNG.standard_normal((3, 7)).astype(np.float32)


def _variables() -> dict:
    rng = np.random.default_rng(11)
    q_linear, s_linear = quantize_int8(LINEAR)
    q_conv, s_conv = quantize_int8(CONV)
    int16_scale = np.float32(2**10 / np.abs(INT16_WEIGHT).max())
    return {
        "a/float32": rng.standard_normal((2, 3)).astype(np.float32),
        "a/float16": rng.standard_normal(6).astype(np.float16),
        "a/bfloat16": BFloat16(np.array([1.5, -2.25, 3.0e-3], np.float32)),
        "a/int32": np.arange(4, dtype=np.int32),
        "a/num_heads": np.int16(8),
        "a/flag": np.int8(1),
        "lin/weight": q_linear,
        "lin/weight_scale": s_linear,
        "conv/weight": q_conv,
        "conv/weight_scale": s_conv,
        "w16/weight": np.rint(INT16_WEIGHT * int16_scale).astype(np.int16),
        "w16/weight_scale": int16_scale,
    }


@pytest.fixture
def model_bin(tmp_path):
    return write_ct2(tmp_path / "model.bin", _variables(), {"b/alias": "a/float32"})


def test_load_keeps_stored_types_and_aliases(model_bin):
    model = load_ct2(model_bin)
    assert (model.spec, model.revision, model.binary_version) == ("WhisperSpec", 3, 6)
    assert model.aliases == {"b/alias": "a/float32"}
    assert model.variables["b/alias"] is model.variables["a/float32"]
    expected = _variables()
    for name in ("a/float32", "a/float16", "a/int32", "lin/weight", "w16/weight"):
        np.testing.assert_array_equal(model.variables[name], expected[name])
        assert model.variables[name].dtype == expected[name].dtype
    assert model.variables["a/num_heads"].shape == () and int(model.variables["a/num_heads"]) == 8


def test_read_dequantizes_like_ctranslate2(model_bin):
    tensors = read_ct2_model(model_bin)
    expected = _variables()
    assert not any(name.endswith("_scale") for name in tensors)
    # int8: quantized / per-row scale, within half a quantization step of the original
    for name, original in (("lin/weight", LINEAR), ("conv/weight", CONV)):
        scale = expected[f"{name}_scale"].reshape((-1,) + (1,) * (original.ndim - 1))
        np.testing.assert_allclose(tensors[name], expected[name] / scale, rtol=1e-6)
        assert np.all(np.abs(tensors[name] - original) <= 0.5 / scale + 1e-6)
    step16 = 1 / expected["w16/weight_scale"]
    assert np.abs(tensors["w16/weight"] - INT16_WEIGHT).max() <= 0.5 * step16 + 1e-7
    np.testing.assert_array_equal(tensors["a/float16"], expected["a/float16"].astype(np.float32))
    # bfloat16 = the top 16 bits of a float32: exact for 1.5 and -2.25, 3e-3 truncated
    np.testing.assert_array_equal(tensors["a/bfloat16"], expected["a/bfloat16"].as_float32())
    assert tensors["a/bfloat16"][:2].tolist() == [1.5, -2.25]
    assert 0 < 3.0e-3 - tensors["a/bfloat16"][2] < 3.0e-3 * 2**-7
    assert tensors["b/alias"] is tensors["a/float32"]
    assert tensors["a/int32"].dtype == np.int32 and tensors["a/num_heads"].dtype == np.int16
    assert all(t.dtype == np.float32 for n, t in tensors.items() if n.startswith(("lin", "w16")))


def test_parts_concatenate_in_order(tmp_path, model_bin):
    raw = model_bin.read_bytes()
    cuts = [0, 17, 400, len(raw)]
    for i in range(3):
        (tmp_path / f"model.bin.part{i + 1}").write_bytes(raw[cuts[i] : cuts[i + 1]])
    parts = [tmp_path / f"model.bin.part{i}" for i in (1, 2, 3)]
    whole = read_ct2_model(model_bin)
    split = read_ct2_model(parts)
    assert whole.keys() == split.keys()
    for name in whole:
        np.testing.assert_array_equal(whole[name], split[name])
    model_bin.unlink()  # the directory form then finds the parts
    assert model_bin_parts(tmp_path) == parts
    with pytest.raises(ModelError, match=r"right order|truncated|binary version"):
        read_ct2_model(list(reversed(parts)))


def test_part_numbers_sort_numerically(tmp_path):
    for n in (10, 2, 1):
        (tmp_path / f"model.bin.part{n}").write_bytes(b"")
    assert [p.name for p in model_bin_parts(tmp_path)] == [
        "model.bin.part1",
        "model.bin.part2",
        "model.bin.part10",
    ]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda raw: raw[:-9], "truncated"),
        (lambda raw: raw + b"\0\0", "unread bytes"),
        (lambda raw: (99).to_bytes(4, "little") + raw[4:], "binary version 99"),
    ],
)
def test_bad_files_are_named_in_one_line(tmp_path, model_bin, mutate, message):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(mutate(model_bin.read_bytes()))
    with pytest.raises(ModelError, match=message) as info:
        load_ct2(bad)
    assert "bad.bin" in str(info.value) and "\n" not in str(info.value)


def test_wrong_byte_count_and_missing_alias_target(tmp_path):
    raw = ct2_bytes({"x": np.zeros(3, np.float32)})
    # the uint32 byte count sits just before the 12 payload bytes and the alias count
    broken = raw[: -4 - 12 - 4] + (11).to_bytes(4, "little") + raw[-4 - 12 :]
    (tmp_path / "count.bin").write_bytes(broken)
    with pytest.raises(ModelError, match="has 11 bytes but shape"):
        load_ct2(tmp_path / "count.bin")
    write_ct2(tmp_path / "alias.bin", {"x": np.zeros(3, np.float32)}, {"y": "nope"})
    with pytest.raises(ModelError, match="alias y points to missing variable nope"):
        load_ct2(tmp_path / "alias.bin")


def test_missing_inputs(tmp_path):
    with pytest.raises(ModelError, match=r"no model\.bin"):
        model_bin_parts(tmp_path)
    with pytest.raises(ModelError, match="is not a file"):
        model_bin_parts(tmp_path / "absent.bin")


def test_quantized_weight_without_scale_is_refused(tmp_path):
    write_ct2(tmp_path / "m.bin", {"w/weight": np.ones((2, 2), np.int8)})
    assert read_ct2_model(tmp_path / "m.bin")["w/weight"].dtype == np.int8  # plain int data
    from featstore.extract.ct2 import dequantize

    with pytest.raises(ModelError, match="without a w/weight_scale"):
        dequantize(load_ct2(tmp_path / "m.bin").variables, "w/weight")
