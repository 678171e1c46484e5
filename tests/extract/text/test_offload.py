"""Disk offload keeps weights on disk: only the layers placed in memory stay resident, one
offloaded module is read at a time, and the heap is trimmed after each block.

Structural checks (what is resident, when), not memory thresholds: RSS on a shared
machine is too noisy to test. ``benchmarks/extract_lm.py`` measures the memory itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from featstore.extract import offload
from featstore.extract.registry import resolve_model
from featstore.extract.text_model import LoadOptions, load_text_model, word_vectors

from .conftest import STORY, _bpe_vocab_and_merges
from .test_word_vectors import TOL

N_BLOCKS = 5


@pytest.fixture(scope="module")
def sharded_qwen2(tmp_path_factory):
    """A 2.9 MB random Qwen2 of 5 blocks (0.55 MB each), saved in 300 KB shards."""
    import torch
    from transformers import AutoModel, Qwen2Config, Qwen2Tokenizer

    path = tmp_path_factory.mktemp("sharded") / "qwen2"
    vocab, merges = _bpe_vocab_and_merges(["<|endoftext|>"])
    config = Qwen2Config(
        vocab_size=len(vocab),
        hidden_size=96,
        intermediate_size=384,
        num_hidden_layers=N_BLOCKS,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        eos_token_id=vocab["<|endoftext|>"],
    )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(path, max_shard_size="300KB")
    Qwen2Tokenizer(vocab=vocab, merges=merges).save_pretrained(path)
    assert len(list(path.glob("*.safetensors"))) > N_BLOCKS
    return str(path)


def _load(path, **options):
    return load_text_model(
        resolve_model(path), revision=None, device="cpu", options=LoadOptions(**options)
    )


def _module_of(name: str, device_map: dict[str, str]) -> str:
    """The device-map entry a parameter falls under (the longest prefix)."""
    prefixes = [k for k in device_map if k == "" or name == k or name.startswith(k + ".")]
    return device_map[max(prefixes, key=len)]


def _most_resident_during(model, run) -> int:
    """Most parameter elements in memory at once, looked at before every torch operation."""
    from torch.overrides import TorchFunctionMode

    most = [0]

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            resident = sum(p.numel() for p in model.parameters() if p.device.type != "meta")
            most[0] = max(most[0], resident)
            return func(*args, **(kwargs or {}))

    with Watch():
        run()
    return most[0]


def test_offloaded_layers_stay_on_disk_and_are_read_one_at_a_time(
    tmp_path, sharded_qwen2, monkeypatch
):
    pytest.importorskip("accelerate")
    trims = []
    monkeypatch.setattr(offload, "_malloc_trim", lambda: lambda: trims.append(1))
    in_memory = _load(sharded_qwen2)
    assert offload.offloaded_parameters(in_memory.model) == [] and trims == []
    sizes = {name: p.numel() for name, p in in_memory.model.named_parameters()}
    block = sum(p.numel() for p in in_memory.model.layers[0].parameters())

    offloaded = _load(
        sharded_qwen2,
        device_map="auto",
        max_memory={"cpu": "1.5MB"},
        offload_folder=str(tmp_path / "offload"),
    )
    model = offloaded.model
    device_map = model.hf_device_map
    on_disk = {name for name in sizes if _module_of(name, device_map) == "disk"}
    assert {f"layers.{k}.mlp.up_proj.weight" for k in range(2, N_BLOCKS)} <= on_disk
    assert "embed_tokens.weight" not in on_disk, device_map
    # offloaded weights are not in memory; those placed on the CPU are, and only those
    assert set(offload.offloaded_parameters(model)) == on_disk
    kept = sum(n for name, n in sizes.items() if name not in on_disk)
    assert 0 < kept < sum(sizes.values()) - 3 * block

    trims.clear()
    b = word_vectors(offloaded, STORY, range(15), ctx=5, batch_size=8)
    n_passes = 2  # 15 windows, 8 a pass
    assert len(trims) == N_BLOCKS * n_passes
    # never more than the kept layers plus one offloaded block, read while it runs
    most = _most_resident_during(model, lambda: word_vectors(offloaded, STORY, [3], ctx=5))
    assert kept < most <= kept + block
    assert set(offload.offloaded_parameters(model)) == on_disk

    a = word_vectors(in_memory, STORY, range(15), ctx=5, batch_size=8)
    np.testing.assert_allclose(b.values, a.values, atol=TOL)
