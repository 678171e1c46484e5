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
    "analysis_model": """model
    ``NAME`` or ``NAME:WINDOW`` (one feature set; ``windows`` apply by kind).""",
    "analysis_layers": """layers
    ``auto``, ``all`` or a list of layer labels.""",
    "analysis_run": """run_id, overwrite
    Name of the group (default: the analysis and the time, e.g.
    ``rsa-20250131-142501``) and whether to replace it.
progress
    Progress bar on stderr.

Returns
-------
str
    The run id.""",
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
    "brain_out": """colorbar_label : str
axes : matplotlib Axes, optional
    Draw inside this axes' area of its figure (the axes itself is removed).
output_file : path, optional
    Save the figure there (format from the suffix).
dpi : int""",
    "example_story_features": """>>> import numpy as np
>>> from featstore.evaluate.encoding import EncodingSettings
>>> rng = np.random.default_rng(0)
>>> features = {s: [rng.standard_normal((n, 6))] for s, n in (("a", 90), ("b", 80), ("c", 70))}""",
    "example_run": """>>> import tempfile
>>> import featstore as fs
>>> from featstore.datasets import example_store
>>> store = fs.open_store(example_store())
>>> run = store.grid(models=["toy-lm:ctx8"], progress=False)""",
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
