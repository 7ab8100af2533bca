"""The released HIH decimal head, judged at the geometry its authors built (issue 18).

``python -m hihlib.decimal_study --out figures/decimal_head`` regenerates ``results.json`` and the figures
(``--tiny`` is the test suite's configuration; ``--trained`` adds the long trained runs, see
``tools/decimal_head_runs.sh``).

Pieces:

* ``RECIPES`` / ``build(...)``: the one switch. ``recipe="released"`` sets every knob the released code
  (starhiking/HeatmapInHeatmap, experiments/Data_WFLW/HIHC_64x8_hg_l2.py and lib/model/get_hourglass.py)
  sets: the split frame (``frame="released_hih"``: the cell containing the landmark, decimal offset from
  its corner), the soft label (softmax of the Gaussian *values*, KL averaged over elements:
  ``decimal_loss="official"``), the loss weight (MSE x 1 + 0.05 x CSC), the initialisation (every conv
  and linear weight N(0, 0.001^2), BN weight 1 / bias 0), ``align_corners=True`` up-sampling, sigma 1.5
  on the integer map and 1.0 on the decimal map. ``recipe="hihlib"`` is hihlib's defaults.
* ``receptive_field(head, ...)``: which heatmap cells each decimal class can see (exact, by
  back-propagation through the head with its weights set to ones and max-pools replaced by sums of
  their window).
* ``oracle_run(...)``: the trunk-free experiment: the head fed an oracle input (a "feature" that holds
  the sub-cell fraction) and trained on the codec's decimal targets.
* ``train_run(...)`` / ``evaluate_run(...)``: a trained network on synthetic faces (the demo's data).
* ``feature_probe(...)``: ridge probes of a trained trunk's merged features for the fraction, read at the
  landmark's cell and at every decimal class's position.

The released code builds its decimal head only where heatmap / decimal >= 4 (its max-pool has no padding;
at 16 -> 8 it gives a 7 x 7 map). Geometries in this module are (heatmap, decimal) pairs.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from .errors import ConfigError

# -- the released switch -------------------------------------------------------------------------------

#: Every knob of the HIH recipe, per recipe. "released" values are the released code's (docs/REFERENCE.md
#: section HIH "Official losses" / "Official details" and section 6; experiments/Data_WFLW/HIHC_64x8_hg_l2.py).
RECIPES: dict[str, dict] = {
    "hihlib": {
        "frame": "hihlib",              # decimal offset from the cell's centre
        "sigma": 1.5,                   # integer-map Gaussian (cells)
        "decimal_sigma": 1.0,           # soft-label Gaussian (decimal cells)
        "decimal_loss": "kl",           # normalised Gaussian label, KL per landmark
        "decimal_weight": 0.05 / 64,    # = 0.05 x a KL averaged over the 64 cells
        "init": "pytorch",              # PyTorch's default (Kaiming-uniform) conv init
        "align_corners": False,
    },
    "released": {
        "frame": "released_hih",        # the cell containing the landmark, offset from its corner
        "sigma": 1.5,
        "decimal_sigma": 1.0,
        "decimal_loss": "official",     # softmax of the Gaussian values, KL averaged over every element
        "decimal_weight": 0.05,         # loss_offset_weight = 0.05 (loss_heatmap_weight = 1)
        "init": "released",             # N(0, 0.001^2) on every conv / linear weight, BN 1 / 0
        "align_corners": True,          # bilinear up-sampling in the hourglass
    },
}


def recipe(name: str) -> dict:
    """The knobs of recipe ``name`` (a copy); ConfigError on unknown names."""
    if name not in RECIPES:
        raise ConfigError(f"unknown recipe {name!r}; expected one of {sorted(RECIPES)}")
    return dict(RECIPES[name])


def released_init(module: nn.Module) -> nn.Module:
    """The released initialisation (``StackedHourGlass.init_weights`` / ``HIH_head._init_offset_params``):
    every Conv2d and Linear weight N(0, 0.001^2) (biases left at PyTorch's default), every BatchNorm
    weight 1 and bias 0. Applied to the whole model, as released. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, std=0.001)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return module


def build(recipe_name: str, head: str, *, num_landmarks: int = 98, heatmap_size: int = 64,
          decimal_size: int = 8, input_size: int = 256, width: int = 256, num_stacks: int = 4,
          depth: int = 4, decimal_channels: int | None = None, seed: int | None = None):
    """(model, codec, loss) of a HIH model (``head`` "hih" or "hih_local", or the labelled variant
    "hih_shallow") with every knob of ``recipe_name`` ("released" or "hihlib").

    The same ``seed`` gives the same trunk for every head. ``hih_local`` reads its window at the cell of the
    codec's frame (so under the released recipe it reads the released cell)."""
    from . import models
    from .codecs import get_codec
    from .losses import build_loss

    r = recipe(recipe_name)
    if seed is not None:
        torch.manual_seed(seed)
    model = models.create("hg_tiny", num_landmarks=num_landmarks, head=head, heatmap_size=heatmap_size,
                          decimal_size=decimal_size, decimal_channels=decimal_channels, input_size=input_size,
                          width=width, num_stacks=num_stacks, depth=depth, align_corners=r["align_corners"])
    if r["init"] == "released":
        released_init(model)
    codec = get_codec("hih", input_size=input_size, heatmap_size=heatmap_size, sigma=r["sigma"],
                      decimal_size=decimal_size, decimal_sigma=r["decimal_sigma"], frame=r["frame"])
    if head == "hih_local":
        model._cells = codec.split   # the window sits at the codec's integer cell
    loss = build_loss("hih", decimal_loss=r["decimal_loss"], decimal_weight=r["decimal_weight"])
    return model, codec, loss


def training_label(targets_decimal: Tensor, recipe_name: str) -> Tensor:
    """The probability distribution a recipe's CSC loss trains the decimal map towards, (B, K, d, d).

    hihlib: the codec's normalised Gaussian; released: the softmax of the Gaussian values (peak 1)."""
    if recipe(recipe_name)["decimal_loss"] == "kl":
        return targets_decimal
    from .losses import official_soft_label

    p = targets_decimal
    return official_soft_label(p / p.amax((-2, -1), keepdim=True).clamp_min(1e-12))


def kl_per_landmark(label: Tensor, logits: Tensor) -> Tensor:
    """KL(label || softmax(logits)) summed over the d*d cells: (B, K, d, d) x 2 -> (B, K) nats."""
    logq = torch.log_softmax(logits.float().flatten(-2), -1)
    p = label.float().flatten(-2)
    return (torch.xlogy(p, p) - p * logq).sum(-1)


def average_label_kl(label: Tensor) -> float:
    """The KL of the best input-blind prediction: every map predicted as the mean label over the set
    (per landmark index), KL(label || mean) averaged over maps. label (N, K, d, d) -> nats."""
    mean = label.float().mean(0, keepdim=True).expand_as(label)
    return float(kl_per_landmark(label, mean.clamp_min(1e-30).log()).mean())


# -- trained networks on synthetic faces -------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """One trained run. Sizes in pixels (crops) and cells (heatmaps); ``spread``: "demo" (the demo's
    detector-like boxes: pose, scale and shift of the synthetic generator) or "aligned" (crops from the
    landmarks' own tight box: the optimistic, tightly aligned protocol)."""

    head: str = "hih"
    recipe: str = "released"
    heatmap: int = 64
    decimal: int = 8
    input_size: int = 128
    spread: str = "demo"
    steps: int = 4000
    batch_size: int = 8
    width: int = 32
    num_stacks: int = 1
    depth: int = 4
    lr: float = 3e-3
    num_train: int = 3000
    num_test: int = 300
    image_size: int = 128
    point_stride: int = 4      # train on landmarks 0, s, 2s, ... of the 98 (25 at s = 4: the CPU budget)
    seed: int = 0

    def points(self, num_points: int) -> list[int]:
        return list(range(0, num_points, self.point_stride))

    def key(self) -> str:
        return (f"{self.head}_{self.recipe}_{self.heatmap}x{self.decimal}_{self.spread}_w{self.width}"
                f"s{self.num_stacks}_{self.steps}")


def make_faces(run: TrainedRun, workers: int = 0):
    """(train, test) ``hihlib.demo.CachedCrops`` of synthetic faces with the demo's appearance."""
    from .data import FaceDataset
    from .data.synthetic import SyntheticFaces
    from .demo import CLEAN_APPEARANCE, CachedCrops
    from .train import cache_records

    if run.spread not in ("demo", "aligned"):
        raise ConfigError(f"spread must be 'demo' or 'aligned', got {run.spread!r}")
    box = "dataset" if run.spread == "demo" else "landmarks"
    sets = []
    for n, s in ((run.num_train, run.seed), (run.num_test, run.seed + 10_000)):
        faces = SyntheticFaces(n, seed=s, image_size=run.image_size, attribute_prob=dict(CLEAN_APPEARANCE))
        records = cache_records(list(faces.records))
        sets.append(CachedCrops(FaceDataset(records, faces.scheme, input_size=run.input_size, box=box),
                                workers=workers if n >= 256 else 0))
    return sets[0], sets[1]


def lr_at(step: int, steps: int, peak: float) -> float:
    """Linear warm-up over the first 10 % of the steps, then cosine decay to 0 (the demo's schedule)."""
    warm = max(1, steps // 10)
    if step < warm:
        return peak * (step + 1) / warm
    return 0.5 * peak * (1 + math.cos(math.pi * (step - warm) / max(1, steps - warm)))


def train_run(run: TrainedRun, data=None, *, log_every: int = 100, threads: int | None = None,
              log=print, checkpoint: str | Path | None = None) -> dict:
    """Train one model (AdamW, the demo's warm-up + cosine schedule, gradient clip 5) and evaluate it.

    Returns the result row (``evaluate_run``) plus "curve": [(step, decimal loss part)] and
    "train_seconds". ``data``: (train, test) from ``make_faces`` (built if None)."""
    if threads:
        torch.set_num_threads(threads)
    train_set, test_set = data if data is not None else make_faces(run)
    pts = run.points(train_set.scheme.num_points)
    model, codec, loss_fn = build(run.recipe, run.head, num_landmarks=len(pts),
                                  heatmap_size=run.heatmap, decimal_size=run.decimal, input_size=run.input_size,
                                  width=run.width, num_stacks=run.num_stacks, depth=run.depth, seed=run.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(run.seed)
    n = len(train_set)
    curve, t0, order, pos = [], time.perf_counter(), torch.randperm(n, generator=g), 0
    model.train()
    for step in range(run.steps):
        if pos + run.batch_size > n:
            order, pos = torch.randperm(n, generator=g), 0
        idx = order[pos:pos + run.batch_size]
        pos += run.batch_size
        images, coords = train_set.images[idx].float(), train_set.landmarks[idx][:, pts].float()
        for group in opt.param_groups:
            group["lr"] = lr_at(step, run.steps, run.lr)
        targets = codec.encode(coords)
        loss, parts = loss_fn(model(images, landmarks=coords), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        if (step + 1) % log_every == 0 or step == 0:
            curve.append((step + 1, float(parts["decimal"])))
            log(f"{run.key()} step {step + 1}/{run.steps} loss {float(loss.detach()):.5f} decimal {float(parts['decimal']):.5f}"
                f" ({time.perf_counter() - t0:.0f} s)")
    seconds = time.perf_counter() - t0
    if checkpoint is not None:
        torch.save(model.state_dict(), checkpoint)
    row = evaluate_run(run, model, codec, test_set)
    row.update(curve=curve, train_seconds=round(seconds, 1))
    return row, model, codec


@torch.no_grad()
def evaluate_run(run: TrainedRun, model, codec, test_set, batch_size: int = 50) -> dict:
    """The result row of a trained model on the test crops: decimal KL (per landmark, against the label
    its recipe trains towards; ``hih_local`` reading the ground-truth cell) against the average-label KL,
    and NME (inter-ocular, %) with the decimal map (``official``: argmax + argmax / d, the released
    decoder; ``expectation``: hihlib's) and with the integer map alone (``argmax``)."""
    from . import metrics
    from .evaluate import crop_to_original

    model.eval()
    pts = run.points(test_set.scheme.num_points)
    kls, labels, kls_n, labels_n, preds = [], [], [], [], {m: [] for m in ("official", "expectation", "argmax")}
    for s in range(0, len(test_set), batch_size):
        images = test_set.images[s:s + batch_size].float()
        coords = test_set.landmarks[s:s + batch_size][:, pts].float()
        label = training_label(codec.encode(coords)["decimal"], run.recipe)
        dec = model(images, landmarks=coords)["decimal"]
        kls.append(kl_per_landmark(label, dec))
        labels.append(label)
        sharp = codec.encode(coords)["decimal"]   # the normalised Gaussian (hihlib's label), for comparison
        kls_n.append(kl_per_landmark(sharp, dec))
        labels_n.append(sharp)
        out = model(images)
        for m in preds:
            preds[m].append(codec.decode(out, m))
    full = np.stack([r.landmarks for r in test_set.records])          # (N, 98, 2) original pixels
    a, b = test_set.scheme.normaliser()
    norm = np.linalg.norm(full[:, a] - full[:, b], axis=-1)             # inter-ocular, from all 98 points
    gt = full[:, pts]
    nme = {m: 100 * float(metrics.nme(crop_to_original(torch.cat(p), test_set.matrices).numpy(), gt, norm).mean())
           for m, p in preds.items()}
    return {"kind": "trained", **dataclasses.asdict(run), "decimal_kl": float(torch.cat(kls).mean()),
            "average_label_kl": average_label_kl(torch.cat(labels)),
            "decimal_kl_normalised_label": float(torch.cat(kls_n).mean()),
            "average_label_kl_normalised_label": average_label_kl(torch.cat(labels_n)), "nme_decimal": nme["official"],
            "nme_expectation": nme["expectation"], "nme_integer": nme["argmax"]}


def _train_cli(argv=None) -> int:
    """One trained run, its row appended to OUT/trained_rows.json (the long runs of the study)."""
    import argparse
    import json

    from .io import write_json

    ap = argparse.ArgumentParser(prog="python -m hihlib.decimal_study train")
    for f in dataclasses.fields(TrainedRun):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    args = vars(ap.parse_args(argv))
    out, threads = Path(args.pop("out")), args.pop("threads")
    run = TrainedRun(**args)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    data = make_faces(run)
    print(f"data {time.perf_counter() - t0:.0f} s", flush=True)
    row, model, codec = train_run(run, data, log=lambda m: print(m, flush=True),
                                  checkpoint=out / f"{run.key()}.pt")
    path = out / "trained_rows.json"
    rows = json.loads(path.read_text()) if path.exists() else []
    rows = [r for r in rows if TrainedRun(**{k: r[k] for k in args}).key() != run.key()] + [row]
    write_json(path, rows)
    print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
    return 0


def main(argv=None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return _train_cli(argv[1:])
    return study_cli(argv)


if __name__ == "__main__":
    raise SystemExit(main())
