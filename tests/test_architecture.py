"""The shape of the code, as issue 7 left it: no import cycles, no god modules, no god functions.

The layer arrows themselves are import-linter contracts (``[tool.importlinter]`` in pyproject.toml, run by
``make test`` as ``lint-imports``); this module checks what import-linter does not: that no group of modules
imports itself round a cycle (``cli`` ↔ ``demo`` was one), and the size budget that keeps use cases, repositories
and edges each in a module a newcomer can read.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import grimp
import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "adapters")
#: Issue 7: "no module over ~400 lines and no function over ~60".
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60
#: Alembic revisions are history: written once, never edited, so they are not held to the budget.
EXEMPT = ("gateway/db/migrations/versions/",)


def _strongly_connected(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's algorithm over module imports, leaving out a submodule's import of its own package."""

    def deps(module: str) -> set[str]:
        return {d for d in graph.find_modules_directly_imported_by(module) if not module.startswith(d + ".")}

    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in deps(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_import_cycles() -> None:
    graph = grimp.build_graph(*PACKAGES)
    assert _strongly_connected(graph) == []


def test_the_cycle_finder_finds_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: two modules importing each other (inside functions, as cli/demo did) are found."""
    pkg = tmp_path / "cyclepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cyclepkg import b\n")
    (pkg / "b.py").write_text("def g():\n    from cyclepkg import a\n")
    (pkg / "c.py").write_text("from cyclepkg import a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _strongly_connected(grimp.build_graph("cyclepkg")) == [["cyclepkg.a", "cyclepkg.b"]]


def _sources() -> Iterator[tuple[str, Path]]:
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            rel = path.relative_to(REPO).as_posix()
            if not rel.startswith(EXEMPT):
                yield rel, path


def test_no_module_over_the_budget() -> None:
    over = {rel: n for rel, path in _sources() if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert over == {}


def test_no_function_over_the_budget() -> None:
    over = {}
    for rel, path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    over[f"{rel}:{node.lineno} {node.name}"] = length
    assert over == {}
