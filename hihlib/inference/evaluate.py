"""Evaluation: predictions in original-image pixels, paper-style tables, CED curves (``hih eval``).

Data flow: crop -> model -> ``codec.decode(outputs, method)`` (crop pixels) -> inverse crop matrix
-> original-image pixels -> NME against the annotation. Every decode method of the codec is
evaluated from the same forward pass, so the comparison between decoders is exact (same network,
same faces).

Metrics follow ``hihlib.metrics``: NME in %, FR@0.1 in %, AUC@0.1 in [0, 1]. Every table carries
the line ``data: ...`` naming the data it was computed on.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..data.dataset import to_original
from ..data.datasets import DATASETS, attribute_order, dataset_info
from ..errors import ConfigError
from ..io import write_json, write_text

# Preferred display order of attribute subsets (WFLW's six, then anything else alphabetically).
ATTRIBUTE_ORDER = attribute_order()


@dataclasses.dataclass
class Predictions:
    """Landmarks predicted for a dataset.

    pred : method -> (N, K, 2) float64, original-image pixels.
    gt : (N, K, 2) float64 annotations, original-image pixels.
    indices : (N,) int positions of the faces in ``dataset.records``.
    """

    pred: dict[str, np.ndarray]
    gt: np.ndarray
    indices: np.ndarray


def default_mirror(num_landmarks: int) -> tuple[int, ...]:
    """The mirror permutation of hihlib's landmark scheme with ``num_landmarks`` points (98 WFLW, 68 300W,
    29 COFW); ``ConfigError`` for another count."""
    for info in DATASETS.values():
        if info.num_points == num_landmarks:
            return info.mirror
    raise ConfigError(f"flip test: no landmark scheme has {num_landmarks} points (wflw 98, 300w 68, cofw 29); "
                      f"give the mirror permutation")


@torch.no_grad()
def predict_batch(model: nn.Module, codec, images: torch.Tensor, methods: Sequence[str], *,
                  amp: bool = False, flip: bool = False, mirror: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
    """One forward pass (two with ``flip``), every decode method. images (B, 3, S, S) -> method -> (B, K, 2)
    crop pixels.

    ``flip=True``: the flip test, as the released H3R pipeline (``FacialLandmarkDetector.forward``) does it:
    a second forward on the mirrored crops ``images.flip(-1)``, whose decoded points are mapped back by
    x -> S - 1 - x (the mirror of hihlib's pixel-centre frame) and re-ordered by ``mirror`` (point i of
    the mirrored face is point ``mirror[i]``; default: the scheme with K points), then averaged with the
    plain prediction, (plain + mirrored) / 2. With a codec decoding in the released frame
    (``frame="released_h3r"``: x = 4u) this is the released arithmetic exactly (two forward passes of B
    crops each, as released)."""
    device = images.device

    def decode(x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"):
            outputs = model(x)
        outputs = {k: outputs[k].float() for k in codec.target_keys}
        return {m: codec.decode(outputs, m) for m in methods}

    plain = decode(images)
    if not flip:
        return plain
    S = images.shape[-1]
    out = {}
    for m, mirrored in decode(images.flip(-1)).items():               # (B, K, 2) crop pixels of the mirror
        order = torch.as_tensor(mirror if mirror is not None else default_mirror(mirrored.shape[1]),
                                device=mirrored.device)
        mirrored = mirrored.clone()
        mirrored[..., 0] = (S - 1) - mirrored[..., 0]
        out[m] = (plain[m] + mirrored[:, order]) / 2.0
    return out


@torch.no_grad()
def predict_dataset(model: nn.Module, codec, dataset, *, methods: Sequence[str] | None = None,
                    batch_size: int = 32, device: str | torch.device = "cpu", amp: bool = False,
                    progress: bool = True, workers: int = 0, flip: bool = False) -> Predictions:
    """Predict every face of a ``FaceDataset`` (no augmentation) with every decode method
    (``flip=True``: the flip test of ``predict_batch``, with the dataset scheme's mirror permutation)."""
    from torch.utils.data import DataLoader

    methods = tuple(methods or codec.methods)
    device = torch.device(device)
    was_training = model.training
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    if progress:
        from tqdm.auto import tqdm

        loader = tqdm(loader, desc="evaluate", leave=False, dynamic_ncols=True)
    preds: dict[str, list[np.ndarray]] = {m: [] for m in methods}
    indices = []
    for batch in loader:
        images = batch["image"].to(device)
        crop = predict_batch(model, codec, images, methods, amp=amp, flip=flip,
                             mirror=dataset.scheme.mirror if flip else None)
        matrix = batch["matrix"].to(device)
        for m in methods:
            preds[m].append(to_original(crop[m], matrix).cpu().numpy())
        indices.append(np.asarray(batch["index"]).reshape(-1))
    model.train(was_training)
    indices = np.concatenate(indices)
    gt = np.stack([dataset.records[i].landmarks for i in indices]).astype(np.float64)
    return Predictions({m: np.concatenate(v) for m, v in preds.items()}, gt, indices)


def summarise(preds: Predictions, dataset=None, *, norm: tuple[int, int] | None = None,
              threshold: float = 0.1) -> dict[str, dict]:
    """method -> {"nme" %, "fr" %, "auc", "n"} over all faces with the scheme's default normaliser."""
    if norm is None:
        norm = dataset.scheme.normaliser()
    return {m: metrics.summary(metrics.nme(p, preds.gt, norm), threshold) for m, p in preds.pred.items()}


def attribute_subsets(records: Sequence) -> dict[str, np.ndarray]:
    """``full`` plus one subset per attribute found in the records (positions into ``records``)."""
    subsets = {"full": np.arange(len(records))}
    found = sorted({a for r in records for a in r.attributes},
                   key=lambda a: (ATTRIBUTE_ORDER.index(a) if a in ATTRIBUTE_ORDER else len(ATTRIBUTE_ORDER), a))
    for a in found:
        subsets[a] = np.array([i for i, r in enumerate(records) if a in r.attributes], dtype=int)
    return subsets


def evaluate_predictions(preds: Predictions, scheme, subsets: dict[str, np.ndarray], *,
                         norms: Sequence[str] | None = None, threshold: float = 0.1) -> dict:
    """Nested results ``[norm][subset][method] -> {"nme", "fr", "auc", "n"}`` and the per-face NMEs.

    subsets: name -> positions into ``dataset.records`` (not into ``preds``).
    Returns {"metrics": nested dict, "nmes": {norm: {method: (N,) array}}}.
    """
    norms = list(norms or [scheme.default_norm])
    where = {int(idx): n for n, idx in enumerate(preds.indices)}
    out: dict = {}
    nmes: dict = {}
    for kind in norms:
        pair = scheme.normaliser(kind)
        per_method = {m: metrics.nme(p, preds.gt, pair) for m, p in preds.pred.items()}
        nmes[kind] = per_method
        out[kind] = {}
        for name, idx in subsets.items():
            rows = np.array([where[int(i)] for i in idx if int(i) in where], dtype=int)
            if rows.size == 0:
                continue
            out[kind][name] = {m: metrics.summary(v[rows], threshold) for m, v in per_method.items()}
    return {"metrics": out, "nmes": nmes}


def decimal_map_report(per_method: dict[str, dict], norm: str = "inter_ocular") -> str:
    """What the decimal map adds on a model: the NMEs of the HIH decoders (``expectation``, ``official``)
    beside the integer map read alone (``argmax``), per_method: method -> {"nme", ...} of one subset and
    normaliser; a second line when the decimal map does not pay off (argmax as good or better)."""
    rows = {m: per_method[m]["nme"] for m in ("expectation", "official", "argmax") if m in per_method}
    text = f"HIH decoders, {norm.replace('_', '-')} NME %: " + str({m: round(v, 3) for m, v in rows.items()})
    if "argmax" in rows and "expectation" in rows and rows["argmax"] <= rows["expectation"]:
        text += ("\nthe decimal map does not pay off yet on this briefly trained model: reading the integer map "
                 "alone (argmax) is as good or better (notebook 04 measures why)")
    return text


def format_table(results: dict, data_description: str, *, title: str | None = None) -> str:
    """Markdown: one row per (normaliser, subset, method) with NME %, FR@0.1 %, AUC@0.1."""
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += [f"data: {data_description}", "",
              "| normaliser | subset | decoder | faces | NME % | FR@0.1 % | AUC@0.1 |",
              "|---|---|---|---:|---:|---:|---:|"]
    for kind, per_subset in results.items():
        for subset, per_method in per_subset.items():
            for method, r in per_method.items():
                lines.append(f"| {kind} | {subset} | {method} | {r['n']} | {r['nme']:.3f} | {r['fr']:.2f} | {r['auc']:.4f} |")
    return "\n".join(lines) + "\n"


def plot_ced(curves: dict[str, np.ndarray], path: str | os.PathLike, *, title: str, threshold: float = 0.1) -> Path:
    """Cumulative error distribution, one curve per label (label -> per-face NMEs), written atomically
    (``hihlib.viz.plot_ced`` on a titled figure)."""
    from .. import viz

    fig, ax = viz.new_figure(size=(6, 4.5))
    viz.plot_ced(curves, ax, max_nme=threshold)
    ax.set_title(title, fontsize=9)
    return viz.save_figure(fig, path)


# ----------------------------------------------------------------------------------------------
# hih eval
# ----------------------------------------------------------------------------------------------

def evaluation_sets(dataset: str, root: str | None, cfg: dict, *, num: int | None = None):
    """(records, scheme, subsets, normalisers, description) for ``hih eval --dataset``, as the dataset's row
    of ``hihlib.data.datasets`` says: its evaluation splits (concatenated; with more than one, each is
    a subset too, then "full"), ``full`` and one subset per attribute where it has attributes, and its
    normalisers. ``synth``: generated faces of a held-out seed (``num`` of them, default the config's)."""
    from ..pipeline.build import open_split

    info = dataset_info(dataset)
    cfg = {**cfg, "data": {**cfg["data"], "cache": None, "dataset": info.name}}
    if info.loader is None:
        if num:
            cfg["data"]["num_val"] = num
    elif root is None:
        raise ConfigError(f"--root is required for --dataset {dataset}")
    else:
        cfg["data"]["root"] = root
    parts = [open_split(cfg, split) for split in info.eval_splits]
    records = [r for part, _, _ in parts for r in part]
    subsets: dict[str, np.ndarray] = {}
    if len(parts) > 1:
        start = 0
        for split, (part, _, _) in zip(info.eval_splits, parts):
            subsets[split] = np.arange(start, start + len(part))
            start += len(part)
    subsets["full"] = np.arange(len(records))
    if info.eval_attributes:
        subsets.update(attribute_subsets(records))
    desc = "; ".join(d for _, _, d in parts) + (" (held-out seed)" if info.loader is None else "")
    return records, parts[0][1], subsets, list(info.eval_norms), desc


@dataclasses.dataclass
class Evaluation:
    """What ``evaluate_dataset`` measured.

    preds: the predictions (original-image pixels); metrics: ``[norm][subset][method] -> {"nme" %, "fr" %,
    "auc", "n"}``; nmes: ``{norm: {method: (N,) per-face NME}}``; records, scheme, subsets (name -> positions
    into records), norms: what was evaluated; description: the ``data:`` line (data, crops, flip test).
    """

    preds: Predictions
    metrics: dict
    nmes: dict
    records: list
    scheme: object
    subsets: dict
    norms: list
    description: str


def evaluate_dataset(model: nn.Module, codec, dataset: str, root: str | None, cfg: dict, *,
                     device: str | torch.device = "cpu", batch_size: int = 32, num: int | None = None,
                     progress: bool = False, flip: bool = False, protocol: str = "hihlib",
                     box: str | None = None, methods: Sequence[str] | None = None) -> Evaluation:
    """A model on a dataset's evaluation sets (``evaluation_sets``), every decoder of its codec: what
    ``hih eval`` reports, as a function (``hih eval`` and notebooks 05 and 06 call it).

    cfg: the model's configuration (its ``data`` section gives the crop: input_size, scale, box).
    protocol: "hihlib" (``FaceDataset``'s crops) or "h3r" (H3R's released crop rule,
    ``hihlib.data.h3r_protocol``); box: "dataset" (P2) or "landmarks" (P1, the optimistic protocol),
    default the configuration's; flip: the flip test (``predict_batch``)."""
    from ..data import FaceDataset

    info = dataset_info(dataset)
    if model.num_landmarks != info.num_points:
        raise ConfigError(f"the model predicts {model.num_landmarks} landmarks but --dataset {dataset} has "
                          f"{info.num_points}; evaluate it on a dataset of {model.num_landmarks} landmarks")
    records, scheme, subsets, norms, desc = evaluation_sets(dataset, root, cfg, num=num)
    d = {**cfg["data"], "box": box or cfg["data"]["box"]}
    if protocol == "h3r":
        from ..data.h3r_protocol import H3RCropDataset

        ds = H3RCropDataset(records, scheme, input_size=d["input_size"], scale=d["scale"], box=d["box"])
    elif protocol == "hihlib":
        ds = FaceDataset(records, scheme, input_size=d["input_size"], scale=d["scale"], box=d["box"], augment=None)
    else:
        raise ConfigError(f"--protocol {protocol!r}: expected hihlib or h3r")
    desc = f"{desc}; crops: {ds.protocol}" + ("; flip test" if flip else "")
    preds = predict_dataset(model, codec, ds, methods=methods, batch_size=batch_size, device=device,
                            progress=progress, flip=flip)
    res = evaluate_predictions(preds, scheme, subsets, norms=norms)
    return Evaluation(preds, res["metrics"], res["nmes"], records, scheme, subsets, norms, desc)


def run_eval(checkpoint: str | os.PathLike, dataset: str, root: str | None, out: str | os.PathLike, *,
             device: str = "auto", batch_size: int = 32, num: int | None = None, progress: bool = True,
             flip: bool = False, protocol: str = "hihlib", box: str | None = None) -> dict:
    """Evaluate a checkpoint (``evaluate_dataset``); writes OUT/eval_<dataset>.json, .md and a CED plot.
    Returns the JSON.

    ``flip``: the flip test (``predict_batch``). ``protocol``: "hihlib" (``FaceDataset``'s crops) or "h3r"
    (H3R's released crop rule, ``hihlib.data.h3r_protocol``). ``box``: "dataset" (P2) or "landmarks"
    (P1, the optimistic protocol); default the checkpoint's."""
    from ..pipeline.build import resolve_device
    from ..pipeline.checkpoint import load_checkpoint, read_checkpoint, trained_on

    dev = resolve_device(device, "--device")
    ckpt = read_checkpoint(checkpoint)
    model, codec, cfg = load_checkpoint(ckpt, dev)
    try:
        ev = evaluate_dataset(model, codec, dataset, root, cfg, device=dev, batch_size=batch_size, num=num,
                              progress=progress, flip=flip, protocol=protocol, box=box)
    except ConfigError as e:
        raise ConfigError(f"{checkpoint}: {e}" if str(e).startswith("the model predicts") else str(e)) from None
    title = f"{Path(checkpoint).name} on {dataset} ({codec.name} codec, heatmap {codec.heatmap_size})"
    table = format_table(ev.metrics, ev.description, title=title)
    print(table)
    out = Path(out)
    stem = f"eval_{dataset}"
    kind = ev.norms[0]
    plot_ced({m: v for m, v in ev.nmes[kind].items()}, out / f"{stem}_ced.png",
             title=f"CED, {kind} NME; data: {ev.description}")
    report = {"checkpoint": str(checkpoint), "dataset": dataset, "data": ev.description, "codec": codec.name,
              "heatmap_size": codec.heatmap_size, "input_size": codec.input_size,
              "box": box or cfg["data"]["box"], "protocol": protocol, "flip": flip,
              "model": cfg["model"], "loss": cfg.get("loss"), "trained_on": trained_on(ckpt), "metrics": ev.metrics}
    write_json(out / f"{stem}.json", report)
    write_text(out / f"{stem}.md", table)
    print(f"wrote {out / (stem + '.json')}, {out / (stem + '.md')}, {out / (stem + '_ced.png')}")
    return report


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint: NME, FR@0.1, AUC@0.1 per subset and decoder")
    p.add_argument("--checkpoint", required=True, help="a checkpoint written by `hih train` (last.pt or best.pt)")
    p.add_argument("--dataset", required=True, choices=list(DATASETS),
                   help="test data: the dataset's test split(s), or synthetic faces from a held-out seed")
    p.add_argument("--root", default=None, help="dataset folder (not needed for synth)")
    p.add_argument("--out", default="eval", help="folder for the JSON, markdown table and CED plot (default: eval)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default: auto)")
    p.add_argument("--batch-size", type=int, default=32, help="faces per forward pass (default: 32)")
    p.add_argument("--num", type=int, default=None, help="synth only: number of faces (default: the config's)")
    p.add_argument("--flip", action="store_true",
                   help="flip test: average with the prediction on the mirrored crop (H3R's and HRNet's protocol)")
    p.add_argument("--protocol", choices=["hihlib", "h3r"], default="hihlib",
                   help="crops: hihlib's (default) or H3R's released rule (1.25 x max(w+1, h+1), rounded PIL crop)")
    p.add_argument("--box", choices=["dataset", "landmarks"], default=None,
                   help="crop boxes: dataset (H3R's P2) or landmarks (P1, optimistic); default: the checkpoint's")
    p.set_defaults(func=lambda a: run_eval(a.checkpoint, a.dataset, a.root, a.out, device=a.device,
                                           batch_size=a.batch_size, num=a.num, flip=a.flip, protocol=a.protocol,
                                           box=a.box) and 0)
