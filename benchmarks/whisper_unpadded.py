"""Benchmark: Whisper's encoder without its 30-s padding against the padded pass.

For windows of the bundled demo story (synthetic speech, 16 kHz) ending at the end of each
chosen TR, both passes of the same loaded model (``load_whisper_encoder`` with
``pad_to_30s`` True and False) are timed batch by batch, alternating, on the same threads,
and their pooled features compared layer by layer:

* ``r layer``: Pearson r of the two (TR x dim) feature matrices, each dim centred over TRs
  (dims weighted by their variance, as PCA weights them);
* ``median r dim`` / ``min r dim``: over dims, r of each dim's time course.

The model is whisper-base converted from the ``demo`` extra's CTranslate2 packages
(``--weights DIR`` for another Whisper directory).

Example: ``python benchmarks/whisper_unpadded.py --tr-win 1 --n-tr 64``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TR_SECONDS = 1.5


def story_windows(tr_win: int, n_tr: int) -> tuple[np.ndarray, int]:
    """``n_tr`` windows of ``tr_win`` TRs spread over the demo story, zero-padded at the start."""
    import soundfile

    from featstore.datasets.demo import demo_story_paths

    audio_path = next(p for p in demo_story_paths() if str(p).endswith(".ogg"))
    audio, rate = soundfile.read(audio_path, dtype="float32")
    per_tr = round(TR_SECONDS * rate)
    total = len(audio) // per_tr
    ends = np.linspace(1, total, n_tr).round().astype(int) * per_tr
    width = tr_win * per_tr
    padded = np.concatenate([np.zeros(width, dtype=np.float32), audio])
    return np.stack([padded[end : end + width] for end in ends]), rate


def layer_agreement(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float]:
    a, b = a - a.mean(0), b - b.mean(0)
    whole = float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))
    per_dim = (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))
    return whole, float(np.median(per_dim)), float(per_dim.min())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tr-win", type=int, default=1)
    parser.add_argument("--n-tr", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="float32")
    parser.add_argument("--weights", default=None, help="a Whisper model directory")
    args = parser.parse_args(argv)
    import torch

    from featstore.extract.ct2_whisper import demo_whisper_dir
    from featstore.extract.registry import resolve_model
    from featstore.extract.whisper import load_whisper_encoder

    if args.threads:
        torch.set_num_threads(args.threads)
    weights = args.weights or demo_whisper_dir()
    if weights is None:
        sys.exit("no Whisper model: install the demo extra or pass --weights DIR")
    spec = resolve_model(str(weights))
    windows, _ = story_windows(args.tr_win, args.n_tr)
    passes = {
        padded: load_whisper_encoder(
            spec, device=args.device, precision=args.precision, pad_to_30s=padded
        )
        for padded in (True, False)
    }
    features = {True: [], False: []}
    seconds = {True: 0.0, False: 0.0}
    for start in range(0, len(windows), args.batch_size):
        batch = windows[start : start + args.batch_size]
        for padded, encoder in passes.items():
            began = time.perf_counter()
            features[padded].append(encoder.encode(batch))
            seconds[padded] += time.perf_counter() - began
    padded_features = np.concatenate(features[True], axis=1)
    fast_features = np.concatenate(features[False], axis=1)
    print(
        f"{weights}: tr_win {args.tr_win} ({args.tr_win * TR_SECONDS:g} s), {len(windows)} "
        f"windows, device {args.device}, precision {args.precision}, torch threads "
        f"{torch.get_num_threads()}"
    )
    print(
        f"padded {seconds[True]:.1f} s, unpadded {seconds[False]:.1f} s: "
        f"{seconds[True] / seconds[False]:.1f}x faster"
    )
    names = passes[True].layer_names
    worst = 1.0
    for k, name in enumerate(names):
        whole, median, lowest = layer_agreement(padded_features[k], fast_features[k])
        worst = min(worst, whole)
        print(
            f"  {name:11s} r layer {whole:.4f}  median r dim {median:.4f}  min r dim {lowest:.4f}"
        )
    print(f"lowest per-layer r: {worst:.4f} ({'>=' if worst >= 0.99 else '<'} 0.99)")


if __name__ == "__main__":
    main()
