"""The HTML report: every figure and table of a store's results in one page."""
