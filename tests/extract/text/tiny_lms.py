"""Tiny random language models of many families, with tokenizers built offline.

Each tokenizer is trained on the story with a small vocabulary, so many words split
into several tokens: byte-level BPE (Qwen2, Phi), sentencepiece-style BPE with ``▁``
(Mistral, Gemma: Gemma does not split at spaces), a Unigram model (T5), and a slow-only
sentencepiece tokenizer (GPT-SW3, a GPT-2 with ``spiece.model`` and no ``tokenizer.json``).
"""

from __future__ import annotations

import io
import json

from .conftest import STORY, _bpe_vocab_and_merges

TEXT = " ".join(STORY)
CHAT_TOKENS = ["<|im_start|>", "<|im_end|>"]


def _metaspace_bpe(special: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=len(special) + 120, special_tokens=special, show_progress=False
    )
    tokenizer.train_from_iterator([TEXT] * 3, trainer=trainer)
    state = json.loads(tokenizer.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    return state["vocab"], merges


def _unigram(special: list[str]) -> list[tuple[str, float]]:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    trainer = trainers.UnigramTrainer(
        vocab_size=110, special_tokens=special, unk_token="<unk>", show_progress=False
    )
    tokenizer.train_from_iterator([TEXT] * 3, trainer=trainer)
    return [tuple(x) for x in json.loads(tokenizer.to_str())["model"]["vocab"]]


def _sentencepiece_model(path) -> str:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter([TEXT] * 3),
        model_writer=model,
        vocab_size=110,
        model_type="bpe",
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=3,
        minloglevel=2,
    )
    path.mkdir(parents=True, exist_ok=True)
    (path / "sp.model").write_bytes(model.getvalue())
    return str(path / "sp.model")


def _save(config, tokenizer, path) -> str:
    import torch
    from transformers import AutoModel

    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


SIZES = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4}


def qwen2(path) -> str:
    """Qwen2 with a byte-level BPE without prefix space, and chat tokens."""
    from transformers import Qwen2Config, Qwen2Tokenizer

    vocab, merges = _bpe_vocab_and_merges(["<|endoftext|>", *CHAT_TOKENS])
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=merges, additional_special_tokens=CHAT_TOKENS)
    config = Qwen2Config(
        vocab_size=len(vocab),
        intermediate_size=48,
        num_key_value_heads=2,
        max_position_embeddings=128,
        eos_token_id=vocab["<|endoftext|>"],
        **SIZES,
    )
    return _save(config, tokenizer, path)


def mistral(path) -> str:
    """Mistral (Llama's tokenizer: sentencepiece-style BPE, BOS added) with a sliding window."""
    from transformers import LlamaTokenizer, MistralConfig

    vocab, merges = _metaspace_bpe(["<unk>", "<s>", "</s>"])
    tokenizer = LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
    config = MistralConfig(
        vocab_size=len(vocab),
        intermediate_size=48,
        num_key_value_heads=2,
        max_position_embeddings=128,
        sliding_window=16,
        bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"],
        **SIZES,
    )
    return _save(config, tokenizer, path)


def gemma(path) -> str:
    """Gemma: BPE over the whole text with ``▁`` for spaces (no split at spaces), BOS."""
    from transformers import GemmaConfig, GemmaTokenizer

    vocab, merges = _metaspace_bpe(["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"])
    tokenizer = GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
    config = GemmaConfig(
        vocab_size=len(vocab),
        intermediate_size=48,
        num_key_value_heads=1,
        head_dim=8,
        max_position_embeddings=128,
        pad_token_id=vocab["<pad>"],
        bos_token_id=vocab["<bos>"],
        eos_token_id=vocab["<eos>"],
        **SIZES,
    )
    return _save(config, tokenizer, path)


def phi(path) -> str:
    """Phi (CodeGen's byte-level BPE, as GPT-2) with a partial rotary embedding."""
    from transformers import GPT2Tokenizer, PhiConfig

    vocab, merges = _bpe_vocab_and_merges(["<|endoftext|>"])
    tokenizer = GPT2Tokenizer(vocab=vocab, merges=merges)
    config = PhiConfig(
        vocab_size=len(vocab),
        intermediate_size=48,
        max_position_embeddings=128,
        partial_rotary_factor=0.5,
        bos_token_id=vocab["<|endoftext|>"],
        eos_token_id=vocab["<|endoftext|>"],
        **SIZES,
    )
    return _save(config, tokenizer, path)


def t5(path) -> str:
    """A T5 encoder-decoder (Unigram tokenizer, EOS appended); its encoder is extracted."""
    from transformers import T5Config, T5Tokenizer

    vocab = _unigram(["<pad>", "</s>", "<unk>"])
    tokenizer = T5Tokenizer(vocab=vocab, extra_ids=0)
    config = T5Config(
        vocab_size=len(vocab),
        d_model=32,
        d_kv=8,
        d_ff=48,
        num_layers=2,
        num_decoder_layers=1,
        num_heads=4,
        relative_attention_num_buckets=8,
        decoder_start_token_id=0,
    )
    return _save(config, tokenizer, path)


def gpt_sw3(path) -> str:
    """A GPT-2 with GPT-SW3's slow-only sentencepiece tokenizer (no tokenizer.json)."""
    from transformers import GPT2Config, GPTSw3Tokenizer

    tokenizer = GPTSw3Tokenizer(vocab_file=_sentencepiece_model(path / "sp"), name_or_path="")
    config = GPT2Config(
        vocab_size=tokenizer.vocab_size,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return _save(config, tokenizer, path)


BUILDERS = {
    "tiny-qwen2": qwen2,
    "tiny-mistral": mistral,
    "tiny-gemma": gemma,
    "tiny-phi": phi,
    "tiny-t5": t5,
    "tiny-gpt-sw3": gpt_sw3,
}
