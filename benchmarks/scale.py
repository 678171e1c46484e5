"""A store the size of the reference study: how big, how fast to list, how fast to read.

Builds a store like 21styear's after a full study: 25 subjects × 2249 TRs × 360 ROIs of
fMRI and 9 feature sets × 4 windows of 13 layers × 768 dims (the text ones with
``word_hidden`` for ~8400 words), filled with synthetic features that compress like
real hidden states (smooth low-rank signal, a few large outlier dims, full-precision
noise). Reports:

* the Zarr v3 codecs on one feature set, float32 and float16: compression ratio, write
  time and the time to read one layer (the evaluator's read pattern: one chunk);
* the store with featstore's default encoding: size on disk, write time, the time to
  open and list it (what ``featstore ls`` does) and to read one layer;
* with ``--grid``: wall time and peak RSS (the whole process tree, workers included) of
  ``evaluate grid`` for a full single-model grid (4 windows × 13 layers = 52 configs)
  and a full fusion grid of one pair (13 × 13 = 169 layer pairs), on the threaded
  scheduler and on a 2-worker LocalCluster, and whether peak RSS stays flat from 10 to
  ~100 configs (target: within 15 %). ``--grid-extra "--pca 50 --cv 3"`` passes options
  to every grid (quicker runs); ``--grid-only --path DIR`` reuses a store kept with
  ``--keep``.

Run ``python benchmarks/scale.py`` from the repository root (featstore installed, or
``PYTHONPATH=.``); ``--scale 0.25`` builds a quarter of the TRs and words (the
number of groups stays the same); the store goes to a temporary directory under /tmp
and is deleted at the end unless ``--keep``. Free disk is checked first.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BloscShuffle, ZstdCodec

from featstore import store as fs
from featstore.store import _schema as S
from featstore.store.groups import child_names

# The reference study (Narratives 21styear) and its model grid.
STUDY = {"subjects": 25, "trs": 2249, "rois": 360, "layers": 13, "dim": 768, "words": 8400}
TEXT_MODELS = ("gpt2", "bert-base-uncased", "roberta-base")
AUDIO_MODELS = (
    "facebook--wav2vec2-base-960h",
    "microsoft--wavlm-base-plus",
    "facebook--hubert-base-ls960",
    "openai--whisper-base",
    "openai--whisper-small",
    "laion--clap-htsat-unfused",
)
TEXT_WINDOWS = ("ctx25", "ctx50", "ctx100", "ctx200")
AUDIO_WINDOWS = ("tr1", "tr2", "tr3", "tr6")


def synthetic_layer(seed: int, n_rows: int, dim: int, dtype: str) -> np.ndarray:
    """(rows, dim) features that compress like real hidden states.

    A smooth rank-16 signal (AR(1) over rows, as features of neighbouring TRs are alike),
    three outlier dims 20× larger (transformers have them), and full-precision noise,
    so the mantissas are as incompressible as in real float32 activations.
    """
    from scipy.signal import lfilter

    rng = np.random.default_rng(seed)
    latent = lfilter([1.0], [1.0, -0.9], rng.standard_normal((n_rows, 16)), axis=0)
    values = latent @ rng.standard_normal((16, dim)) + 0.5 * rng.standard_normal((n_rows, dim))
    values[:, rng.choice(dim, 3, replace=False)] *= 20.0
    return values.astype(dtype)


def synthetic_hidden(seed: int, n_layers: int, n_rows: int, dim: int, dtype: str) -> da.Array:
    """A lazy (layer, rows, dim) array, one layer per chunk, generated chunk by chunk."""

    def block(block_id=None):
        layer = block_id[0]
        return synthetic_layer(seed * 1000 + layer, n_rows, dim, dtype)[None]

    return da.map_blocks(
        block,
        chunks=((1,) * n_layers, (n_rows,), (dim,)),
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype),
    )


def disk_bytes(path: Path) -> int:
    """Bytes the files under ``path`` take on disk (allocated blocks, like ``du``)."""
    return sum(p.stat().st_blocks * 512 for p in path.rglob("*") if p.is_file())


def timed(function: Callable[[], object], repeat: int = 1) -> tuple[float, object]:
    """Median wall time of ``repeat`` calls and the last result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


# --- codecs ------------------------------------------------------------------------------------


def codec_choices() -> dict[str, tuple]:
    """Zarr v3 compressor chains to compare (name → compressors)."""

    def blosc(cname: str, shuffle: BloscShuffle, clevel: int = 5) -> BloscCodec:
        return BloscCodec(cname=cname, clevel=clevel, shuffle=shuffle)

    return {
        "none": (),
        "zstd-1": (ZstdCodec(level=1),),
        "zstd-3 (zarr default)": (ZstdCodec(level=3),),
        "zstd-9": (ZstdCodec(level=9),),
        "blosc-lz4": (blosc("lz4", BloscShuffle.noshuffle),),
        "blosc-lz4 shuffle": (blosc("lz4", BloscShuffle.shuffle),),
        "blosc-lz4 bitshuffle": (blosc("lz4", BloscShuffle.bitshuffle),),
        "blosc-zstd-3 shuffle": (blosc("zstd", BloscShuffle.shuffle, 3),),
        "blosc-zstd-3 bitshuffle": (blosc("zstd", BloscShuffle.bitshuffle, 3),),
    }


@dataclass
class CodecResult:
    codec: str
    dtype: str
    ratio: float
    mb_on_disk: float
    write_s: float
    read_layer_warm_ms: float
    read_layer_cold_ms: float


def evict(path: Path) -> None:
    """Drop a directory's files from the page cache (this file only, no root needed)."""
    for file in path.rglob("*"):
        if file.is_file():
            fd = os.open(file, os.O_RDONLY)
            try:
                os.fsync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def compare_codecs(root: Path, n_layers: int, n_tr: int, dim: int, rounds: int = 3) -> list:
    """Write one feature set with each codec and dtype, then time one-layer reads.

    Reads go round-robin over the codecs, ``rounds`` times, so a change of machine load
    hits them all alike; "cold" reads first evict the array's files from the page cache.
    """
    variants = []
    for dtype in ("float32", "float16"):
        hidden = synthetic_hidden(7, n_layers, n_tr, dim, dtype).compute()
        for name, compressors in codec_choices().items():
            path = root / f"codec-{dtype}-{len(variants)}.zarr"
            array = zarr.create_array(
                path,
                shape=hidden.shape,
                chunks=(1, n_tr, dim),
                dtype=dtype,
                compressors=compressors,
                zarr_format=3,
            )
            write_s, _ = timed(
                lambda array=array, hidden=hidden: array.__setitem__(slice(None), hidden)
            )
            variants.append((name, dtype, path, hidden.nbytes, write_s))
    layers = [n_layers // 2, 1, n_layers - 1]
    warm: dict[Path, list[float]] = {v[2]: [] for v in variants}
    cold: dict[Path, list[float]] = {v[2]: [] for v in variants}
    for _ in range(rounds):
        for _, _, path, _, _ in variants:
            reader = zarr.open_array(path, mode="r")
            for k in layers:
                evict(path)
                cold[path].append(timed(lambda k=k, reader=reader: reader[k])[0])
                warm[path].append(timed(lambda k=k, reader=reader: reader[k])[0])
    results = []
    for name, dtype, path, raw, write_s in variants:
        size = disk_bytes(path)
        result = CodecResult(
            name,
            dtype,
            raw / size,
            size / 1e6,
            write_s,
            statistics.median(warm[path]) * 1e3,
            statistics.median(cold[path]) * 1e3,
        )
        results.append(result)
        print(
            f"  {name:24s} {dtype:8s} ratio {result.ratio:5.2f}  {result.mb_on_disk:7.1f} MB  "
            f"write {write_s:5.2f} s  read a layer: warm {result.read_layer_warm_ms:6.1f} ms, "
            f"cold {result.read_layer_cold_ms:6.1f} ms",
            flush=True,
        )
        shutil.rmtree(path)
    return results


# --- the study-sized store --------------------------------------------------------------------


def feature_sets() -> list[tuple[str, str, str]]:
    """(key, window, modality) of the 36 feature sets of the study."""
    sets = [(key, window, "text") for key in TEXT_MODELS for window in TEXT_WINDOWS]
    sets += [
        (key, window, "multimodal" if "whisper" in key or "clap" in key else "audio")
        for key in AUDIO_MODELS
        for window in AUDIO_WINDOWS
    ]
    return sets


def build_store(path: Path, sizes: dict[str, int], word_hidden: bool, dtype: str) -> dict:
    """Write the study-sized store; return its write times."""
    n_tr = sizes["trs"]
    fs.create_store(path, dataset="synthetic-21styear", tr_seconds=1.5, n_tr=n_tr)
    bold = np.random.default_rng(0).standard_normal(
        (sizes["subjects"], n_tr, sizes["rois"]), dtype=np.float32
    )
    from featstore.datasets.fmri_group import write_fmri

    start = time.perf_counter()
    write_fmri(path, bold, [f"sub-{i:02d}" for i in range(sizes["subjects"])], source="synthetic")
    times = {"fmri_s": time.perf_counter() - start}
    start = time.perf_counter()
    for index, (key, window, modality) in enumerate(feature_sets()):
        hidden = synthetic_hidden(index, sizes["layers"], n_tr, sizes["dim"], dtype)
        words = None
        if modality == "text" and word_hidden:
            words = synthetic_hidden(
                100 + index, sizes["layers"], sizes["words"], sizes["dim"], dtype
            )
        attrs = {
            "model_id": key.replace("--", "/"),
            "revision": "synthetic",
            "modality": modality,
            "pooling": "last" if modality == "text" else "mean",
            "stimulus_sha256": "0" * 64,
        }
        fs.write_feature_set(path, key, window, hidden, attrs=attrs, word_hidden=words)
        print(f"  wrote features/{key}/{window}", flush=True)
    times["features_s"] = time.perf_counter() - start
    return times


def measure_store(path: Path, sizes: dict[str, int]) -> dict:
    """Size on disk, time to open and list (``featstore ls``), time to read one layer."""
    list_s, (groups, sets) = timed(
        lambda: (fs.list_groups(path), fs.list_feature_sets(path)), repeat=3
    )
    cli_start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "featstore", "ls", str(path)],
        check=True,
        capture_output=True,
        cwd=Path(__file__).resolve().parents[1],
        env={**os.environ, "COLUMNS": "200"},
    )
    cli_s = time.perf_counter() - cli_start
    key, window, _ = feature_sets()[len(feature_sets()) // 2]
    open_s, ds = timed(lambda: fs.open_feature_set(path, key, window), repeat=3)
    layers = [6, 1, 12, 9, 3]
    read_s = statistics.median(timed(lambda k=k: ds.hidden.sel(layer=k).values)[0] for k in layers)
    subject_s, _ = timed(lambda: fs.open_group(path, S.FMRI).bold.isel(subject=3).values, repeat=3)
    return {
        "groups": len(groups),
        "feature_sets": len(sets),
        "gb_on_disk": disk_bytes(path) / 1e9,
        "list_s": list_s,
        "featstore_ls_cli_s": cli_s,
        "open_feature_set_ms": open_s * 1e3,
        "read_one_layer_ms": read_s * 1e3,
        "read_one_subject_bold_ms": subject_s * 1e3,
        "sizes": sizes,
    }


# --- grids ---------------------------------------------------------------------------------------

GRIDS = {
    # name → evaluate grid arguments (the store has wavlm/hubert at tr1,2,3,6, gpt2 at ctx*)
    "single (52 configs)": ["--model", "wavlm", "--tr-win", "1,2,3,6", "--layers", "all"],
    "fusion (169 configs)": ["--fusion", "gpt2:ctx200+wavlm:tr6", "--layers", "all"],
    "flat: 10 configs": ["--model", "wavlm", "--tr-win", "1", "--layers", "0,1,2,3,4,5,6,7,8,9"],
    "flat: 104 configs": "--model wavlm --model hubert --tr-win 1,2,3,6 --layers all".split(),
}
SCHEDULERS = {
    "threads": ["--workers", "1", "--threads-per-worker", "1"],
    "2-worker LocalCluster": ["--workers", "2", "--threads-per-worker", "1"],
}


def run_measured(command: list[str], poll_s: float = 0.05) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a command and all its child processes."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=Path.cwd(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    root = psutil.Process(process.pid)
    peak = 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(poll_s)
    _, stderr = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:6])} … failed: {stderr.decode()[-2000:]}")
    return time.perf_counter() - start, peak / 1e6


def measure_grids(store: Path, extra: list[str], which: list[str]) -> list[dict]:
    """Each grid on each scheduler, from scratch (earlier results are deleted, so nothing
    is reused)."""
    evaluate = [
        sys.executable,
        "-c",
        "import sys; from featstore.cli.evaluate_main import app; "
        "app(sys.argv[1:], prog_name='evaluate')",
    ]
    rows = []
    for grid_name in which:
        for scheduler_name, scheduler in SCHEDULERS.items():
            for run in child_names(store, S.RESULTS):
                fs.delete_group(store, f"{S.RESULTS}/{run}")
            command = [*evaluate, "grid", "--store", str(store), *GRIDS[grid_name], *scheduler]
            command += ["--run", "bench", "--quiet", *extra]
            wall_s, peak_mb = run_measured(command)
            n_configs = int(fs.group_attrs(store, f"{S.RESULTS}/bench")["n_computed"])
            rows.append(
                {
                    "grid": grid_name,
                    "scheduler": scheduler_name,
                    "configs": n_configs,
                    "wall_s": wall_s,
                    "s_per_config": wall_s / n_configs,
                    "peak_rss_mb": peak_mb,
                }
            )
            print(
                f"  {grid_name:22s} {scheduler_name:22s} {n_configs:4d} configs  "
                f"{wall_s:8.1f} s ({wall_s / n_configs:6.2f} s/config)  peak RSS {peak_mb:8.0f} MB",
                flush=True,
            )
    return rows


def flatness(rows: list[dict]) -> dict[str, float]:
    """Peak RSS of the ~100-config grid over the 10-config one, per scheduler."""
    out = {}
    for scheduler in SCHEDULERS:
        small = [r for r in rows if r["grid"] == "flat: 10 configs" and r["scheduler"] == scheduler]
        large = [
            r for r in rows if r["grid"] == "flat: 104 configs" and r["scheduler"] == scheduler
        ]
        if small and large:
            out[scheduler] = large[0]["peak_rss_mb"] / small[0]["peak_rss_mb"]
    return out


def raw_bytes(sizes: dict[str, int], word_hidden: bool, itemsize: int) -> int:
    """Uncompressed bytes of the store's arrays."""
    per_layer = sizes["trs"] * sizes["dim"] * itemsize
    total = len(feature_sets()) * sizes["layers"] * per_layer
    if word_hidden:
        text_sets = len(TEXT_MODELS) * len(TEXT_WINDOWS)
        total += text_sets * sizes["layers"] * sizes["words"] * sizes["dim"] * itemsize
    return total + sizes["subjects"] * sizes["trs"] * sizes["rois"] * 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Fraction of TRs and words.")
    parser.add_argument("--path", type=Path, default=None, help="Where to build the store.")
    parser.add_argument("--keep", action="store_true", help="Keep the store at the end.")
    parser.add_argument("--dtype", choices=("float32", "float16"), default="float32")
    parser.add_argument("--no-word-hidden", action="store_true", help="Text sets without words.")
    parser.add_argument("--skip-codecs", action="store_true")
    parser.add_argument("--skip-store", action="store_true")
    parser.add_argument("--json", type=Path, help="Also write the figures to this JSON file.")
    parser.add_argument("--grid", action="store_true", help="Also time and measure grids.")
    parser.add_argument(
        "--grid-only", action="store_true", help="Only the grids, on the store at --path."
    )
    parser.add_argument(
        "--grids",
        default=",".join(GRIDS),
        help="Which grids (comma-separated names from: " + "; ".join(GRIDS) + ").",
    )
    parser.add_argument("--grid-extra", default="", help='Options for every grid, e.g. "--pca 50".')
    args = parser.parse_args(argv)

    dask.config.set(scheduler="threads")
    sizes = dict(STUDY)
    sizes["trs"] = max(50, round(STUDY["trs"] * args.scale))
    sizes["words"] = max(50, round(STUDY["words"] * args.scale))
    word_hidden = not args.no_word_hidden
    itemsize = np.dtype(args.dtype).itemsize
    need = raw_bytes(sizes, word_hidden, itemsize) if not (args.skip_store or args.grid_only) else 0
    base = args.path or Path(tempfile.mkdtemp(prefix="featstore-scale-", dir="/tmp"))
    base.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(base).free
    codec_need = (
        0
        if args.skip_codecs or args.grid_only
        else 2 * sizes["layers"] * sizes["trs"] * sizes["dim"] * 4
    )
    if need + codec_need > 0.9 * free:
        print(
            f"needs up to {(need + codec_need) / 1e9:.1f} GB but {base} has {free / 1e9:.1f} GB "
            "free; use --scale 0.25 (or less) or --path on a larger disk",
            file=sys.stderr,
        )
        return 2
    print(
        f"store at {base}; {len(feature_sets())} feature sets of {sizes['layers']} layers × "
        f"{sizes['trs']} TRs × {sizes['dim']} dims ({args.dtype}), word_hidden={word_hidden}; "
        f"raw {need / 1e9:.2f} GB; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    figures: dict = {"sizes": sizes, "dtype": args.dtype}
    store = base / "21styear-synthetic.zarr"
    if args.grid_only:
        if args.path is None or not store.exists():
            print("--grid-only needs --path DIR holding a store kept with --keep", file=sys.stderr)
            return 2
        figures["grids"] = measure_grids(
            store, shlex.split(args.grid_extra), [g.strip() for g in args.grids.split(",")]
        )
        figures["rss_flatness"] = flatness(figures["grids"])
        print(json.dumps(figures["rss_flatness"], indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
        return 0
    try:
        if not args.skip_codecs:
            print("codecs on one feature set (one layer per chunk):", flush=True)
            codecs = compare_codecs(base, sizes["layers"], sizes["trs"], sizes["dim"])
            figures["codecs"] = [asdict(c) for c in codecs]
        if not args.skip_store:
            print(
                f"building {store} with featstore's default encoding {feature_encoding_summary()}:",
                flush=True,
            )
            figures["write"] = build_store(store, sizes, word_hidden, args.dtype)
            figures["store"] = measure_store(store, sizes)
            figures["store"]["raw_gb"] = need / 1e9
            figures["store"]["ratio"] = need / 1e9 / figures["store"]["gb_on_disk"]
            print(json.dumps({"write": figures["write"], **figures["store"]}, indent=2))
            if args.grid:
                print("grids (evaluate grid, from scratch each time):", flush=True)
                figures["grids"] = measure_grids(
                    store, shlex.split(args.grid_extra), [g.strip() for g in args.grids.split(",")]
                )
                figures["rss_flatness"] = flatness(figures["grids"])
                print(json.dumps({"rss_flatness": figures["rss_flatness"]}, indent=2))
    finally:
        if not args.keep and args.path is None:
            shutil.rmtree(base, ignore_errors=True)
        elif not args.keep:
            shutil.rmtree(base / "21styear-synthetic.zarr", ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


def feature_encoding_summary() -> str:
    """The compressors featstore writes numeric arrays with, for the printout."""
    return ", ".join(str(codec.to_dict()) for codec in fs.array_compressors())


if __name__ == "__main__":
    raise SystemExit(main())
