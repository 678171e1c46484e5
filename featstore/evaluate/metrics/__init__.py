"""Metrics and statistics on arrays: permutation tests, FDR, paired tests, the noise
ceiling estimator, representational similarity (RDMs, RSA) and layer similarity (CKA, CCA,
Procrustes).

Pure numpy / scipy: nothing here imports the store, xarray or dask.
"""

from featstore.evaluate.metrics.noise_ceiling import loso_isc, normalized_r
from featstore.evaluate.metrics.stats import fdr_bh, paired_wilcoxon, permutation_test

__all__ = ["fdr_bh", "loso_isc", "normalized_r", "paired_wilcoxon", "permutation_test"]
