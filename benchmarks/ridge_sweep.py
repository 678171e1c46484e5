"""Benchmark: the alpha sweep's throughput against one float32 matmul of its shape.

The sweep of one CV fold (``ridge._fold_r2``: the validation R² of every alpha and target)
costs ``2·n_alphas·n_val·r·t + 2·r·n_fit·t`` flops (r = rank of the fold's design). Its
GFLOP/s are measured side by side with a plain float32 product ``(n_alphas·n_val × r) @
(r × t)`` on the same thread(s), interleaved, best of ``--repeats``, at:

* ``small``: issue 15's small problem (8 × 360 targets, 600 TRs → 378 fit / 95 validation
  rows, 64 dims × 4 delays = 256 columns, 15 alphas), and its 512-column fusion;
* ``21styear``: 2249 TRs → 1434 fit / 358 validation rows, PCA 250 × 4 delays, 21 alphas
  (2048 of the 9000 targets: the throughput does not depend on their number).

``--backend torch:cpu`` or ``torch:cuda`` measures the torch path (the reference product in
torch then).

Example: ``python benchmarks/ridge_sweep.py --threads 1``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featstore.evaluate.encoding.backend import get_backend  # noqa: E402
from featstore.evaluate.encoding.ridge import TARGET_BATCH, _fold_r2, factorize  # noqa: E402

SIZES = {
    # name: (n_fit, n_val, n_columns, n_targets, n_alphas)
    "small": (378, 95, 256, 2880, 15),
    "small fusion": (378, 95, 512, 2880, 15),
    "21styear": (1434, 358, 1000, 2048, 21),
}


def measure(name: str, backend, repeats: int) -> dict[str, float]:
    n_fit, n_val, n_columns, n_targets, n_alphas = SIZES[name]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_fit + n_val, n_columns))
    Y = backend.asarray(rng.standard_normal((n_fit + n_val, n_targets)), "float32")
    alphas = np.logspace(-2, 8, n_alphas)
    factor = factorize(X[:n_fit], backend=backend)
    X_val = backend.asarray(X[n_fit:], "float64")
    rank = factor.basis.shape[1]
    left = backend.asarray(rng.standard_normal((n_alphas * n_val, rank)), "float32")
    right = backend.asarray(rng.standard_normal((rank, n_targets)), "float32")

    def sweep():
        _fold_r2(factor, X_val, Y[:n_fit], Y[n_fit:], alphas, np.dtype("float32"), TARGET_BATCH)
        backend.synchronize()

    def matmul():
        left @ right
        backend.synchronize()

    best = {"sweep": np.inf, "matmul": np.inf}
    for _ in range(repeats):
        for key, run in (("sweep", sweep), ("matmul", matmul)):
            start = time.perf_counter()
            run()
            best[key] = min(best[key], time.perf_counter() - start)
    matmul_flops = 2 * n_alphas * n_val * rank * n_targets
    sweep_flops = matmul_flops + 2 * rank * n_fit * n_targets
    return {
        "rank": rank,
        "sweep_gflops": sweep_flops / best["sweep"] / 1e9,
        "matmul_gflops": matmul_flops / best["matmul"] / 1e9,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backend", default="numpy", help="numpy, torch:cpu or torch:cuda")
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_info, threadpool_limits

    name, _, device = args.backend.partition(":")
    backend = get_backend(name, device or None)
    with threadpool_limits(args.threads), backend.threads(args.threads):
        libraries = ", ".join(
            f"{i['internal_api']} {i.get('version') or ''} x{i['num_threads']}"
            for i in threadpool_info()
        )
        print(f"backend {args.backend}; BLAS/threads: {libraries}")
        for size in SIZES:
            got = measure(size, backend, args.repeats)
            print(
                f"{size:13s} rank {got['rank']:4d}: sweep {got['sweep_gflops']:7.1f} GFLOP/s, "
                f"matmul {got['matmul_gflops']:7.1f} GFLOP/s, "
                f"sweep/matmul {got['sweep_gflops'] / got['matmul_gflops']:5.2f}"
            )


if __name__ == "__main__":
    main()
