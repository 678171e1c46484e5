"""Tiny random GPT-2, BERT and RoBERTa models and a small story store, built offline."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr

from featstore import store as fs

STORY = (
    "once upon a time a little fox walked through the snowy forest looking for "
    "something warm to eat , and the wind was howling between the tall trees . "
    "she remembered her grandmother's stories about a hidden cave where travellers "
    "had left bread and honey long ago ; nobody believed those stories anymore , "
    "but the fox was hungry enough to try"
).split()
N_TR = 23
TR_SECONDS = 1.5
STIM_ONSET = 3.0
MISSING = (9, 33)  # word positions stored as missing ("")
PAUSE_AFTER = 40  # a long pause after this word leaves TRs without words


def story_timing(n_words: int) -> tuple[np.ndarray, np.ndarray]:
    """Onsets and offsets in story seconds: 0.45 s per word and one 4.5 s pause."""
    onset = 0.45 * np.arange(n_words) + np.where(np.arange(n_words) > PAUSE_AFTER, 4.5, 0.0)
    return onset, onset + 0.4


def write_stimulus_store(path, words: list[str], *, n_tr: int = N_TR) -> str:
    """A store with a ``stimulus`` group following the schema of ``dataset import``."""
    fs.create_store(path, dataset="tiny-story", tr_seconds=TR_SECONDS, n_tr=n_tr)
    n_words = len(words)
    missing = np.zeros(n_words, bool)
    missing[[m for m in MISSING if m < n_words]] = True
    shown = ["" if gone else w for w, gone in zip(words, missing, strict=True)]
    onset, offset = story_timing(n_words)
    tr_index = np.ceil((onset + STIM_ONSET) / TR_SECONDS).astype(np.int64)
    ds = xr.Dataset(
        {
            "word": (("word",), np.array(shown, dtype=object)),
            "word_lower": (("word",), np.array([w.lower() for w in shown], dtype=object)),
            "onset": (("word",), onset),
            "offset": (("word",), offset),
            "tr_index": (("word",), tr_index),
            "time_filled": (("word",), np.zeros(n_words, bool)),
            "word_missing": (("word",), missing),
            "audio": (("sample",), np.zeros(1600, np.float32)),
        },
        attrs={
            "audio_sha256": "a" * 64,
            "sample_rate": 16000,
            "align_sha256": "b" * 64,
            "tr_assign": "ceil",
            "stimulus_sha256": f"{n_words:064d}",
            "stim_onset": STIM_ONSET,
            "duration_s": float(offset[-1]),
            "n_time_filled": 0,
            "n_word_missing": int(missing.sum()),
            "sources": {"align": "tiny.csv", "audio": "tiny.wav"},
        },
    )
    fs.write_group(path, "stimulus", ds)
    return str(path)


def _bpe_vocab_and_merges(special: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE trained on the story, small enough that many words split."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    trainer = trainers.BpeTrainer(
        vocab_size=256 + len(special) + 60,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=special,
        show_progress=False,
    )
    tokenizer.train_from_iterator([" ".join(STORY)] * 3, trainer=trainer)
    state = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return state["vocab"], merges


def _save(model_config, tokenizer, path):
    import torch
    from transformers import AutoModel

    torch.manual_seed(0)
    model = AutoModel.from_config(model_config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_gpt2(tmp_path_factory):
    """A random 2-layer GPT-2 (width 32, 64 positions) with a byte-level BPE tokenizer."""
    from transformers import GPT2Config, GPT2Tokenizer

    vocab, merges = _bpe_vocab_and_merges(["<|endoftext|>"])
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=merges)
    config = GPT2Config(
        vocab_size=len(vocab),
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=vocab["<|endoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
    )
    return _save(config, tokenizer, tmp_path_factory.mktemp("models") / "tiny-gpt2")


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A random 3-layer BERT (width 24) with a WordPiece tokenizer."""
    from transformers import BertConfig, BertTokenizer

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)] + list(",.;'")
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters]
    tokens += ["##" + c for c in letters]
    tokens += ["the", "fox", "a", "and", "was", "stories", "for", "walk", "##ed", "##ing", "##s"]
    tokenizer = BertTokenizer(vocab={t: i for i, t in enumerate(dict.fromkeys(tokens))})
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=24,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=40,
        max_position_embeddings=96,
    )
    return _save(config, tokenizer, tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_roberta(tmp_path_factory):
    """A random 2-layer RoBERTa (width 40) with a byte-level BPE tokenizer."""
    from transformers import RobertaConfig, RobertaTokenizer

    vocab, merges = _bpe_vocab_and_merges(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = RobertaTokenizer(vocab=vocab, merges=merges)
    config = RobertaConfig(
        vocab_size=len(vocab),
        hidden_size=40,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=80,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        type_vocab_size=1,
    )
    return _save(config, tokenizer, tmp_path_factory.mktemp("models") / "tiny-roberta")


@pytest.fixture(params=["tiny_gpt2", "tiny_bert", "tiny_roberta"])
def tiny_model(request):
    """Each tiny model directory in turn."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def story_store(tmp_path):
    """A store of 62 story words over 23 TRs: 2 missing words, TRs without words, and
    words past the last TR."""
    return write_stimulus_store(tmp_path / "story.zarr", STORY)


@pytest.fixture(scope="session")
def load_model():
    """Load a model directory with featstore's loader, once per session."""
    from featstore.extract.registry import resolve_model
    from featstore.extract.text_model import load_text_model

    cache = {}

    def load(path):
        if path not in cache:
            cache[path] = load_text_model(resolve_model(path), revision=None, device="cpu")
        return cache[path]

    return load


LM_FAMILIES = ["tiny-qwen2", "tiny-mistral", "tiny-gemma", "tiny-phi", "tiny-t5"]


@pytest.fixture(scope="session")
def tiny_lms(tmp_path_factory):
    """Build a tiny random model of a family (``tests/extract/text/tiny_lms.py``), once."""
    from .tiny_lms import BUILDERS

    built = {}

    def build(name):
        if name not in built:
            built[name] = BUILDERS[name](tmp_path_factory.mktemp("lms") / name)
        return built[name]

    return build


@pytest.fixture(params=LM_FAMILIES)
def tiny_lm(request, tiny_lms):
    """Each tiny language model beyond GPT-2/BERT/RoBERTa in turn (a directory path)."""
    return tiny_lms(request.param)
