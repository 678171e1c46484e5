"""Word → TR resampling: the mean against a plain loop, the Lanczos method against
lanczos_resample (itself checked against the formula in test_lanczos.py)."""

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.extract.resample import (
    lanczos_resample,
    lanczos_tr_times,
    tr_membership,
    words_to_trs,
)

N_WORD, DIM, N_TR = 41, 7, 13


def loop_reference(values, tr_index, n_tr, used):
    out = np.zeros((n_tr, values.shape[1]))
    has = np.zeros(n_tr, bool)
    for t in range(n_tr):
        members = [i for i in range(len(values)) if used[i] and tr_index[i] == t]
        if members:
            out[t] = values[members].mean(axis=0)
            has[t] = True
    return out, has


@pytest.fixture
def words():
    rng = np.random.default_rng(3)
    values = rng.standard_normal((N_WORD, DIM)).astype(np.float32)
    tr_index = np.sort(rng.integers(-1, N_TR + 3, N_WORD))
    used = rng.random(N_WORD) > 0.2
    return values, tr_index, used


def test_mean_matches_loop(words):
    values, tr_index, used = words
    got, has = words_to_trs(values, tr_index, N_TR, used=used)
    want, want_has = loop_reference(values, tr_index, N_TR, used)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(has, want_has)
    assert got.shape == (N_TR, DIM)
    assert not got[~has].any()


def test_all_used_by_default(words):
    values, tr_index, _ = words
    got, _ = words_to_trs(values, tr_index, N_TR)
    want, _ = loop_reference(values, tr_index, N_TR, np.ones(N_WORD, bool))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_membership_counts_words_outside_the_tr_axis(words):
    _, tr_index, used = words
    counted, has = tr_membership(tr_index, N_TR, used)
    np.testing.assert_array_equal(counted, used & (tr_index >= 0) & (tr_index < N_TR))
    assert has.shape == (N_TR,)
    assert set(np.flatnonzero(has)) == set(tr_index[counted])


def test_bad_inputs_are_named(words):
    values, tr_index, used = words
    with pytest.raises(InputError, match="to_tr='bogus'"):
        words_to_trs(values, tr_index, N_TR, "bogus")
    with pytest.raises(InputError, match="word=41"):
        words_to_trs(values[:-1], tr_index, N_TR)
    with pytest.raises(InputError, match="used has shape"):
        tr_membership(tr_index, N_TR, used[:-1])


def test_lanczos_method_is_lanczos_resample_of_the_used_words(words):
    values, tr_index, used = words
    rng = np.random.default_rng(4)
    times = np.sort(rng.uniform(-2.0, 1.5 * (N_TR + 2), N_WORD))
    tr_times = lanczos_tr_times(N_TR, 1.5, "floor")
    got, has = words_to_trs(
        values, tr_index, N_TR, "lanczos", used=used, word_times=times, tr_times=tr_times
    )
    want = lanczos_resample(values[used], times[used], tr_times, window=3, cutoff_mult=1.0)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(has, tr_membership(tr_index, N_TR, used)[1])
    narrow, _ = words_to_trs(
        values,
        tr_index,
        N_TR,
        "lanczos",
        word_times=times,
        tr_times=tr_times,
        window=2,
        cutoff_mult=0.5,
    )
    np.testing.assert_allclose(narrow, lanczos_resample(values, times, tr_times, 2, 0.5))
    with pytest.raises(InputError, match="needs the word times"):
        words_to_trs(values, tr_index, N_TR, "lanczos")
    with pytest.raises(InputError, match="tr_times has shape"):
        words_to_trs(values, tr_index, N_TR, "lanczos", word_times=times, tr_times=tr_times[:-1])


def test_lanczos_tr_times_centre_the_span_the_mean_method_averages():
    # floor: TR k holds words starting in [k TR, (k+1) TR); ceil: in ((k-1) TR, k TR]
    np.testing.assert_allclose(lanczos_tr_times(3, 2.0, "floor"), [1.0, 3.0, 5.0])
    np.testing.assert_allclose(lanczos_tr_times(3, 2.0, "ceil"), [-1.0, 1.0, 3.0])
    with pytest.raises(InputError, match="tr_assign 'round'"):
        lanczos_tr_times(3, 2.0, "round")
