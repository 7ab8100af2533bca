"""The released HIH decimal head, judged at the geometry its authors built (issue 18).

``python -m hihlib.studies.decimal_study --out figures/decimal_head`` regenerates ``results.json`` and the figures
(``--tiny`` is the test suite's configuration; ``--trained`` adds the long trained runs, see
``tools/decimal_head_runs.sh``; ``--oracle`` adds oracle rows run elsewhere). The committed results.json is
``--out figures/decimal_head --reuse-oracle --oracle figures/decimal_head/runs/oracle.jsonl --trained
figures/decimal_head/runs`` (rows of ``tools/decimal_head_device.sh``).

Pieces:

* ``RECIPES`` / ``build(...)``: the one switch. ``recipe="released"`` sets every knob the released code
  (starhiking/HeatmapInHeatmap, experiments/Data_WFLW/HIHC_64x8_hg_l2.py and lib/model/get_hourglass.py)
  sets: the split frame (``frame="released_hih"``: the cell containing the landmark, decimal offset from
  its corner), the soft label (softmax of the Gaussian *values* on the rounded decimal cell in a 7 x 7 window,
  integer cell floor(u'): ``ReleasedLabelCodec``, the released ``gen_hih_head``; KL averaged over elements:
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

from ..codecs.gaussian import gaussian_maps
from ..codecs.hih import HIHCodec
from ..errors import ConfigError
from ..losses import official_soft_label

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
        "decimal_label": "hihlib",      # the codec's normalised Gaussian at the exact decimal position
    },
    "released": {
        "frame": "released_hih",        # the cell containing the landmark, offset from its corner
        "sigma": 1.5,
        "decimal_sigma": 1.0,
        "decimal_loss": "official",     # softmax of the Gaussian values, KL averaged over every element
        "decimal_weight": 0.05,         # loss_offset_weight = 0.05 (loss_heatmap_weight = 1)
        "init": "released",             # N(0, 0.001^2) on every conv / linear weight, BN 1 / 0
        "align_corners": True,          # bilinear up-sampling in the hourglass
        "decimal_label": "released",    # gen_hih_head: cell floor(u'), Gaussian on the rounded decimal cell, 7 x 7
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
    from .. import models
    from ..codecs import get_codec
    from ..losses import make_loss

    r = recipe(recipe_name)
    if seed is not None:
        torch.manual_seed(seed)
    model = models.create("hg_tiny", num_landmarks=num_landmarks, head=head, heatmap_size=heatmap_size,
                          decimal_size=decimal_size, decimal_channels=decimal_channels, input_size=input_size,
                          width=width, num_stacks=num_stacks, depth=depth, align_corners=r["align_corners"])
    if r["init"] == "released":
        released_init(model)
    kw = dict(input_size=input_size, heatmap_size=heatmap_size, sigma=r["sigma"], decimal_size=decimal_size,
              decimal_sigma=r["decimal_sigma"], frame=r["frame"])
    if r["decimal_label"] == "released":
        codec = ReleasedLabelCodec(**kw)
        # the released loss, weight x mean over the B*K*d*d elements of KL(softmax(values) || softmax(logits)), is
        # weight / d^2 x the per-landmark KL to the codec's target (already softmax(values)); csc_official cannot
        # be used: it recovers the values from a normalised label, which fails when the peak lies off the map (c = d)
        loss = make_loss("hih", decimal_loss="kl", decimal_weight=r["decimal_weight"] / decimal_size ** 2)
    else:
        codec = get_codec("hih", **kw)
        loss = make_loss("hih", decimal_loss=r["decimal_loss"], decimal_weight=r["decimal_weight"])
    if head == "hih_local":
        model._cells = codec.split   # the window sits at the codec's integer cell
    return model, codec, loss


def training_label(targets_decimal: Tensor, recipe_name: str) -> Tensor:
    """The probability distribution a recipe's CSC loss trains the decimal map towards, (B, K, d, d).

    hihlib: the codec's normalised Gaussian; released: the softmax of the Gaussian values (peak 1), which
    ``ReleasedLabelCodec`` already returns."""
    r = recipe(recipe_name)
    if r["decimal_loss"] == "kl" or r["decimal_label"] == "released":
        return targets_decimal

    p = targets_decimal
    return official_soft_label(p / p.amax((-2, -1), keepdim=True).clamp_min(1e-12))


def released_decimal_values(codec, coords: Tensor) -> tuple[Tensor, Tensor]:
    """The released code's decimal target (``gen_hih_head`` of starhiking/HeatmapInHeatmap, lib/dataset/gen_heads.py),
    ported: (integer cells (B, K, 2) long, Gaussian values (B, K, d, d)).

    In the released frame (u' = u + 1/2 cells): integer cell floor(u') clamped onto the map (no carry), decimal
    centre c = round(d * (u' - cell)) (round half to even, as numpy's round; c = d is possible and then the peak
    lies off the map), values exp(-|g - c|^2 / (2 sigma^2)) (peak 1) inside the (6 sigma + 1)-cell window
    |g - c| <= 3 sigma per axis (7 x 7 at sigma 1: ``gen_heat``) and 0 outside it. The released soft label is
    ``official_soft_label`` of these values.

    hihlib's ``recipe="released"`` label differed before ``ReleasedLabelCodec`` (see ``label_mismatch``): its codec centres the Gaussian at the
    exact decimal position on the whole d x d map and carries a position that rounds to d into the next cell."""
    u = codec.to_cells(coords.float()) + 0.5                               # (B, K, 2) released frame
    h, d, sigma = codec.heatmap_size, codec.decimal_size, codec.decimal_sigma
    cells = torch.floor(u).clamp(0, h - 1)
    c = torch.round((u - cells) * d)                                      # half to even, as numpy's round
    g = torch.arange(d, dtype=u.dtype, device=u.device)
    dist = g - c[..., None]                                                # (B, K, 2, d)
    v = torch.exp(-dist ** 2 / (2 * sigma ** 2)) * (dist.abs() <= 3 * sigma)
    return cells.long(), v[..., 1, :, None] * v[..., 0, None, :]


class ReleasedLabelCodec(HIHCodec):
    """The HIH codec with the released target generator (``released_decimal_values``): integer cell floor(u')
    (no carry), decimal target the released soft label, softmax of the Gaussian values on the rounded decimal
    cell in a 7 x 7 window. Decoders are HIHCodec's (frame "released_hih")."""

    def split(self, coords: Tensor) -> tuple[Tensor, Tensor]:
        u = self.frame_cells(coords)
        i = torch.floor(u).clamp(0, self.heatmap_size - 1)
        return i, (u - i) * self.decimal_size

    def encode(self, coords: Tensor, *, generator=None) -> dict[str, Tensor]:
        cells, values = released_decimal_values(self, coords)
        return {"heatmap": gaussian_maps(cells.float(), self.heatmap_size, self.sigma),
                "decimal": official_soft_label(values)}


def label_mismatch(codec, coords: Tensor) -> dict:
    """How far the label hihlib's ``recipe="released"`` used before ``ReleasedLabelCodec`` (HIHCodec's: softmax of
    its Gaussian centred at the exact position, integer cell carried) is from the released one
    (``released_decimal_values``) at ``coords`` (B, K, 2): the share of landmarks whose integer cell differs
    (the carry), and the total-variation distance between the two soft labels (mean and max over landmarks)."""

    cells, values = released_decimal_values(codec, coords)
    ours_cells, _ = HIHCodec.split(codec, coords)
    theirs = official_soft_label(values)
    p = HIHCodec.encode(codec, coords)["decimal"]
    ours = official_soft_label(p / p.amax((-2, -1), keepdim=True))
    tv = 0.5 * (theirs - ours).abs().flatten(-2).sum(-1)                 # (B, K)
    return {"cell_differs": float((ours_cells.long() != cells).any(-1).float().mean()),
            "tv_mean": float(tv.mean()), "tv_max": float(tv.max())}


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


def make_faces(run: TrainedRun, workers: int = 0):  # noqa: D103
    """(train, test) ``hihlib.data.in_memory.CachedCrops`` of synthetic faces with the demo's appearance."""
    from ..data import FaceDataset
    from ..data.synthetic import SyntheticFaces
    from ..data.in_memory import CachedCrops
    from ..pipeline.build import cache_records
    from .demo import CLEAN_APPEARANCE

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
              log=print, checkpoint: str | Path | None = None, device: str = "cpu",
              stop_at: float | None = None) -> dict:
    """Train one model (AdamW, the demo's warm-up + cosine schedule, gradient clip 5) and evaluate it.

    Returns the result row (``evaluate_run``) plus "curve": [(step, decimal loss part)] and
    "train_seconds". ``data``: (train, test) from ``make_faces`` (built if None). ``stop_at`` (a
    ``time.time()``): stop training there and evaluate what was reached; the row's "steps" is then the step
    reached and "steps_planned" the schedule's length."""
    if threads:
        torch.set_num_threads(threads)
    train_set, test_set = data if data is not None else make_faces(run)
    pts = run.points(train_set.scheme.num_points)
    model, codec, loss_fn = build(run.recipe, run.head, num_landmarks=len(pts),
                                  heatmap_size=run.heatmap, decimal_size=run.decimal, input_size=run.input_size,
                                  width=run.width, num_stacks=run.num_stacks, depth=run.depth, seed=run.seed)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(run.seed)
    n = len(train_set)
    curve, t0, order, pos = [], time.perf_counter(), torch.randperm(n, generator=g), 0
    model.train()
    done = run.steps
    for step in range(run.steps):
        if stop_at is not None and time.time() > stop_at:
            done = step
            log(f"{run.key()} stopped at step {step} (deadline)")
            break
        if pos + run.batch_size > n:
            order, pos = torch.randperm(n, generator=g), 0
        idx = order[pos:pos + run.batch_size]
        pos += run.batch_size
        images = train_set.images[idx].to(device).float()
        coords = train_set.landmarks[idx][:, pts].to(device).float()
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
    row = evaluate_run(run, model, codec, test_set, device=device)
    row.update(curve=curve, train_seconds=round(seconds, 1))
    if done != run.steps:
        row.update(steps=done, steps_planned=run.steps, stopped_early=True)
    return row, model, codec


@torch.no_grad()
def evaluate_run(run: TrainedRun, model, codec, test_set, batch_size: int = 50, device: str = "cpu") -> dict:
    """The result row of a trained model on the test crops: decimal KL (per landmark, against the label
    its recipe trains towards; ``hih_local`` reading the ground-truth cell) against the average-label KL,
    and NME (inter-ocular, %) with the decimal map (``official``: argmax + argmax / d, the released
    decoder; ``expectation``: hihlib's) and with the integer map alone (``argmax``)."""
    from .. import metrics
    from ..data.dataset import to_original

    model.eval()
    pts = run.points(test_set.scheme.num_points)
    kls, labels, kls_n, labels_n, preds = [], [], [], [], {m: [] for m in ("official", "expectation", "argmax")}
    for s in range(0, len(test_set), batch_size):
        images = test_set.images[s:s + batch_size].to(device).float()
        coords = test_set.landmarks[s:s + batch_size][:, pts].to(device).float()
        label = training_label(codec.encode(coords)["decimal"], run.recipe)
        dec = model(images, landmarks=coords)["decimal"]
        kls.append(kl_per_landmark(label, dec).cpu())
        labels.append(label.cpu())
        sharp = HIHCodec.encode(codec, coords)["decimal"]   # the normalised Gaussian (hihlib's label), for comparison
        kls_n.append(kl_per_landmark(sharp, dec).cpu())
        labels_n.append(sharp.cpu())
        out = model(images)
        for m in preds:
            preds[m].append(codec.decode(out, m).cpu())
    full = np.stack([r.landmarks for r in test_set.records])          # (N, 98, 2) original pixels
    a, b = test_set.scheme.normaliser()
    norm = np.linalg.norm(full[:, a] - full[:, b], axis=-1)             # inter-ocular, from all 98 points
    gt = full[:, pts]
    nme = {m: 100 * float(metrics.nme(to_original(torch.cat(p), test_set.matrices).numpy(), gt, norm).mean())
           for m, p in preds.items()}
    return {"kind": "trained", **dataclasses.asdict(run),
            # rows written before the port of the released label lack "label" (TRAINED_LABEL_NOTE)
            "label": "released gen_hih_head (ReleasedLabelCodec)" if run.recipe == "released" else "hihlib codec",
            "decimal_kl": float(torch.cat(kls).mean()),
            "average_label_kl": average_label_kl(torch.cat(labels)),
            "decimal_kl_normalised_label": float(torch.cat(kls_n).mean()),
            "average_label_kl_normalised_label": average_label_kl(torch.cat(labels_n)), "nme_decimal": nme["official"],
            "nme_expectation": nme["expectation"], "nme_integer": nme["argmax"]}


def _train_cli(argv=None) -> int:
    """One trained run, its row written to OUT/<run key>.json (the long runs of the study)."""
    import argparse
    import json

    from ..io import write_json

    ap = argparse.ArgumentParser(prog="python -m hihlib.studies.decimal_study train")
    for f in dataclasses.fields(TrainedRun):
        ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--stop-at", default=None, help="UTC time HH:MM today: stop training there and evaluate")
    args = vars(ap.parse_args(argv))
    out, threads, stop = Path(args.pop("out")), args.pop("threads"), args.pop("stop_at")
    stop_at = None
    if stop:
        import datetime as dt

        hh, mm = (int(x) for x in stop.split(":"))
        now = dt.datetime.now(dt.timezone.utc)
        stop_at = now.replace(hour=hh, minute=mm, second=0, microsecond=0).timestamp()
    run = TrainedRun(**args)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(threads)
    t0 = time.perf_counter()
    data = make_faces(run)
    print(f"data {time.perf_counter() - t0:.0f} s", flush=True)
    row, model, codec = train_run(run, data, log=lambda m: print(m, flush=True),
                                  checkpoint=out / f"{run.key()}.pt", stop_at=stop_at)
    write_json(out / f"{run.key()}.json", row)   # one file per run: runs may go on side by side
    print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
    return 0


# -- receptive fields ---------------------------------------------------------------------------------

def _positive_copy(module: nn.Module) -> nn.Module:
    """A copy whose output is a positive, monotone function of every input it depends on: conv/linear
    weights 1, BN the identity (eval mode, statistics 0 / 1), max-pools replaced by average pools of the
    same window (so a gradient reaches every cell of the window, not only the maximum)."""
    import copy

    m = copy.deepcopy(module).double().eval()
    for name, sub in list(m.named_modules()):
        for cname, child in list(sub.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(sub, cname, nn.AvgPool2d(child.kernel_size, child.stride, child.padding))
    with torch.no_grad():
        for sub in m.modules():
            if isinstance(sub, (nn.Conv2d, nn.Linear)):
                sub.weight.fill_(1.0)
                if sub.bias is not None:
                    sub.bias.zero_()
            elif isinstance(sub, nn.BatchNorm2d):
                sub.running_mean.zero_(), sub.running_var.fill_(1.0 - sub.eps), sub.weight.fill_(1.0), sub.bias.zero_()
        for p in m.parameters():
            if p.dim() == 3:        # LocalDecimalHead's per-landmark classifier
                p.fill_(1.0)
    return m


def decimal_head(head: str, heatmap_size: int, decimal_size: int = 8, *, in_channels: int = 1,
                 num_landmarks: int = 1, channels: int = 2) -> nn.Module:
    """A bare decimal head of ``head`` ("hih", "hih_ext" or "hih_local") for an (in_channels, H, H) feature."""
    from ..models.heads import DecimalHead, LocalDecimalHead, released_buildable

    if head == "hih_local":
        return LocalDecimalHead(in_channels, num_landmarks, decimal_size=decimal_size, channels=channels)
    if head == "hih" and not released_buildable(heatmap_size, decimal_size):
        raise ConfigError(f"head 'hih' (the released decimal head) cannot be built at heatmap {heatmap_size} -> "
                          f"decimal {decimal_size}; use 'hih_ext'")
    if head not in ("hih", "hih_ext"):
        raise ConfigError(f"head must be 'hih', 'hih_ext' or 'hih_local', got {head!r}")
    return DecimalHead(in_channels, num_landmarks, heatmap_size=heatmap_size, decimal_size=decimal_size,
                       channels=channels)


def receptive_field(head: nn.Module, heatmap_size: int, cell: tuple[int, int] | None = None) -> Tensor:
    """Which heatmap cells each decimal class of ``head`` depends on: (d, d, H, W) bool.

    ``head``: a ``DecimalHead`` (forward(feature)) or a ``LocalDecimalHead`` (forward(feature, cells); the
    landmark's integer cell ``cell`` = (x, y), default the middle of the map). Exact: computed by
    back-propagation through a positive copy of the head (``_positive_copy``), one class at a time."""
    from ..models.heads import LocalDecimalHead

    m = _positive_copy(head)
    c_in = next(p for p in m.parameters() if p.dim() == 4).shape[1]
    x = torch.ones(1, c_in, heatmap_size, heatmap_size, dtype=torch.float64, requires_grad=True)
    if isinstance(m, LocalDecimalHead):
        cx, cy = cell if cell is not None else (heatmap_size // 2, heatmap_size // 2)
        out = m(x, torch.tensor([[[cx, cy]]]))
    else:
        out = m(x)
    d = out.shape[-1]
    rf = torch.zeros(d, d, heatmap_size, heatmap_size, dtype=torch.bool)
    for jy in range(d):
        for jx in range(d):
            (g,) = torch.autograd.grad(out[0, 0, jy, jx], x, retain_graph=True)
            rf[jy, jx] = g[0].abs().sum(0) > 0
    return rf


def rf_extent(rf: Tensor) -> Tensor:
    """(d, d, H, W) bool -> (d, d, 4) inclusive boxes (x0, y0, x1, y1) of each class's receptive field."""
    cols, rows = rf.any(-2), rf.any(-1)                         # (d, d, W), (d, d, H)
    idx = torch.arange(rf.shape[-1])
    first = lambda a: torch.where(a, idx, rf.shape[-1]).amin(-1)   # noqa: E731
    last = lambda a: torch.where(a, idx, -1).amax(-1)              # noqa: E731
    return torch.stack([first(cols), first(rows), last(cols), last(rows)], -1)


# -- the trunk-free oracle experiment -----------------------------------------------------------------

#: Landmark position spreads of the oracle experiment: "fixed" (each landmark always in the same integer
#: cell, only its sub-cell fraction varies) or the side of the square, as a fraction of the map's side and
#: centred on the map, over which each landmark's position is uniform (1.0: the whole map).
SPREADS = ("fixed", 0.1, 0.3, 0.6, 1.0)


def class_cells(heatmap_size: int, decimal_size: int) -> Tensor:
    """(d,) the heatmap cell at the middle of each decimal class's receptive field along one axis: the cell
    where the oracle writes the class's label in the "class" mode (the centre of the d equal bands)."""
    return ((torch.arange(decimal_size) + 0.5) * heatmap_size / decimal_size).long().clamp(max=heatmap_size - 1)


def oracle_positions(spread, batch: int, num_landmarks: int, heatmap_size: int, generator: torch.Generator,
                     fixed_cells: Tensor) -> Tensor:
    """(B, K, 2) landmark positions in heatmap cells (hihlib frame, cell centres at integers)."""
    frac = torch.rand(batch, num_landmarks, 2, generator=generator) - 0.5        # within the cell
    if spread == "fixed":
        return fixed_cells.float()[None] + frac
    side = float(spread) * heatmap_size
    lo = (heatmap_size - side) / 2
    u = lo + side * torch.rand(batch, num_landmarks, 2, generator=generator) - 0.5
    return u.clamp(-0.49, heatmap_size - 0.51)


def oracle_input(mode: str, cells: Tensor, fraction: Tensor, label: Tensor, heatmap_size: int) -> Tensor:
    """The oracle "feature" (B, 3K, H, H) given to a decimal head in place of a trunk.

    ``"cell"``: what a trunk naturally provides: channels (3k, 3k+1, 3k+2) hold (1, fraction x, fraction y) at
    landmark k's integer cell and 0 elsewhere (fraction = decimal position / d, in [-1/(2d), 1 - 1/(2d))).
    ``"class"``: the label written where each class reads: channel 3k holds label[k, jy, jx] at the cell
    ``class_cells`` of (jy, jx) (the other two channels are 0). cells (B, K, 2) long, fraction (B, K, 2),
    label (B, K, d, d)."""
    B, K = cells.shape[:2]
    H = heatmap_size
    x = torch.zeros(B, K, 3, H, H)
    b = torch.arange(B)[:, None].expand(B, K)
    k = torch.arange(K)[None].expand(B, K)
    if mode == "cell":
        cx, cy = cells[..., 0].clamp(0, H - 1), cells[..., 1].clamp(0, H - 1)
        x[b, k, 0, cy, cx] = 1.0
        x[b, k, 1, cy, cx] = fraction[..., 0]
        x[b, k, 2, cy, cx] = fraction[..., 1]
    elif mode == "class":
        d = label.shape[-1]
        cc = class_cells(H, d)
        x[:, :, 0, cc[:, None], cc[None, :]] = label * d * d
    else:
        raise ConfigError(f"oracle mode must be 'cell' or 'class', got {mode!r}")
    return x.view(B, K * 3, H, H)


def oracle_run(head: str, heatmap_size: int, *, decimal_size: int = 8, spread="fixed", mode: str = "cell",
               steps: int = 300, batch: int = 16, num_landmarks: int = 16, channels: int = 64, lr: float = 1e-3,
               seed: int = 0, eval_batches: int = 4) -> dict:
    """Train a bare decimal head on oracle inputs (no trunk) with the codec's decimal targets (hihlib recipe:
    normalised Gaussian label, per-landmark KL, AdamW) and return its row: decimal KL on fresh positions
    against the average-label KL of the same positions."""
    from ..codecs import get_codec

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    H, d, K = heatmap_size, decimal_size, num_landmarks
    net = decimal_head(head, H, d, in_channels=3 * K, num_landmarks=K, channels=channels)
    codec = get_codec("hih", input_size=4 * H, heatmap_size=H, decimal_size=d)
    lo, hi = int(0.2 * H), int(0.8 * H)
    fixed = lo + torch.randint(0, max(1, hi - lo), (K, 2), generator=g)

    def sample(n):
        u = oracle_positions(spread, n, K, H, g, fixed)
        coords = codec.to_pixels(u)
        cells, pos = codec.split(coords)
        label = codec.encode(coords)["decimal"]
        return oracle_input(mode, cells.long(), pos / d, label, H), cells.long(), label

    def run(x, cells):
        return net(x, cells) if head == "hih_local" else net(x)

    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    net.train()
    for _ in range(steps):
        x, cells, label = sample(batch)
        loss = kl_per_landmark(label, run(x, cells)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    net.eval()
    kls, labels = [], []
    with torch.no_grad():
        for _ in range(eval_batches):
            x, cells, label = sample(batch)
            kls.append(kl_per_landmark(label, run(x, cells)))
            labels.append(label)
    return {"kind": "oracle", "head": head, "heatmap": H, "decimal": d, "recipe": "hihlib", "mode": mode,
            "spread": spread, "steps": steps, "batch": batch, "num_landmarks": K, "channels": channels,
            "decimal_kl": float(torch.cat(kls).mean()), "average_label_kl": average_label_kl(torch.cat(labels))}



# -- does the trained trunk spread each landmark's fraction across the map? ---------------------------

@torch.no_grad()
def merged_features(model, images: Tensor, batch_size: int = 50) -> Tensor:
    """The final merged feature (the decimal head's input) of ``images`` (N, 3, S, S): (N, w, H, H)."""
    model.eval()
    dev = next(model.parameters()).device
    return torch.cat([model.backbone(images[s:s + batch_size].to(dev).float())[0].cpu()
                      for s in range(0, len(images), batch_size)])


def feature_probe(model, codec, run: TrainedRun, train_set, test_set, num_fit: int = 600) -> dict:
    """Ridge probes (``hihlib.studies.probe.ridge_probe``, fitted on ``num_fit`` training faces, R^2 on the test faces)
    of each landmark's sub-cell fraction (decimal position / d, x and y) from the merged feature (w values)

    * at the landmark's own integer cell ("cell": what ``hih_local`` reads), and
    * at each decimal class's position (``class_cells``: the middle of the class's receptive field, which is
      where the released head's class (jy, jx) reads): R^2 averaged over the d^2 positions ("class_mean")
      and the best position per landmark ("class_best").

    Fitted per landmark; R^2 averaged over landmarks and the two axes. Returns those three numbers."""
    from .probe import ridge_probe

    pts = run.points(train_set.scheme.num_points)
    d = codec.decimal_size
    out = {}
    feats, fracs, cells = [], [], []
    for ds_, n in ((train_set, num_fit), (test_set, len(test_set.images))):
        coords = ds_.landmarks[:n][:, pts].float()
        c, pos = codec.split(coords)
        feats.append(merged_features(model, ds_.images[:n]))
        fracs.append(pos / d)
        cells.append(c.long())
    (ftr, fte), (ytr, yte), (ctr, cte) = feats, fracs, cells
    K = ytr.shape[1]

    def at(f, c):     # (N, w, H, W), (N, 2) -> (N, w)
        return f[torch.arange(len(f)), :, c[:, 1].clamp(0, f.shape[-2] - 1), c[:, 0].clamp(0, f.shape[-1] - 1)]

    out["cell"] = float(torch.stack([ridge_probe(at(ftr, ctr[:, k]), ytr[:, k], at(fte, cte[:, k]), yte[:, k]).mean()
                                     for k in range(K)]).mean())
    cc = class_cells(ftr.shape[-1], d)
    r2 = torch.zeros(K, d, d)
    for jy in range(d):
        for jx in range(d):
            xtr, xte = ftr[:, :, cc[jy], cc[jx]], fte[:, :, cc[jy], cc[jx]]
            for k in range(K):
                r2[k, jy, jx] = ridge_probe(xtr, ytr[:, k], xte, yte[:, k]).mean()
    out["class_mean"] = float(r2.mean())
    out["class_best"] = float(r2.flatten(1).amax(1).mean())
    return out

# -- the study: results.json and figures ----------------------------------------------------------------

GEOMETRIES = (16, 32, 64)      # heatmap sizes, decimal 8


def global_head(heatmap_size: int, decimal_size: int = 8) -> str:
    """The global decimal head's name at a geometry: "hih" where the released code builds it, else "hih_ext"."""
    from ..models.heads import released_buildable

    return "hih" if released_buildable(heatmap_size, decimal_size) else "hih_ext"


def oracle_rows(geometries=GEOMETRIES, spreads=SPREADS, *, log=print, **kw) -> list[dict]:
    """The oracle grid: for every geometry and spread, the global head and hih_local in the "cell" mode, and
    the global head in the "class" mode (the control: the plumbing learns when the label sits where each
    class reads) at the widest spread."""
    rows = []
    for hm in geometries:
        runs = [(global_head(hm), s, "cell") for s in spreads] + [("hih_local", s, "cell") for s in spreads]
        runs.append((global_head(hm), spreads[-1], "class"))
        for head, s, mode in runs:
            t0 = time.perf_counter()
            rows.append(oracle_run(head, hm, spread=s, mode=mode, **kw))
            log(f"oracle {head} {hm}->8 spread {s} {mode}: KL {rows[-1]['decimal_kl']:.3f} "
                f"(average label {rows[-1]['average_label_kl']:.3f}, {time.perf_counter() - t0:.0f} s)")
    return rows


def rf_rows(geometries=GEOMETRIES) -> tuple[list[dict], dict]:
    """Receptive-field rows (largest class window, its share of the map) and the fields for the figure."""
    rows, fields = [], {}
    for hm in geometries:
        for head in (global_head(hm), "hih_local"):
            rf = receptive_field(decimal_head(head, hm), hm)
            ext = rf_extent(rf)
            side = (ext[..., 2:] - ext[..., :2] + 1).amax().item()
            rows.append({"kind": "receptive_field", "head": head, "heatmap": hm, "decimal": 8,
                         "max_side_cells": int(side), "max_share_of_map": float(rf.sum((-2, -1)).max()) / hm ** 2})
            fields[(head, hm)] = rf
    return rows, fields


def rf_figure(fields: dict, path: Path) -> None:
    """Receptive fields of three decimal classes of each head at each geometry, on the heatmap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hms = sorted({hm for _, hm in fields})
    fig, axes = plt.subplots(2, len(hms), figsize=(3.2 * len(hms), 6.4))
    for col, hm in enumerate(hms):
        for row, head in enumerate((global_head(hm), "hih_local")):
            rf = fields[(head, hm)].float()
            ax = axes[row, col]
            img = torch.zeros(hm, hm, 3)
            for (jy, jx), colour in zip(((0, 0), (4, 4), (7, 7)), ((1, 0, 0), (0, 0.6, 0), (0, 0, 1))):
                img += rf[jy, jx][..., None] * torch.tensor(colour) * 0.6
            ax.imshow(img.clamp(0, 1).numpy(), extent=(-0.5, hm - 0.5, hm - 0.5, -0.5))
            share = float(rf.sum((-2, -1)).max()) / hm ** 2
            where = "\nevery class (cell at the centre)" if head == "hih_local" else ""
            ax.set_title(f"{head}, {hm} -> 8: up to {100 * share:.0f} % of map{where}", fontsize=8)
            ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("Cells seen by decimal classes (0,0) red, (4,4) green, (7,7) blue")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def oracle_figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cell = [r for r in rows if r["kind"] == "oracle" and r["mode"] == "cell"]
    if any(r.get("oracle_size") == "issue" for r in cell):     # the issue's settings where there are such rows
        cell = [r for r in cell if r.get("oracle_size") == "issue"]
    hms = sorted({r["heatmap"] for r in cell})
    fig, axes = plt.subplots(1, len(hms), figsize=(3.6 * len(hms), 3.2), sharey=True)
    for ax, hm in zip(np.atleast_1d(axes), hms):
        rs = [r for r in cell if r["heatmap"] == hm]
        got = set(r["spread"] for r in rs)
        spreads = [s for s in SPREADS if s in got] + [s for s in dict.fromkeys(r["spread"] for r in rs) if s not in SPREADS]
        x = np.arange(len(spreads))
        for head in dict.fromkeys(r["head"] for r in rs):
            ax.plot(x, [next(r["decimal_kl"] for r in rs if r["head"] == head and r["spread"] == s) for s in spreads],
                    "o-", label=head)
        ax.plot(x, [np.mean([r["average_label_kl"] for r in rs if r["spread"] == s]) for s in spreads], "k--",
                label="average label")
        ax.set_xticks(x, [str(s) for s in spreads])
        ax.legend(fontsize=7)
        ax.set_title(f"oracle input at the cell, {hm} -> 8\n({rs[0]['steps']} steps of {rs[0]['batch']} x {rs[0]['num_landmarks']} landmarks)", fontsize=9)
        ax.set_xlabel("landmark spread (fixed cell .. whole map)")
    np.atleast_1d(axes)[0].set_ylabel("decimal KL (nats)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def probe_trained(rows: list[dict], runs_dir: Path, log=print) -> None:
    """Add the feature probe's R^2 ("probe_r2_cell", "probe_r2_class_mean", "probe_r2_class_best") to each
    trained row whose checkpoint (RUNS_DIR/<run key>.pt) is there; rows are changed in place."""
    names = {f.name for f in dataclasses.fields(TrainedRun)}
    data_cache = {}
    for r in rows:
        run = TrainedRun(**{k: v for k, v in r.items() if k in names})
        ckpt = runs_dir / f"{run.key()}.pt"
        if not ckpt.is_file():
            continue
        dkey = (run.spread, run.num_train, run.num_test, run.image_size, run.input_size, run.seed)
        if dkey not in data_cache:
            data_cache[dkey] = make_faces(run)
        train_set, test_set = data_cache[dkey]
        model, codec, _ = build(run.recipe, run.head, num_landmarks=len(run.points(train_set.scheme.num_points)),
                                heatmap_size=run.heatmap, decimal_size=run.decimal, input_size=run.input_size,
                                width=run.width, num_stacks=run.num_stacks, depth=run.depth)
        model.load_state_dict(torch.load(ckpt, map_location="cpu"))
        pr = feature_probe(model, codec, run, train_set, test_set)
        r.update({f"probe_r2_{k}": v for k, v in pr.items()})
        log(f"probe {run.key()}: {pr}")


#: The oracle's settings: the issue's (300 steps of 16 faces x 98 landmarks; channels 64, ``oracle_run``'s default;
#: run on 8 CPU cores by tools/decimal_head_device.sh) and the reduced grid the study CLI runs on 2 loaded cores.
ISSUE_ORACLE = {"steps": 300, "batch": 16, "num_landmarks": 98, "channels": 64}
REDUCED_ORACLE = {"steps": 200, "batch": 8, "num_landmarks": 8, "channels": 16}


#: What the trained rows' released-recipe label is (``label_mismatch`` measures the difference).
TRAINED_LABEL_NOTE = ("trained rows with a \"label\" entry used ReleasedLabelCodec (the released gen_hih_head); every row without one predates it and used hihlib's earlier released-recipe label: the softmax of the codec's Gaussian "
                      "values centred at the exact decimal position on the whole 8 x 8 map, integer cell carried when "
                      "the position rounds to 8; the released gen_hih_head centres it on the rounded decimal cell in a "
                      "7 x 7 window and keeps floor(u') (released_decimal_values); about 12 % of landmarks get another "
                      "cell, the labels' total variation is 0.03 on average")


def oracle_size(row: dict) -> str:
    """"issue" or "reduced" (the two settings above) or "other", from a row's own settings."""
    for name, kw in (("issue", ISSUE_ORACLE), ("reduced", REDUCED_ORACLE)):
        if all(row.get(k) == v for k, v in kw.items()):
            return name
    return "other"


def oracle_key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ("head", "heatmap", "decimal", "spread", "mode", "steps", "batch", "num_landmarks",
                                      "channels", "recipe"))


def trained_key(row: dict) -> tuple:
    names = {f.name for f in dataclasses.fields(TrainedRun)}
    return TrainedRun(**{k: v for k, v in row.items() if k in names}).key(), row.get("device", "cpu")


def merge_rows(old: list[dict], new: list[dict], key) -> list[dict]:
    """``old`` with every row whose ``key`` a row of ``new`` has replaced by that row, then the other new rows."""
    fresh = {key(r): r for r in new}
    kept = [fresh.pop(key(r)) if key(r) in fresh else r for r in old]
    return kept + list(fresh.values())


def trained_figure(rows: list[dict], path: Path) -> None:
    """Trained runs: decimal KL minus the average-label KL (left) and NME with the decimal map vs the integer
    map alone (right), per trunk and spread, both heads."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def cfg(r: dict) -> tuple:   # the trunk, spread, device and whether the row used the ported released label
        return r["spread"], r["width"], r["num_stacks"], r.get("device", "cpu"), "label" in r

    rows = sorted(rows, key=cfg)
    cfgs = list(dict.fromkeys(cfg(r) for r in rows))
    x = np.arange(len(cfgs))
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for i, head in enumerate(("hih", "hih_local")):
        got = {cfg(r): r for r in rows if r["head"] == head}
        dx = (i - 0.5) * 0.38
        kl = [got[c]["decimal_kl"] - got[c]["average_label_kl"] if c in got else np.nan for c in cfgs]
        a1.bar(x + dx, kl, 0.36, label=head)
        for j, (m, hatch) in enumerate((("nme_decimal", None), ("nme_integer", "//"))):
            a2.bar(x + dx + (j - 0.5) * 0.18, [got[c][m] if c in got else np.nan for c in cfgs], 0.17,
                   color=f"C{i}", hatch=hatch, alpha=1.0 if j == 0 else 0.5,
                   label=f"{head}: {'decimal map' if j == 0 else 'integer map alone'}")
    labels = [f"{s}\nw{w} x{n}\n{d}" + ("\nported label" if lab else "") for s, w, n, d, lab in cfgs]
    for ax in (a1, a2):
        ax.set_xticks(x, labels, fontsize=7)
    a1.axhline(0, color="k", lw=0.8)
    a1.set_ylabel("decimal KL - average-label KL (nats)")
    a1.set_title("below 0: the decimal head learned something", fontsize=9)
    a2.set_yscale("log")
    a2.set_ylabel("NME (%, inter-ocular)")
    a2.set_title("NME: decimal map (solid) vs integer map alone (hatched)", fontsize=9)
    a1.legend(fontsize=7), a2.legend(fontsize=6)
    fig.suptitle("Trained at heatmap 64 -> decimal 8, released recipe, 4000 steps (synthetic faces, 128 px)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def study_cli(argv=None) -> int:
    """``python -m hihlib.studies.decimal_study --out DIR [--tiny] [--trained RUNS_DIR] [--reuse-oracle]``."""
    import argparse
    import json

    from ..io import write_json

    ap = argparse.ArgumentParser(prog="python -m hihlib.studies.decimal_study",
                                 description="The released decimal head at its geometry: receptive fields, the "
                                             "trunk-free oracle grid, trained rows; writes results.json + figures.")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tiny", action="store_true", help="the test suite's configuration (seconds)")
    ap.add_argument("--trained", default=None, help="folder of trained-run rows (tools/decimal_head_runs.sh or "
                    "tools/decimal_head_device.sh); they replace rows of OUT/results.json with the same run key (device "
                    "included), the other trained rows of OUT/results.json are kept")
    ap.add_argument("--oracle", default=None, help="a file of oracle rows, one JSON object a line "
                    "(tools/decimal_head_device.sh), added to (or replacing, same settings) the oracle rows")
    ap.add_argument("--reuse-oracle", action="store_true", help="keep the oracle rows of OUT/results.json")
    ap.add_argument("--no-probe", action="store_true", help="leave out the feature probes of the trained trunks")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    geoms = (16, 32) if a.tiny else GEOMETRIES
    kw = dict(steps=5, batch=2, num_landmarks=2, channels=4, eval_batches=1) if a.tiny else dict(REDUCED_ORACLE)
    spreads = ("fixed", 1.0) if a.tiny else SPREADS
    rf, fields = rf_rows(geoms)
    rf_figure(fields, out / "receptive_fields.png")
    old = json.loads((out / "results.json").read_text()) if (out / "results.json").exists() else {"rows": []}
    if a.reuse_oracle:
        oracle = [r for r in old["rows"] if r["kind"] == "oracle"]
    else:
        oracle = oracle_rows(geoms, spreads, **kw)
    if a.oracle:
        oracle = merge_rows(oracle, [json.loads(line) for line in Path(a.oracle).read_text().splitlines() if line.strip()],
                            oracle_key)
    for r in oracle:
        r["oracle_size"] = oracle_size(r)
    oracle_figure(oracle, out / "oracle.png")
    trained = [r for r in old["rows"] if r["kind"] == "trained"]
    if a.trained:
        new = []
        for p in sorted(Path(a.trained).glob("*.json")):
            got = json.loads(p.read_text())
            new += [r for r in (got if isinstance(got, list) else [got])
                    if isinstance(r, dict) and r.get("kind") == "trained"]
        if not a.no_probe:
            probe_trained(new, Path(a.trained))
        trained = merge_rows(trained, new, trained_key)
    if trained:
        trained_figure(trained, out / "trained.png")
    write_json(out / "results.json", {"description": __doc__.strip().splitlines()[0],
                                      "command": "python -m hihlib.studies.decimal_study " + " ".join(argv or []),
                                      "oracle_settings": {"reduced": REDUCED_ORACLE, "issue": ISSUE_ORACLE},
                                      "trained_label": TRAINED_LABEL_NOTE,
                                      "rows": rf + oracle + trained})
    print(f"wrote {out}/results.json ({len(oracle)} oracle, {len(trained)} trained rows) and figures")
    return 0


def _compare_cli(argv=None) -> int:
    """Both global and local heads, same trunk, data and number of steps, as many steps as fit ``--seconds``
    per head (timed on the slower head; ``--steps`` instead fixes them): the GPU check's released-geometry
    run (benchmarks/gpu_check.sh step ``decimal``). Rows to OUT/<run key>.json and OUT/compare.json."""
    import argparse
    import json

    from .benchmarking import data_workers
    from ..io import write_json

    ap = argparse.ArgumentParser(prog="python -m hihlib.studies.decimal_study compare")
    for f in dataclasses.fields(TrainedRun):
        if f.name not in ("head", "steps"):
            ap.add_argument("--" + f.name.replace("_", "-"), type=type(f.default), default=f.default)
    ap.add_argument("--steps", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=100.0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--out", required=True)
    args = vars(ap.parse_args(argv))
    out, device, seconds, steps = Path(args.pop("out")), args.pop("device"), args.pop("seconds"), args.pop("steps")
    out.mkdir(parents=True, exist_ok=True)
    heads = ("hih", "hih_local")
    t0 = time.perf_counter()
    data = make_faces(TrainedRun(**args), workers=data_workers())
    print(f"data {time.perf_counter() - t0:.0f} s", flush=True)
    if steps is None:    # time 6 steps of each head (the first 2 are warm-up)
        per_step = []
        for head in heads:
            probe = TrainedRun(head=head, steps=6, **args)
            t1 = time.perf_counter()
            train_run(probe, data, log=lambda m: None, device=device)
            per_step.append((time.perf_counter() - t1) / 6)
        steps = max(10, int(seconds / max(per_step)))
        print(f"{max(per_step):.3f} s/step (with the evaluation): {steps} steps per head", flush=True)
    rows = []
    for head in heads:
        run = TrainedRun(head=head, steps=steps, **args)
        row, _, _ = train_run(run, data, log=lambda m: print(m, flush=True), device=device,
                              log_every=max(1, steps // 10))
        row["device"] = device
        write_json(out / f"{run.key()}.json", row)
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
    write_json(out / "compare.json", rows)
    return 0


def main(argv=None) -> int:  # noqa: D103
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["train"]:
        return _train_cli(argv[1:])
    if argv[:1] == ["compare"]:
        return _compare_cli(argv[1:])
    return study_cli(argv)


if __name__ == "__main__":
    raise SystemExit(main())
