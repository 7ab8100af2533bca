"""Data-loading throughput on one core: augmented 256x256 samples per second from the prepared
crop cache (``hih data prepare``) and, for comparison, from the full-size JPEGs.

The data is a synthetic WFLW export (``hih data synth``) read back by the real WFLW loader, with
images of ``--image-size`` pixels (real WFLW photos are about 1000 px wide: the JPEG path gets
slower with size, the cache path does not). Every stage is timed separately so that the slow one
is visible.

Run: python benchmarks/data_loading.py [--faces 200] [--image-size 768] [--no-write]
Writes the table to BENCHMARKS.md (section data-loading).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import cv2
import numpy as np
import torch

from hihlib.studies.benchmarking import machine_description, markdown_table, time_it, write_section
from hihlib.data import WFLW
from hihlib.data.cache import CachedFaces, prepare_cache
from hihlib.data.dataset import normalize_image
from hihlib.data.synthetic_export import export_wflw
from hihlib.data.transforms import Augment, apply_affine, crop_matrix, warp_image


def per_second(dataset, epochs: int) -> tuple[float, float]:
    """(samples per wall-clock second, samples per CPU second of this process)."""
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            dataset[i]
            n += 1
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=200)
    ap.add_argument("--image-size", type=int, default=768)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory() as tmp:
        export_wflw(os.path.join(tmp, "wflw"), args.faces, 0, seed=0, image_size=args.image_size)
        src = WFLW(os.path.join(tmp, "wflw"), "train")
        t0 = time.perf_counter()
        prepare_cache(src, os.path.join(tmp, "cache"))
        prepare_s = time.perf_counter() - t0
        cached = CachedFaces(os.path.join(tmp, "cache"), "wflw", "train")
        aug = Augment(mirror=src.scheme.mirror, size=256)

        rows = []
        for name, records in (("cache (384 px crops, memory-mapped)", cached.records), (f"JPEG ({args.image_size} px)", src.records)):
            for label, augment in (("augmented", aug), ("plain crop", None)):
                ds = (cached if records is cached.records else src).dataset(input_size=256, augment=augment)
                ds[0]
                wall, cpu = per_second(ds, args.epochs)
                rows.append([name, label, f"{cpu:.0f}", f"{wall:.0f}"])

        # Stages of one augmented sample from the cache (median of repeats, milliseconds).
        r = cached.records[0]
        img = r.load_image()
        M = crop_matrix(r.box, 256, 1.25)
        crop = warp_image(img, M, 256)
        rng = np.random.default_rng(0)
        stages = [
            ("read cached crop", time_it(r.load_image, repeat=200)),
            ("sample matrix", time_it(lambda: aug.sample_matrix(rng, 256), repeat=200)),
            ("warp 384 -> 256 (one bilinear interpolation)", time_it(lambda: warp_image(img, M, 256), repeat=200)),
            ("photometric (colour, blur, occlusion)", time_it(lambda: aug.photometric(crop, rng), repeat=200)),
            ("landmarks through the matrix", time_it(lambda: apply_affine(r.landmarks, M), repeat=200)),
            ("normalise to float32 CHW", time_it(lambda: normalize_image(crop), repeat=200)),
        ]

    md = (f"Samples of 256x256 per second on **one core** (`torch.set_num_threads(1)`, "
          f"`cv2.setNumThreads(1)`), {args.faces} synthetic WFLW-format faces exported at "
          f"{args.image_size} px, {args.epochs} epochs. Machine: {machine_description()}. "
          f"Preparing the cache took {prepare_s:.1f} s ({args.faces / prepare_s:.0f} faces/s). "
          f"Goal: 1,000 augmented samples/s/core from the cache. Samples per CPU-second (the process's "
          f"CPU time) is the per-core rate; per wall-second is lower when other jobs share the core "
          f"(load average {os.getloadavg()[0]:.1f} during this run).\n\n"
          + markdown_table(["source", "pipeline", "samples per CPU-second", "samples per wall-second"], rows)
          + "\nOne augmented sample from the cache, by stage (median ms):\n\n"
          + markdown_table(["stage", "ms"], [[n, f"{t * 1e3:.3f}"] for n, t in stages])
          + "\nScript: `python benchmarks/data_loading.py`.\n")
    print(md)
    if not args.no_write:
        write_section("data-loading", md)


if __name__ == "__main__":
    main()
