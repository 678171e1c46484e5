"""RSA at the reference study's scale: featstore's condensed, blockwise code vs naive baselines.

Measures, for ``--n-items`` TRs (2249 in the reference study):

- building a correlation-distance RDM: ``featstore.evaluate.metrics.rsa.rdm`` (float32, row
  blocks) vs ``scipy.spatial.distance.pdist`` (float64) vs the square ``1 - np.corrcoef``;
- Kendall's tau-a between two RDMs: featstore's vectorised merge count vs scipy's tau-b;
- a layer-wise permutation test (13 layers, ``--subjects`` subjects), plain and partial, with
  and without leaving out the near-diagonal pairs (``min_lag``): seconds per permutation.

Time and peak traced memory (tracemalloc, numpy allocations included) are printed as
ratios. Run: ``python benchmarks/bench_rsa.py --n-items 2249`` (``--n-items 600`` for a
quick check).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import kendalltau

from featstore.evaluate.metrics import rsa, rsa_layers


def measure(func, *args, **kwargs):
    """(seconds, peak MiB, result) of one call."""
    tracemalloc.start()
    start = time.perf_counter()
    result = func(*args, **kwargs)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return seconds, peak, result


def square_rdm(x):
    return 1.0 - np.corrcoef(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-items", type=int, default=2249)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--subjects", type=int, default=25)
    parser.add_argument("--n-perm", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n_items, args.dim)).astype(np.float32)
    print(f"{args.n_items} items -> {rsa.n_pairs(args.n_items):,} pairs, dim {args.dim}")

    ours = measure(rsa.rdm, x)
    base = measure(pdist, x.astype(np.float64), "correlation")
    square = measure(square_rdm, x.astype(np.float64))
    np.testing.assert_allclose(ours[2], base[2], atol=1e-5)
    for name, (seconds, peak, _) in (
        ("featstore rdm", ours),
        ("scipy pdist", base),
        ("square corrcoef", square),
    ):
        print(f"{name:>16}: {seconds:6.2f} s  peak {peak:7.1f} MiB")
    print(f"pdist / featstore: time x{base[0] / ours[0]:.2f}, memory x{base[1] / ours[1]:.2f}")

    other = ours[2] + rng.random(ours[2].size).astype(np.float32)
    tau = measure(rsa.kendall_tau_a, ours[2], other)
    ref = measure(kendalltau, ours[2], other)
    print(
        f"tau-a featstore {tau[0]:.2f} s vs scipy tau-b {ref[0]:.2f} s "
        f"(ratio x{ref[0] / tau[0]:.2f}); values {tau[2]:.6f} / {ref[2].statistic:.6f}"
    )

    layers = np.stack([rsa.standardize_rdm(ours[2])] * 13)
    subjects = np.stack([rsa.standardize_rdm(other)] * args.subjects)
    control = rsa.standardize_rdm(rng.random(ours[2].size))[None]
    for label, controls, min_lag in (
        ("plain", None, 0),
        ("plain, min_lag 10", None, 10),
        ("partial", control, 0),
        ("partial, min_lag 10", control, 10),
    ):
        options = {"control_rdms": controls, "min_lag": min_lag}
        setup = measure(rsa_layers.rsa_layers, layers, subjects, **options)[0]
        seconds, peak, _ = measure(
            rsa_layers.rsa_layers, layers, subjects, n_perm=args.n_perm, block=10, **options
        )
        print(
            f"RSA ({label}, 13 layers x {args.subjects} subjects): {setup:.2f} s, then "
            f"{(seconds - setup) / max(args.n_perm, 1):.3f} s per permutation, peak {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main()
