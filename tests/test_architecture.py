"""The layering the design promises: numerics free of the store, no import cycle anywhere."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "featstore"
#: Pure numerics: numpy / scipy / scikit-learn (torch only when a backend asks for it).
NUMERICS = ("featstore.evaluate.encoding", "featstore.evaluate.metrics")
#: What numerics never import: the store and its stack, and model code.
FORBIDDEN = ("featstore.store", "xarray", "dask", "distributed", "zarr", "torch", "transformers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def test_numerics_import_neither_the_store_nor_dask_xarray_or_model_code():
    names = [name for name in _modules() if name.startswith(NUMERICS)]
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {names!r}:
            importlib.import_module(name)
        print(sorted(m for m in sys.modules if m.split(".")[0] in {FORBIDDEN!r}
                     or m.startswith("featstore.store")))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert len(names) >= 15
    assert done.stdout.strip() == "[]"


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """featstore modules ``name`` imports, at module level or inside functions.

    ``from package import submodule`` counts as importing the submodule; every import
    also imports the packages above its target (their ``__init__`` runs first), except the
    importer's own packages (a parent of every submodule, which is no cycle).
    """
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            if all(sub in modules for sub in submodules):
                found.update(submodules)
            elif node.module in modules:
                found.add(node.module)
                found.update(sub for sub in submodules if sub in modules)
    # importing a.b.c runs a/__init__ and a/b/__init__ too: those packages are imported
    found |= {
        ".".join(target.split(".")[:k])
        for target in list(found)
        for k in range(2, target.count(".") + 1)
        if ".".join(target.split(".")[:k]) in modules
    }
    ancestors = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
    return found - {name} - ancestors


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_in_the_package():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    assert _cycles(graph) == []


def test_the_figures_never_import_the_report_that_draws_them():
    modules = _modules()
    plot = [name for name in modules if name.startswith("featstore.plot")]
    imported = set().union(*(_imports(name, modules[name], modules) for name in plot))
    assert {name for name in imported if name.startswith("featstore.report")} == set()
    report = [name for name in modules if name.startswith("featstore.report")]
    assert any(
        target.startswith("featstore.plot")
        for name in report
        for target in _imports(name, modules[name], modules)
    )


def test_the_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
