"""encode() against a per-subject reference: sklearn preprocessing + himalaya RidgeCV."""

import numpy as np
import pytest
from himalaya.ridge import RidgeCV
from himalaya.scoring import r2_score as himalaya_r2
from scipy.stats import pearsonr
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.metrics import r2_score
from sklearn.preprocessing import StandardScaler

from featstore.errors import InputError
from featstore.evaluate import EncodingSettings, encode
from featstore.evaluate.encoding.split import contiguous_folds
from tests.evaluate.conftest import N_ROI, N_SUBJECT, N_TR, gapped_kfold, naive_delays

ALPHAS = tuple(np.logspace(-2, 5, 8))


def reference_design(features, train, n_components, delays):
    """StandardScaler per space, concatenation, PCA on train rows, naive delays."""
    scaled = np.hstack([StandardScaler().fit(f[train]).transform(f) for f in features])
    if n_components:
        scaled = PCA(n_components, svd_solver="full").fit(scaled[train]).transform(scaled)
    return naive_delays(scaled, delays)


def reference_subject(features, bold_subject, settings, train, test):
    """One subject, the textbook way: returns test predictions (z-units), alphas, Y_test."""
    X = reference_design(features, train, settings.pca, settings.delays)
    scaler = StandardScaler().fit(bold_subject[train].astype(np.float64))
    Y = scaler.transform(bold_subject.astype(np.float64))
    if settings.alpha is not None:
        model = Ridge(alpha=settings.alpha, fit_intercept=False).fit(X[train], Y[train])
        return model.predict(X[test]), np.full(Y.shape[1], settings.alpha), Y[test]
    folds = gapped_kfold(len(train), settings.cv, settings.gap)
    model = RidgeCV(
        alphas=np.asarray(settings.alphas),
        cv=folds,
        solver_params={"score_func": himalaya_r2, "warn": False},
    ).fit(X[train], Y[train])
    return model.predict(X[test]), model.best_alphas_, Y[test]


def hand_split(settings):
    trim = settings.resolved_trim
    kept = np.arange(trim, N_TR - trim)
    n_test = int(np.ceil(settings.test_frac * len(kept)))
    return kept[: len(kept) - n_test - settings.gap], kept[len(kept) - n_test :]


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-6), ("float32", 1e-4)])
@pytest.mark.parametrize(
    "overrides",
    [
        {"pca": 5, "gap": 1},  # 20 delayed features > fold rows: the dual form
        {"pca": 3, "cv": 3, "delays": (0, 2)},  # primal form, other delays
        {"pca": 0, "delays": (1,), "trim": 2},  # no PCA
        {"pca": 4, "alpha": 30.0},  # the reference study's fixed alpha
    ],
)
def test_every_subject_matches_the_per_subject_reference(problem, overrides, dtype, tolerance):
    feature_a, _, bold = problem
    settings = EncodingSettings(alphas=ALPHAS, dtype=dtype, **overrides)
    result = encode([feature_a], bold, settings, return_predictions=True)
    train, test = hand_split(settings)
    np.testing.assert_array_equal(result.train_index, train)
    np.testing.assert_array_equal(result.test_index, test)
    for s in range(N_SUBJECT):
        predictions, alphas, Y_test = reference_subject([feature_a], bold[s], settings, train, test)
        r = [pearsonr(Y_test[:, v], predictions[:, v]).statistic for v in range(N_ROI)]
        np.testing.assert_allclose(result.r[s], r, atol=tolerance, rtol=0)
        np.testing.assert_allclose(result.alpha[s], alphas, rtol=1e-12)
        # predictions and test BOLD in z-units (train statistics), as r was computed
        scale = np.abs(predictions).max()
        np.testing.assert_allclose(result.predictions[s], predictions, atol=tolerance * scale)
        np.testing.assert_allclose(result.observed[s], Y_test, atol=tolerance, rtol=0)
        scaler = StandardScaler().fit(bold[s, train].astype(np.float64))
        in_units = scaler.inverse_transform(predictions)
        np.testing.assert_allclose(
            result.predictions_in_bold_units()[s],
            in_units,
            atol=tolerance * np.abs(in_units).max(),
            rtol=0,
        )
    assert result.predictions.dtype == result.observed.dtype == np.dtype(dtype)
    assert result.band_alphas is None and result.partition is None


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-6), ("float32", 1e-4)])
def test_concat_fusion_and_partition_match_three_explicit_fits(problem, dtype, tolerance):
    feature_a, feature_b, bold = problem
    settings = EncodingSettings(pca=4, alphas=ALPHAS, dtype=dtype, cv=4)
    result = encode([feature_a, feature_b], bold, settings, partition=True)
    train, test = hand_split(settings)
    for s in range(N_SUBJECT):
        r2 = {}
        for name, spaces in (
            ("a", [feature_a]),
            ("b", [feature_b]),
            ("ab", [feature_a, feature_b]),
        ):
            predictions, alphas, Y_test = reference_subject(spaces, bold[s], settings, train, test)
            r2[name] = r2_score(Y_test, predictions, multioutput="raw_values")
            if name == "ab":
                r = [pearsonr(Y_test[:, v], predictions[:, v]).statistic for v in range(N_ROI)]
                np.testing.assert_allclose(result.r[s], r, atol=tolerance, rtol=0)
                np.testing.assert_allclose(result.alpha[s], alphas, rtol=1e-12)
        expected = {
            "unique_a": r2["ab"] - r2["b"],
            "unique_b": r2["ab"] - r2["a"],
            "shared": r2["a"] + r2["b"] - r2["ab"],
        }
        for key, values in expected.items():
            np.testing.assert_allclose(result.partition[key][s], values, atol=tolerance, rtol=0)


def test_banded_fusion_gives_one_alpha_per_space(problem):
    feature_a, feature_b, bold = problem
    alphas = (0.1, 10.0, 1000.0)
    settings = EncodingSettings(pca=6, alphas=alphas, method="banded", dtype="float64")
    result = encode([feature_a, feature_b], bold, settings, partition=True)
    assert result.band_alphas.shape == (N_SUBJECT, N_ROI, 2)
    assert np.isin(result.band_alphas, alphas).all()
    assert np.isnan(result.alpha).all()
    assert set(result.partition) == {"unique_a", "unique_b", "shared"}
    # Banded with PCA 6 = 3 + 3 components per space, each with its alpha: compare with
    # plain ridge on the same features scaled by 1/sqrt(alpha_k) (alpha 1).
    train, test = hand_split(settings)
    for s in range(N_SUBJECT):
        designs = [reference_design([f], train, 3, settings.delays) for f in (feature_a, feature_b)]
        Y = StandardScaler().fit(bold[s, train].astype(np.float64)).transform(bold[s])
        for v in range(N_ROI):
            pair = result.band_alphas[s, v]
            X = np.hstack([d / np.sqrt(a) for d, a in zip(designs, pair, strict=True)])
            model = Ridge(alpha=1.0, fit_intercept=False).fit(X[train], Y[train, v])
            r = pearsonr(Y[test, v], model.predict(X[test])).statistic
            assert result.r[s, v] == pytest.approx(r, abs=1e-6)


def test_constant_rois_get_nan_and_one_warning(problem):
    feature_a, _, bold = problem
    bold = bold.copy()
    bold[1, :, 2] = 0.1  # the mean of many 0.1 is not exactly 0.1: still constant
    bold[2, 25:, 4] = 1.0  # constant over the test part (TRs 27..32) only
    result = encode([feature_a], bold, EncodingSettings(pca=4, alphas=ALPHAS))
    assert np.isnan(result.r[1, 2]) and np.isnan(result.r[2, 4]) and np.isnan(result.alpha[1, 2])
    assert np.isfinite(np.delete(result.r.ravel(), [1 * N_ROI + 2, 2 * N_ROI + 4])).all()
    assert result.warnings[0] == (
        "2 constant ROIs (zero variance in the train or test part) get r = NaN: "
        "subject 1: ROI 2; subject 2: ROI 4"
    )
    named = encode(
        [feature_a],
        bold,
        EncodingSettings(pca=4, alphas=ALPHAS),
        subject_names=["s-a", "s-b", "s-c"],
        roi_names=[f"roi{v}" for v in range(N_ROI)],
    )
    assert named.warnings[0].endswith("subject 's-b': ROI 2 (roi2); subject 's-c': ROI 4 (roi4)")
    np.testing.assert_array_equal(named.r, result.r)  # names change the message only


@pytest.mark.parametrize("method", ["concat", "banded"])
def test_a_constant_feature_set_gives_nan_everywhere_and_names_it(problem, method):
    feature_a, feature_b, bold = problem
    flat = np.zeros_like(feature_b)  # an all-zero layer
    flat[-3:] = 1.0  # varies over the last (test) TRs only: still nothing to learn from
    settings = EncodingSettings(pca=4, alphas=ALPHAS, method=method)
    single = encode([flat], bold, settings, names=["features/byo/tr1 layer 2"])
    fused = encode([feature_a, flat], bold, settings, partition=True, names=["text", "flat"])
    for result in (single, fused):
        assert np.isnan(result.r).all() and np.isnan(result.alpha).all()
        assert not result.n_edge_alpha.any() and np.isnan(result.cv_score).all()
        assert len(result.warnings) == 1 and result.warnings[0].startswith(result.excluded)
    assert single.excluded == (
        "features/byo/tr1 layer 2 is constant over the 23 train TRs (zero variance in every dim)"
    )
    assert fused.excluded.startswith("flat (side b of the fusion) is constant")
    assert all(np.isnan(v).all() for v in fused.partition.values())
    if method == "banded":
        assert np.isnan(fused.band_alphas).all()
    usable = encode([feature_a, feature_b], bold, settings, partition=True)
    assert usable.excluded is None and np.isfinite(usable.r).all()


@pytest.mark.parametrize(
    "delays",
    [(-3, -2, -1, 0, 1), (-2, -1, 0, 1)],  # --delays -3,…,1 and --fir-window 4 --fir-offset -2
)
def test_negative_delays_never_put_test_stimulus_in_train_rows(problem, delays, monkeypatch):
    from featstore.evaluate.encoding import pipeline

    feature_a, _, bold = problem
    calls = []

    def recorded(*args):
        calls.append(contiguous_folds(*args))
        return calls[-1]

    monkeypatch.setattr(pipeline, "contiguous_folds", recorded)
    settings = EncodingSettings(pca=4, alphas=ALPHAS, delays=delays)
    result = encode([feature_a], bold, settings)
    [folds] = calls

    def stimulus_of(rows):  # the TRs whose stimulus design rows ``rows`` hold
        return {int(t) - d for t in rows for d in delays}

    assert not stimulus_of(result.train_index) & set(result.test_index.tolist())
    for fit, validation in folds:
        train, held_out = result.train_index[fit], result.train_index[validation]
        before = train[train < held_out[0]]  # negative delays look forward in time
        assert not stimulus_of(before) & set(held_out.tolist())
    assert result.test_index[0] - result.train_index[-1] - 1 == -min(delays)
    assert result.warnings[0] == (
        f"delay {min(delays)} makes train row t hold the stimulus of TR t+{-min(delays)}: "
        f"`gap` raised from 0 to {-min(delays)} TRs (gap >= -min(delays)) so that no train "
        "row holds the stimulus of a test TR or of a CV validation block"
    )
    wide = encode([feature_a], bold, EncodingSettings(pca=4, alphas=ALPHAS, delays=delays, gap=5))
    assert wide.test_index[0] - wide.train_index[-1] - 1 == 5 and not wide.warnings


def test_alphas_at_the_grid_edge_are_reported(problem):
    feature_a, _, bold = problem
    # a grid of huge alphas only: the predictable ROIs ask for less regularisation
    result = encode([feature_a], bold, EncodingSettings(pca=4, alphas=(1e6, 1e7)))
    at_low = int((result.alpha == 1e6).sum())
    assert at_low > 0.1 * result.alpha.size and len(result.warnings) == 1
    assert (
        f"smallest of the grid (1e+06) for {at_low} of 15 subject x ROI fits" in result.warnings[0]
    )
    for alphas in (ALPHAS, tuple(np.logspace(-2, 8, 11))):
        result = encode([feature_a], bold, EncodingSettings(pca=4, alphas=alphas))
        predictable = result.cv_score > 0
        at_high = (result.alpha == alphas[-1]) & predictable
        at_edge = (result.alpha == alphas[0]) | at_high
        assert result.n_edge_alpha.dtype == np.int64
        np.testing.assert_array_equal(result.n_edge_alpha, at_edge.sum(axis=1))
        warned = any("largest" in w for w in result.warnings)
        assert warned == (at_high.sum() > 0.1 * predictable.sum())


def test_unpredictable_rois_at_the_largest_alpha_are_not_a_narrow_grid(rng):
    # pure noise: CV picks the largest alpha (shrink to zero), which is right, not a warning
    features = rng.standard_normal((60, 7))
    bold = rng.standard_normal((2, 60, 9))
    result = encode([features], bold, EncodingSettings(pca=0, alphas=(1e-2, 1.0, 1e2, 1e4)))
    assert (result.alpha == 1e4).mean() > 0.5
    assert (result.cv_score[result.alpha == 1e4] <= 0).all()
    assert not any("largest" in w for w in result.warnings)


def test_n_threads_gives_the_same_result(problem):
    feature_a, _, bold = problem
    settings = EncodingSettings(pca=4, alphas=ALPHAS, dtype="float64")
    one = encode([feature_a], bold, settings, n_threads=1)
    np.testing.assert_allclose(encode([feature_a], bold, settings).r, one.r, atol=1e-12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f, b: ([f[:-4]], b), "bold has 37 TRs but features\\[0\\] has 33"),
        (lambda f, b: ([f], b[0]), "bold has shape \\(37, 5\\)"),
        (lambda f, b: (f, b), "one bare array"),
        (lambda f, b: ([f[:, 0]], b), "features\\[0\\] has shape \\(37,\\)"),
    ],
)
def test_bad_shapes_name_the_values(problem, change, message):
    feature_a, _, bold = problem
    features, bold = change(feature_a, bold)
    with pytest.raises(InputError, match=message):
        encode(features, bold, EncodingSettings(pca=4))


def test_non_finite_input_names_subject_and_roi(problem):
    feature_a, _, bold = problem
    bold = bold.copy()
    bold[2, 7, 3] = np.nan
    with pytest.raises(InputError, match="non-finite values in 1 ROIs \\(subject 2 ROI 3\\)"):
        encode([feature_a], bold, EncodingSettings(pca=4))
    features = feature_a.copy()
    features[5, 2] = np.inf
    with pytest.raises(InputError, match="first at TR 5, dim 2"):
        encode([features], problem[2], EncodingSettings(pca=4))


def test_too_many_components_and_too_short_test_part(problem, rng):
    feature_a, feature_b, bold = problem
    wide = rng.standard_normal((feature_a.shape[0], 30))
    with pytest.raises(InputError, match=r"pca=25 components.*min\(23, 30\)"):
        encode([wide], bold, EncodingSettings(pca=25))
    with pytest.raises(InputError, match=r"test part has 3 TRs.*largest delay \(4\)"):
        encode([feature_a], bold, EncodingSettings(pca=4, test_frac=0.1))
    with pytest.raises(InputError, match="pca=1 with method='banded'"):
        encode([feature_a, feature_b], bold, EncodingSettings(pca=1, method="banded"))
    with pytest.raises(InputError, match="variance partitioning needs 2 feature sets"):
        encode([feature_a], bold, EncodingSettings(pca=4), partition=True)


def test_components_beyond_the_feature_width_keep_every_axis(problem):
    # all 11 axes are a rotation of the z-scored features: ridge gives the same fit as no PCA
    feature_a, _, bold = problem
    settings = EncodingSettings(pca=0, alphas=ALPHAS, dtype="float64")
    expected = encode([feature_a], bold, settings)
    for pca in (11, 250):
        got = encode([feature_a], bold, EncodingSettings(pca=pca, alphas=ALPHAS, dtype="float64"))
        np.testing.assert_allclose(got.r, expected.r, atol=1e-10)
        np.testing.assert_array_equal(got.alpha, expected.alpha)
