"""Pinning the BLAS threads of numpy/scipy for a block of work."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from featstore.errors import InputError


@contextlib.contextmanager
def blas_threads(n_threads: int | None) -> Iterator[None]:
    """Limit the BLAS/OpenMP threads to ``n_threads`` inside the block (None: unchanged).

    Several workers of a grid each running a multi-threaded BLAS oversubscribe the cores
    and run slower than one thread each; the benchmark compares 1 and 2 threads.

    Parameters
    ----------
    n_threads : int or None
        BLAS and OpenMP threads inside the block; None leaves them as they are.

    Returns
    -------
    contextlib.AbstractContextManager

    Examples
    --------
    >>> import numpy as np
    >>> from featstore.evaluate.encoding import blas_threads
    >>> with blas_threads(1):
    ...     product = np.ones((50, 50)) @ np.ones((50, 50))
    """
    if n_threads is None:
        yield
        return
    if int(n_threads) < 1:
        raise InputError(f"n_threads={n_threads}: expected at least 1 thread")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=int(n_threads)):
        yield
