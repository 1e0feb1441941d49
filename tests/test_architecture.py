"""The rooms stay findable: no import cycle among the project's modules, no module over 400 lines and no
function over 80 (the layer contracts themselves are import-linter's, run by .ci/run)."""

from __future__ import annotations

import ast
from pathlib import Path

import grimp
import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("neurosym", "kg", "pipelines")


def _modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def test_no_import_cycle():
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    imports = nx.DiGraph((module, imported) for module in graph.modules
                         for imported in graph.find_modules_directly_imported_by(module))
    cycles = [sorted(group) for group in nx.strongly_connected_components(imports) if len(group) > 1]
    assert len(graph.modules) > 100  # the whole project was read, not an installed copy of part of it
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
