"""Store-backed runs: config grids as dask graphs, results groups, summaries, significance and
noise ceilings written beside the results.
"""

from featstore.evaluate.runs.grid import run_grid
from featstore.evaluate.runs.results import complete_runs, open_run
from featstore.evaluate.runs.summary import summary_table

__all__ = ["complete_runs", "open_run", "run_grid", "summary_table"]
