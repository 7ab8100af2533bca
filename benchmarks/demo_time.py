"""Where the time of ``hih demo`` goes on a CPU: one training step of the demo's models, and what
OpenMP's waiting policy costs when other processes share the cores.

1. Seconds per training step (forward, loss, backward, AdamW; batch 16; synthetic tensors) of
   ``hg_tiny`` at width 32 for each head, at the first release's setting (128 px crops, heatmaps
   64 / 32) and the demo's (64 px crops, heatmaps 32 / 16), with every core of the machine.
2. The same step (64 px, heatmap 16, Gaussian head) in a fresh process, on the idle machine and
   while two busy-looping processes load the cores: 2 threads with libgomp's default wait policy
   (threads spin while they wait) and with ``OMP_WAIT_POLICY=PASSIVE`` (they sleep), and 1 thread.
   This is why ``hih demo`` chooses its thread count from the idle cores.

Run:  python benchmarks/demo_time.py [--no-write]      -> BENCHMARKS.md section demo-time
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time

import torch

from hihlib.studies.benchmarking import machine_description, markdown_table, write_section

STEP = r"""
import sys, time, torch
from hihlib import models
from hihlib.codecs import get_codec
from hihlib.losses import make_loss
from hihlib.models.heads import codec_name
head, S, H, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
depth = max(1, (H // 4).bit_length() - 1)
m = models.create("hg_tiny", num_landmarks=98, head=head, heatmap_size=H, input_size=S, width=32, depth=depth)
name = codec_name(head)
codec, loss = get_codec(name, input_size=S, heatmap_size=H), make_loss(name)
opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
x, y = torch.randn(16, 3, S, S), torch.rand(16, 98, 2) * (S - 1)
g = torch.Generator().manual_seed(0)
for i in range(steps + 2):
    if i == 2:
        t0 = time.perf_counter()
    total, _ = loss(m(x, landmarks=y), codec.encode(y, generator=g))
    opt.zero_grad(); total.backward(); opt.step()
print((time.perf_counter() - t0) / steps)
"""


def step_seconds(head: str, size: int, heatmap: int, threads: int, steps: int, env=None) -> float:
    out = subprocess.run([sys.executable, "-c", STEP, head, str(size), str(heatmap), str(threads), str(steps)],
                         env={**os.environ, **(env or {})}, capture_output=True, text=True, check=True,
                         timeout=1800)
    return float(out.stdout.strip().splitlines()[-1])


def _burn(stop):
    while not stop.is_set():
        pass


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--no-write", action="store_true")
    args = p.parse_args(argv)
    cores = len(os.sched_getaffinity(0))
    load0 = os.getloadavg()[0]
    rows = []
    for size, heatmaps in ((128, (64, 32)), (64, (32, 16))):
        for hm in heatmaps:
            times = [step_seconds(h, size, hm, cores, args.steps) for h in ("gaussian", "h3r", "hih", "hih_local")]
            rows.append([f"{size} px", f"{hm} (stride {size // hm})", *[f"{t:.3f}" for t in times]])
            print(rows[-1], flush=True)
    load1 = os.getloadavg()[0]
    idle = [["idle machine, 2 threads, default policy (spinning)", step_seconds("gaussian", 64, 16, 2, args.steps)],
            ["idle machine, 2 threads, OMP_WAIT_POLICY=PASSIVE (sleeping)",
             step_seconds("gaussian", 64, 16, 2, args.steps, {"OMP_WAIT_POLICY": "PASSIVE"})],
            ["idle machine, 1 thread", step_seconds("gaussian", 64, 16, 1, args.steps)]]
    # under load: two busy-looping processes
    stop = mp.Event()
    burners = [mp.Process(target=_burn, args=(stop,)) for _ in range(2)]
    for b in burners:
        b.start()
    try:
        loaded = [["2 busy processes, 2 threads, default policy (spinning)", step_seconds("gaussian", 64, 16, 2, args.steps)],
                  ["2 busy processes, 2 threads, OMP_WAIT_POLICY=PASSIVE (sleeping)",
                   step_seconds("gaussian", 64, 16, 2, args.steps, {"OMP_WAIT_POLICY": "PASSIVE"})],
                  ["2 busy processes, 1 thread", step_seconds("gaussian", 64, 16, 1, args.steps)]]
    finally:
        stop.set()
        for b in burners:
            b.join()
    loaded = idle + loaded
    for r in loaded:
        print(r, flush=True)
    md = (f"### Where the demo's time goes (`python benchmarks/demo_time.py`)\n\n{machine_description('cpu')}; "
          f"load average {load0:.1f} at the start, {load1:.1f} after part 1. Seconds per training step of `hg_tiny` "
          f"width 32, batch 16 (forward + loss + backward + AdamW, synthetic tensors), {cores} threads, "
          f"mean of {args.steps} steps after 2 warm-ups, each in a fresh process.\n\n"
          + markdown_table(["crop", "heatmap", "gaussian", "h3r", "hih (released)", "hih_local"], rows)
          + "\nThe same step (64 px, heatmap 16, Gaussian) on the idle machine and while two busy-looping "
            "processes hold the cores, by thread count and OpenMP wait policy:\n\n"
          + markdown_table(["machine, threads and OpenMP wait policy", "s / step"], [[a, f"{b:.3f}"] for a, b in loaded]))
    print(md)
    if not args.no_write:
        write_section("demo-time", md)


if __name__ == "__main__":
    main()
