"""Fixtures of the plotting and report tests: pyplot guarded, a synthetic results store."""

from __future__ import annotations

import matplotlib
import pytest

from tests.plot.synthetic import make_store, results_dataset

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def no_pyplot_windows(monkeypatch):
    """Fail any test whose code calls plt.show() or leaves pyplot figures open."""
    import matplotlib.pyplot as plt

    def refuse(*args, **kwargs):
        raise AssertionError("plot functions must never call plt.show()")

    monkeypatch.setattr(plt, "show", refuse)
    before = set(plt.get_fignums())
    yield
    assert set(plt.get_fignums()) == before, "a plot function left a pyplot figure open"


@pytest.fixture
def results_store(tmp_path):
    """A store with fmri (4 subjects, 83 TRs, 360 HCP-MMP ROIs) and results/grid-test."""
    return make_store(tmp_path / "synthetic.zarr")


@pytest.fixture(scope="module")
def results():
    """The synthetic results dataset (29 configs × 4 subjects × 360 ROIs)."""
    return results_dataset()
