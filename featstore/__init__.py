"""featstore: extract once, evaluate many.

A Zarr feature store for brain-encoding research on naturalistic stimuli: model hidden
states of every layer are extracted once into one store, and encoding models are
evaluated lazily from it.
"""

__version__ = "0.1.0"
