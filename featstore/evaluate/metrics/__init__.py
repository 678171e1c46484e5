"""Metrics and statistics on arrays: permutation tests, FDR, paired tests, the noise
ceiling estimator, representational similarity (RDMs, RSA), layer similarity (CKA, CCA,
Procrustes), the nine model-brain alignment metrics and their rank agreement.

Pure numpy / scipy: nothing here imports the store, xarray or dask.
"""

from featstore.evaluate.metrics.agreement import kendalls_w, rank_agreement
from featstore.evaluate.metrics.alignment import score_layers
from featstore.evaluate.metrics.noise_ceiling import loso_isc, normalized_r
from featstore.evaluate.metrics.stats import fdr_bh, paired_wilcoxon, permutation_test

__all__ = [
    "fdr_bh",
    "kendalls_w",
    "loso_isc",
    "normalized_r",
    "paired_wilcoxon",
    "permutation_test",
    "rank_agreement",
    "score_layers",
]
