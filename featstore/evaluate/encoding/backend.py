"""Array backends of the encoding numerics: numpy on the CPU, or torch on a CPU or GPU.

The ridge, PCA and delay functions are written once against the few operations below, so
the same code runs on numpy arrays or on torch tensors of one device. A
:class:`Backend` is chosen per call (``encode(..., backend="torch", device="cuda")``); the
data of a config are moved to its device once (``asarray``) and come back once
(``to_numpy``), never per fold or per alpha. torch is imported only when the torch
backend is asked for: the numpy backend never imports it.

Precision follows the numpy path: decompositions (PCA, the Gram eigendecompositions) in
float64, the products with the targets in ``settings.dtype`` (float32 by default).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from featstore.errors import InputError

BACKENDS = ("numpy", "torch")


@dataclass(frozen=True)
class Backend:
    """Where and with what library the numerics run.

    Attributes
    ----------
    name : {"numpy", "torch"}
    device : str
        ``"cpu"`` for numpy; ``"cpu"``, ``"cuda"`` or ``"cuda:N"`` for torch.
    """

    name: str = "numpy"
    device: str = "cpu"
    _torch: Any = field(default=None, repr=False, compare=False)

    @property
    def is_numpy(self) -> bool:
        return self.name == "numpy"

    def dtype(self, name: str | np.dtype) -> Any:
        """The library's dtype for a numpy dtype name (``"float32"``, ``"int64"``, …)."""
        name = np.dtype(name).name
        return np.dtype(name) if self.is_numpy else getattr(self._torch, name)

    def asarray(self, values: Any, dtype: str | np.dtype | None = None) -> Any:
        """``values`` (numpy array, tensor or sequence) as an array of this backend."""
        if self.is_numpy:
            return np.asarray(values, dtype=dtype)
        torch = self._torch
        if isinstance(values, torch.Tensor):
            tensor = values
        else:
            tensor = torch.as_tensor(np.asarray(values))
        return tensor.to(device=self.device, dtype=None if dtype is None else self.dtype(dtype))

    def to_numpy(self, values: Any) -> np.ndarray:
        """A numpy copy (or view) of an array of this backend, on the host."""
        if self.is_numpy:
            return np.asarray(values)
        return values.detach().cpu().numpy()

    def index(self, positions: np.ndarray) -> Any:
        """Integer positions (a numpy array) as an index of this backend's arrays."""
        return positions if self.is_numpy else self.asarray(positions, "int64")

    def empty(self, shape: tuple[int, ...], dtype: str | np.dtype) -> Any:
        if self.is_numpy:
            return np.empty(shape, dtype=dtype)
        return self._torch.empty(shape, dtype=self.dtype(dtype), device=self.device)

    def zeros(self, shape: tuple[int, ...], dtype: str | np.dtype) -> Any:
        if self.is_numpy:
            return np.zeros(shape, dtype=dtype)
        return self._torch.zeros(shape, dtype=self.dtype(dtype), device=self.device)

    def cast(self, values: Any, dtype: str | np.dtype) -> Any:
        """``values`` in ``dtype`` (no copy when it already is)."""
        if self.is_numpy:
            return values.astype(dtype, copy=False)
        return values.to(self.dtype(dtype))

    def concat(self, arrays: list[Any], axis: int) -> Any:
        if self.is_numpy:
            return np.concatenate(arrays, axis=axis)
        return self._torch.cat(arrays, dim=axis)

    def eigh(self, matrix: Any) -> tuple[Any, Any]:
        """Eigenvalues (increasing) and eigenvectors of a symmetric matrix."""
        if self.is_numpy:
            return np.linalg.eigh(matrix)
        return self._torch.linalg.eigh(matrix)

    def svd(self, matrix: Any) -> tuple[Any, Any, Any]:
        """Thin SVD ``u, s, vt``."""
        if self.is_numpy:
            return np.linalg.svd(matrix, full_matrices=False)
        return self._torch.linalg.svd(matrix, full_matrices=False)

    def mean_std(self, values: Any) -> tuple[Any, Any]:
        """Mean and standard deviation (``ddof=0``) of each column."""
        if self.is_numpy:
            return values.mean(axis=0), values.std(axis=0)
        return values.mean(dim=0), values.std(dim=0, correction=0)

    def zeros_like_rows(self, values: Any, shape: tuple[int, ...]) -> Any:
        """Zeros of ``shape`` with the dtype (and device) of ``values``."""
        if self.is_numpy:
            return np.zeros(shape, dtype=values.dtype)
        return values.new_zeros(shape)

    def flip_columns(self, values: Any) -> Any:
        """Columns in reverse order."""
        return values[:, ::-1] if self.is_numpy else values.flip(1)

    def clip_min(self, values: Any, lowest: float) -> Any:
        if self.is_numpy:
            return np.clip(values, lowest, None)
        return values.clamp(min=lowest)

    def sum(self, values: Any, axis: int, dtype: str | None = None) -> Any:
        """Sum along ``axis``, accumulated in ``dtype`` (default: the array's)."""
        if self.is_numpy:
            return values.sum(axis=axis, dtype=dtype)
        return values.sum(dim=axis, dtype=None if dtype is None else self.dtype(dtype))

    def square_(self, values: Any) -> Any:
        """Square in place; returns ``values``."""
        if self.is_numpy:
            return np.square(values, out=values)
        return values.square_()

    def where(self, condition: Any, yes: Any, no: float) -> Any:
        if self.is_numpy:
            return np.where(condition, yes, no)
        return self._torch.where(condition, yes, self._torch.tensor(no, dtype=yes.dtype))

    @contextlib.contextmanager
    def threads(self, n_threads: int | None) -> Iterator[None]:
        """Pin torch's CPU threads inside the block (numpy's BLAS: ``blas_threads``)."""
        if self.is_numpy or n_threads is None:
            yield
            return
        previous = self._torch.get_num_threads()
        self._torch.set_num_threads(max(1, int(n_threads)))
        try:
            yield
        finally:
            self._torch.set_num_threads(previous)

    def synchronize(self) -> None:
        """Wait for queued device work (for timings); nothing to do on a CPU."""
        if not self.is_numpy and self.device.startswith("cuda"):
            self._torch.cuda.synchronize(self.device)


NUMPY = Backend()


def get_backend(name: str = "numpy", device: str | None = None) -> Backend:
    """The backend ``name`` on ``device`` (``None``: ``cpu``), checked.

    Parameters
    ----------
    name : {"numpy", "torch"}
    device : str, optional
        ``cpu`` (both backends), ``cuda`` or ``cuda:N`` (torch only).

    Examples
    --------
    >>> get_backend("numpy").device
    'cpu'
    """
    device = device or "cpu"
    if name not in BACKENDS:
        raise InputError(f"backend={name!r}: expected one of {', '.join(BACKENDS)}")
    if name == "numpy":
        if device != "cpu":
            raise InputError(
                f"device={device!r} with backend='numpy': numpy runs on the CPU only; "
                "use backend='torch' for a GPU"
            )
        return NUMPY
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"device={device!r}: expected cpu, cuda or cuda:N")
    import torch

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device={device!r}: no CUDA device is available here; use device='cpu'")
    return Backend("torch", device, torch)
