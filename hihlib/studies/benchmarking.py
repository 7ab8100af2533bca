"""Shared helpers for the scripts in benchmarks/ and for ``hih demo``: timing, the machine (its
description, the cores this process may use and those left idle, the torch threads to use, the load),
BENCHMARKS.md sections.

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


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def data_workers() -> int:
    """Processes for rendering: the cores this process may use, at most 8."""
    return min(8, available_cores())


def idle_cores(seconds: float = 1.0) -> float | None:
    """Cores left idle by every process over the next ``seconds`` (from /proc/stat; None elsewhere).

    Measured now, not read from the load average, which lags by minutes (after a ``pip install``
    it still reports a busy machine on an idle one)."""
    def sample():
        with open("/proc/stat") as f:
            v = [float(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v[:8])   # idle + iowait, total (user .. steal)

    try:
        idle0, total0 = sample()
        time.sleep(seconds)
        idle1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    cores = os.cpu_count() or 1
    return cores * (idle1 - idle0) / max(total1 - total0, 1e-9)


def choose_threads() -> int:
    """torch CPU threads for the next model: the idle cores this process may use, at least 1.

    On an idle machine that is every core. When other jobs hold cores, fewer threads: torch's OpenMP
    threads spin while they wait for each other, and a thread whose core is taken makes the others
    spin for its time slice. Sleeping instead of spinning (``OMP_WAIT_POLICY=PASSIVE``) avoids that but
    slows the idle machine's steps down, so the demo chooses the thread count instead (both measured by
    ``benchmarks/demo_time.py``, BENCHMARKS.md section demo-time)."""
    cores = available_cores()
    idle = idle_cores()
    if idle is None:
        return cores
    return max(1, min(cores, int(idle + 0.5)))   # a core more than half idle counts


def device_name(dev) -> str:
    """The GPU's name for a CUDA ``torch.device``, else the CPU and the cores this process may use."""
    if dev.type == "cuda":
        import torch

        return torch.cuda.get_device_name(dev)
    return f"{platform.processor() or platform.machine()}, {available_cores()} cores"


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the system has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


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
