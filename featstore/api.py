"""The Python API: one :class:`Store` object per store, one :class:`Run` per evaluation run.

A notebook does what the command line does, with the same functions underneath::

    import featstore as fs

    store = fs.open_store("stores/demo.zarr")
    store.extract("minilm", ctx=32)
    run = store.grid(models=["minilm:ctx32", "spectral:tr1"], settings=fs.EncodingSettings(pca=100))
    run.r            # xarray DataArray (config, subject, roi)
    run.summary()    # pandas DataFrame, the CLI's summary table
    store.report("report/")

The store is opened (and its schema checked) once; every method passes the same
:class:`Store` object down, which is a path-like :class:`~featstore.store.root.StoreHandle`.
Heavy modules (model code, dask, matplotlib) are imported by the methods that need them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featstore.store.root import StoreHandle, StorePath

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

    from featstore.evaluate.encoding.settings import EncodingSettings
    from featstore.store.listing import GroupInfo

__all__ = ["Run", "Store", "create_collection", "create_store", "import_dataset", "open_store"]


def _model_request(request: Any) -> Any:
    """A model request from ``"NAME[:WINDOWS][@LAYERS]"`` or a tuple (as ``--model``)."""
    from featstore.evaluate.runs.configs import ModelRequest
    from featstore.evaluate.runs.labels import parse_model_request

    if isinstance(request, str):
        return parse_model_request(request)
    return ModelRequest(*request)


def _fusion_request(request: Any) -> tuple[Any, Any]:
    """A fusion request from ``"A+B"`` or a pair of model requests (as ``--fusion``)."""
    from featstore.evaluate.runs.labels import parse_fusion_request

    if isinstance(request, str):
        return parse_fusion_request(request)
    left, right = request
    return _model_request(left), _model_request(right)


class Run:
    """One complete evaluation run of a store: ``results/<run_id>``.

    Parameters
    ----------
    store : Store
    run_id : str

    Examples
    --------
    >>> run = store.run()                                   # doctest: +SKIP
    >>> run.r.sel(config="minilm/ctx32/layer4").mean("subject")  # doctest: +SKIP
    """

    def __init__(self, store: Store, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def __repr__(self) -> str:
        return f"Run({self.store.location!r}, {self.run_id!r})"

    @property
    def dataset(self) -> xr.Dataset:
        """The run's group, opened lazily: ``r``, ``alpha`` … over (config, subject, roi)."""
        from featstore.evaluate.runs.results import open_run

        return open_run(self.store, self.run_id)

    @property
    def r(self) -> xr.DataArray:
        """Test-set Pearson r, (config, subject, roi)."""
        return self.dataset["r"]

    @property
    def alpha(self) -> xr.DataArray:
        """Chosen ridge alpha, (config, subject, roi)."""
        return self.dataset["alpha"]

    @property
    def configs(self) -> list[str]:
        """The run's config labels, in order."""
        return [str(label) for label in self.dataset["config"].values]

    @property
    def settings(self) -> EncodingSettings:
        """The encoding settings the run was evaluated with."""
        from featstore.evaluate.runs.results import run_settings

        return run_settings(self.dataset.attrs)

    def summary(self) -> pd.DataFrame:
        """One row per config: mean, std, median, min, max of the subject-mean r (the CLI's
        ``evaluate summary``)."""
        from featstore.evaluate.runs.summary import summary_table

        return summary_table(self.store, [self.run_id])

    def roi_table(self, configs: Sequence[str] | None = None) -> pd.DataFrame:
        """Subject-mean r per config and ROI, with ROI names (``evaluate roi``)."""
        from featstore.evaluate.runs.summary import roi_table

        return roi_table(self.dataset, configs)

    def significance(self, configs: Sequence[str] | None = None, **options: Any) -> xr.Dataset:
        """Permutation tests of the run's configs (``evaluate significance``), stored beside
        the run; options as :func:`featstore.evaluate.runs.significance.run_significance`."""
        from featstore.evaluate.runs.significance import run_significance

        return run_significance(self.store, self.run_id, configs, **options)


class Store(StoreHandle):
    """A featstore store, opened once: extract into it, evaluate from it, report on it.

    Parameters
    ----------
    location : str or os.PathLike
        The store's directory (or fsspec URL). Use :func:`open_store`, which also checks
        the store can be read.

    Examples
    --------
    >>> import featstore as fs
    >>> store = fs.open_store("stores/demo.zarr")           # doctest: +SKIP
    >>> store.extract("minilm", ctx=32)                     # doctest: +SKIP
    >>> run = store.grid(models=["minilm:ctx32@4"])         # doctest: +SKIP
    >>> run.summary()[["config", "mean"]]                   # doctest: +SKIP

    A store of stories holds one-story stores; :meth:`story` opens one of them:

    >>> narr = fs.open_store("stores/narr.zarr")            # doctest: +SKIP
    >>> narr.stories                                        # doctest: +SKIP
    ['pieman', 'tunnel']
    >>> narr.story("pieman").fmri.bold.dims                 # doctest: +SKIP
    ('subject', 'tr', 'roi')
    """

    def __repr__(self) -> str:
        return f"Store({self.location!r})"

    # --- stories ------------------------------------------------------------------------

    @property
    def is_collection(self) -> bool:
        """Whether this is a store of stories (schema 2), each story a one-story store."""
        from featstore.store.stories import is_collection

        return is_collection(self)

    @property
    def stories(self) -> list[str]:
        """The story names, sorted (a one-story store: its one story)."""
        from featstore.store.stories import list_stories

        return list_stories(self)

    def story(self, name: str | None = None) -> Store:
        """The one-story :class:`Store` of story ``name``: every method works on it.

        A one-story store returns itself (``name`` may be omitted or be its story); a
        store of stories needs ``name`` unless it holds one story. An unknown name
        raises :class:`~featstore.errors.InputError` listing the stories.
        """
        from featstore.store.stories import story_store

        found = story_store(self, name)
        return self if os.fspath(found) == self.location else open_store(found)

    # --- reading ------------------------------------------------------------------------

    @property
    def attrs(self) -> dict[str, Any]:
        """The root attrs: schema version, dataset, ``tr_seconds``, ``n_tr`` …"""
        return dict(self.root().attrs)

    @property
    def fmri(self) -> xr.Dataset:
        """The ``fmri`` group, lazily: ``bold`` (subject, tr, roi) with ROI names."""
        from featstore.store import _schema as S
        from featstore.store.groups import open_group

        return open_group(self, S.FMRI)

    @property
    def stimulus(self) -> xr.Dataset:
        """The ``stimulus`` group, lazily: words, onsets, TR index, audio."""
        from featstore.store import _schema as S
        from featstore.store.groups import open_group

        return open_group(self, S.STIMULUS)

    def features(
        self, model: str, window: str, *, layers: Sequence[int] | None = None
    ) -> xr.Dataset:
        """A feature set, lazily: ``hidden`` (layer, tr, dim). ``model`` is its key or the
        alias it was extracted under (``minilm``); ``window`` ``ctx32`` or ``tr6``."""
        from featstore.store.features import open_feature_set

        return open_feature_set(self, model, window, layers=layers)

    def ls(self) -> list[GroupInfo]:
        """Every group of the store with its kind and variables (``featstore ls``)."""
        from featstore.store.listing import list_groups

        return list_groups(self)

    def validate(self) -> list[Any]:
        """Problems found against the schema (empty: the store is valid)."""
        from featstore.store.validate import validate

        return validate(self)

    # --- extraction ---------------------------------------------------------------------

    def extract(
        self,
        model: str,
        *,
        ctx: int | None = None,
        tr_win: int | Sequence[int] | None = None,
        **options: Any,
    ) -> list[str]:
        """Extract every layer of ``model`` into the store (``featstore extract``).

        Parameters
        ----------
        model : str
            Alias (``gpt2``, ``wavlm``, ``spectral``), Hugging Face id or local directory.
        ctx : int, optional
            Words of context (text models).
        tr_win : int or sequence of int, optional
            Audio windows in TRs (audio and multimodal models, ``spectral``).
        **options
            ``batch_size``, ``device``, ``precision``, ``pool``, ``stride``, ``revision``,
            ``overwrite``, ``progress``, ``story`` … as :func:`featstore.extract.run.extract`.

        Returns
        -------
        list of str
            The groups written (``features/<key>/<window>``; on a store of stories, every
            story or those ``story`` names, with one model load:
            ``stories/<story>/features/<key>/<window>``).
        """
        from featstore.extract.run import extract

        windows = [tr_win] if isinstance(tr_win, int) else tr_win
        return extract(self, model, ctx=ctx, tr_wins=windows, **options)

    def import_features(
        self,
        name: str,
        files: Sequence[StorePath],
        *,
        window: str,
        modality: str,
        layers: Sequence[int] | None = None,
        overwrite: bool = False,
    ) -> str:
        """Store features computed elsewhere (``featstore features import``); returns the
        group written."""
        from featstore.datasets.byo import import_features

        return import_features(
            self,
            name=name,
            window=window,
            modality=modality,
            files=files,
            layers=layers,
            overwrite=overwrite,
        )

    # --- evaluation ---------------------------------------------------------------------

    def grid(
        self,
        models: Sequence[Any] = (),
        fusions: Sequence[Any] = (),
        *,
        settings: EncodingSettings | None = None,
        **options: Any,
    ) -> Run:
        """Evaluate every model x window x layer (and fusion) config (``evaluate grid``).

        Parameters
        ----------
        models : sequence of str or tuple
            ``"NAME[:WINDOWS][@LAYERS]"`` as ``--model`` (``"wavlm:tr1,6@3,9"``), or
            ``(name, windows, layers)`` tuples.
        fusions : sequence of str or pair
            ``"A+B"`` as ``--fusion`` (``"gpt2:ctx200+wavlm:tr6"``), or pairs of requests.
        settings : EncodingSettings, optional
            The encoding model (default: ``EncodingSettings()``).
        **options
            ``windows``, ``layers``, ``partition``, ``run_id``, ``workers``,
            ``threads_per_worker``, ``scheduler``, ``progress`` as
            :func:`featstore.evaluate.runs.grid.run_grid`; on a store of stories,
            ``test_stories=["lucy"]`` or ``cv_stories=True`` (runs across stories, at
            the store's root), or ``story="pieman"`` (one story), and ``target_chunk``.

        Returns
        -------
        Run
        """
        from featstore.evaluate.runs.grid import run_grid

        run_id = run_grid(
            self,
            models=[_model_request(m) for m in models],
            fusions=[_fusion_request(f) for f in fusions],
            settings=settings,
            **options,
        )
        return Run(self, run_id)

    def runs(self) -> list[str]:
        """Ids of the complete runs."""
        from featstore.evaluate.runs.results import complete_runs

        return complete_runs(self)

    def run(self, run_id: str | None = None) -> Run:
        """A complete run (the newest when ``run_id`` is None)."""
        from featstore.evaluate.runs.results import open_run

        return Run(self, str(open_run(self, run_id).attrs.get("run_id", run_id)))

    def summary(self, runs: Sequence[str] | None = None) -> pd.DataFrame:
        """The summary table of the given runs (every complete run by default)."""
        from featstore.evaluate.runs.summary import summary_table

        return summary_table(self, runs)

    # --- reporting ----------------------------------------------------------------------

    def report(self, out_dir: StorePath, **options: Any) -> Path:
        """Write the HTML report (``evaluate report``); returns the path of ``index.html``.

        Options as :func:`featstore.report.html.build_report` (``runs``, ``top``,
        ``alpha``, ``brain_maps`` …).
        """
        from featstore.report.html import build_report

        return build_report(self, out_dir, **options)


def open_store(location: StorePath) -> Store:
    """Open an existing store, checking it is a featstore store this version reads.

    Parameters
    ----------
    location : str or os.PathLike
        Path or fsspec URL of the store.

    Returns
    -------
    Store
        The store, its root checked.

    Examples
    --------
    >>> import featstore as fs
    >>> from featstore.datasets import example_store
    >>> store = fs.open_store(example_store())
    >>> store.attrs["n_tr"]
    120
    """
    store = Store(location)
    store.root()
    return store


def create_store(
    location: StorePath,
    *,
    dataset: str,
    tr_seconds: float,
    n_tr: int,
    overwrite: bool = False,
) -> Store:
    """Create an empty store (root attrs only) and open it.

    Parameters
    ----------
    location : str or os.PathLike
        Path or fsspec URL of the new store.
    dataset, tr_seconds, n_tr, overwrite
        As :func:`featstore.store.create_store`.

    Returns
    -------
    Store
        The new store (root attrs only), opened.

    Examples
    --------
    >>> import tempfile
    >>> import featstore as fs
    >>> store = fs.create_store(tempfile.mkdtemp() + "/new.zarr", dataset="mine",
    ...                         tr_seconds=1.5, n_tr=300)
    >>> store.attrs["n_tr"]
    300
    """
    from featstore.store.groups import create_store as create

    create(location, dataset=dataset, tr_seconds=tr_seconds, n_tr=n_tr, overwrite=overwrite)
    return open_store(location)


def create_collection(
    location: StorePath, *, dataset: str, tr_seconds: float, overwrite: bool = False
) -> Store:
    """Create an empty store of stories (schema 2) and open it.

    Stories are then imported into it (``featstore dataset import --story``), or a
    one-story store is turned into one (``featstore store upgrade``).

    Parameters
    ----------
    location : str or os.PathLike
        Path of the new store.
    dataset, tr_seconds, overwrite
        As :func:`featstore.store.stories.create_collection`; every story shares the TR.

    Returns
    -------
    Store
        The new store of stories, empty.

    Examples
    --------
    >>> import shutil, tempfile
    >>> import featstore as fs
    >>> from featstore.datasets import example_store
    >>> store = fs.create_collection(tempfile.mkdtemp() + "/narr.zarr", dataset="narr",
    ...                              tr_seconds=1.5)
    >>> store.is_collection, store.stories
    (True, [])
    >>> from featstore.store.stories import story_path
    >>> _ = shutil.copytree(example_store(), story_path(store, "pieman"))
    >>> store.stories, store.story("pieman").fmri.bold.sizes["tr"]
    (['pieman'], 120)
    """
    from featstore.store.stories import create_collection as create

    create(location, dataset=dataset, tr_seconds=tr_seconds, overwrite=overwrite)
    return open_store(location)


def import_dataset(location: StorePath, **options: Any) -> Store:
    """Import a story (alignment, audio, optionally fMRI) into a new store and open it
    (``featstore dataset import``); options as
    :func:`featstore.datasets.importer.import_dataset`.

    Parameters
    ----------
    location : str or os.PathLike
        Path of the new store.
    **options
        ``align``, ``audio``, ``tr`` (required), ``fmri``, ``dataset``, ``stim_onset`` ….

    Returns
    -------
    Store
        The store imported into, opened.

    Examples
    --------
    >>> import tempfile
    >>> import featstore as fs
    >>> from featstore.datasets.demo import demo_story_paths
    >>> audio, align = demo_story_paths()  # the bundled 5-minute story
    >>> store = fs.import_dataset(tempfile.mkdtemp() + "/story.zarr", align=align,
    ...                           audio=audio, tr=1.5)
    >>> store.stimulus.sizes["word"]
    830
    """
    from featstore.datasets.importer import import_dataset as run_import

    run_import(os.fspath(location), **options)
    return open_store(location)
