"""Lanczos resampling against a slow direct sum and on synthetic sinusoids."""

from __future__ import annotations

import math

import numpy as np
import pytest

from featstore.errors import InputError
from featstore.extract.resample import lanczos_kernel, lanczos_resample

TR = 1.5
N_TR = 300  # > one block of TRs, so block edges are exercised


def slow_lanczos(values, times, tr_times, window, cutoff_mult):
    """Reference: the published formula term by term, window·sin(πx)·sin(πx/a)/(πx)²."""
    tau = (tr_times[1] - tr_times[0]) / cutoff_mult
    out = np.zeros((len(tr_times), values.shape[1]))
    for k, tr_time in enumerate(tr_times):
        for i, word_time in enumerate(times):
            x = (tr_time - word_time) / tau
            if x == 0:
                weight = 1.0
            elif abs(x) > window:
                weight = 0.0
            else:
                weight = window * math.sin(math.pi * x) * math.sin(math.pi * x / window)
                weight /= math.pi**2 * x**2
            out[k] += weight * values[i]
    return out


STEP = TR / 2.5  # about 2.5 words per TR, as in natural speech


@pytest.fixture
def irregular():
    """Words at jittered times (±40 % of the mean step), in shuffled order, 11 dims."""
    rng = np.random.default_rng(2)
    times = np.arange(0, N_TR * TR, STEP) + rng.uniform(-0.4, 0.4, int(N_TR * TR / STEP)) * STEP
    times = times[rng.permutation(times.size)]
    return rng.standard_normal((times.size, 11)), times, (np.arange(N_TR) + 0.5) * TR


def kernel_integral(window=3):
    """∫ L(t) dt in units of τ: the gain of the summed filter per word per τ."""
    return np.trapezoid(
        lanczos_kernel(np.linspace(-window, window, 60001), window=window), dx=2 * window / 60000
    )


@pytest.mark.parametrize(("window", "cutoff_mult"), [(3, 1.0), (2, 0.7)])
def test_matches_slow_direct_sum(irregular, window, cutoff_mult):
    values, times, tr_times = irregular
    sub = slice(0, 120)  # keep the O(n_tr · n_words) Python reference short
    got = lanczos_resample(values, times, tr_times[sub], window, cutoff_mult)
    expected = slow_lanczos(values, times, tr_times[sub], window, cutoff_mult)
    np.testing.assert_allclose(got, expected, atol=1e-10)


def test_kernel_shape():
    np.testing.assert_allclose(
        lanczos_kernel(np.array([0.0, 1.0, 2.0, 3.5])), [1, 0, 0, 0], atol=1e-15
    )
    assert lanczos_kernel(np.array([0.5]))[0] == pytest.approx(np.sinc(0.5) * np.sinc(0.5 / 3))


def test_low_frequency_recovered_and_high_frequency_attenuated(irregular):
    _, times, tr_times = irregular
    nyquist = 1 / (2 * TR)
    gain = kernel_integral() * TR / STEP  # words per τ times the kernel's integral
    inner = slice(10, N_TR - 10)  # away from the edges, where the kernel runs out of words
    slow = np.sin(2 * np.pi * 0.1 * nyquist * times + 0.3)[:, None]
    got = lanczos_resample(slow, times, tr_times)[inner, 0] / gain
    expected = np.sin(2 * np.pi * 0.1 * nyquist * tr_times[inner] + 0.3)
    # the jittered word times leave sampling noise of a few percent around the sinusoid
    assert np.sqrt(np.mean((got - expected) ** 2)) < 0.1
    assert np.corrcoef(got, expected)[0, 1] > 0.99
    # above the TR grid's Nyquist frequency the amplitude falls to the noise floor the
    # jittered sampling leaves (~0.3 here), against ~1 for a passband sinusoid
    for freq, low, high in ((0.5, 0.9, 1.1), (1.6, 0.0, 0.4)):
        wave = np.sin(2 * np.pi * freq * nyquist * times)[:, None]
        out = lanczos_resample(wave, times, tr_times)[inner, 0] / gain
        assert low < np.std(out) / np.sqrt(0.5) < high


def test_sum_scales_with_word_rate():
    tr_times = (np.arange(60) + 0.5) * TR
    ones = np.ones((int(60 * TR / STEP), 1))
    dense = np.ones((2 * ones.shape[0], 1))
    sparse_sum = lanczos_resample(ones, np.arange(ones.shape[0]) * STEP, tr_times)[10:-10, 0]
    dense_sum = lanczos_resample(dense, np.arange(dense.shape[0]) * STEP / 2, tr_times)[10:-10, 0]
    np.testing.assert_allclose(sparse_sum, kernel_integral() * TR / STEP, rtol=0.02)
    np.testing.assert_allclose(dense_sum, 2 * sparse_sum, rtol=0.02)


def test_input_checks(irregular):
    values, times, tr_times = irregular
    with pytest.raises(InputError, match="one time per word"):
        lanczos_resample(values, times[:-1], tr_times)
    with pytest.raises(InputError, match="evenly spaced"):
        lanczos_resample(values, times, tr_times**1.01)
    with pytest.raises(InputError, match="must be positive"):
        lanczos_resample(values, times, tr_times, cutoff_mult=0)
