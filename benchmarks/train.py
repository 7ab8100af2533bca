"""Training throughput of the hourglass models: images per second of one full training step
(forward, HIH loss, backward, Adam update) on synthetic tensors, so data loading is not measured.

CPU (2 threads): hih_t/s/b at 256x256 with a small batch, fp32 eager, plus the small CPU variants
(hg_tiny, hg_small at 128x128). CUDA (when available): hih_t/s/b in fp32 eager, bf16 autocast +
channels_last, and with ``--compile`` also bf16 + channels_last + torch.compile; with the GPU's name,
total memory and the peak memory allocated per image.

Run:  python benchmarks/train.py                 # CPU, and CUDA if a GPU is present
      python benchmarks/train.py --device cuda --compile --batch 64
      python benchmarks/train.py --no-write      # print only
Writes BENCHMARKS.md sections train-cpu and train-cuda (separately, so a CPU-only rerun keeps the
GPU numbers).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch

from hihlib.studies.benchmarking import machine_description, markdown_table, time_it, write_section
from hihlib.codecs import get_codec
from hihlib.losses import make_loss
from hihlib.models import count_parameters, create


def make_step(model, loss, images, targets, *, bf16: bool):
    """One training step as a closure. Inputs stay on the device; nothing syncs inside."""
    device = images.device
    opt = torch.optim.Adam(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext())

    def step():
        with autocast:
            outputs = model(images)
        total, _ = loss(outputs, targets)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()

    return step


def measure(name: str, device: torch.device, batch: int, *, bf16=False, channels_last=False, compile=False,
            steps=5, warmup=2) -> dict:
    """Images/s, ms/step and (CUDA) peak memory per image of one configuration."""
    torch.manual_seed(0)
    model = create(name, head="hih").to(device).train()
    size = model.input_size
    codec = get_codec("hih", input_size=size, heatmap_size=model.heatmap_size)
    images = torch.randn(batch, 3, size, size, device=device)
    targets = codec.encode(torch.rand(batch, model.config.num_landmarks, 2, device=device) * (size - 1))
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model)
    step = make_step(model, make_loss("hih"), images, targets, bf16=bf16)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    row = {"model": name, "params": count_parameters(model), "batch": batch, "input": size}
    if device.type == "cpu":
        # Wall time suffers when other jobs share the cores; CPU time of this process does much less.
        for _ in range(warmup):
            step()
        wall, cpu = [], []
        for _ in range(steps):
            w0, c0 = time.perf_counter(), time.process_time()
            step()
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        seconds = statistics.median(wall)
        row["images_per_cpu_s"] = batch / statistics.median(cpu)
    else:
        seconds = time_it(step, repeat=steps, warmup=warmup, sync=sync)
    row.update(images_per_s=batch / seconds, ms_per_step=1e3 * seconds)
    if device.type == "cuda":
        row["peak_mib_per_image"] = torch.cuda.max_memory_allocated() / batch / 2**20
    return row


def run_cpu(models, small_models, batch, small_batch, steps, warmup) -> str:
    torch.set_num_threads(2)
    load = os.getloadavg()[0]
    rows = []
    for name, b in [(m, batch) for m in models] + [(m, small_batch) for m in small_models]:
        t0 = time.perf_counter()
        r = measure(name, torch.device("cpu"), b, steps=steps, warmup=warmup)
        print(f"cpu {name}: {r['images_per_s']:.2f} images/s ({time.perf_counter() - t0:.0f} s)", flush=True)
        rows.append([name, f"{r['params'] / 1e6:.2f} M", f"{r['input']}x{r['input']}", b,
                     f"{r['images_per_s']:.2f}", f"{r['ms_per_step']:.0f}", f"{r['images_per_cpu_s']:.2f}"])
    load_end = os.getloadavg()[0]
    table = markdown_table(["model", "params", "input", "batch", "images/s (wall)", "ms/step (wall)",
                            "images per CPU-second"], rows)
    return (f"### Training throughput, CPU (fp32 eager)\n\n`python benchmarks/train.py` on {machine_description('cpu')}.\n"
            f"One step = forward + HIH loss (MSE + 0.05/64 CSC, hihlib's default) + backward + Adam, synthetic tensors (no data loading), "
            f"median of {steps} steps after {warmup} warm-up steps. Load average {load:.1f} at the start and "
            f"{load_end:.1f} at the end on {os.cpu_count()} cores: when it exceeds the core count, other jobs took "
            f"part of the CPU and the wall-clock rates are lower bounds; images per CPU-second (this process's "
            f"CPU time over both threads) is the steadier figure.\n\n{table}")


CUDA_MODES = [("fp32 eager", dict()), ("bf16 + channels_last", dict(bf16=True, channels_last=True))]


def run_cuda(models, batch, steps, warmup, compile: bool) -> str:
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    modes = CUDA_MODES + ([("bf16 + channels_last + compile", dict(bf16=True, channels_last=True, compile=True))]
                          if compile else [])
    rows = []
    for name in models:
        base = None
        for label, opts in modes:
            try:
                r = measure(name, device, batch, steps=steps, warmup=warmup + (3 if opts.get("compile") else 0), **opts)
            except torch.cuda.OutOfMemoryError:
                rows.append([name, label, batch, "OOM", "", "", ""])
                torch.cuda.empty_cache()
                continue
            base = base or r["images_per_s"]
            print(f"cuda {name} {label}: {r['images_per_s']:.0f} images/s", flush=True)
            rows.append([name, label, batch, f"{r['images_per_s']:.0f}", f"{r['ms_per_step']:.1f}",
                         f"{r['peak_mib_per_image']:.0f}", f"{r['images_per_s'] / base:.2f}x"])
    props = torch.cuda.get_device_properties(0)
    table = markdown_table(["model", "mode", "batch", "images/s", "ms/step", "peak MiB/image", "vs fp32"], rows)
    return (f"### Training throughput, CUDA\n\n`python benchmarks/train.py --device cuda{' --compile' if compile else ''}` "
            f"on {machine_description('cuda')}; GPU {props.name}, {props.total_memory / 2**30:.0f} GiB.\n"
            f"One step = forward + HIH loss + backward + fused Adam at 256x256, synthetic tensors, median of {steps} "
            f"steps. fp32 eager keeps PyTorch's defaults (cuDNN may run fp32 convolutions in TF32). Peak memory = torch.cuda.max_memory_allocated / batch.\n\n{table}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="auto: CPU, then CUDA if available")
    p.add_argument("--models", default="hih_t,hih_s,hih_b")
    p.add_argument("--small-models", default="hg_tiny,hg_small", help="CPU variants (CPU only); '' for none")
    p.add_argument("--batch", type=int, default=None, help="default 2 on CPU, 64 on CUDA")
    p.add_argument("--small-batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 3 on CPU, 20 on CUDA)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile (CUDA)")
    p.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = p.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    small = [m for m in args.small_models.split(",") if m]

    if args.device in ("auto", "cpu"):
        md = run_cpu(models, small, args.batch or 2, args.small_batch, args.steps or 3, warmup=1)
        print(md)
        if not args.no_write:
            write_section("train-cpu", md)
    if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise SystemExit("benchmarks/train.py: --device cuda but torch.cuda.is_available() is False")
        md = run_cuda(models, args.batch or 64, args.steps or 20, warmup=3, compile=args.compile)
        print(md)
        if not args.no_write:
            write_section("train-cuda", md)


if __name__ == "__main__":
    main()
