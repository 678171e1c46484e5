"""Audio extraction benchmarks: batched vs one window per pass, and memory vs story length.

(a) Speed: the same windows through a base-sized random WavLM (12 layers, 768 wide),
    one window per forward pass (the naive loop) vs batches of ``--batch-size``.
    Target: batched >= 1.3x on a 2-core CPU (more on a GPU).
(b) Memory: peak RSS of fresh processes extracting a 1-minute, a 3-minute and a
    10-minute synthetic story with a narrow random WavLM (windows 1, 2, 3, 6 TRs in one
    run), each 3 times in turns (medians compared: one run varies by about +-8 %).
    Target: peak RSS grows <= 10 % from 1 to 10 minutes (the stored output of the
    narrow model is a few hundred kB, so any growth would be the story held in memory).
(c) Precision: whisper-base's encoder (the real weights when the demo packages are
    installed, else a random config of its size) on 1.5-s windows of the demo story, in
    float32 vs ``--precision bfloat16``: time per window, the ratio, and the per-layer
    correlation of the pooled features. bfloat16 only pays off where the CPU has it
    natively (AVX512-BF16 / AMX); the output says whether this one does.

Run from the repository root::

    python benchmarks/extract_audio.py            # full
    python benchmarks/extract_audio.py --quick    # a reduced run that proves it works
    python benchmarks/extract_audio.py --only precision
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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
    from featstore.datasets.stimulus_group import stimulus_encoding
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
    # chunked as `featstore dataset import` chunks it (a minute per chunk)
    fs.write_group(path, S.STIMULUS, stimulus, encoding=stimulus_encoding(stimulus))
    return str(path)


def layer_correlations(a: np.ndarray, b: np.ndarray) -> list[float]:
    """Pearson r of two ``(layer, window, dim)`` feature arrays, layer by layer."""
    return [float(np.corrcoef(x.ravel(), y.ravel())[0, 1]) for x, y in zip(a, b, strict=True)]


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
    # the same batches with the forward pass in bfloat16 (--precision bfloat16)
    half = load_audio_encoder(resolve_model(model), device="cpu", precision="bfloat16")
    half.encode(windows[:batch_size])
    start = time.perf_counter()
    halves = [half.encode(windows[i : i + batch_size]) for i in range(0, n_windows, batch_size)]
    t_half = time.perf_counter() - start
    full, low = np.concatenate(batched, axis=1), np.concatenate(halves, axis=1)
    corr = layer_correlations(full, low)
    return {
        "model": f"random WavLM, {layers} layers x 768",
        "windows": n_windows,
        "window_s": window_s,
        "batch_size": batch_size,
        "one_per_pass_s": round(t_single, 3),
        "batched_s": round(t_batched, 3),
        "speedup": round(t_single / t_batched, 2),
        "max_abs_diff": float(diff),
        "batched_bfloat16_s": round(t_half, 3),
        "speedup_bfloat16": round(t_single / t_half, 2),
        "bfloat16_layer_correlation_min": round(min(corr), 5),
    }


def bench_memory(tmp: Path, minutes: list[float], threads: int, repeats: int = 3):
    """Peak RSS of fresh processes extracting stories of each length, ``repeats`` times.

    One process's peak varies by about +-8 % from run to run here (allocator and thread
    timing), as much as the target, so each length runs ``repeats`` times in turns and
    the growth is computed on the medians.
    """
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
    stores = {m: synthetic_store(tmp / f"story-{m}min.zarr", m) for m in minutes}
    samples: dict[float, list[dict]] = {m: [] for m in minutes}
    for _ in range(repeats):
        for m in minutes:
            shutil.rmtree(Path(stores[m]) / "features", ignore_errors=True)
            out = subprocess.run(
                [sys.executable, "-c", CHILD, stores[m], model, str(threads)],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            samples[m].append(json.loads(out.stdout.strip().splitlines()[-1]))
    rows = []
    for m in minutes:
        peaks = [run["peak_rss_mb"] for run in samples[m]]
        above = [run["extraction_above_imports_mb"] for run in samples[m]]
        rows.append(
            {
                "minutes": m,
                "peak_rss_mb_median": float(np.median(peaks)),
                "peak_rss_mb_runs": peaks,
                "extraction_above_imports_mb_median": float(np.median(above)),
                "seconds_median": float(np.median([run["seconds"] for run in samples[m]])),
            }
        )
    first, last = rows[0], rows[-1]
    growth = last["peak_rss_mb_median"] / first["peak_rss_mb_median"] - 1
    own = (
        last["extraction_above_imports_mb_median"] / first["extraction_above_imports_mb_median"] - 1
    )
    return {
        "repeats": repeats,
        "runs": rows,
        "rss_growth_pct": round(100 * growth, 1),
        "growth_of_extraction_above_imports_pct": round(100 * own, 1),
    }


def whisper_base_dir(tmp: Path) -> tuple[str, str]:
    """whisper-base converted from the demo packages, or a random model of its size."""
    from featstore.extract.ct2_whisper import demo_whisper_dir

    real = demo_whisper_dir()
    if real is not None:
        return str(real), "whisper-base (real weights, converted from CTranslate2)"
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperModel

    torch.manual_seed(0)
    config = WhisperConfig(
        d_model=512,
        encoder_layers=6,
        encoder_attention_heads=8,
        decoder_layers=1,
        encoder_ffn_dim=2048,
        decoder_ffn_dim=2048,
    )
    WhisperModel(config).eval().save_pretrained(tmp / "whisper-base-random")
    WhisperFeatureExtractor().save_pretrained(tmp / "whisper-base-random")
    return str(tmp / "whisper-base-random"), "random whisper-base-sized config"


def bench_precision(tmp: Path, n_windows: int, batch_size: int):
    from featstore.datasets.audio import read_audio
    from featstore.datasets.demo import demo_story_paths
    from featstore.extract.common import fast_bfloat16_cpu
    from featstore.extract.registry import resolve_model
    from featstore.extract.whisper import load_whisper_encoder

    path, label = whisper_base_dir(tmp)
    audio, _ = read_audio(demo_story_paths()[0])
    step = round(TR * SR)
    windows = np.stack([audio[i * step : (i + 1) * step] for i in range(n_windows)])
    features, seconds = {}, {}
    for precision in ("float32", "bfloat16"):
        encoder = load_whisper_encoder(resolve_model(path), device="cpu", precision=precision)
        encoder.encode(windows[:batch_size])  # warm-up (kernels are built per shape)
        start = time.perf_counter()
        features[precision] = np.concatenate(
            [encoder.encode(windows[i : i + batch_size]) for i in range(0, n_windows, batch_size)],
            axis=1,
        )
        seconds[precision] = time.perf_counter() - start
    full, half = features["float32"], features["bfloat16"]
    corr = layer_correlations(full, half)
    # what the encoding model sees: each dimension z-scored across windows
    z = [
        (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-12)
        for x in (full, half)
    ]
    dim_corr = np.nanmedian((z[0] * z[1]).mean(axis=1), axis=1)
    return {
        "model": label,
        "windows": n_windows,
        "cpu_has_native_bfloat16": fast_bfloat16_cpu(),
        "float32_s_per_window": round(seconds["float32"] / n_windows, 3),
        "bfloat16_s_per_window": round(seconds["bfloat16"] / n_windows, 3),
        "speedup": round(seconds["float32"] / seconds["bfloat16"], 2),
        "layer_correlation": [round(c, 5) for c in corr],
        "layer_median_dim_correlation": [round(float(c), 4) for c in dim_corr],
        "max_rel_diff": float(np.abs(full - half).max() / np.abs(full).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a reduced run that proves it works")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument(
        "--only", choices=["batching", "memory", "precision"], help="run one part only"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    quick = args.quick
    parts = [args.only] if args.only else ["batching", "memory", "precision"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        if "batching" in parts:
            results["batching"] = (
                bench_batching(tmp, n_windows=8, window_s=1.5, batch_size=8, layers=12)
                if quick
                else bench_batching(tmp, n_windows=48, window_s=3.0, batch_size=16, layers=12)
            )
        if "memory" in parts:
            minutes = [0.5, 5.0] if quick else [1.0, 3.0, 10.0]
            results["memory"] = bench_memory(tmp, minutes, args.threads)
        if "precision" in parts:
            results["precision"] = bench_precision(tmp, 8 if quick else 48, batch_size=8)
    print(json.dumps(results, indent=2))
    if "batching" in results:
        b = results["batching"]
        print(
            f"batched vs one window per pass: {b['speedup']}x (target >= 1.3x); batched in "
            f"bfloat16: {b['speedup_bfloat16']}x (layer r >= {b['bfloat16_layer_correlation_min']})"
        )
    if "memory" in results:
        memory = results["memory"]
        print(
            f"peak RSS growth {memory['runs'][0]['minutes']} -> {memory['runs'][-1]['minutes']} "
            f"min (medians of {memory['repeats']} runs): {memory['rss_growth_pct']} % "
            "(target <= 10 %)"
        )
    if "precision" in results:
        p = results["precision"]
        print(
            f"whisper-base bfloat16 vs float32: {p['speedup']}x, per-layer correlation "
            f"min {min(p['layer_correlation'])}, median per dimension across windows min "
            f"{min(p['layer_median_dim_correlation'])} (native bfloat16: "
            f"{p['cpu_has_native_bfloat16']})"
        )


if __name__ == "__main__":
    main()
