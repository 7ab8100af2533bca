"""Save real network logits for ``benchmarks/decode.py``: the "realistic" input of the decode benchmark.

Trains one model with ``hih demo``'s H3R recipe (``hihlib.studies.demo.train_one``: hourglass ``hg_tiny`` width 32,
AdamW, linear warm-up then cosine decay from 3e-3, randomized-rounding targets, spatial-softmax loss) on
synthetic faces, at the decode benchmark's heatmap size (64 x 64: 128 px crops, stride 2), then writes the
logits the trained network gives on a few held-out faces as float16:

    benchmarks/data/h3r_logits.pt = {"heatmap": (F, 98, 64, 64) float16, "landmarks": (F, 98, 2) crop px,
                                     "recipe": {...}, "seconds": ...}

Run (about 3 minutes on 2 idle cores; the file is committed, so the benchmark does not need this):
    python benchmarks/make_decode_fixture.py [--steps 400] [--faces 4] [--out benchmarks/data/h3r_logits.pt]
Training writes its checkpoint to a temporary folder, deleted at the end.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from hihlib.studies.demo import PROFILES, make_data, train_one
from hihlib.io import torch_save

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--train-faces", type=int, default=1500)
    ap.add_argument("--faces", type=int, default=4, help="held-out faces whose logits are saved")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "data" / "h3r_logits.pt"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # the cpu profile's recipe (hg_tiny width 32, batch 16, lr 3e-3, clean synthetic faces) at 128 px crops
    # and a 64 x 64 heatmap, the decode benchmark's size
    p = dataclasses.replace(PROFILES["cpu"], name="decode-fixture", num_train=args.train_faces, num_test=args.faces,
                            image_size=128, input_size=128, heatmap_sizes=(64,), steps=args.steps, heads=("h3r",))
    t0 = time.perf_counter()
    train_set, test_set, desc = make_data(p, seed=0)
    with tempfile.TemporaryDirectory() as work:
        model, codec, seconds = train_one(p, "h3r", 64, train_set, Path(work), "cpu", seed=0)
    model.eval()
    images = torch.stack([test_set[i]["image"] for i in range(len(test_set))])
    with torch.no_grad():
        logits = model(images)["heatmap"].float()  # (F, 98, 64, 64)
    landmarks = test_set.landmarks.float()
    nme_px = (codec.decode({"heatmap": logits}, "topk") - landmarks).norm(dim=-1).mean().item()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"heatmap": logits.half(), "landmarks": landmarks,
               "recipe": {**dataclasses.asdict(p), "head": "h3r", "heatmap_size": 64, "data": desc,
                          "mean_error_px_topk": round(nme_px, 3)},
               "seconds": round(time.perf_counter() - t0, 1)}
    torch_save(payload, out)
    print(f"wrote {out}: logits {tuple(logits.shape)} float16, top-k mean error {nme_px:.2f} px on "
          f"{args.faces} held-out faces (128 px crops); trained {p.steps} steps in {seconds:.0f} s")


if __name__ == "__main__":
    main()
