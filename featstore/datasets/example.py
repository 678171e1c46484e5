"""A small simulated store for examples and tutorials, as ``xarray.tutorial`` has datasets."""

from __future__ import annotations

import os
import tempfile

import numpy as np

from featstore.datasets.atlas import hcp_mmp_rois
from featstore.datasets.fmri_group import write_fmri
from featstore.datasets.simulate import PlantedSource, simulate_bold
from featstore.store.features import write_feature_set
from featstore.store.groups import StorePath, create_store

EXAMPLE_N_TR = 120
#: Feature key, window and modality of the example's feature sets.
EXAMPLE_FEATURES = (("toy-lm", "ctx8", "text"), ("toy-speech", "tr1", "audio"))
#: Early auditory ROIs (both hemispheres) that layer 2 of ``toy-speech/tr1`` drives.
EXAMPLE_DRIVEN_ROIS = ("A1", "LBelt", "MBelt", "PBelt", "RI")


def example_store(location: StorePath | None = None, *, fmri: bool = True) -> str:
    """Write a small simulated store and return its location.

    120 TRs of 1.5 s; the feature sets ``toy-lm/ctx8`` (text) and ``toy-speech/tr1``
    (audio), 3 layers of 8 dims each; with ``fmri``, 2 subjects × 360 HCP-MMP1.0 ROIs in
    which layer 2 of ``toy-speech/tr1`` drives the early auditory ROIs. No stimulus group:
    nothing can be extracted from it (the bundled story is
    :func:`featstore.datasets.demo.demo_story_paths`).

    Parameters
    ----------
    location : str or os.PathLike, optional
        Where to write it (replaced if it is a store); default: ``example.zarr`` in a new
        temporary folder.
    fmri : bool
        Also write the ``fmri`` group.

    Returns
    -------
    str
        The store's location.

    Examples
    --------
    >>> import featstore as fs
    >>> from featstore.datasets import example_store
    >>> store = fs.open_store(example_store())
    >>> store.fmri.bold.sizes
    Frozen({'subject': 2, 'tr': 120, 'roi': 360})
    """
    location = os.fspath(location or os.path.join(tempfile.mkdtemp(), "example.zarr"))
    create_store(location, dataset="example", tr_seconds=1.5, n_tr=EXAMPLE_N_TR, overwrite=True)
    rng = np.random.default_rng(0)
    white = rng.standard_normal((len(EXAMPLE_FEATURES), 3, EXAMPLE_N_TR + 2, 8))
    # autocorrelated over TRs, as stimulus features are
    hidden = (white[..., :-2, :] + white[..., 1:-1, :] + white[..., 2:, :]).astype(np.float32)
    for (key, window, modality), values in zip(EXAMPLE_FEATURES, hidden, strict=True):
        attrs = {"model_id": f"example/{key}", "revision": "example", "modality": modality,
                 "pooling": "mean", "stimulus_sha256": "0" * 64}  # fmt: skip
        write_feature_set(location, key, window, values, attrs=attrs, layers=[1, 2, 3])
    if fmri:
        names = hcp_mmp_rois()[0]
        source = PlantedSource("toy-speech/tr1/layer2", hidden[1, 1], EXAMPLE_DRIVEN_ROIS)
        bold, subjects, _ = simulate_bold([source], names, n_subjects=2, seed=1)
        write_fmri(location, bold, subjects)  # HCP-MMP1.0 names, the default for 360 ROIs
    return location
