"""Feature extraction: every layer of a model, once, into the store.

``featstore.extract.run.extract`` is the entry point; ``registry`` resolves models.
"""
