"""``hih demo``: the papers' central claims, measured on synthetic faces in minutes on a CPU.

What it does
------------
1. Renders synthetic WFLW-format faces (``hihlib.data.synthetic``): a training set and a held-out
   test set from another seed. Crops are computed once (no augmentation: every model sees the
   same crops in the same order, so the heads are compared on equal terms).
2. For every heatmap size (e.g. 64, 32, 16 cells for a 128-pixel crop, strides 2, 4, 8) trains three
   models with the same backbone, optimiser and number of steps: a Gaussian head (MSE), an H3R head
   (randomized rounding, spatial softmax) and an HIH head (integer Gaussian map + 8x8 decimal map).
3. Evaluates every model with every decoder of its codec (Gaussian: dark, argmax, quarter,
   integral; H3R: topk, argmax; HIH: expectation, official, ...) on the test faces, and the
   *representation floor*: the error of decoding perfect targets (the codec alone, no network).
4. Writes ``demo_results.md`` / ``.json`` and the figures ``demo_ced.png``,
   ``demo_resolution.png``, ``demo_samples.png`` to ``--out`` (default ``figures/``).

The claims checked (and printed as measured, whatever the outcome):
* sub-pixel decoding (DARK, H3R top-k, HIH) beats argmax at every heatmap size;
* the gap widens as the heatmap shrinks (argmax's quantization error grows with the stride).

Profiles: ``--quick`` (~1 minute, tiny data and model, for the test suite), the CPU default
(< 10 minutes on 2 cores), and ``--full`` (bigger data, model and budget; chosen automatically on a
CUDA machine).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import metrics
from .io import write_json, write_text

HEADS = ("gaussian", "h3r", "hih")
# The decoders compared against argmax in the summary: the sub-pixel method each paper proposes.
SUBPIXEL = {"gaussian": "dark", "h3r": "topk", "hih": "expectation"}


@dataclasses.dataclass(frozen=True)
class Profile:
    """Everything that sizes a demo run."""

    name: str
    num_train: int
    num_test: int
    image_size: int            # rendered synthetic image side (pixels)
    input_size: int            # crop side (pixels)
    heatmap_sizes: tuple[int, ...]
    steps: int                 # optimizer steps per model (the same for every model)
    batch_size: int
    width: int                 # hourglass channels
    depth: int                 # hourglass levels
    num_stacks: int = 1
    lr: float = 2e-3
    num_samples: int = 4       # faces in the sample-prediction figure


PROFILES = {
    "quick": Profile("quick", num_train=64, num_test=32, image_size=96, input_size=64, heatmap_sizes=(32, 16),
                     steps=12, batch_size=8, width=16, depth=2, lr=5e-3),
    # lr 5e-3: at 150 steps it gave 7.0 / 7.3 % NME (gaussian / h3r, heatmap 32) against 8.7 / 21.9 % at 2e-3
    "cpu": Profile("cpu", num_train=1000, num_test=250, image_size=128, input_size=128, heatmap_sizes=(64, 32, 16),
                   steps=120, batch_size=16, width=32, depth=3, lr=5e-3),
    # not run yet on a GPU (none was lent while this was written): sizes are estimates; the crops of
    # 11000 faces take ~4 GB of host memory in float16
    "full": Profile("full", num_train=10000, num_test=1000, image_size=256, input_size=256, heatmap_sizes=(64, 32),
                    steps=6000, batch_size=64, width=128, depth=4, num_stacks=2, lr=1e-3),
}


class CachedCrops(Dataset):
    """A ``FaceDataset`` computed once and kept in memory (images in float16 to halve the memory).

    Items are FaceDataset's: "image" (3, S, S) float32, "landmarks" (K, 2), "matrix" (2, 3), "index".
    """

    def __init__(self, dataset):
        items = [dataset[i] for i in range(len(dataset))]
        self.images = torch.stack([it["image"] for it in items]).half()
        self.landmarks = torch.stack([it["landmarks"] for it in items])
        self.matrices = torch.stack([it["matrix"] for it in items])
        self.records, self.scheme = dataset.records, dataset.scheme

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i].float(), "landmarks": self.landmarks[i], "matrix": self.matrices[i], "index": i}


def make_data(p: Profile, seed: int = 0):
    """(train CachedCrops, test CachedCrops, description of the data)."""
    from .data import FaceDataset
    from .data.synthetic import SyntheticFaces
    from .train import cache_records

    sets = []
    for n, s in ((p.num_train, seed), (p.num_test, seed + 10_000)):
        faces = SyntheticFaces(n, seed=s, image_size=p.image_size)
        records = cache_records(list(faces.records))
        sets.append(CachedCrops(FaceDataset(records, faces.scheme, input_size=p.input_size, box="dataset")))
    desc = (f"synthetic WFLW-format faces (hihlib.data.synthetic), {p.num_train} training faces seed {seed}, "
            f"{p.num_test} test faces seed {seed + 10_000}, {p.image_size}px images, "
            f"{p.input_size}px crops from the detector-like boxes, NME inter-ocular")
    return sets[0], sets[1], desc


def demo_config(p: Profile, head: str, heatmap_size: int, device: str) -> dict:
    """The training configuration of one demo model (stored in its checkpoint)."""
    from .train import DEFAULTS

    cfg = copy.deepcopy(DEFAULTS)
    cfg["data"].update(dataset="synth", input_size=p.input_size, box="dataset", num_train=p.num_train,
                       num_val=p.num_test, image_size=p.image_size, augment=None)
    cfg["codec"] = {"name": head, "options": {}}
    # HIH: the released code weighs its CSC term 0.05 x a KL averaged over the d*d = 64 decimal cells;
    # hihlib's KL is per landmark (64 x larger), so 0.05 / 64 keeps the released balance between the
    # integer maps and the decimal maps. With 0.05 the decimal term outweighs the integer maps' MSE
    # ~40x at heatmap 64, and in a 120-step run the integer maps did not train (NME 95 %).
    cfg["loss"] = {"decimal_weight": 0.05 / 64} if head == "hih" else {}
    cfg["model"] = {"name": "hg_tiny", "heatmap_size": heatmap_size,
                    "options": {"width": p.width, "depth": p.depth, "num_stacks": p.num_stacks}}
    cfg["optim"].update(name="adam", lr=p.lr, schedule="cosine", warmup_steps=max(1, p.steps // 20),
                        clip_grad=5.0, weight_decay=0.0)
    cfg["train"].update(epochs=1, batch_size=p.batch_size, max_steps_per_epoch=p.steps, eval_every=0,
                        device=device, progress=False, log_every=max(1, p.steps // 10))
    return cfg


class _Repeat(Dataset):
    """The training crops repeated so that one "epoch" holds ``steps`` batches."""

    def __init__(self, base, length: int):
        self.base, self.length = base, length
        self.records, self.scheme = base.records, base.scheme

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        return self.base[i % len(self.base)]


def train_one(p: Profile, head: str, hm: int, train_set, out: Path, device: str, seed: int = 0):
    from . import models
    from .codecs import get_codec
    from .losses import build_loss
    from .train import Trainer

    cfg = demo_config(p, head, hm, device)
    cfg["seed"] = seed
    torch.manual_seed(seed)  # the same initial backbone weights for every head of a heatmap size
    model = models.create("hg_tiny", num_landmarks=train_set.scheme.num_points, head=head, heatmap_size=hm,
                          input_size=p.input_size, **cfg["model"]["options"])
    codec = get_codec(head, input_size=p.input_size, heatmap_size=hm)
    data = _Repeat(train_set, p.steps * p.batch_size)
    t0 = time.perf_counter()
    trainer = Trainer(cfg, out / f"{head}_{hm}", model=model, codec=codec, loss_fn=build_loss(head, **cfg["loss"]),
                      train_set=data, data_description="demo training crops")
    trainer.fit()
    trainer.close()
    return trainer.model, codec, time.perf_counter() - t0


def decode_all(codec, outputs: dict) -> dict[str, torch.Tensor]:
    """Every decode method of ``codec``: {method: (B, K, 2) input pixels}."""
    return {m: codec.decode(outputs, m) for m in codec.methods}


def methods_of(codec) -> tuple[str, ...]:
    return tuple(codec.methods)


def floor_nmes(codec, test_set) -> dict[str, np.ndarray]:
    """Per-face NME of decoding perfect targets (the representation alone) for every method."""
    from .evaluate import crop_to_original

    gt_crop = test_set.landmarks.double()
    out = {}
    gt = np.stack([r.landmarks for r in test_set.records])
    norm = test_set.scheme.normaliser()
    # H3R's perfect network predicts the mean of the random targets (bilinear weights), not one draw
    enc = codec.expected(gt_crop.float()) if hasattr(codec, "expected") else codec.encode(gt_crop.float())
    if not isinstance(enc, dict):
        enc = {"heatmap": enc}
    for m, dec in decode_all(codec, codec.perfect_outputs(enc)).items():
        out[m] = metrics.nme(crop_to_original(dec, test_set.matrices).numpy(), gt, norm)
    return out


def predict_all(model, codec, test_set, device, batch_size: int = 64):
    """method -> (N, K, 2) original-image pixels for the test crops, every method of ``decode_all``."""
    from .evaluate import crop_to_original

    model.eval()
    preds: dict[str, list] = {}
    with torch.no_grad():
        for start in range(0, len(test_set), batch_size):
            images = test_set.images[start:start + batch_size].float().to(device)
            outputs = {k: v.float() for k, v in model(images).items() if k in codec.target_keys}
            for m, dec in decode_all(codec, outputs).items():
                M = test_set.matrices[start:start + batch_size].to(device)
                preds.setdefault(m, []).append(crop_to_original(dec, M).cpu().numpy())
    return {m: np.concatenate(v) for m, v in preds.items()}


def run_demo(out: str | os.PathLike = "figures", *, profile: str | None = None, device: str = "auto",
             seed: int = 0, work_dir: str | os.PathLike | None = None, threads: int | None = None,
             **overrides) -> dict:
    """Run the demo; returns the results (also written to OUT/demo_results.json and .md).

    ``profile``: "quick", "cpu" or "full" (default: "full" on CUDA, else "cpu"); ``overrides`` change
    fields of the profile (e.g. ``steps=50``). ``threads``: torch CPU threads; by default 1 when other
    processes already load the CPU (OpenMP threads that spin on busy cores run many times slower than
    a single thread: measured 50x on this project's shared 2-core machine), else all cores.
    """
    from .train import resolve_device

    dev = resolve_device(device)
    if profile is None:
        profile = "full" if dev.type == "cuda" else "cpu"
    p = dataclasses.replace(PROFILES[profile], **overrides)
    load_start = _loadavg()
    threads_before = torch.get_num_threads()
    if dev.type == "cpu":
        if threads is None:
            threads = 1 if (load_start or [0])[0] > 0.5 else (os.cpu_count() or 1)
        torch.set_num_threads(threads)
    try:
        return _run(p, dev, Path(out), Path(work_dir) if work_dir is not None else Path("runs") / "demo",
                    seed, load_start)
    finally:
        torch.set_num_threads(threads_before)


def _run(p: Profile, dev: torch.device, out: Path, work: Path, seed: int, load_start) -> dict:
    t_start, cpu_start = time.perf_counter(), time.process_time()
    print(f"hih demo ({p.name} profile) on {dev}: rendering {p.num_train} + {p.num_test} synthetic faces")
    train_set, test_set, desc = make_data(p, seed)
    t_data = time.perf_counter() - t_start
    print(f"data: {desc} ({t_data:.0f} s)")
    gt = np.stack([r.landmarks for r in test_set.records])
    norm = test_set.scheme.normaliser()

    rows, nmes, samples = [], {}, {}
    for hm in p.heatmap_sizes:
        for head in HEADS:
            model, codec, seconds = train_one(p, head, hm, train_set, work, str(dev), seed)
            preds = predict_all(model, codec, test_set, dev)
            floor = floor_nmes(codec, test_set)
            for m in methods_of(codec):
                per_face = metrics.nme(preds[m], gt, norm)
                nmes[(head, hm, m)] = per_face
                s = metrics.summary(per_face)
                rows.append({"head": head, "heatmap": hm, "stride": p.input_size // hm, "decoder": m,
                             "nme": s["nme"], "fr": s["fr"], "auc": s["auc"],
                             "floor_nme": 100 * float(floor[m].mean()), "train_seconds": round(seconds, 1)})
            samples[(head, hm)] = preds[codec.methods[0]][: p.num_samples]
            best = rows[-len(methods_of(codec))]
            print(f"  {head:8s} heatmap {hm:3d}: NME {best['nme']:.2f} % ({best['decoder']}) on the "
                  f"{len(test_set)} synthetic test faces, "
                  f"trained {p.steps} steps in {seconds:.0f} s")
    total = time.perf_counter() - t_start
    results = {"profile": dataclasses.asdict(p), "data": desc, "device": str(dev),
               "torch_threads": torch.get_num_threads(), "load_average_start": load_start,
               "load_average": _loadavg(),
               "seconds_total": round(total, 1), "cpu_seconds": round(time.process_time() - cpu_start, 1),
               "seconds_data": round(t_data, 1), "rows": rows,
               "claims": claims(rows, p.heatmap_sizes)}
    write_json(out / "demo_results.json", results)
    write_text(out / "demo_results.md", results_markdown(results))
    figures(out, p, nmes, rows, samples, test_set, desc)
    print(results_markdown(results))
    print(f"wrote {out}/demo_results.md, demo_results.json, demo_ced.png, demo_resolution.png, "
          f"demo_samples.png ({total:.0f} s in all)")
    return results


def _loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def claims(rows: list[dict], sizes) -> dict:
    """Measured gap argmax - sub-pixel decoder per head and heatmap size, and whether it widens."""
    by = {(r["head"], r["heatmap"], r["decoder"]): r["nme"] for r in rows}
    gaps = {head: {int(hm): by[(head, hm, "argmax")] - by[(head, hm, SUBPIXEL[head])] for hm in sizes}
            for head in HEADS}
    ordered = sorted(sizes, reverse=True)  # large heatmap -> small heatmap
    return {
        "gap_argmax_minus_subpixel_nme": gaps,
        "subpixel_beats_argmax": {h: all(g > 0 for g in gaps[h].values()) for h in HEADS},
        "gap_widens_as_heatmap_shrinks": {h: all(gaps[h][a] < gaps[h][b] for a, b in zip(ordered, ordered[1:]))
                                          for h in HEADS},
    }


def results_markdown(results: dict) -> str:
    p = results["profile"]
    lines = [f"# hih demo results ({p['name']} profile)", "",
             f"data: {results['data']}", "",
             f"Every model: hourglass `hg_tiny` (stacks {p['num_stacks']}, depth {p['depth']}, width {p['width']}), "
             f"{p['input_size']}px input, Adam lr {p['lr']} cosine, {p['steps']} steps of batch {p['batch_size']}. "
             f"Device {results['device']} ({results['torch_threads']} torch threads; 1-minute load average "
             f"{results['load_average_start'][0] if results['load_average_start'] else '?'} at the start, "
             f"{results['load_average'][0] if results['load_average'] else '?'} at the end, other jobs included); "
             f"{results['seconds_total']:.0f} s wall, {results['cpu_seconds']:.0f} CPU-seconds of this process.", "",
             "NME in % of the inter-ocular distance on the test faces; FR@0.1 in %; *floor* = NME of decoding "
             "perfect targets with the same decoder (the representation alone, no network).", "",
             "| head | heatmap | stride | decoder | NME % | FR@0.1 % | AUC@0.1 | floor NME % |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['head']} | {r['heatmap']} | {r['stride']} | {r['decoder']} | {r['nme']:.2f} | "
                     f"{r['fr']:.1f} | {r['auc']:.3f} | {r['floor_nme']:.2f} |")
    c = results["claims"]
    lines += ["", "## Claims, as measured", "",
              "| head | sub-pixel decoder | argmax NME − sub-pixel NME, per heatmap size | beats argmax everywhere | gap widens as the heatmap shrinks |",
              "|---|---|---|---|---|"]
    for h in HEADS:
        gaps = ", ".join(f"{hm}: {g:+.2f}" for hm, g in c["gap_argmax_minus_subpixel_nme"][h].items())
        lines.append(f"| {h} | {SUBPIXEL[h]} | {gaps} | {'yes' if c['subpixel_beats_argmax'][h] else 'NO'} | "
                     f"{'yes' if c['gap_widens_as_heatmap_shrinks'][h] else 'NO'} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------

def figures(out: Path, p: Profile, nmes: dict, rows: list[dict], samples: dict, test_set, desc: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from .viz import save_figure

    def save(fig, name):
        save_figure(fig, out / name, dpi=100)
        plt.close(fig)

    short = "synthetic WFLW-format test faces"
    colours = {"gaussian": "tab:blue", "h3r": "tab:orange", "hih": "tab:green"}
    # CED: one panel per heatmap size, each head's sub-pixel decoder (solid) and argmax (dashed)
    t = np.linspace(0, 0.1, 201)
    fig, axes = plt.subplots(1, len(p.heatmap_sizes), figsize=(4.2 * len(p.heatmap_sizes), 3.8), squeeze=False)
    for ax, hm in zip(axes[0], p.heatmap_sizes):
        for head in HEADS:
            for m, style in ((SUBPIXEL[head], "-"), ("argmax", "--")):
                v = nmes[(head, hm, m)]
                ax.plot(t * 100, metrics.ced(v, t), style, color=colours[head],
                        label=f"{head} {m} ({100 * v.mean():.2f})")
        ax.set_title(f"heatmap {hm} (stride {p.input_size // hm})", fontsize=9)
        ax.set_xlabel("NME (%)")
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower right")
    axes[0][0].set_ylabel("fraction of faces")
    fig.suptitle(f"CED, data: {short} ({p.name} profile)", fontsize=9)
    fig.tight_layout()
    save(fig, "demo_ced.png")

    # error vs resolution: every decoder of every head, and the representation floors
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    sizes = sorted(p.heatmap_sizes)
    for head in HEADS:
        methods = sorted({r["decoder"] for r in rows if r["head"] == head})
        for m in methods:
            by = {r["heatmap"]: r for r in rows if r["head"] == head and r["decoder"] == m}
            style = "-" if m == SUBPIXEL[head] else ("--" if m == "argmax" else ":")
            axes[0].plot(sizes, [by[s]["nme"] for s in sizes], style, marker="o", color=colours[head],
                         label=f"{head} {m}", alpha=1.0 if style != ":" else 0.6)
            axes[1].plot(sizes, [by[s]["floor_nme"] for s in sizes], style, marker="o", color=colours[head],
                         label=f"{head} {m}", alpha=1.0 if style != ":" else 0.6)
    for ax, title in zip(axes, ("trained models", "representation floor (perfect maps)")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.invert_xaxis()
        ax.set_xlabel("heatmap size (cells)")
        ax.set_ylabel("NME (%)")
        ax.set_title(title, fontsize=9)
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=6, ncol=2)
    fig.suptitle(f"NME vs heatmap resolution; data: {short} ({p.name} profile)", fontsize=9)
    fig.tight_layout()
    save(fig, "demo_resolution.png")

    # sample predictions at the smallest heatmap: crops with ground truth (green) and prediction (red)
    from .data import denormalize_image
    from .data.transforms import apply_affine

    hm = min(p.heatmap_sizes)
    n = min(p.num_samples, len(test_set))
    fig, axes = plt.subplots(len(HEADS), n, figsize=(2.2 * n, 2.3 * len(HEADS)), squeeze=False)
    for i in range(n):
        image = denormalize_image(test_set[i]["image"])
        M = test_set.matrices[i].numpy()
        gt_crop = test_set.landmarks[i].numpy()
        for r, head in enumerate(HEADS):
            ax = axes[r][i]
            ax.imshow(image)
            pred_crop = apply_affine(samples[(head, hm)][i], M)
            ax.scatter(gt_crop[:, 0], gt_crop[:, 1], s=3, c="lime", label="truth")
            ax.scatter(pred_crop[:, 0], pred_crop[:, 1], s=3, c="red", label="prediction")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(f"{head} ({SUBPIXEL[head]})", fontsize=8)
    axes[0][0].legend(fontsize=6, loc="lower left")
    fig.suptitle(f"heatmap {hm}: {short} (green truth, red prediction)", fontsize=9)
    fig.tight_layout()
    save(fig, "demo_samples.png")


def register(sub) -> None:
    p = sub.add_parser("demo", help="train Gaussian, H3R and HIH models on synthetic faces and compare decoders",
                       description="The papers' central claims, measured on synthetic faces in minutes on a CPU: "
                       "Gaussian, H3R and HIH heads trained at several heatmap sizes, every decoder evaluated, "
                       "results table and figures written to --out.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="a ~1 minute version (tiny data, model and budget)")
    g.add_argument("--full", action="store_true", help="bigger data, model and budget (default on CUDA)")
    p.add_argument("--out", default="figures", help="folder for the figures and the results table")
    p.add_argument("--work-dir", default=None, help="folder for the checkpoints (default runs/demo)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available)")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic faces and of the training")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: 1 if the CPU is already busy, else all cores)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    profile = "quick" if args.quick else ("full" if args.full else None)
    run_demo(args.out, profile=profile, device=args.device, seed=args.seed, work_dir=args.work_dir,
             threads=args.threads)
    return 0
