"""Benchmark: featstore's encoding grid against naive sklearn and himalaya, same settings.

A synthetic problem the size of the reference study (25 subjects x 2249 TRs x 360 ROIs,
768-wide features, 5 layers x 2 models plus one concatenation-fusion pair) is encoded with
the default settings (test 20 %, PCA 250, delays 1-4, 21 alphas, 5 contiguous folds) by:

* featstore ``encode`` (float32, 1 and 2 BLAS threads; float64 is the exact reference);
* (a) the naive way per subject: sklearn StandardScaler + PCA + delays, then sklearn
  ``Ridge`` for every alpha and fold with R² per ROI, the best alpha per ROI, a refit;
* (b) himalaya ``RidgeCV`` per subject (same preprocessing, folds, alphas and R² score);
* (c) himalaya ``RidgeCV`` given every subject's ROIs stacked as targets;
* (d) a plain per-subject loop of himalaya's ``solve_ridge_cv_svd`` (same alphas, folds,
  R² score), then the test predictions from its coefficients.

himalaya runs in float32 and in float64 (``--himalaya-dtypes``): both ratios are printed.
Each row says which BLAS (threadpoolctl) and how many threads its process used.
``--backends numpy,torch:cpu,torch:cuda`` adds featstore rows on other array backends.
``--small`` is the small problem of issue 15: 8 subjects x 600 TRs x 360 ROIs, 64-dim
features x 4 delays (no PCA: 64 < 250), 2 models x 4 layers (8 single configs) and all 16
layer pairs of the fusion, 15 alphas, 5 contiguous folds; every contestant runs it whole.

Every contestant runs in its own process (its own peak RSS) on data regenerated from the
same seed. The per-subject contestants run on ``--contestant-subjects`` subjects and the
contestants on ``--contestant-configs`` configs; their times are scaled linearly to the
whole grid, as the output says. r of every contestant is compared with the float64
reference on what it ran.

Examples
--------
python benchmarks/evaluate_grid.py                     # full size (takes a while)
python benchmarks/evaluate_grid.py --quick             # small, a few seconds
python benchmarks/evaluate_grid.py --subjects 8 --contestant-subjects 1
python benchmarks/evaluate_grid.py --small --skip naive,himalaya_per_subject,himalaya_stacked
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from featstore.evaluate import EncodingSettings, encode  # noqa: E402
from featstore.evaluate.encoding.split import chronological_split, contiguous_folds  # noqa: E402

N_LATENT = 16


# --------------------------------------------------------------------------- the problem
def make_problem(args: argparse.Namespace) -> tuple[list[tuple[str, list[np.ndarray]]], np.ndarray]:
    """Configs (name, feature arrays) and BOLD (subject, TR, ROI), float32, from the seed.

    Latent AR(1) signals drive the features of every layer (mixed differently per layer,
    more noise far from the planted layer) and, delayed by 2 TRs, the BOLD.
    """
    rng = np.random.default_rng(args.seed)
    latent = np.zeros((args.trs, N_LATENT))
    shocks = rng.standard_normal((args.trs, N_LATENT))
    for t in range(1, args.trs):
        latent[t] = 0.7 * latent[t - 1] + shocks[t]
    features: dict[tuple[int, int], np.ndarray] = {}
    for model in range(args.models):
        for layer in range(args.layers):
            noise = 1.0 + abs(layer - args.layers // 2)
            mixing = rng.standard_normal((N_LATENT, args.dim))
            values = latent @ mixing + noise * 4.0 * rng.standard_normal((args.trs, args.dim))
            features[model, layer] = values.astype(np.float32)
    weights = rng.standard_normal((N_LATENT, args.rois)) * rng.uniform(0.0, 0.3, args.rois)
    signal = np.zeros((args.trs, args.rois))
    signal[2:] = (latent @ weights)[:-2]
    bold = np.empty((args.subjects, args.trs, args.rois), dtype=np.float32)
    for subject in range(args.subjects):
        bold[subject] = signal + rng.standard_normal((args.trs, args.rois))
    configs = [
        (f"model{m}/layer{layer}", [features[m, layer]])
        for m in range(args.models)
        for layer in range(args.layers)
    ]
    if args.models >= 2:
        middle = args.layers // 2
        pairs = (
            [(a, b) for a in range(args.layers) for b in range(args.layers)]
            if args.fusion_pairs == "all"
            else [(middle, middle)]
        )
        configs += [
            (f"model0+model1/layer{a}x{b}", [features[0, a], features[1, b]]) for a, b in pairs
        ]
    return configs, bold


def settings_for(args: argparse.Namespace, dtype: str = "float32") -> EncodingSettings:
    alphas = np.logspace(-2, 8, args.n_alphas) if args.n_alphas else EncodingSettings().alphas
    return EncodingSettings(pca=args.pca, dtype=dtype, alphas=tuple(alphas))


def n_fusion_configs(args: argparse.Namespace) -> int:
    if args.models < 2:
        return 0
    return args.layers**2 if args.fusion_pairs == "all" else 1


# --------------------------------------------------------------------------- contestants
def _split(settings: EncodingSettings, n_tr: int):
    train, test = chronological_split(
        n_tr, trim=settings.resolved_trim, test_frac=settings.test_frac, gap=settings.gap
    )
    return train, test, contiguous_folds(len(train), settings.cv, settings.gap)


def _textbook_design(features, train, settings):
    """sklearn StandardScaler per space, PCA (exact solver) on train rows, zero-filled delays.

    No PCA when it would keep every axis (``--small``: 64 dims, PCA 250), as featstore.
    """
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    features = [np.asarray(f, dtype=np.float64) for f in features]  # float32 would stay float32
    scaled = np.hstack([StandardScaler().fit(f[train]).transform(f) for f in features])
    components = scaled
    if 0 < settings.pca < scaled.shape[1]:  # as featstore: every axis kept is a rotation
        components = PCA(settings.pca, svd_solver="full").fit(scaled[train]).transform(scaled)
    blocks = []
    for delay in settings.delays:
        block = np.zeros_like(components)
        block[delay:] = components[: len(components) - delay]
        blocks.append(block)
    return np.hstack(blocks)


def _zscored_bold(bold_subject, train):
    from sklearn.preprocessing import StandardScaler

    return StandardScaler().fit(bold_subject[train]).transform(bold_subject)


def _pearson(y, pred):
    from scipy.stats import pearsonr

    return np.array([pearsonr(y[:, v], pred[:, v]).statistic for v in range(y.shape[1])])


def run_featstore(configs, bold, settings, threads, args):
    backend, _, device = args.backend.partition(":")
    rs = []
    for _, features in configs:
        result = encode(
            features, bold, settings, n_threads=threads, backend=backend, device=device or None
        )
        rs.append(result.r)
    return np.stack(rs)


def run_naive(configs, bold, settings, threads, args):
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    train, test, folds = _split(settings, bold.shape[1])
    alphas = np.asarray(settings.alphas)
    out = []
    for _, features in configs:
        per_subject = []
        for subject in range(bold.shape[0]):
            X = _textbook_design(features, train, settings)
            Y = _zscored_bold(bold[subject].astype(np.float64), train)
            X_train, Y_train = X[train], Y[train]
            scores = np.zeros((len(alphas), Y.shape[1]))
            for a, alpha in enumerate(alphas):
                for fit_rows, val_rows in folds:
                    model = Ridge(alpha=alpha, fit_intercept=False)
                    model.fit(X_train[fit_rows], Y_train[fit_rows])
                    predicted = model.predict(X_train[val_rows])
                    scores[a] += r2_score(Y_train[val_rows], predicted, multioutput="raw_values")
            best = len(alphas) - 1 - np.argmax(scores[::-1], axis=0)
            predictions = np.empty((len(test), Y.shape[1]))
            for a in np.unique(best):
                columns = best == a
                model = Ridge(alpha=alphas[a], fit_intercept=False)
                model.fit(X_train, Y_train[:, columns])
                predictions[:, columns] = model.predict(X[test]).reshape(len(test), -1)
            per_subject.append(_pearson(Y[test], predictions))
        out.append(np.stack(per_subject))
    return np.stack(out)


def _himalaya_fit_predict(X_train, Y_train, X_test, settings, folds):
    from himalaya.ridge import RidgeCV
    from himalaya.scoring import r2_score

    model = RidgeCV(
        alphas=np.asarray(settings.alphas),
        cv=folds,
        solver_params={"score_func": r2_score, "warn": False},
    )
    return model.fit(X_train, Y_train).predict(X_test)


def run_himalaya_per_subject(configs, bold, settings, threads, args):
    train, test, folds = _split(settings, bold.shape[1])
    out = []
    for _, features in configs:
        X = _textbook_design(features, train, settings).astype(args.himalaya_dtype)
        per_subject = []
        for subject in range(bold.shape[0]):
            Y = _zscored_bold(bold[subject].astype(np.float64), train).astype(args.himalaya_dtype)
            predictions = _himalaya_fit_predict(X[train], Y[train], X[test], settings, folds)
            per_subject.append(_pearson(Y[test], predictions))
        out.append(np.stack(per_subject))
    return np.stack(out)


def run_himalaya_stacked(configs, bold, settings, threads, args):
    train, test, folds = _split(settings, bold.shape[1])
    n_subjects, _, n_rois = bold.shape
    Y = np.hstack([_zscored_bold(b.astype(np.float64), train) for b in bold])
    Y = Y.astype(args.himalaya_dtype)
    out = []
    for _, features in configs:
        X = _textbook_design(features, train, settings).astype(args.himalaya_dtype)
        predictions = _himalaya_fit_predict(X[train], Y[train], X[test], settings, folds)
        out.append(_pearson(Y[test], predictions).reshape(n_subjects, n_rois))
    return np.stack(out)


def run_himalaya_svd_loop(configs, bold, settings, threads, args):
    from himalaya.ridge import solve_ridge_cv_svd
    from himalaya.scoring import r2_score

    train, test, folds = _split(settings, bold.shape[1])
    alphas = np.asarray(settings.alphas, dtype=args.himalaya_dtype)
    out = []
    for _, features in configs:
        X = _textbook_design(features, train, settings).astype(args.himalaya_dtype)
        per_subject = []
        for subject in range(bold.shape[0]):
            Y = _zscored_bold(bold[subject].astype(np.float64), train).astype(args.himalaya_dtype)
            _, coefs, _ = solve_ridge_cv_svd(
                X[train], Y[train], alphas, cv=folds, score_func=r2_score, warn=False
            )
            per_subject.append(_pearson(Y[test], X[test] @ coefs))
        out.append(np.stack(per_subject))
    return np.stack(out)


CONTESTANTS = {
    "featstore": run_featstore,
    "naive": run_naive,
    "himalaya_per_subject": run_himalaya_per_subject,
    "himalaya_stacked": run_himalaya_stacked,
    "himalaya_svd_loop": run_himalaya_svd_loop,
}


def blas_description() -> str:
    """Which BLAS / OpenMP libraries this process uses and with how many threads."""
    from threadpoolctl import threadpool_info

    parts = [
        f"{info['internal_api']} {info.get('version') or ''} x{info['num_threads']}".replace(
            "  ", " "
        )
        for info in threadpool_info()
    ]
    if "torch" in sys.modules:
        parts.append(f"torch x{sys.modules['torch'].get_num_threads()}")
    return ", ".join(parts)


def child(args: argparse.Namespace) -> None:
    """Run one contestant in this process; write its r and figures to ``args.out``."""
    import himalaya.ridge  # noqa: F401  imported before the clock starts
    import scipy.stats  # noqa: F401
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    configs, bold = make_problem(args)
    configs = configs[: args.n_configs] if args.n_configs else configs
    bold = bold[: args.n_subjects] if args.n_subjects else bold
    settings = settings_for(args, args.dtype)
    data_mib = _rss_mib("VmRSS")
    peak_reset = _reset_peak_rss()
    if args.run == "featstore" and args.backend.startswith("torch"):
        import torch

        torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads):
        blas = blas_description()
        start = time.perf_counter()
        r = CONTESTANTS[args.run](configs, bold, settings, args.threads, args)
        wall = time.perf_counter() - start
    np.save(Path(args.out) / "r.npy", r)
    peak_mib = (
        _rss_mib("VmHWM")
        if peak_reset
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    figures = {"wall": wall, "peak_mib": peak_mib, "data_mib": data_mib, "blas": blas}
    (Path(args.out) / "figures.json").write_text(json.dumps(figures))


def _rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MiB, from /proc (Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _reset_peak_rss() -> bool:
    """Reset the peak RSS after making the data, so the peak is the contestant's own."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


# --------------------------------------------------------------------------- the driver
def spawn(
    args, run, *, dtype="float32", threads=1, n_subjects=0, n_configs=0,
    himalaya_dtype="float64", backend="numpy",
):  # fmt: skip
    out = tempfile.mkdtemp(prefix="featstore-bench-")
    command = [
        sys.executable, __file__, "--run", run, "--out", out, "--dtype", dtype,
        "--threads", str(threads), "--n-subjects", str(n_subjects),
        "--n-configs", str(n_configs), "--himalaya-dtype", himalaya_dtype,
        "--backend", backend, *size_options(args),
    ]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    try:
        subprocess.run(command, check=True, env=env)
        figures = json.loads((Path(out) / "figures.json").read_text())
        figures["r"] = np.load(Path(out) / "r.npy")
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return figures


def size_options(args):
    return [
        "--subjects", str(args.subjects), "--trs", str(args.trs), "--rois", str(args.rois),
        "--dim", str(args.dim), "--layers", str(args.layers), "--models", str(args.models),
        "--pca", str(args.pca), "--seed", str(args.seed), "--n-alphas", str(args.n_alphas),
        "--fusion-pairs", args.fusion_pairs,
    ]  # fmt: skip


def parse(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=25)
    parser.add_argument("--trs", type=int, default=2249)
    parser.add_argument("--rois", type=int, default=360)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--pca", type=int, default=250)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-alphas", type=int, default=0, help="alphas logspace(-2, 8, N)")
    parser.add_argument("--fusion-pairs", choices=("middle", "all"), default="middle")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--small", action="store_true", help="issue 15's small problem")
    parser.add_argument(
        "--contestant-subjects",
        type=int,
        default=2,
        help="subjects run by the per-subject contestants (scaled)",
    )
    parser.add_argument(
        "--contestant-configs", type=int, default=1, help="configs run by the contestants (scaled)"
    )
    parser.add_argument(
        "--himalaya-dtypes",
        default="float32,float64",
        help="dtypes given to himalaya, one row each (sklearn preprocessing gives float64)",
    )
    parser.add_argument(
        "--backends",
        default="numpy",
        help="featstore array backends, one row each: numpy, torch:cpu, torch:cuda",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma list among naive,himalaya_per_subject,himalaya_stacked,"
        "himalaya_svd_loop,reference,threads2",
    )
    parser.add_argument("--json", help="also write the figures to this JSON file")
    # internal: one contestant in a child process
    parser.add_argument("--run", choices=sorted(CONTESTANTS), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--dtype", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--n-subjects", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--n-configs", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--himalaya-dtype", default="float64", help=argparse.SUPPRESS)
    parser.add_argument("--backend", default="numpy", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)  # fmt: skip
    if args.quick:
        args.subjects, args.trs, args.rois, args.dim, args.pca = 4, 400, 40, 96, 40
    if args.small:
        args.subjects, args.trs, args.rois, args.dim, args.layers = 8, 600, 360, 64, 4
        args.n_alphas, args.fusion_pairs = 15, "all"
        args.contestant_subjects, args.contestant_configs = 8, 24
    return args


def main(argv=None) -> None:
    args = parse(argv)
    if args.run:
        child(args)
        return
    skip = set(filter(None, args.skip.split(",")))
    n_configs = args.models * args.layers + n_fusion_configs(args)
    print(
        f"problem: {args.subjects} subjects x {args.trs} TRs x {args.rois} ROIs, features "
        f"{args.dim}-wide, {n_configs} configs ({args.models} models x {args.layers} layers"
        f" + {n_fusion_configs(args)} fusion pair(s)); settings: {settings_for(args)}"
    )
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []  # (label, figures, scale, (n_subjects, n_configs))
    backends = [b for b in args.backends.split(",") if b]
    ours = spawn(args, "featstore", threads=1, backend=backends[0])
    rows.append((f"featstore float32 {backends[0]}, 1 thread", ours, 1.0, (0, 0)))
    for backend in backends[1:]:
        figures = spawn(args, "featstore", threads=1, backend=backend)
        rows.append((f"featstore float32 {backend}, 1 thread", figures, 1.0, (0, 0)))
    if "threads2" not in skip:
        figures = spawn(args, "featstore", threads=2, backend=backends[0])
        rows.append((f"featstore float32 {backends[0]}, 2 threads", figures, 1.0, (0, 0)))
    reference = None
    if "reference" not in skip:
        reference = spawn(args, "featstore", dtype="float64", threads=1)
        rows.append(("featstore float64 (exact reference)", reference, 1.0, (0, 0)))
    k_subj = min(args.contestant_subjects, args.subjects)
    k_conf = min(args.contestant_configs, n_configs)
    for name, label, n_subj in (
        ("naive", "(a) naive sklearn, per subject", k_subj),
        ("himalaya_per_subject", "(b) himalaya RidgeCV, per subject", k_subj),
        ("himalaya_stacked", "(c) himalaya RidgeCV, subjects stacked", args.subjects),
        ("himalaya_svd_loop", "(d) himalaya solve_ridge_cv_svd loop", k_subj),
    ):
        if name in skip:
            continue
        dtypes = ["float64"] if name == "naive" else args.himalaya_dtypes.split(",")
        for dtype in dtypes:
            figures = spawn(args, name, n_subjects=n_subj, n_configs=k_conf, himalaya_dtype=dtype)
            scale = (args.subjects / n_subj) * (n_configs / k_conf)
            tag = "" if name == "naive" else f" {dtype}"
            rows.append((label + tag, figures, scale, (n_subj, k_conf)))

    print(f"\n{'contestant':48s} {'wall s':>9s} {'whole grid s':>13s} {'peak RSS MiB':>13s} "
          f"{'x slower':>9s} {'max|r - r64|':>13s}")  # fmt: skip
    print(
        f"(peak RSS: the whole process, data included: {ours['data_mib']:.0f} MiB after making it)"
    )
    base = ours["wall"]
    report = []
    for label, figures, scale, (n_subj, k) in rows:
        whole = figures["wall"] * scale
        diff = np.nan
        if reference is not None:
            r64 = reference["r"][: figures["r"].shape[0], : figures["r"].shape[1]]
            diff = float(np.nanmax(np.abs(figures["r"] - r64)))
        note = f"  ran {n_subj} subj x {k} config(s), scaled x{scale:g}" if n_subj else ""
        print(
            f"{label:48s} {figures['wall']:9.1f} {whole:13.1f} {figures['peak_mib']:13.0f} "
            f"{whole / base:9.2f} {diff:13.2e}{note}"
        )
        print(f"{'':48s} BLAS/threads: {figures['blas']}")
        report.append(
            {"contestant": label, "wall_s": figures["wall"], "whole_grid_s": whole,
             "peak_rss_mib": figures["peak_mib"], "ratio": whole / base, "max_abs_dr": diff,
             "scale": scale, "blas": figures["blas"]}
        )  # fmt: skip
    print(
        "\ntargets: >= 25x vs (a), >= 15x vs (b), >= 2x vs (c) and (d) (both himalaya dtypes); "
        "r within 1e-4 of float64"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": report}, indent=1))


if __name__ == "__main__":
    main()
