"""Time and peak memory of the downstream steps on vertex-scale runs.

Builds (in a temporary folder) a one-story store with a run of ``--targets`` vertex
targets × 8 subjects × 10 configs, and a store of 2 stories × 5 subjects × 150 TRs of
vertex BOLD, then times in a fresh process each (so each peak RSS is its own):

* ``summary``: ``summary_table`` (per-subject mean over targets, one config at a time);
* ``parcels``: ``parcel_grouping`` + ``group_by_parcels`` into 360 named parcels;
* ``wilcoxon``: ``subjects_above_zero`` of every config (the cross-story significance);
* ``ceiling``: ``compute_story_ceilings`` (per story + pooled LOSO-ISC, streamed by
  8,192 targets).

Run: ``python benchmarks/bench_vertex_downstream.py --targets 81924``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

N_SUBJECTS = 8
N_CONFIGS = 10


def _targets(n: int) -> dict:
    half = n // 2
    vertex = np.concatenate([np.arange(half), np.arange(n - half)]).astype(np.int64)
    hemis = np.repeat(np.array(["L", "R"], dtype=object), [half, n - half])
    names = np.array([f"p{v * 180 // max(half, 1)}" for v in vertex], dtype=object)
    return {
        "roi": np.arange(n, dtype=np.int64),
        "roi_name": ("roi", names),
        "hemisphere": ("roi", hemis),
        "vertex": ("roi", vertex),
    }


def build(folder: Path, n: int) -> None:
    from featstore import store as fs
    from featstore.store.stories import create_collection, story_path
    from tests.plot.vertex_synthetic import SETTINGS, _config_coords

    rng = np.random.default_rng(0)
    configs = [f"m/tr1/layer{i}" for i in range(1, N_CONFIGS + 1)]
    run = folder / "run.zarr"
    fs.create_store(run, dataset="b", tr_seconds=1.5, n_tr=100)
    r = (0.05 + 0.1 * rng.standard_normal((N_CONFIGS, N_SUBJECTS, n))).astype(np.float32)
    ds = xr.Dataset(
        {"r": (("config", "subject", "roi"), r), "alpha": (("config", "subject", "roi"), r)},
        coords=_config_coords(configs)
        | {"subject": np.array([f"s{i}" for i in range(N_SUBJECTS)], dtype=object)}
        | _targets(n),
        attrs={"settings": SETTINGS, "target_kind": "vertex", "space": "fsaverage6"},
    )
    fs.write_group(run, fs.result_group("bench"), ds)
    stories = folder / "stories.zarr"
    create_collection(stories, dataset="b", tr_seconds=1.5)
    for k in range(2):
        path = story_path(stories, f"s{k}")
        fs.create_store(path, dataset="b", tr_seconds=1.5, n_tr=150, extra_attrs={"story": f"s{k}"})
        bold = rng.standard_normal((5, 150, n)).astype(np.float32)
        fmri = xr.Dataset(
            {"bold": (("subject", "tr", "roi"), bold)},
            coords={"subject": np.array([f"s{i}" for i in range(5)], dtype=object)} | _targets(n),
            attrs={"target_kind": "vertex", "space": "fsaverage6"},
        )
        fs.write_group(path, "fmri", fmri, encoding={"bold": {"chunks": (1, 150, 8192)}})


def stage(name: str, folder: Path) -> dict:
    from featstore import store as fs
    from featstore.evaluate.runs.ceiling import compute_story_ceilings
    from featstore.evaluate.runs.significance import subjects_above_zero
    from featstore.evaluate.runs.summary import summary_table
    from featstore.evaluate.runs.targets import group_by_parcels, parcel_grouping

    run = folder / "run.zarr"
    start = time.perf_counter()
    if name.startswith("build"):
        build(folder, int(name.split(":")[1]))
    elif name == "summary":
        summary_table(run)
    elif name == "parcels":
        ds = fs.open_group(run, fs.result_group("bench"))
        group_by_parcels(ds, parcel_grouping(ds), ["r"])
    elif name == "wilcoxon":
        r = fs.open_group(run, fs.result_group("bench"))["r"]
        for i in range(r.sizes["config"]):
            subjects_above_zero(r.isel(config=i).values)
    elif name == "ceiling":
        compute_story_ceilings(folder / "stories.zarr", trim=4)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"stage": name, "seconds": round(seconds, 2), "peak_rss_mb": round(peak)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=20_484)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        print(json.dumps(stage(args.stage, Path(args.folder))))
        return
    # every step in a fresh process, the data built in one too: Linux children inherit
    # their parent's peak RSS, so a parent holding the data would set every peak
    with tempfile.TemporaryDirectory() as folder:
        print(f"{args.targets} targets, {N_SUBJECTS} subjects, {N_CONFIGS} configs")
        for name in (f"build:{args.targets}", "summary", "parcels", "wilcoxon", "ceiling"):
            out = subprocess.run(
                [sys.executable, __file__, "--stage", name, "--folder", folder],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            print(out.strip())


if __name__ == "__main__":
    main()
