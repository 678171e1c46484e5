import numpy as np
import pytest

from featstore.evaluate.encoding.delays import make_delays
from tests.evaluate.conftest import N_DIM, N_TR, naive_delays


@pytest.mark.parametrize("delays", [(1, 2, 3, 4), (0,), (-2, 0, 3), (1, 5, 2), (36, 37, 40)])
def test_matches_a_loop_over_rows(rng, delays):
    features = rng.standard_normal((N_TR, N_DIM))
    out = make_delays(features, delays)
    assert out.shape == (N_TR, N_DIM * len(delays))
    np.testing.assert_array_equal(out, naive_delays(features, delays))


def test_never_wraps_around(rng):
    features = rng.standard_normal((N_TR, N_DIM)) + 5.0  # no exact zeros
    out = make_delays(features, (1, 2, 3, 4))
    for k, delay in enumerate((1, 2, 3, 4)):
        block = out[:, k * N_DIM : (k + 1) * N_DIM]
        assert not block[:delay].any()
        assert block[delay:].all()


def test_keeps_the_dtype(rng):
    features = rng.standard_normal((N_TR, N_DIM)).astype(np.float32)
    assert make_delays(features, (1, 2)).dtype == np.float32


def test_delays_restart_at_every_segment_start():
    rng = np.random.default_rng(5)
    features = rng.standard_normal((29, 3))
    starts, delays = [0, 11, 12, 20], (-1, 0, 2, 5)
    expected = np.vstack(
        [
            naive_delays(features[a:b], delays)
            for a, b in zip(starts, [*starts[1:], len(features)], strict=True)
        ]
    )
    np.testing.assert_array_equal(make_delays(features, delays, starts), expected)
    np.testing.assert_array_equal(make_delays(features, delays, [0]), make_delays(features, delays))
