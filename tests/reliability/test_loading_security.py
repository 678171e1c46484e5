"""Loading untrusted files never runs their code unless the user says so.

Unpickling executes whatever the file names, ``torch.load`` unpickles, and
``trust_remote_code`` runs a model repository's Python. featstore
reads pickles in exactly one place, behind ``--allow-pickle``; everything else is read
with formats that hold data only (CSV, WAV/FLAC, npy/npz with ``allow_pickle=False``,
Zarr v3 JSON + raw chunks). These tests hold the code to that.
"""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import numpy as np
import pytest

import featstore
from featstore.datasets.fmri import read_fmri
from featstore.errors import InputError
from tests.datasets.conftest import bold_arrays

PACKAGE = Path(featstore.__file__).parent
# (module, function) → the only places allowed to unpickle
GUARDED_UNPICKLING = {("featstore/datasets/fmri.py", "_read_pickle")}
# module → names whose .load / .loads unpickles (or may)
_UNPICKLERS = {"pickle", "cPickle", "_pickle", "dill", "joblib", "cloudpickle", "shelve", "marshal"}


def _calls(tree: ast.AST):
    """(enclosing function name, call node) for every call in a module."""
    stack: list[tuple[ast.AST, str]] = [(tree, "<module>")]
    while stack:
        node, function = stack.pop()
        for child in ast.iter_child_nodes(node):
            name = (
                child.name
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                else function
            )
            if isinstance(child, ast.Call):
                yield name, child
            stack.append((child, name))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _findings() -> dict[str, list[tuple[str, str, int]]]:
    found: dict[str, list[tuple[str, str, int]]] = {
        "unpickle": [],
        "torch.load": [],
        "allow_pickle=True": [],
        "pandas.read_pickle": [],
        "imported loader": [],
        "trust_remote_code": [],
    }
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE.parent).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in (_UNPICKLERS | {"torch"}):
                if any(alias.name in ("load", "loads", "Unpickler") for alias in node.names):
                    found["imported loader"].append((module, node.module, node.lineno))
        for function, call in _calls(tree):
            name = _dotted(call.func)
            where = (module, function, call.lineno)
            head, _, attr = name.rpartition(".")
            if head in _UNPICKLERS and attr in ("load", "loads", "Unpickler", "open"):
                found["unpickle"].append(where)
            if name == "torch.load":
                found["torch.load"].append(where)
            if head in ("pd", "pandas") and attr == "read_pickle":
                found["pandas.read_pickle"].append(where)
            for keyword in call.keywords:
                if keyword.arg == "trust_remote_code" and not (
                    isinstance(keyword.value, ast.Constant) and keyword.value.value is False
                ):
                    found["trust_remote_code"].append(where)
            for keyword in call.keywords if name in ("np.load", "numpy.load") else ():
                value = keyword.value
                if keyword.arg == "allow_pickle" and not (
                    isinstance(value, ast.Constant) and value.value is False
                ):
                    found["allow_pickle=True"].append(where)
    return found


def test_no_code_loading_outside_the_guarded_place():
    found = _findings()
    assert {(m, f) for m, f, _ in found["unpickle"]} == GUARDED_UNPICKLING, found["unpickle"]
    assert len(found["unpickle"]) == 1
    for kind in (
        "torch.load",
        "allow_pickle=True",
        "pandas.read_pickle",
        "imported loader",
        "trust_remote_code",
    ):
        assert found[kind] == [], (kind, found[kind])


def test_the_scan_sees_what_it_looks_for(tmp_path, monkeypatch):
    """The scanner itself: it finds each pattern in a planted module."""
    planted = tmp_path / "featstore"
    planted.mkdir()
    (planted / "bad.py").write_text(
        "import pickle, torch, numpy as np, pandas as pd\n"
        "from dill import loads\n"
        "def f(p, flag):\n"
        "    pickle.load(open(p, 'rb'))\n"
        "    torch.load(p)\n"
        "    np.load(p, allow_pickle=flag)\n"
        "    pd.read_pickle(p)\n"
        "    AutoModel.from_pretrained(p, trust_remote_code=True)\n"
    )
    monkeypatch.setattr(__import__(__name__, fromlist=["PACKAGE"]), "PACKAGE", planted)
    found = _findings()
    assert found["unpickle"] == [("featstore/bad.py", "f", 4)]
    assert found["torch.load"] == [("featstore/bad.py", "f", 5)]
    assert found["allow_pickle=True"] == [("featstore/bad.py", "f", 6)]
    assert found["pandas.read_pickle"] == [("featstore/bad.py", "f", 7)]
    assert found["imported loader"] == [("featstore/bad.py", "dill", 2)]
    assert found["trust_remote_code"] == [("featstore/bad.py", "f", 8)]


class _Payload:
    """Unpickling this writes a file: the proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.mark.parametrize("name", ["subjects.pkl", "subjects.npz", "subjects.dat"])
def test_pickle_runs_nothing_without_allow_pickle(tmp_path, name):
    marker = tmp_path / "marker.txt"
    path = tmp_path / name
    path.write_bytes(pickle.dumps({"sub-01": _Payload(marker)}, protocol=4))
    with pytest.raises(InputError, match="`allow_pickle`"):
        read_fmri(path)
    assert not marker.exists()


def test_allow_pickle_is_the_only_gate(tmp_path):
    """With the flag the payload does run: the flag, not the format, is the protection."""
    marker = tmp_path / "marker.txt"
    path = tmp_path / "subjects.pkl"
    path.write_bytes(pickle.dumps({"sub-01": _Payload(marker)}, protocol=4))
    with pytest.raises(InputError, match="sub-01"):
        read_fmri(path, allow_pickle=True)
    assert marker.read_text() == "code ran"
    path.write_bytes(pickle.dumps(bold_arrays(), protocol=4))
    bold, _, source = read_fmri(path, allow_pickle=True)
    assert bold.shape == (3, 7, 5) and source.kind == "pickle"


def test_object_arrays_in_npy_and_npz_are_refused(tmp_path):
    directory = tmp_path / "subjects"
    directory.mkdir()
    np.save(directory / "sub-01.npy", np.array([_Payload(tmp_path / "m")], dtype=object))
    with pytest.raises(InputError, match="object array"):
        read_fmri(directory)
    assert not (tmp_path / "m").exists()
