"""Extraction time and peak memory of a ~0.5B-parameter language model on this CPU.

A random Qwen2 config the size of Qwen2-0.5B (24 layers, 896 wide, 151,936-token
vocabulary: 494 M parameters, 1.98 GB in float32) is saved once; then each setting
extracts the same words into its own store in a fresh process, which reports its wall
time and peak resident memory (``VmHWM``):

- float32 weights and arithmetic;
- ``--precision bfloat16``: weights loaded in bfloat16 (half the memory);
- float32 with ``device_map="auto"``, ``max_memory={"cpu": ...}`` and a disk offload
  folder: Accelerate keeps most layers on disk and reads each while it runs;
- the same with the heap left untrimmed between blocks (as before
  ``featstore.extract.offload.return_freed_memory``), to show what trimming saves.

``--repeats N`` runs every setting N times, interleaved (this machine's load varies).

Then what ``--dtype float16`` storage does to the numbers: the per-layer correlation of
float16-stored TR features with float32 ones, and the test r of a ridge encoding model
fitted to synthetic BOLD with each.

    python benchmarks/extract_lm.py --words 60 --ctx 12 --threads 2 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QWEN2_05B = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "vocab_size": 151936,
    "max_position_embeddings": 4096,
    "tie_word_embeddings": True,
}


def build_model(path: Path) -> int:
    """Save the random 0.5B Qwen2 with the tests' byte-level tokenizer; return its size."""
    import torch
    from transformers import AutoModel, Qwen2Config, Qwen2Tokenizer

    from tests.extract.text.conftest import _bpe_vocab_and_merges

    vocab, merges = _bpe_vocab_and_merges(["<|endoftext|>"])
    torch.manual_seed(0)
    model = AutoModel.from_config(Qwen2Config(**QWEN2_05B), dtype=torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    model.save_pretrained(path, max_shard_size="200MB")
    Qwen2Tokenizer(vocab=vocab, merges=merges).save_pretrained(path)
    return n_params


def _rss_parts(names=("RssAnon:", "RssFile:")) -> dict[str, float]:
    """Resident memory now, MB: anonymous (the process's own) and file-backed (mapped)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(names):
            name, value = line.split(":")
            fields[name] = int(value.split()[0]) / 1024
    return fields


def run_one(args) -> None:
    """Child process: extract into a fresh store, print time and peak RSS as JSON.

    The peak is the kernel's high-water mark of this process's resident pages
    (``VmHWM``), not ``ru_maxrss``: that one survives ``exec`` and so reports at least
    the RSS of the parent at ``fork`` (here the 2.3 GB that built the model), which
    made every setting read 2,333 MB in an earlier version of this benchmark. It counts
    file pages mapped from the safetensors files too; a sampler
    thread (every 20 ms) records the peak of the anonymous part apart.
    """
    import threading

    peaks = {"RssAnon": 0.0, "RssFile": 0.0}
    stop = threading.Event()

    def sample():
        while not stop.wait(0.02):
            for name, value in _rss_parts().items():
                peaks[name] = max(peaks[name], value)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()

    from featstore.extract.registry import resolve_model
    from featstore.extract.text import extract_text
    from tests.extract.text.conftest import STORY, write_stimulus_store

    words = (STORY * (args.words // len(STORY) + 1))[: args.words]
    store = write_stimulus_store(Path(args.out) / "store.zarr", words, n_tr=args.words // 2)
    options = json.loads(args.options)
    if not options.pop("trim_heap", True):
        from featstore.extract import offload

        offload._malloc_trim = lambda: None
    started = time.perf_counter()
    extract_text(store, resolve_model(args.model), ctx=args.ctx, threads=args.threads, **options)
    seconds = time.perf_counter() - started
    stop.set()
    sampler.join()
    peak_mb = _rss_parts(("VmHWM:",))["VmHWM"]
    result = {"seconds": seconds, "peak_rss_mb": peak_mb, "store": store}
    result.update(peak_anon_mb=peaks["RssAnon"], peak_file_mb=peaks["RssFile"])
    print(json.dumps(result))


def child(model: Path, out: Path, options: dict, args) -> dict:
    out.mkdir(parents=True)
    command = [
        sys.executable,
        __file__,
        "--child",
        "--model",
        str(model),
        "--out",
        str(out),
        "--options",
        json.dumps(options),
        "--words",
        str(args.words),
        "--ctx",
        str(args.ctx),
        "--threads",
        str(args.threads),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def float16_effect(store: str, ctx: int) -> dict:
    """What float16 storage changes: feature correlations and an encoding model's r."""
    import xarray as xr
    from sklearn.linear_model import Ridge

    group = next(
        f"features/{p.name}/ctx{ctx}" for p in (Path(store) / "features").iterdir() if p.is_dir()
    )
    full = xr.open_zarr(store, group=group, consolidated=False)["hidden"].values
    half = full.astype(np.float16).astype(np.float32)
    rows = full[:, np.abs(full).sum(axis=(0, 2)) > 0]
    rows_half = half[:, np.abs(full).sum(axis=(0, 2)) > 0]
    feature_r = [
        np.corrcoef(rows[layer].ravel(), rows_half[layer].ravel())[0, 1]
        for layer in range(len(rows))
    ]
    # synthetic BOLD driven by the float32 features of a middle layer, plus noise
    rng = np.random.default_rng(0)
    layer = len(rows) // 2
    x, x_half = rows[layer], rows_half[layer]
    x_std = (x - x.mean(0)) / (x.std(0) + 1e-12)
    bold = x_std @ rng.normal(size=(x.shape[1], 20)) / np.sqrt(x.shape[1])
    bold += rng.normal(size=bold.shape) * bold.std()
    split = int(0.7 * len(x))

    def test_r(features):
        z = (features - features[:split].mean(0)) / (features[:split].std(0) + 1e-12)
        fit = Ridge(alpha=10.0).fit(z[:split], bold[:split])
        predicted = fit.predict(z[split:])
        return np.array(
            [np.corrcoef(predicted[:, v], bold[split:, v])[0, 1] for v in range(bold.shape[1])]
        )

    r_full, r_half = test_r(x), test_r(x_half)
    return {
        "feature_r_min": float(np.min(feature_r)),
        "max_abs_diff": float(np.abs(rows - rows_half).max()),
        "encoding_r_mean_float32": float(r_full.mean()),
        "encoding_r_mean_float16": float(r_half.mean()),
        "encoding_r_max_abs_change": float(np.abs(r_full - r_half).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--words", type=int, default=60)
    parser.add_argument("--ctx", type=int, default=12)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--offload-cpu", default="300MB", help="max_memory for the CPU")
    parser.add_argument("--repeats", type=int, default=1, help="runs of every setting")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_one(args)
        return
    with tempfile.TemporaryDirectory(prefix="featstore-lm-") as tmp:
        model = Path(tmp) / "model"
        started = time.perf_counter()
        n_params = build_model(model)
        print(
            f"random Qwen2 config, {n_params / 1e6:.0f} M parameters, saved in "
            f"{time.perf_counter() - started:.0f} s; {args.words} words, ctx {args.ctx}, "
            f"{args.threads} threads"
        )
        offload = {
            "device_map": "auto",
            "max_memory": {"cpu": args.offload_cpu},
            "offload_folder": str(Path(tmp) / "offload"),
        }
        settings = {
            "float32": {},
            "bfloat16 weights": {"precision": "bfloat16"},
            f"float32, disk offload (cpu {args.offload_cpu})": offload,
            "  the same, heap not trimmed": {**offload, "trim_heap": False},
        }
        results = {}
        for repeat in range(args.repeats):
            for k, (name, options) in enumerate(settings.items()):
                results[name] = child(model, Path(tmp) / f"run{repeat}-{k}", options, args)
                done = results[name]
                print(
                    f"  {name:<40} {done['seconds']:7.1f} s   peak RSS "
                    f"{done['peak_rss_mb']:6.0f} MB (anonymous {done['peak_anon_mb']:6.0f} MB, "
                    f"file-backed {done['peak_file_mb']:6.0f} MB)",
                    flush=True,
                )
        effect = float16_effect(results["float32"]["store"], args.ctx)
        print("float16 storage of the float32 features: " + json.dumps(effect))


if __name__ == "__main__":
    main()
