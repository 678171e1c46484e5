"""The HTML report: every figure and table of a store's results in one page.

:func:`build_report` writes it (``Store.report`` and ``evaluate report`` call it); the
sections of the encoding runs, the analyses and the EEG runs are drawn by the modules of
this package, their markup in jinja2 templates shipped with it.
"""

from featstore.report.html import build_report

__all__ = ["build_report"]
