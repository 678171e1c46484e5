"""Analyses built on the encoding runs' data and splits: RSA, layer similarity and the impact
of low-level features, each written as a ``results/<id>`` group.
"""

from featstore.evaluate.analyses.lowlevel import run_lowlevel
from featstore.evaluate.analyses.rsa import run_rsa
from featstore.evaluate.analyses.similarity import run_similarity

__all__ = ["run_lowlevel", "run_rsa", "run_similarity"]
