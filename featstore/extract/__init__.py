"""Feature extraction: every layer of a model, once, into the store.

``featstore.extract.run.extract`` is the entry point; ``registry`` resolves models.
"""

from featstore.extract.registry import ModelSpec, resolve_model
from featstore.extract.run import extract

__all__ = ["ModelSpec", "extract", "resolve_model"]
