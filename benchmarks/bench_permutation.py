"""Permutation test of test-set r at the reference study's scale: featstore vs naive loops.

One config: ``--subjects`` × ``--n-test`` test TRs × ``--rois`` ROIs, ``--n-perm`` block
permutations of ``--block`` TRs (defaults: 25 × 450 × 360, 1000 draws of 10 TRs — the test
part of 2249 TRs). Contestants, on identical z-scored data and draws:

- featstore: ``permutation_test`` (block cross-products computed once, each draw sums
  n_blocks of them, all ROIs at once);
- per-draw numpy: for each draw, permute the time axis and correlate every subject and ROI
  in one vectorised product (timed on ``--naive-draws`` draws, scaled linearly);
- corrcoef loop: ``np.corrcoef`` per draw, subject and ROI (timed on 200 series of one
  draw, scaled linearly).

CPU seconds (``time.process_time``) and ratios are printed. Run
``OMP_NUM_THREADS=1 python benchmarks/bench_permutation.py`` (``--n-test 120 --rois 60``
for a quick check).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from featstore.evaluate.metrics.stats import block_orders, permutation_test


def _zscore(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=1, keepdims=True)
    return x / np.sqrt((x**2).mean(axis=1, keepdims=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=25)
    parser.add_argument("--n-test", type=int, default=450)
    parser.add_argument("--rois", type=int, default=360)
    parser.add_argument("--n-perm", type=int, default=1000)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--naive-draws", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.subjects, args.n_test, args.rois)
    observed = rng.standard_normal(shape)
    predictions = 0.1 * observed + rng.standard_normal(shape)

    start = time.process_time()
    result = permutation_test(predictions, observed, n_perm=args.n_perm, block=args.block)
    ours = time.process_time() - start

    pz, yz = _zscore(predictions), _zscore(observed)
    orders = block_orders(args.n_test // args.block, args.naive_draws, 0)
    tail = np.arange(orders.shape[1] * args.block, args.n_test)
    start = time.process_time()
    for order in orders:
        index = np.concatenate(
            [*(np.arange(b * args.block, (b + 1) * args.block) for b in order), tail]
        )
        (pz[:, index] * yz).mean(axis=1)
    per_draw = (time.process_time() - start) / args.naive_draws * args.n_perm

    n_series = min(200, args.subjects * args.rois)
    start = time.process_time()
    for k in range(n_series):
        np.corrcoef(
            predictions[k % args.subjects, :, k % args.rois],
            observed[k % args.subjects, :, k % args.rois],
        )
    loop = (time.process_time() - start) / n_series * args.subjects * args.rois * args.n_perm

    print(
        f"{args.subjects} subjects x {args.n_test} test TRs x {args.rois} ROIs, "
        f"{result.n_perm} draws of {args.block}-TR blocks (CPU seconds)"
    )
    print(f"  featstore permutation_test: {ours:8.2f} s")
    print(f"  per-draw numpy (scaled):    {per_draw:8.2f} s  ratio x{per_draw / ours:.1f}")
    print(f"  corrcoef loop (scaled):     {loop:8.0f} s  ratio x{loop / ours:.0f}")


if __name__ == "__main__":
    main()
