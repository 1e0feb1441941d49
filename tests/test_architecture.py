"""The rooms stay findable: no import cycle among the project's modules, no module over 400 lines and no
function over 80 (the layer contracts themselves are import-linter's, run by .ci/run). Package imports
(``from kg.sql import answers``) count as imports of the package's ``__init__`` and of the module named."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("neurosym", "kg", "pipelines")


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules ``path`` imports anywhere in it (at the top, in functions, for type checking)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in modules}
    return found


def test_no_import_cycle():
    # The graph is read from the files themselves, so it is the checkout's whatever is installed.
    paths = _modules()
    modules = {_module_name(path) for path in paths}
    imports = nx.DiGraph()
    for path in paths:
        importer = _module_name(path)
        imports.add_node(importer)
        imports.add_edges_from((importer, imported) for imported in _imports(path, modules) if imported != importer)
    cycles = [sorted(group) for group in nx.strongly_connected_components(imports) if len(group) > 1]
    assert imports.number_of_edges() > 300  # the project's imports were read, not a part of them
    assert cycles == []


def test_no_module_over_400_lines():
    modules = _modules()
    assert len(modules) > 100
    long = {str(path.relative_to(ROOT)): lines for path in modules
            if (lines := path.read_text().count("\n")) > 400}
    assert long == {}


def test_no_function_over_80_lines():
    long = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                if length > 80:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = length
    assert long == {}
