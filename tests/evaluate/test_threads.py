import pytest
from threadpoolctl import threadpool_info

from featstore.errors import InputError
from featstore.evaluate import blas_threads


def _blas_threads():
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_pins_blas_threads_inside_the_block_only():
    before = _blas_threads()
    assert before, "numpy's BLAS should be visible to threadpoolctl"
    for n_threads in (1, 2):  # at least one of them differs from the current setting
        with blas_threads(n_threads):
            assert set(_blas_threads()) == {n_threads}
        assert _blas_threads() == before
    with blas_threads(None):
        assert _blas_threads() == before


def test_refuses_zero_threads():
    with pytest.raises(InputError, match="n_threads=0"), blas_threads(0):
        pass
