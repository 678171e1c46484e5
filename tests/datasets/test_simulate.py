import numpy as np
import pytest

from featstore.datasets.simulate import PlantedSource, simulate_bold
from featstore.errors import InputError

NAMES = ["A1", "PBelt", "STSdp", "44", "V1", "V2", "MT"]


def _sources(n_tr=120, seed=0):
    rng = np.random.default_rng(seed)
    text = rng.standard_normal((n_tr, 13))
    audio = rng.standard_normal((n_tr, 5))
    return [
        PlantedSource("text", text, ["STSdp", "44"]),
        PlantedSource("audio", audio, ["A1", "PBelt"], n_directions=3),
    ]


def _delayed(features):
    return np.hstack(
        [np.vstack([np.zeros((lag, features.shape[1])), features[:-lag]]) for lag in (1, 2, 3, 4)]
    )


def test_planted_rois_are_linear_in_their_source_only():
    sources = _sources()
    bold, subjects, planted = simulate_bold(sources, NAMES, n_subjects=3, snr=3.0, seed=1)
    assert bold.shape == (3, 120, 7) and bold.dtype == np.float32
    assert subjects == ["sim01", "sim02", "sim03"]
    assert planted == {"text": [2, 3], "audio": [0, 1]}
    for source, rois in zip(sources, (planted["text"], planted["audio"]), strict=True):
        design = _delayed((source.features - source.features.mean(0)) / source.features.std(0))
        design = np.hstack([design, np.ones((120, 1))])
        for roi in range(7):
            y = bold[0, :, roi].astype(float)
            fit = design @ np.linalg.lstsq(design, y, rcond=None)[0]
            r2 = 1 - ((y - fit) ** 2).sum() / ((y - y.mean()) ** 2).sum()
            # 53 regressors on 120 TRs explain ~0.44 of pure noise by chance
            assert (r2 > 0.85) if roi in rois else (r2 < 0.7)


def test_same_seed_same_bold_and_noise_only_elsewhere():
    a = simulate_bold(_sources(), NAMES, seed=3)[0]
    b = simulate_bold(_sources(), NAMES, seed=3)[0]
    np.testing.assert_array_equal(a, b)
    noise_only = a[:, :, 4:]
    assert abs(noise_only.mean()) < 0.2 and 0.8 < noise_only.std() < 1.2


def test_bad_sources():
    with pytest.raises(InputError, match="unknown ROI names \\['X9'\\]"):
        simulate_bold([PlantedSource("s", np.ones((10, 2)), ["X9"])], NAMES)
    with pytest.raises(InputError, match="disagree on the TR count"):
        simulate_bold(
            [
                PlantedSource("a", np.ones((10, 2)), ["A1"]),
                PlantedSource("b", np.ones((9, 2)), ["V1"]),
            ],
            NAMES,
        )
