"""Issue 15's GPU measurements in one go (about 8 minutes on one H100): run it on a GPU machine.

(a) the 21styear-sized grid — 25 subjects x 2249 TRs x 360 ROIs, 768-wide features, 2 models
    x 13 layers (26 configs) + one fusion pair's 169 layer pairs — numpy on the CPU vs torch
    on CUDA. The CPU side runs ``--cpu-configs`` configs of each kind and is scaled to the
    grid (said in the output); the GPU side runs them all. r is compared on what both ran.
(b) one vertex-scale config (20,484 targets, one subject, one layer) the same way.
(c) batched vs one-window-per-pass extraction with ``--device cuda``: a GPT-2-small-sized
    random model on the demo story's words (ctx 200) and a WavLM-base-sized random model
    on 1.5-s windows, in float32 and in the device's mixed precision.

Everything is printed and written to ``--json`` (default ``gpu_measurements.json``) with
the card's name and the date, ready for docs/performance.md.

Example: ``python benchmarks/gpu_measurements.py --device cuda``
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featstore.evaluate import EncodingSettings, encode  # noqa: E402


def grid_problem(rng, n_subjects: int, n_tr: int, n_targets: int, dim: int, n_layers: int):
    """Features of two models x ``n_layers`` and BOLD with a planted signal, float32."""
    latent = rng.standard_normal((n_tr, 16))
    layers = {
        (model, layer): (
            latent @ rng.standard_normal((16, dim)) + 4.0 * rng.standard_normal((n_tr, dim))
        ).astype(np.float32)
        for model in range(2)
        for layer in range(n_layers)
    }
    signal = np.roll(latent @ (rng.standard_normal((16, n_targets)) * 0.2), 2, axis=0)
    bold = (signal + rng.standard_normal((n_subjects, n_tr, n_targets))).astype(np.float32)
    return layers, bold


def timed_configs(configs, bold, backend: str, device: str | None, threads: int | None):
    """Wall time and r of each config (fusion configs with the variance partition, as a grid)."""
    import torch

    seconds, rs = [], []
    for features in configs:
        start = time.perf_counter()
        result = encode(
            features, bold, EncodingSettings(), partition=len(features) == 2,
            backend=backend, device=device, n_threads=threads,
        )  # fmt: skip
        if device and device.startswith("cuda"):
            torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - start)
        rs.append(result.r)
    return seconds, rs


def compare(name, singles, fusions, bold, args) -> dict:
    """numpy-CPU on a sample of configs (scaled) vs torch-CUDA on all of them."""
    n_single, n_fusion = len(singles), len(fusions)
    k = args.cpu_configs
    cpu_single, r_cpu_single = timed_configs(singles[:k], bold, "numpy", None, args.cpu_threads)
    cpu_fusion, r_cpu_fusion = [np.nan], []
    if fusions:
        cpu_fusion, r_cpu_fusion = timed_configs(fusions[:k], bold, "numpy", None, args.cpu_threads)
    timed_configs(singles[:1], bold, "torch", args.device, None)  # CUDA context, kernels
    gpu_single, r_gpu_single = timed_configs(singles, bold, "torch", args.device, None)
    gpu_fusion, r_gpu_fusion = timed_configs(fusions, bold, "torch", args.device, None)
    cpu_total = np.mean(cpu_single) * n_single + (np.mean(cpu_fusion) * n_fusion if fusions else 0)
    gpu_total = sum(gpu_single) + sum(gpu_fusion)
    pairs = list(zip(r_cpu_single + r_cpu_fusion, r_gpu_single[:k] + r_gpu_fusion[:k], strict=True))
    diff = max(float(np.nanmax(np.abs(a - b))) for a, b in pairs)
    row = {
        "what": name,
        "configs": f"{n_single} single + {n_fusion} fusion",
        "cpu_numpy_s_per_single": float(np.mean(cpu_single)),
        "cpu_numpy_s_per_fusion": float(np.mean(cpu_fusion)) if fusions else None,
        "cpu_numpy_grid_s_scaled": float(cpu_total),
        "gpu_torch_grid_s": float(gpu_total),
        "speedup": float(cpu_total / gpu_total),
        "max_abs_dr": diff,
    }
    print(json.dumps(row, indent=1), flush=True)
    return row


def extraction(args, tmp: Path) -> list[dict]:
    """Batched vs one window per pass, float32 and mixed precision, on the GPU."""
    import dataclasses

    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from extract_audio import save_wavlm
    from extract_text import demo_story, random_gpt2

    from featstore.extract.audio import load_audio_encoder
    from featstore.extract.registry import resolve_model
    from featstore.extract.text_model import load_text_model, word_vectors

    on_gpu = args.device.startswith("cuda")
    half = "bfloat16" if not on_gpu or torch.cuda.is_bf16_supported() else "float16"

    def synchronize():
        if on_gpu:
            torch.cuda.synchronize(args.device)

    rows = []
    text_args = argparse.Namespace(width=768, layers=12, heads=12, seed=0)
    gpt2 = load_text_model(
        resolve_model(random_gpt2(text_args, tmp)), revision=None, device=args.device
    )
    words = demo_story()[: args.words]
    targets = list(range(len(words)))
    wavlm_dir = save_wavlm(tmp / "wavlm-base", num_hidden_layers=12)
    windows = np.random.default_rng(1).standard_normal((args.audio_windows, 24_000))
    windows = (0.1 * windows).astype(np.float32)
    for precision in ("float32", half):
        model = dataclasses.replace(gpt2, precision=precision)

        def text_pass(batch_size, model=model):
            word_vectors(model, words, targets, ctx=200, batch_size=batch_size)

        encoder = load_audio_encoder(
            resolve_model(wavlm_dir), device=args.device, precision=precision
        )

        def audio_pass(batch_size, encoder=encoder):
            for start in range(0, len(windows), batch_size):
                encoder.encode(windows[start : start + batch_size])

        for name, run in (
            ("text GPT-2-small size", text_pass),
            ("audio WavLM-base size", audio_pass),
        ):
            run(args.batch_size)  # warm-up
            times = {}
            for batch_size in (1, args.batch_size):
                synchronize()
                start = time.perf_counter()
                run(batch_size)
                synchronize()
                times[batch_size] = time.perf_counter() - start
            row = {
                "what": name, "precision": precision, "batch_size": args.batch_size,
                "one_per_pass_s": times[1], "batched_s": times[args.batch_size],
                "speedup": times[1] / times[args.batch_size],
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cpu-configs", type=int, default=2, help="CPU configs of each kind")
    parser.add_argument("--cpu-threads", type=int, default=None, help="BLAS threads (all)")
    parser.add_argument("--layers", type=int, default=13)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--audio-windows", type=int, default=256)
    parser.add_argument("--words", type=int, default=830, help="words of the demo story")
    parser.add_argument("--only", default="a,b,c")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes (a smoke run, e.g. --device cpu)"
    )
    parser.add_argument("--json", default="gpu_measurements.json")
    args = parser.parse_args(argv)
    import torch
    from threadpoolctl import threadpool_info

    on_gpu = args.device.startswith("cuda")
    card = torch.cuda.get_device_name(args.device) if on_gpu else "none (CPU smoke run)"
    report = {
        "date": datetime.date.today().isoformat(),
        "card": card,
        "torch": torch.__version__,
        "cpu_blas": [(i["internal_api"], i["num_threads"]) for i in threadpool_info()],
        "rows": [],
    }
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}), flush=True)
    rng = np.random.default_rng(0)
    only = set(args.only.split(","))
    subjects, n_tr, rois, dim, vertices = 25, 2249, 360, 768, 20_484
    if args.quick:
        subjects, n_tr, rois, dim, vertices = 2, 300, 20, 64, 500
        args.layers, args.audio_windows, args.words, args.batch_size = 2, 4, 30, 2
    if "a" in only:
        layers, bold = grid_problem(rng, subjects, n_tr, rois, dim, args.layers)
        singles = [[layers[m, k]] for m in range(2) for k in range(args.layers)]
        fusions = [
            [layers[0, a], layers[1, b]] for a in range(args.layers) for b in range(args.layers)
        ]
        report["rows"].append(compare("(a) 21styear grid", singles, fusions, bold, args))
        del layers, bold
    if "b" in only:
        layers, bold = grid_problem(rng, 1, n_tr, vertices, dim, 1)
        report["rows"].append(compare("(b) vertex-scale config", [[layers[0, 0]]], [], bold, args))
    if "c" in only:
        with tempfile.TemporaryDirectory() as tmp:
            report["rows"] += extraction(args, Path(tmp))
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"written to {args.json}")


if __name__ == "__main__":
    main()
