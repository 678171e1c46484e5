"""Encoding models from stored features: PCA + FIR ridge, fusion, all subjects at once.

Pure numerics only: nothing here imports model code (torch, transformers).
"""

from featstore.evaluate.encoding.pipeline import encode
from featstore.evaluate.encoding.result import EncodingResult
from featstore.evaluate.encoding.settings import EncodingSettings, delays_from_fir
from featstore.evaluate.encoding.threads import blas_threads

__all__ = ["EncodingResult", "EncodingSettings", "blas_threads", "delays_from_fir", "encode"]
