"""Store-backed runs: config grids as dask graphs, results groups, summaries, significance and
noise ceilings written beside the results.
"""
