"""Encoding models from the store: pipeline, grids, noise ceiling, statistics."""
