"""hihlib's layers hold: every ``import`` between hihlib's modules (at the top of a file or inside a
function) points to the same layer or a lower one (``LAYERS``, drawn in ARCHITECTURE.md), and the graph
has no cycle, so a module can be read knowing only those below it. No exceptions."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "hihlib"

#: Each module's layer: the longest prefix in this table decides. A module may import its own layer and
#: those below it (the graph within a layer must still be acyclic), never one above.
LAYERS = {
    "hihlib.errors": 0, "hihlib.io": 0,                                    # foundation
    "hihlib.codecs": 1, "hihlib.data": 1, "hihlib.losses": 1, "hihlib.metrics": 1, "hihlib.viz": 1,
    "hihlib.models": 2, "hihlib.teaching": 2,                              # networks; teaching maths and widgets
    "hihlib.pipeline.config": 3, "hihlib.pipeline.build": 4, "hihlib.pipeline.checkpoint": 5,
    "hihlib.inference": 6,                                                 # evaluate, predict, export, convert, video
    "hihlib.training": 7,                                                  # the trainer (uses inference.evaluate)
    "hihlib.studies": 8,                                                   # demo, decimal-head study, reproduction
    "hihlib.cli": 9, "hihlib": 9,                                          # the command line; the package itself
}


def layer(module: str) -> int:
    parts = module.split(".")
    for i in range(len(parts), 0, -1):
        if ".".join(parts[:i]) in LAYERS:
            return LAYERS[".".join(parts[:i])]
    raise KeyError(f"{module}: no layer in LAYERS (add its package or module)")


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
    assert "hihlib.inference.evaluate" in graph["hihlib.training.trainer"]        # top of the file
    assert "hihlib.data.dataset" in graph["hihlib.data.cache"]
    assert "hihlib.losses" in graph["hihlib.pipeline.build"]          # inside a function


def test_hihlib_modules_import_each_other_without_a_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_every_module_has_a_layer_and_no_import_points_up():
    graph = import_graph()
    upward = sorted(f"{m} (layer {layer(m)}) imports {t} (layer {layer(t)})"
                    for m, targets in graph.items() for t in targets if layer(t) > layer(m))
    assert not upward, "imports that point up the layers:\n" + "\n".join(upward)


def test_the_layer_check_catches_an_upward_import():
    graph = {"hihlib.models.heads": {"hihlib.pipeline.checkpoint"}, "hihlib.pipeline.checkpoint": set()}
    assert [t for m, ts in graph.items() for t in ts if layer(t) > layer(m)] == ["hihlib.pipeline.checkpoint"]
    assert layer("hihlib.inference.predict") == 6 and layer("hihlib.pipeline.build") == 4
    with pytest.raises(KeyError, match="no layer"):
        layer("other.module")


@pytest.mark.parametrize("module", ["hihlib.inference.predict", "hihlib.inference.evaluate", "hihlib.predict"])
def test_inference_does_not_load_the_trainer(module):
    """Reading a checkpoint to predict loads neither the trainer nor the DDP helpers."""
    code = (f"import sys, {module}; "
            "print(sorted(m for m in sys.modules if m.startswith(('hihlib.training', 'torch.distributed.run', 'hihlib.studies'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120,
                         cwd=PACKAGE.parent).stdout.strip()
    assert out == "[]", out


def test_the_flat_layouts_module_paths_import_as_their_new_homes():
    """``hihlib.MOVED``: each old path is the same module object as its home, and no file sits at the old path."""
    import importlib

    import hihlib

    for old, new in hihlib.MOVED.items():
        assert importlib.import_module(old) is importlib.import_module(new), old
        assert not (PACKAGE.parent / (old.replace(".", "/") + ".py")).exists(), old
    from hihlib.train import Trainer
    from hihlib.training.trainer import Trainer as T

    assert Trainer is T and hihlib.demo is importlib.import_module("hihlib.studies.demo")
