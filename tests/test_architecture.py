"""ARCHITECTURE.md draws the layers that tests/test_imports.py enforces: its layer table names the same
modules at the same ranks as ``LAYERS``, and every module it names exists."""

import importlib.util
import re
from pathlib import Path

from test_imports import LAYERS

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\|\s*(\d+)\s*\|([^|]*)\|")


def drawn_layers(text: str) -> dict[str, int]:
    """module -> layer from the table of the section "## The layers": rows ``| N | `a`, `b` | ... |``."""
    section = text.split("## The layers", 1)[1].split("\n## ", 1)[0]
    layers = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            for module in re.findall(r"`([\w.]+)`", m.group(2)):
                assert module not in layers, f"{module} is drawn in two layers"
                layers[module] = int(m.group(1))
    return layers


def test_the_drawn_layers_are_the_enforced_ones():
    drawn = drawn_layers((ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8"))
    assert drawn == LAYERS, ("ARCHITECTURE.md and tests/test_imports.LAYERS differ: "
                             f"only drawn {sorted(set(drawn.items()) - set(LAYERS.items()))}, "
                             f"only enforced {sorted(set(LAYERS.items()) - set(drawn.items()))}")
    assert all(importlib.util.find_spec(m) is not None for m in drawn)


def test_the_table_reader_reads_ranks_and_names():
    text = ("## The layers\n\n| layer | modules |\n|---:|---|\n| 0 | `a.b`, `a.c` | x |\n| 3 | `a.d` | `not.a.module` |\n"
            "\n## Next\n| 9 | `z` |\n")
    assert drawn_layers(text) == {"a.b": 0, "a.c": 0, "a.d": 3}


def test_modules_that_locate_the_checkout_find_it_from_their_package():
    """Moved one folder down (hihlib/viz/__init__.py, hihlib/studies/benchmarking.py), they still name the
    folder holding pyproject.toml and hihlib/ (not hihlib/ itself, nor the current folder)."""
    from hihlib import viz
    from hihlib.studies import benchmarking

    assert viz.project_root() == benchmarking.ROOT == ROOT
    assert benchmarking.BENCHMARKS_MD == ROOT / "BENCHMARKS.md"
