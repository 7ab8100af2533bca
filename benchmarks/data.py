"""Data throughput on one CPU core: synthetic face generation and augmented loading from the crop cache.

* Synthetic generation: ``render_face`` at 256 x 256 with the default (WFLW-frequency) attribute
  mix and with clean faces, and the records alone (landmarks, box and occlusion, no image).
* Augmented loading: a synthetic WFLW export is prepared with ``hih data prepare``'s cache
  (``hihlib.data.cache.prepare_cache``), then read back as training samples of 256 x 256 with the
  default ``Augment`` (rotation, zoom, translation, flip, blur, occlusion box, colour jitter):
  the uint8 crop alone (one warp + photometric) and the full ``FaceDataset`` item (plus ImageNet
  normalisation into a float tensor), and the training set that ``hih train --cache`` builds from the
  configuration: uint8 crops, normalised a batch at a time on the training device by the trainer
  (``normalize_batch``, measured here on the CPU for reference). For comparison: the same items decoded from the JPEGs
  without the cache, and without augmentation.

``torch.set_num_threads(1)`` and ``cv2.setNumThreads(1)`` make every number per core. Each figure is
the best of ``--repeat`` passes over the same samples, so that other processes on a shared machine
distort it as little as possible, measured in CPU time of the single-threaded process. Goals: >= 200 synthetic faces/s and >= 1000 augmented
samples/s per core.

Run: python benchmarks/data.py [--faces 300] [--repeat 3] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import cv2
import numpy as np
import torch

from hihlib.studies.benchmarking import machine_description, markdown_table, write_section
from hihlib.data import WFLW, WFLW_SCHEME, FaceDataset, normalize_batch
from hihlib.data.cache import CachedFaces, prepare_cache
from hihlib.data.synthetic import SyntheticFaces, render_face
from hihlib.data.synthetic_export import export_wflw
from hihlib.pipeline.build import build_dataset, open_split
from hihlib.pipeline.config import load_config
from hihlib.data.transforms import Augment, crop_matrix


def rate(fn, n: int, repeat: int) -> float:
    """Best items per CPU-second of ``fn()`` (which processes ``n`` items) over ``repeat`` passes.

    CPU time of this (single-threaded) process, not wall time: on a shared machine the time spent
    waiting for a core is not this code's cost."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return n / best


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=300, help="faces per measurement (default 300)")
    ap.add_argument("--repeat", type=int, default=3, help="passes per measurement; the best is kept")
    ap.add_argument("--no-write", action="store_true", help="print the table only, leave BENCHMARKS.md alone")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    n, repeat = args.faces, args.repeat
    rows = []

    def add(what: str, per_s: float, goal: str = "") -> None:
        rows.append([what, f"{per_s:,.0f}", f"{1000 / per_s:.2f}", goal])
        print(f"{what}: {per_s:,.0f}/s")

    # -- synthetic generation -------------------------------------------------------------------
    render_face(0, 0)   # warm-up (imports, allocations)
    def faces(**kwargs):
        def run():
            for i in range(n):
                render_face(i, 1, **kwargs)
        return run

    add("synthetic face 256x256, WFLW attribute mix (render_face)", rate(faces(), n, repeat), ">= 200")
    add("synthetic face 256x256, clean (attribute_prob=0)", rate(faces(attribute_prob=0), n, repeat))
    add("synthetic records only (landmarks, box, occlusion; no image)",
        rate(lambda: SyntheticFaces(n, seed=1), n, repeat))

    # -- augmented loading from the cache -------------------------------------------------------
    with tempfile.TemporaryDirectory() as tmp:
        export_wflw(tmp, n, 0, seed=2)
        source = WFLW(tmp, "train", check_subsets=False)
        prepare_cache(source, f"{tmp}/cache")
        cached = CachedFaces(f"{tmp}/cache", "wflw", "train")
        augment = Augment(mirror=WFLW_SCHEME.mirror)

        def crops_only():
            rng = np.random.default_rng(0)
            for rec in cached.records:
                augment(rec.load_image(), rec.landmarks, rng, crop_matrix(rec.box, 256))

        def items(ds):
            def run():
                for i in range(len(ds)):
                    ds[i]   # dropped at once, as a DataLoader collates and frees it (a list of all
                    # items would measure page faults of ever-new memory instead)
            return run

        items(cached.dataset(augment=augment))()   # warm-up: page the memory-mapped cache in
        add("cache -> augmented uint8 crop (one warp + photometric)", rate(crops_only, n, repeat), ">= 1000")
        add("cache -> augmented FaceDataset item (+ ImageNet-normalised tensor)",
            rate(items(cached.dataset(augment=augment)), n, repeat), ">= 1000")
        # the training set `hih train --cache` builds (configuration -> open_split -> build_dataset)
        cfg = load_config(None, ["data.dataset=wflw", f"data.root={tmp}", f"data.cache={tmp}/cache"])
        records, scheme, _ = open_split(cfg, "train")
        add("`hih train --cache`: augmented training item, uint8 (config defaults)",
            rate(items(build_dataset(cfg, records, scheme, train=True)), n, repeat), ">= 1000")
        batch = torch.from_numpy(np.stack([cached.records[i].load_image()[:256, :256] for i in range(16)]))
        add("  + normalize_batch of those crops on the CPU (batch 16, per sample; on a GPU in training)",
            rate(lambda: normalize_batch(batch), 16, repeat * 20))
        add("cache -> FaceDataset item, no augmentation", rate(items(cached.dataset()), n, repeat))
        add("JPEG (no cache) -> augmented FaceDataset item",
            rate(items(FaceDataset(source.records, WFLW_SCHEME, augment=augment)), n, repeat))

    table = markdown_table(["what (one core)", "samples per CPU-second", "CPU ms/sample", "goal"], rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    text = (f"## Synthetic faces and augmented loading (`benchmarks/data.py`)\n\n{machine_description()}; torch and "
            f"OpenCV limited to one thread; best of {repeat} passes over {n} faces, in CPU seconds of the process "
            f"(load average {load:.1f} during the run: on a busy machine even CPU time is inflated, so these are "
            f"lower bounds). The cache is `hih data prepare`'s (crops of 2.0 x the box at 384 px) of a synthetic "
            f"WFLW export (`hih data synth`).\n\n{table}")
    print(text)
    if not args.no_write:
        write_section("data", text)


if __name__ == "__main__":
    main()
