"""Evaluation: encoding models and representational analyses, read lazily from the store."""
