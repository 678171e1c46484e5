"""Fixtures of the statistics tests: a synthetic store with fMRI and one results run."""

from __future__ import annotations

import pytest

from tests.plot.synthetic import make_store


@pytest.fixture
def results_store(tmp_path):
    """A store with fmri (4 subjects, 83 TRs, 360 HCP-MMP ROIs) and results/grid-test."""
    return make_store(tmp_path / "synthetic.zarr")
