"""The import graph of hihlib has no cycle: every ``import`` between hihlib's modules (at the top of a
file or inside a function) points one way, so a module can be read knowing only those it imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "hihlib"
# Imports that point up the layers and close a cycle, each to be removed by moving the code that needs
# it: models/released.py builds a hihlib checkpoint (config, checkpoint) from inside the models layer.
KNOWN_UPWARD = {("hihlib.models.released", "hihlib.checkpoint"), ("hihlib.models.released", "hihlib.config")}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The hihlib modules that ``path`` imports (``from . import x`` counts x when x is a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                if sub in modules:
                    found.add(sub)
                elif target in modules:
                    found.add(target)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules) for p in paths}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_reader_sees_relative_and_function_level_imports():
    graph = import_graph()
    assert "hihlib.evaluate" in graph["hihlib.train"]        # top of the file
    assert "hihlib.data.dataset" in graph["hihlib.data.cache"]
    assert "hihlib.losses" in graph["hihlib.build"]          # inside a function


def test_hihlib_modules_import_each_other_without_a_cycle():
    graph = import_graph()
    for module, target in KNOWN_UPWARD:
        graph[module].discard(target)
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)
