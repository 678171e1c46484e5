"""Parameter texts shared by many docstrings, filled in by :func:`fill_doc` (as nilearn's).

A docstring names a shared text as ``%(store)s`` on a line of its own, at the indent of
the parameter it describes; :func:`fill_doc` replaces it by the entry of :data:`DOCDICT`,
indented as the docstring is. A docstring that goes through :func:`fill_doc` writes a
literal percent sign as ``%%``. What users and tools (``help``, doctest, numpydoc) see is
the filled ``__doc__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

_Documented = TypeVar("_Documented", bound=Callable)

#: Shared texts: the first line at the parameter's indent, the following ones relative to it.
DOCDICT: dict[str, str] = {
    "store": """store : str, os.PathLike or Store
    The store (a path, an fsspec URL or a :class:`featstore.Store`).""",
    "group": """group : str
    Group path, e.g. ``features/gpt2/ctx200``.""",
    "example_import": """>>> import tempfile
>>> from featstore.datasets import import_dataset
>>> from featstore.datasets.demo import demo_story_paths
>>> audio, align = demo_story_paths()  # the bundled 5-minute story
>>> store = tempfile.mkdtemp() + "/demo.zarr"
>>> report = import_dataset(store, align=align, audio=audio, tr=1.5)""",
    "analysis_store_model": """store
    Store with ``fmri`` and every feature set read (the model's, and those of any other
    stored layer named).
model
    ``NAME`` or ``NAME:WINDOW`` (one feature set; ``windows`` apply by kind).""",
    "example_store": """>>> import featstore as fs
>>> from featstore.datasets import example_store
>>> store = fs.open_store(example_store())""",
    "example_analysis_store": """>>> import tempfile
>>> from featstore.datasets import example_store
>>> from featstore import plot
>>> from featstore.evaluate import analyses
>>> from featstore.store import open_group
>>> store = example_store()""",
    "results": """results : xarray.Dataset
    An encoding run, ``results/<run_id>`` (:func:`featstore.evaluate.runs.open_run`, or
    ``Run.dataset``), or several runs combined.""",
    "title": """title : str, optional
    Title of the figure (None: none).""",
    "figure_out": """axes : matplotlib.axes.Axes, optional
    Draw into these axes (default: a new, pyplot-free figure).
output_file : str or os.PathLike, optional
    Save the figure there, in the format of its suffix.

Returns
-------
matplotlib.figure.Figure""",
    "example_story_features": """>>> import numpy as np
>>> from featstore.evaluate.encoding import EncodingSettings
>>> rng = np.random.default_rng(0)
>>> features = {s: [rng.standard_normal((n, 6))] for s, n in (("a", 90), ("b", 80), ("c", 70))}""",
    "example_run": """>>> import tempfile
>>> import featstore as fs
>>> from featstore.datasets import example_store
>>> store = fs.open_store(example_store())
>>> run = store.grid(models=["toy-lm:ctx8"], progress=False)""",
    # evaluate
    "analysis_options": """**options
    Passed to :func:`~featstore.evaluate.analyses.runner.run_analysis`, as for every
    analysis:

    - ``windows``: windows applied by kind (``ctx200`` to text models);
    - ``layers``: ``auto`` (default), ``all`` or a list of layer labels;
    - ``settings``: :class:`~featstore.evaluate.encoding.settings.EncodingSettings`, the
      split, PCA and FIR delays (and the ridge of the encoding models fitted);
    - ``run_id``, ``overwrite``: name of the group (default: the analysis and the time,
      e.g. ``rsa-20250131-142501``) and whether to replace it;
    - ``progress``: progress bar on stderr.

Returns
-------
str
    The run id.""",
    # plot
    "map_style": """**style
    How the map is drawn and saved, as keywords (see
    :class:`featstore.plot.brain.MapStyle`): ``cmap``, ``vmin``, ``vmax``, ``symmetric``
    (the color scale, chosen from the data unless given), ``colorbar_label`` (default
    ``"r"``), ``axes`` (draw inside its area of its figure), ``output_file``, ``dpi``.

Returns
-------
matplotlib.figure.Figure""",
    "panel_style": """**style
    How the rows are drawn and saved, as keywords (see
    :class:`featstore.plot.brain.PanelStyle`): ``titles`` (one per row), ``suptitle`` (a
    title above all rows), ``shared_scale`` (one color range for all rows, the default,
    or one each) and the keywords of a single map: ``cmap``, ``vmin``, ``vmax``,
    ``symmetric``, ``colorbar_label``, ``axes``, ``output_file``, ``dpi``.""",
    # datasets + extract
    "open_group": """Parameters
----------
store : str, os.PathLike or Store
    The store (a path, an fsspec URL or a :class:`featstore.Store`).

Returns
-------
xarray.Dataset""",
}

#: The two parameters of every function that reads or writes one group of a store.
DOCDICT["store_group"] = DOCDICT["store"] + "\n" + DOCDICT["group"]
# plot: the parameters every figure of results ends with (and its Returns).
DOCDICT["title_figure_out"] = DOCDICT["title"] + "\n" + DOCDICT["figure_out"]

# store
#: The whole Parameters section of a function that takes the store (and a group) alone.
DOCDICT["parameters_store"] = "Parameters\n----------\n" + DOCDICT["store"]
DOCDICT["parameters_store_group"] = "Parameters\n----------\n" + DOCDICT["store_group"]
#: One example for each pair of sibling functions (the TR count and length; a feature key
#: and a group path by model alias).
DOCDICT["example_store_trs"] = """>>> from featstore.datasets import example_store
>>> from featstore.store import store_n_tr, store_tr_seconds
>>> store = example_store()
>>> store_n_tr(store), store_tr_seconds(store)  # 120 TRs of 1.5 s
(120, 1.5)"""
DOCDICT["example_feature_alias"] = """>>> from featstore.datasets import example_store
>>> from featstore.store import resolve_feature_group, resolve_feature_key, update_group_attrs
>>> store = example_store()
>>> # extract records the alias a feature set was extracted under (here: by hand)
>>> update_group_attrs(store, "features/toy-lm/ctx8", {"model_alias": "toy"})
>>> resolve_feature_key(store, "toy"), resolve_feature_group(store, "features/toy/ctx8")
('toy-lm', 'features/toy-lm/ctx8')"""


def _docstring_indent(doc: str) -> str:
    """The indent of a docstring's lines after the first (what ``inspect.cleandoc`` strips)."""
    indents = [len(line) - len(line.lstrip()) for line in doc.splitlines()[1:] if line.strip()]
    return " " * min(indents, default=0)


def fill_doc(documented: _Documented) -> _Documented:
    """Fill the ``%(name)s`` placeholders of a function's or class's docstring.

    Parameters
    ----------
    documented : function or class
        What to document; its ``__doc__`` is replaced by the filled text.

    Returns
    -------
    function or class
        ``documented`` itself, so that ``fill_doc`` is a decorator.

    Examples
    --------
    >>> from featstore._docs import fill_doc
    >>> @fill_doc
    ... def count(store):
    ...     '''Count what is in a store.
    ...
    ...     Parameters
    ...     ----------
    ...     %(store)s
    ...     '''
    >>> print(count.__doc__.splitlines()[-2].strip())
    The store (a path, an fsspec URL or a :class:`featstore.Store`).
    """
    doc = documented.__doc__
    if not doc:
        return documented
    indent = _docstring_indent(doc)
    texts = {name: text.replace("\n", "\n" + indent) for name, text in DOCDICT.items()}
    try:
        documented.__doc__ = doc % texts
    except (KeyError, TypeError, ValueError) as exc:
        name = getattr(documented, "__qualname__", repr(documented))
        raise RuntimeError(f"cannot fill the docstring of {name}: {exc!r}") from exc
    return documented
