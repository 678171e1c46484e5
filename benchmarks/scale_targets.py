"""Evaluation across stories at vertex scale: time and peak memory against the target count.

Builds, per size, a synthetic store of stories like a Narratives subset: 8 subjects ×
3 stories × 600 TRs, one 768-wide feature layer per story (smooth, low rank), and BOLD
for 360 (parcels), 20,484 (fsaverage5) and 81,924 (fsaverage6) targets, one in twenty
driven by the features 2 TRs later. The BOLD (4.7 GB at 81,924 targets) is written
chunk by chunk (one subject × all TRs × 8192 targets), never held in memory.

Each size is evaluated once (``evaluate grid --test-stories s3``: train on s1 and s2,
alpha by leave-one-story-out CV) in a subprocess of its own, which reports its wall
time and peak RSS (``resource.getrusage``); the table shows time per size, the time
ratio against the targets ratio (expected: at most linear), peak RSS and its growth
from 20,484 to 81,924 targets (target: at most 25 %, at most 3 GB). Then a 2-worker
LocalCluster evaluates the ``--cluster-targets`` store and its results are compared with
a threaded run at the same BLAS threads per task (expected: identical).

Run ``PYTHONPATH=. python benchmarks/scale_targets.py`` from the repository root.
``--targets 360,2000`` and ``--trs 200`` make a quick check; ``--pca``, ``--alphas``
set the model (defaults: PCA 100, 7 alphas, delays 1-4). Stores go to a temporary
directory (``--path``), deleted at the end unless ``--keep``; free disk is checked first.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SUBJECTS, STORIES, TRS, DIM, CHUNK, LAG = 8, 3, 600, 768, 8192, 2
N_LATENT = 10


def _latent(story: int, n_tr: int) -> np.ndarray:
    """A smooth (n_tr, N_LATENT) signal per story, the same at every size."""
    from scipy.signal import lfilter

    noise = np.random.default_rng(1000 + story).standard_normal((n_tr, N_LATENT))
    return lfilter([1.0], [1.0, -0.8], noise, axis=0)


def _bold_block(block_info=None, *, story: int, n_tr: int) -> np.ndarray:
    """One (1, n_tr, width) block: noise, plus the lagged latent signal in every 20th target."""
    location = block_info[None]["array-location"]
    subject, (start, stop) = location[0][0], location[2]
    rng = np.random.default_rng([story, subject, start])
    values = rng.standard_normal((n_tr, stop - start), dtype=np.float32)
    planted = np.flatnonzero(np.arange(start, stop) % 20 == 0)
    weights = np.random.default_rng([7, start]).standard_normal((N_LATENT, len(planted)))
    lagged = np.zeros((n_tr, N_LATENT))
    lagged[LAG:] = _latent(story, n_tr)[:-LAG]
    values[:, planted] += (0.5 * lagged @ weights).astype(np.float32)
    return values[None]


def build_store(path: Path, n_targets: int, n_tr: int) -> float:
    """Write the store of stories at ``path``; return the seconds it took."""
    import dask.array as da
    import xarray as xr

    from featstore import store as fs
    from featstore.store.stories import create_collection, story_path

    start = time.perf_counter()
    create_collection(path, dataset="scale-targets", tr_seconds=1.5)
    mixing = np.random.default_rng(3).standard_normal((N_LATENT, DIM))
    for story in range(STORIES):
        name = f"s{story + 1}"
        where = story_path(path, name)
        fs.create_store(
            where, dataset="scale-targets", tr_seconds=1.5, n_tr=n_tr, extra_attrs={"story": name}
        )
        noise = np.random.default_rng(2000 + story).standard_normal((n_tr, DIM))
        hidden = (_latent(story, n_tr) @ mixing + noise).astype(np.float32)[None]
        attrs = {
            "model_id": "synthetic/lm",
            "revision": "bench",
            "modality": "text",
            "pooling": "last",
            "stimulus_sha256": f"{story:064d}",
        }
        fs.write_feature_set(where, "synthetic--lm", "ctx200", hidden, attrs=attrs)
        width = min(CHUNK, n_targets)
        bold = da.map_blocks(
            _bold_block,
            story=story,
            n_tr=n_tr,
            dtype=np.float32,
            chunks=((1,) * SUBJECTS, (n_tr,), da.core.normalize_chunks(width, (n_targets,))[0]),
        )
        hemisphere = np.where(np.arange(n_targets) < n_targets // 2, "L", "R").astype(object)
        fmri = xr.Dataset(
            {"bold": (("subject", "tr", "roi"), bold)},
            coords={
                "subject": np.asarray([f"sub-{i + 1:02d}" for i in range(SUBJECTS)], dtype=object),
                "roi": np.arange(n_targets, dtype=np.int64),
                "roi_name": ("roi", np.full(n_targets, "", dtype=object)),
                "hemisphere": ("roi", hemisphere),
                "vertex": ("roi", np.arange(n_targets, dtype=np.int64) % max(n_targets // 2, 1)),
            },
            attrs={"target_kind": "vertex", "space": "synthetic", "source": "benchmark"},
        )
        fs.write_group(where, "fmri", fmri, encoding={"bold": {"chunks": (1, n_tr, width)}})
    return time.perf_counter() - start


def _child(args: argparse.Namespace) -> None:
    """Evaluate one store (in its own process) and print time and peak RSS as JSON."""
    from featstore.evaluate.encoding.settings import EncodingSettings
    from featstore.evaluate.runs.grid import run_grid

    settings = EncodingSettings(
        pca=args.pca, alphas=tuple(np.logspace(-1, 7, args.alphas)), delays=(1, 2, 3, 4)
    )
    start = time.perf_counter()
    run_grid(
        args.child,
        models=[("synthetic--lm", ["ctx200"], [0])],
        settings=settings,
        test_stories=["s3"],
        run_id=args.run_id,
        workers=args.workers,
        threads_per_worker=args.threads,
    )
    seconds = time.perf_counter() - start
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {"seconds": seconds, "rss_mb": self_kb / 1024, "workers_rss_mb": children_kb / 1024}
        )
    )


def evaluate(
    store: Path, run_id: str, args: argparse.Namespace, workers: int, threads: int | None
) -> dict:
    """Run the child on ``store``; its JSON line (time and peak RSS)."""
    command = [
        sys.executable,
        __file__,
        "--child",
        str(store),
        "--run-id",
        run_id,
        "--workers",
        str(workers),
        "--pca",
        str(args.pca),
        "--alphas",
        str(args.alphas),
    ]
    if threads:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"evaluation of {store} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _same_results(store: Path, a: str, b: str) -> bool:
    from featstore import store as fs

    first = fs.open_group(store, f"results/{a}").load()
    second = fs.open_group(store, f"results/{b}").load()
    return all(
        np.array_equal(first[v].values, second[v].values, equal_nan=True)
        for v in ("r", "alpha", "r_story")
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", default="360,20484,81924")
    parser.add_argument("--trs", type=int, default=TRS)
    parser.add_argument("--pca", type=int, default=100)
    parser.add_argument("--alphas", type=int, default=7)
    parser.add_argument("--cluster-targets", type=int, default=20484)
    parser.add_argument("--path", type=Path, default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--run-id", default="bench", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args)
        return
    sizes = [int(n) for n in args.targets.split(",")]
    root = args.path or Path(tempfile.mkdtemp(prefix="scale-targets-"))
    root.mkdir(parents=True, exist_ok=True)
    need = sum(SUBJECTS * STORIES * args.trs * n * 4 for n in sizes) * 1.1
    free = shutil.disk_usage(root).free
    if free < need:
        raise SystemExit(f"{root}: {free / 1e9:.1f} GB free, need about {need / 1e9:.1f} GB")
    print(
        f"{SUBJECTS} subjects x {STORIES} stories x {args.trs} TRs, {DIM}-wide features, "
        f"PCA {args.pca}, {args.alphas} alphas, delays 1-4, test story s3; "
        f"{os.cpu_count()} cores; stores in {root}",
        flush=True,
    )
    rows = []
    try:
        for n in sizes:
            store = root / f"t{n}.zarr"
            built = build_store(store, n, args.trs)
            result = evaluate(store, "threads", args, workers=1, threads=None)
            rows.append((n, built, result))
            print(
                f"  {n:>6} targets: built in {built:.0f} s, evaluated in "
                f"{result['seconds']:.1f} s, peak RSS {result['rss_mb']:.0f} MB",
                flush=True,
            )
        _table(rows)
        if args.cluster_targets in sizes:
            store = root / f"t{args.cluster_targets}.zarr"
            per_worker = max(1, (os.cpu_count() or 1) // 2)
            threaded = evaluate(store, "threads-same", args, workers=1, threads=per_worker)
            cluster = evaluate(store, "cluster", args, workers=2, threads=per_worker)
            same = _same_results(store, "threads-same", "cluster")
            print(
                f"\n{args.cluster_targets} targets, {per_worker} BLAS thread(s) per task: "
                f"threads {threaded['seconds']:.1f} s, 2-worker LocalCluster "
                f"{cluster['seconds']:.1f} s (workers' peak RSS "
                f"{cluster['workers_rss_mb']:.0f} MB); results identical: {same}"
            )
    finally:
        if not args.keep and args.path is None:
            shutil.rmtree(root, ignore_errors=True)


def _table(rows: list) -> None:
    base_n, _, base = rows[0]
    print(
        f"\n{'targets':>8} {'time s':>8} {'time ratio':>11} {'targets ratio':>14} "
        f"{'peak RSS MB':>12}"
    )
    for n, _, result in rows:
        print(
            f"{n:>8} {result['seconds']:>8.1f} {result['seconds'] / base['seconds']:>11.2f} "
            f"{n / base_n:>14.2f} {result['rss_mb']:>12.0f}"
        )
    by_size = {n: result for n, _, result in rows}
    if 20484 in by_size and 81924 in by_size:
        small, large = by_size[20484], by_size[81924]
        growth = 100 * (large["rss_mb"] / small["rss_mb"] - 1)
        ratio = large["seconds"] / small["seconds"]
        print(
            f"20,484 -> 81,924 targets (x4.0): time x{ratio:.2f} (<= 4 is at most linear), "
            f"peak RSS {small['rss_mb']:.0f} -> {large['rss_mb']:.0f} MB ({growth:+.1f} %; "
            "target <= 25 %, <= 3072 MB)"
        )


if __name__ == "__main__":
    main()
