"""Audio extraction benchmarks: batched vs one window per pass, and memory vs story length.

(a) Speed: the same windows through a base-sized random WavLM (12 layers, 768 wide),
    one window per forward pass (the naive loop) vs batches of ``--batch-size``.
    Target: batched >= 1.3x on a 2-core CPU (more on a GPU).
(b) Memory: peak RSS of a fresh process extracting a 1-minute vs a 10-minute
    synthetic story with a narrow random WavLM (windows 1, 2, 3, 6 TRs in one run).
    Target: peak RSS grows <= 10 % from 1 to 10 minutes (the stored output of the
    narrow model is a few hundred kB, so any growth would be the story held in memory).

Run from the repository root::

    python benchmarks/extract_audio.py            # full
    python benchmarks/extract_audio.py --quick    # a reduced run that proves it works
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SR = 16_000
TR = 1.5

# Peak RSS of the child: VmHWM belongs to the process image after exec, whereas
# ru_maxrss survives execve and would report the parent's peak at fork time.
CHILD = """
import json, resource, sys, time
import psutil, torch, transformers
from featstore.extract.run import extract


def peak_mb():
    try:
        with open("/proc/self/status") as status:
            line = next(l for l in status if l.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


baseline = psutil.Process().memory_info().rss / 2**20
start = time.perf_counter()
extract(sys.argv[1], sys.argv[2], tr_wins=[1, 2, 3, 6], batch_size=8, threads=int(sys.argv[3]))
peak = peak_mb()
print(json.dumps({
    "peak_rss_mb": round(peak, 1),
    "rss_after_imports_mb": round(baseline, 1),
    "extraction_above_imports_mb": round(peak - baseline, 1),
    "seconds": round(time.perf_counter() - start, 1),
}))
"""


def save_wavlm(path: Path, **config) -> str:
    """A random WavLM with a wavlm-base-plus style feature extractor, saved offline."""
    import torch
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMModel

    torch.manual_seed(0)
    WavLMModel(WavLMConfig(**config)).eval().save_pretrained(path)
    Wav2Vec2FeatureExtractor(return_attention_mask=True, do_normalize=False).save_pretrained(path)
    return str(path)


def synthetic_store(path: Path, minutes: float) -> str:
    """A store whose stimulus is ``minutes`` of noise, with TRs covering it."""
    import xarray as xr

    from featstore import store as fs
    from featstore.store import _schema as S

    n = round(minutes * 60 * SR)
    n_tr = int(np.ceil(n / SR / TR))
    audio = (0.1 * np.random.default_rng(0).standard_normal(n)).astype(np.float32)
    fs.create_store(path, dataset=f"synthetic-{minutes}min", tr_seconds=TR, n_tr=n_tr)
    stimulus = xr.Dataset(
        {
            "word": (("word",), np.array(["a"], dtype=object)),
            "word_lower": (("word",), np.array(["a"], dtype=object)),
            "onset": (("word",), [0.0]),
            "offset": (("word",), [0.1]),
            "tr_index": (("word",), np.array([0], dtype=np.int64)),
            S.STIMULUS_AUDIO_VAR: ((S.SAMPLE_DIM,), audio),
        },
        attrs={
            "audio_sha256": "0" * 64,
            "sample_rate": SR,
            "align_sha256": "0" * 64,
            "tr_assign": "ceil",
            "stimulus_sha256": f"synthetic-{minutes}",
            "stim_onset": 0.0,
        },
    )
    fs.write_group(path, S.STIMULUS, stimulus)
    return str(path)


def bench_batching(tmp: Path, n_windows: int, window_s: float, batch_size: int, layers: int):
    from featstore.extract.audio import load_audio_encoder
    from featstore.extract.registry import resolve_model

    model = save_wavlm(tmp / "wavlm-base", num_hidden_layers=layers)
    encoder = load_audio_encoder(resolve_model(model), device="cpu")
    rng = np.random.default_rng(1)
    windows = (0.1 * rng.standard_normal((n_windows, round(window_s * SR)))).astype(np.float32)
    # warm-up of both shapes (allocator, oneDNN kernels are built per input shape)
    encoder.encode(windows[:batch_size])
    encoder.encode(windows[:1])

    start = time.perf_counter()
    single = [encoder.encode(windows[i : i + 1]) for i in range(n_windows)]
    t_single = time.perf_counter() - start
    start = time.perf_counter()
    batched = [encoder.encode(windows[i : i + batch_size]) for i in range(0, n_windows, batch_size)]
    t_batched = time.perf_counter() - start
    diff = np.abs(np.concatenate(single, axis=1) - np.concatenate(batched, axis=1)).max()
    return {
        "model": f"random WavLM, {layers} layers x 768",
        "windows": n_windows,
        "window_s": window_s,
        "batch_size": batch_size,
        "one_per_pass_s": round(t_single, 3),
        "batched_s": round(t_batched, 3),
        "speedup": round(t_single / t_batched, 2),
        "max_abs_diff": float(diff),
    }


def bench_memory(tmp: Path, minutes: list[float], threads: int):
    model = save_wavlm(
        tmp / "wavlm-narrow",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)}
    rows = []
    for m in minutes:
        store = synthetic_store(tmp / f"story-{m}min.zarr", m)
        out = subprocess.run(
            [sys.executable, "-c", CHILD, store, model, str(threads)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        rows.append({"minutes": m, **json.loads(out.stdout.strip().splitlines()[-1])})
    growth = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"] - 1
    own = rows[-1]["extraction_above_imports_mb"] / rows[0]["extraction_above_imports_mb"] - 1
    return {
        "runs": rows,
        "rss_growth_pct": round(100 * growth, 1),
        "growth_of_extraction_above_imports_pct": round(100 * own, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run that proves it works")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if args.quick:
            speed = bench_batching(tmp, n_windows=8, window_s=1.5, batch_size=8, layers=12)
            memory = bench_memory(tmp, [0.5, 5.0], args.threads)
        else:
            speed = bench_batching(tmp, n_windows=48, window_s=3.0, batch_size=16, layers=12)
            memory = bench_memory(tmp, [1.0, 10.0], args.threads)
    print(json.dumps({"batching": speed, "memory": memory}, indent=2))
    print(
        f"batched vs one window per pass: {speed['speedup']}x (target >= 1.3x); "
        f"peak RSS growth {memory['runs'][0]['minutes']} -> {memory['runs'][-1]['minutes']} min: "
        f"{memory['rss_growth_pct']} % (target <= 10 %)"
    )


if __name__ == "__main__":
    main()
