"""Fixtures of the reliability tests: a template store copied per case, and a CLI runner.

The template is a tiny imported dataset (3 subjects, 7 TRs, 5 ROIs, 11 words) with one
imported feature set ``features/mine/tr2`` of 2 layers × 7 TRs × 13 dims; every test
gets its own copy, so a case may corrupt it freely.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from featstore.cli.evaluate_main import app as evaluate_app
from featstore.cli.main import app
from featstore.datasets.byo import import_features
from featstore.datasets.importer import import_dataset
from tests.datasets.conftest import ALIGN_ROWS, TR, bold_arrays, csv_text, tree_hash, write_wav
from tests.evaluate.grid.conftest import build_store as build_grid_store
from tests.extract.text.conftest import tiny_bert, tiny_gpt2, tiny_roberta  # noqa: F401 - fixtures

N_FEATURE_DIM = 13
#: Lines the reliability tests add to the terminal summary (kills, reads, timings).
REPORT: list[str] = []


@dataclass
class Workspace:
    """A scratch directory with valid inputs and stores, for one hostile case.

    ``store`` is the imported tiny dataset; ``grid_store`` the evaluator's test store
    (3 subjects × 80 TRs × 7 ROIs; gpt2/ctx20, wavlm/tr2, wavlm/tr3); ``model`` a tiny
    random GPT-2 directory (read only: copy it before changing it).
    """

    dir: Path
    store: Path
    align: Path
    audio: Path
    fmri: Path
    grid_store: Path
    model: Path | None = None

    def file(self, name: str, content: bytes | str) -> Path:
        """Write ``content`` to ``dir/name`` and return the path."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        return path

    def npy(self, name: str, array: np.ndarray) -> Path:
        """Save ``array`` as ``dir/name`` (.npy; object arrays pickled, as numpy does)."""
        path = self.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as handle:
            np.save(handle, array, allow_pickle=True)
        return path

    def npz(self, name: str, **arrays: np.ndarray) -> Path:
        """Save ``arrays`` as ``dir/name`` (.npz)."""
        path = self.dir / name
        with open(path, "wb") as handle:
            np.savez(handle, **arrays)
        return path

    def import_args(self, *extra: object, store: Path | None = None) -> list[str]:
        """``dataset import`` of the valid inputs over the existing store (``--overwrite``),
        with ``extra`` options appended: a repeated option replaces the valid value."""
        base = ["dataset", "import", "--align", self.align, "--audio", self.audio]
        base += ["--fmri", self.fmri, "--tr", TR, "--store", store or self.store, "--overwrite"]
        return [str(a) for a in (*base, *extra)]

    def features_args(
        self,
        *files: Path,
        name: str = "other",
        window: str = "tr2",
        modality: str = "audio",
        store: Path | None = None,
    ) -> list[str]:
        """``features import`` of ``files`` as a new feature set."""
        args = ["features", "import", "--store", store or self.store, "--name", name]
        args += ["--window", window, "--modality", modality, *files]
        return [str(a) for a in args]

    def grid_args(self, *extra: object, store: Path | None = None) -> list[str]:
        """``evaluate grid`` on the grid store with small valid settings, then ``extra``."""
        base = [
            "evaluate",
            "grid",
            "--store",
            store or self.grid_store,
            "--model",
            "wavlm",
            "--tr-win",
            "3",
        ]
        base += ["--layers", "2,3", "--pca", "6", "--delays", "1,2,3", "--cv", "3"]
        base += ["--alphas", "0.1,10,1000", "--run", "hostile", "--quiet"]
        return [str(a) for a in (*base, *extra)]

    def extract_args(self, *extra: object, model: object = None) -> list[str]:
        """``featstore extract`` of the tiny model into the store, then ``extra``."""
        base = ["extract", "--model", model or self.model, "--store", self.store, "--quiet"]
        return [str(a) for a in (*base, *extra)]

    def snapshot(self) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """sha256 of every file of both stores and the names in the scratch directory."""
        return (
            tree_hash(self.store),
            tree_hash(self.grid_store),
            sorted(p.name for p in self.dir.iterdir()),
        )


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Path:
    """Valid inputs and a store built from them (never modified: tests copy it)."""
    root = tmp_path_factory.mktemp("template")
    (root / "story_align.csv").write_text(csv_text(ALIGN_ROWS), encoding="utf-8")
    write_wav(root / "story.wav")
    with open(root / "bold.npz", "wb") as handle:
        np.savez(handle, **bold_arrays())
    store = root / "story.zarr"
    import_dataset(
        store,
        align=root / "story_align.csv",
        audio=root / "story.wav",
        fmri=root / "bold.npz",
        tr=TR,
    )
    layers = np.random.default_rng(5).standard_normal((2, 7, N_FEATURE_DIM)).astype(np.float32)
    np.save(root / "layers.npy", layers)
    import_features(store, name="mine", window="tr2", modality="audio", files=[root / "layers.npy"])
    build_grid_store(root / "grid.zarr")
    # a finished run for the post-grid commands (layer 4: the grid cases use 2 and 3, so
    # nothing of it is reused there)
    ws = Workspace(root, store, root, root, root, root / "grid.zarr")
    done = run_cli(ws.grid_args("--layers", "4", "--run", "r1"))
    assert done.exit_code == 0, done.output
    return root


def copy_workspace(template: Path, directory: Path, model: Path | None = None) -> Workspace:
    """Copy the template's inputs and stores into ``directory``."""
    for name in ("story_align.csv", "story.wav", "bold.npz"):
        shutil.copy(template / name, directory / name)
    for name in ("story.zarr", "grid.zarr"):
        shutil.copytree(template / name, directory / name)
    return Workspace(
        dir=directory,
        store=directory / "story.zarr",
        align=directory / "story_align.csv",
        audio=directory / "story.wav",
        fmri=directory / "bold.npz",
        grid_store=directory / "grid.zarr",
        model=model,
    )


@contextlib.contextmanager
def fresh_workspace(template: Path) -> Iterator[Workspace]:
    """A workspace in a temporary directory, for one hypothesis example."""
    with tempfile.TemporaryDirectory(prefix="hostile-") as directory:
        yield copy_workspace(template, Path(directory))


@pytest.fixture
def workspace(template, tmp_path, request) -> Workspace:
    """A fresh copy of the template's inputs and stores in ``tmp_path``."""
    return copy_workspace(template, tmp_path, Path(request.getfixturevalue("tiny_gpt2")))


def run_cli(argv: list[str]):
    """Run the ``featstore`` command line in-process (``evaluate ...``: the evaluate one)."""
    argv = [str(a) for a in argv]
    if argv and argv[0] == "evaluate":
        return CliRunner().invoke(evaluate_app, argv[1:])
    return CliRunner().invoke(app, argv)


def assert_clean_failure(result, *culprits: str) -> str:
    """Exit code 2, exactly one ``error:`` line on stderr naming every culprit, no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for culprit in culprits:
        assert str(culprit) in lines[0], (culprit, lines[0])
    return lines[0]


def pytest_terminal_summary(terminalreporter) -> None:
    """Report the hostile-input count the lead quotes (distinct cases and how many pass)
    and what the crash and concurrency tests saw."""
    from tests.reliability import test_hostile_inputs as module

    for line in REPORT:
        terminalreporter.write_line(line)

    def kind(nodeid: str) -> str:
        name = nodeid.rsplit("::", 1)[-1]
        if module.__name__.rsplit(".", 1)[-1] not in nodeid:
            return ""
        if name.startswith("test_hostile_case["):
            return "curated"
        return "property" if name in module.PROPERTIES else ""

    reports = [
        report
        for key in ("passed", "failed", "error")
        for report in terminalreporter.stats.get(key, [])
        if getattr(report, "when", "") == "call" and kind(report.nodeid)
    ]
    if not reports:
        return
    n_curated = sum(kind(r.nodeid) == "curated" for r in reports)
    terminalreporter.write_line(
        f"hostile inputs: {len(reports)} distinct cases ({n_curated} curated, "
        f"{len(reports) - n_curated} property-based over {module.GENERATED.total} generated "
        f"inputs), {sum(r.passed for r in reports)} pass"
    )
