"""The encoding model's numerics: split, z-scoring, PCA, FIR delays, ridge and banded ridge
with cross-validated alphas, scores, and the scikit-learn estimator.

Pure numpy / scipy / scikit-learn: nothing here imports the store, xarray, dask or model
code, so every function can be tested against a reference in a few lines.
"""

from typing import Any

from featstore.evaluate.encoding.pipeline import encode
from featstore.evaluate.encoding.result import EncodingResult
from featstore.evaluate.encoding.settings import EncodingSettings, delays_from_fir
from featstore.evaluate.encoding.threads import blas_threads

__all__ = [
    "EncodingModel",
    "EncodingResult",
    "EncodingSettings",
    "blas_threads",
    "delays_from_fir",
    "encode",
]


def __getattr__(name: str) -> Any:
    # scikit-learn (and the pandas it pulls in) loads only when the estimator is asked for
    if name == "EncodingModel":
        from featstore.evaluate.encoding.estimator import EncodingModel

        return EncodingModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
