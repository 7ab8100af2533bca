"""Shared helpers for the scripts in benchmarks/: timing, machine description, BENCHMARKS.md sections.

Each benchmark owns one section of BENCHMARKS.md, delimited by ``<!-- begin:NAME -->`` and
``<!-- end:NAME -->``; re-running a benchmark replaces its section and leaves the others alone.
"""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path
from typing import Callable

from ..io import write_text

ROOT = Path(__file__).resolve().parents[2]   # hihlib/studies/benchmarking.py -> the checkout
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
HEADER = "# Benchmarks\n\nMeasured numbers, each section written by the script named in it.\n"


def machine_description(device: str = "cpu") -> str:
    """One line naming the machine: CPU model and core count, torch version, and the GPU if used."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    desc = (f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} "
            f"({torch.get_num_threads()} thread{'s' * (torch.get_num_threads() != 1)}), Python {platform.python_version()}")
    if device.startswith("cuda") and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        desc += f", GPU {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    return desc


def time_it(fn: Callable[[], object], *, repeat: int = 20, warmup: int = 3, sync: Callable[[], None] | None = None) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def markdown_table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines) + "\n"


def write_section(name: str, markdown: str, path: Path = BENCHMARKS_MD) -> None:
    """Replace (or append) the section NAME of BENCHMARKS.md with ``markdown``, atomically."""
    text = path.read_text(encoding="utf-8") if path.exists() else HEADER
    block = f"<!-- begin:{name} -->\n{markdown.rstrip()}\n<!-- end:{name} -->"
    pattern = re.compile(rf"<!-- begin:{re.escape(name)} -->.*?<!-- end:{re.escape(name)} -->", re.S)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    write_text(path, text)
