"""Published results as data, and a measured result put beside them.

The notebooks that reproduce the papers (05_wflw, 06_cofw) end with the same question: where does
this number stand? This module holds the published tables (HIH, H3R and the WFLW / COFW landscape,
all from the papers as collected in docs/REFERENCE.md) as one tuple of :class:`Published` rows, and the
functions that place a measurement among them.

Every measured row carries the description of the data it was computed on, and a measurement on
synthetic data is labelled as such in every table and figure: a synthetic export in the WFLW format
is *not* WFLW, and its NME says nothing about the published numbers (the faces are easier, the
images are rendered, the boxes are exact).

Units: NME and FR in %, AUC@0.1 in [0, 1]. ``norm`` is "inter_ocular" or "inter_pupil".
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class Published:
    """One published number.

    method: model name as the paper writes it; dataset: "wflw" | "cofw" | "300w"; nme: NME in %;
    norm: normaliser; subset: "full" or a WFLW attribute ("pose", "expression", "illumination",
    "makeup", "occlusion", "blur") or a 300W split ("common", "challenge"); fr: FR@0.1 in %;
    auc: AUC@0.1; box: "dataset" (boxes shipped with the data) or "landmarks" (boxes from the
    ground truth, optimistic); source: where the number comes from.
    """

    method: str
    dataset: str
    nme: float
    norm: str = "inter_ocular"
    subset: str = "full"
    fr: float | None = None
    auc: float | None = None
    box: str = "dataset"
    source: str = ""
    note: str = ""


_HIH = "HIH paper (Lan et al. 2021)"
_H3R = "H3R paper (Yu & Tao, TPAMI 2021)"
_LAND = "landscape (docs/REFERENCE.md §3)"

#: The six WFLW attribute subsets in the papers' column order.
WFLW_SUBSETS = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")

#: HIH_B on WFLW, per subset (NME %, inter-ocular).
HIH_WFLW_SUBSETS = {"full": 4.08, "pose": 6.87, "expression": 4.06, "illumination": 4.34, "makeup": 3.85,
                    "occlusion": 4.85, "blur": 4.66}

#: Quantization error alone (ground truth -> 64x64 heatmap of a 256x256 crop -> argmax), NME %,
#: inter-ocular, as measured in the HIH paper (Fig. 4).
QUANTIZATION_NME = {"wflw": 1.29, "300w": 1.11, "cofw": 0.86}

PUBLISHED: tuple[Published, ...] = (
    # -- HIH ---------------------------------------------------------------------------------------
    *(Published("HIH_B (4 stacks)", "wflw", v, subset=s, source=_HIH,
                **({"fr": 2.60, "auc": 0.605} if s == "full" else {}))
      for s, v in HIH_WFLW_SUBSETS.items()),
    Published("HIH_S (2 stacks)", "wflw", 4.13, source=_HIH),
    Published("HIH_T (1 stack)", "wflw", 4.27, source=_HIH),
    Published("HIH_B (4 stacks)", "cofw", 3.21, fr=0.00, source=_HIH),
    Published("HIH_B (4 stacks)", "cofw", 4.63, norm="inter_pupil", fr=0.39, source=_HIH),
    Published("HIH_B (4 stacks)", "300w", 3.09, source=_HIH),
    Published("HIH_B (4 stacks)", "300w", 2.65, subset="common", source=_HIH),
    Published("HIH_B (4 stacks)", "300w", 4.89, subset="challenge", source=_HIH),
    # -- H3R ---------------------------------------------------------------------------------------
    Published("H3R HRNet-W18", "wflw", 3.95, source=_H3R),
    Published("H3R HRNet-W18", "wflw", 3.81, box="landmarks", source=_H3R,
              note="boxes from the ground-truth landmarks: optimistic, not comparable"),
    Published("H3R MobileNetV2 256", "wflw", 4.45, source=_H3R),
    Published("H3R MobileNetV2 160", "wflw", 4.58, source=_H3R, note="160x160 input"),
    Published("H3R MobileNetV2 128", "wflw", 4.72, source=_H3R, note="128x128 input"),
    Published("H3R HRNet-W18", "300w", 3.62, source=_H3R),
    # -- the landscape (other methods) ---------------------------------------------------------------
    *(Published(m, "wflw", v, source=_LAND) for m, v in (
        ("HRNetV2-W18", 4.60), ("AWing", 4.36), ("LUVLi", 4.37), ("ADNet", 4.14), ("SLPT", 4.12),
        ("STAR", 4.02), ("LDEQ", 3.92), ("ORFormer", 3.86))),
    *(Published(m, "cofw", v, source=_LAND) for m, v in (("HRNet", 3.45), ("PIPNet", 3.08), ("SLPT", 3.32))),
    *(Published(m, "cofw", v, norm="inter_pupil", source=_LAND) for m, v in (
        ("AWing", 4.94), ("ADNet", 4.68), ("STAR", 4.62), ("ORFormer", 4.46))),
)


def published(dataset: str, *, norm: str = "inter_ocular", subset: str = "full", box: str | None = "dataset",
              method: str | None = None) -> list[Published]:
    """The published rows of one table, best (lowest NME) first.

    box="dataset" leaves out results obtained with ground-truth boxes (box=None keeps them);
    method keeps only rows whose method name contains that text (case-insensitive).
    """
    rows = [p for p in PUBLISHED if p.dataset == dataset and p.norm == norm and p.subset == subset
            and (box is None or p.box == box) and (method is None or method.lower() in p.method.lower())]
    if not rows and not any(p.dataset == dataset for p in PUBLISHED):
        raise ValueError(f"no published results for dataset {dataset!r}; expected one of "
                         f"{sorted({p.dataset for p in PUBLISHED})}")
    return sorted(rows, key=lambda p: p.nme)


@dataclasses.dataclass(frozen=True)
class Row:
    """One line of a comparison: a published result or a measurement (``measured=True``)."""

    label: str
    nme: float
    measured: bool = False
    fr: float | None = None
    auc: float | None = None
    data: str = ""
    note: str = ""


def comparison_rows(measured: Mapping[str, float | Mapping[str, float]], dataset: str, *, data: str,
                    norm: str = "inter_ocular", subset: str = "full", synthetic: bool = False,
                    box: str | None = "dataset") -> list[Row]:
    """Published rows and measured rows in one list, sorted by NME.

    measured: label -> NME % or a dict with "nme" (and optionally "fr", "auc"), e.g. the output of
    ``hihlib.metrics.summary``; data: the description of the data the measurements come from
    (``synthetic=True`` prefixes every measured label with "[synthetic]").
    """
    rows = [Row(p.method, p.nme, fr=p.fr, auc=p.auc, data=p.source, note=p.note)
            for p in published(dataset, norm=norm, subset=subset, box=box)]
    for label, value in measured.items():
        r = dict(value) if isinstance(value, Mapping) else {"nme": float(value)}
        tag = "[synthetic] " if synthetic else ""
        rows.append(Row(f"{tag}{label} (this run)", float(r["nme"]), measured=True, fr=r.get("fr"),
                        auc=r.get("auc"), data=data))
    return sorted(rows, key=lambda r: (r.nme, r.measured))


def rank_among_published(nme_value: float, dataset: str, *, norm: str = "inter_ocular",
                         subset: str = "full") -> int:
    """1-based rank that an NME of ``nme_value`` % would take in the published table (ties rank after)."""
    return 1 + sum(p.nme <= nme_value for p in published(dataset, norm=norm, subset=subset))


def _cell(v: float | None, fmt: str) -> str:
    return "" if v is None else format(v, fmt)


def synthetic_warning(dataset: str) -> str:
    """The sentence that goes above every table or figure computed on a synthetic export."""
    name = {"wflw": "WFLW", "cofw": "COFW", "300w": "300W"}.get(dataset, dataset)
    return (f"**Synthetic data, not {name}:** the measured rows come from rendered faces exported in the "
            f"{name} file format. They test the pipeline; they are not comparable with the published {name} numbers.")


def comparison_table(measured: Mapping[str, float | Mapping[str, float]], dataset: str, *, data: str,
                     norm: str = "inter_ocular", subset: str = "full", synthetic: bool = False,
                     box: str | None = "dataset") -> str:
    """Markdown table of :func:`comparison_rows`, measured rows in bold, with a ``data:`` line on top."""
    rows = comparison_rows(measured, dataset, data=data, norm=norm, subset=subset, synthetic=synthetic, box=box)
    name = {"wflw": "WFLW", "cofw": "COFW", "300w": "300W"}.get(dataset, dataset)
    head = [synthetic_warning(dataset), ""] if synthetic else []
    head += [f"{name} {subset}, NME normalised {norm.replace('_', '-')}, boxes: "
             f"{'dataset' if box == 'dataset' else 'any'}; measured data: {data}", "",
             "| # | method | NME % | FR@0.1 % | AUC@0.1 | source / data |", "|---:|---|---:|---:|---:|---|"]
    for i, r in enumerate(rows, start=1):
        label = f"**{r.label}**" if r.measured else r.label
        nme_s = f"**{r.nme:.2f}**" if r.measured else f"{r.nme:.2f}"
        src = r.data + (f" ({r.note})" if r.note else "")
        head.append(f"| {i} | {label} | {nme_s} | {_cell(r.fr, '.2f')} | {_cell(r.auc, '.3f')} | {src} |")
    return "\n".join(head) + "\n"


def wflw_subset_table(measured: Mapping[str, Mapping[str, float]], *, data: str, synthetic: bool = False) -> str:
    """Markdown: HIH_B's published NME per WFLW subset beside measured rows.

    measured: label -> {subset: NME %} (subsets absent from a row are left blank; "pose" is the
    large-pose subset).
    """
    cols = ("full",) + WFLW_SUBSETS
    head = [synthetic_warning("wflw"), ""] if synthetic else []
    head += [f"WFLW test subsets, NME % (inter-ocular); measured data: {data}", "",
             "| method | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    head.append("| HIH_B (4 stacks), published | " + " | ".join(f"{HIH_WFLW_SUBSETS[c]:.2f}" for c in cols) + " |")
    tag = "[synthetic] " if synthetic else ""
    for label, per_subset in measured.items():
        cells = [f"{per_subset[c]:.2f}" if c in per_subset else "" for c in cols]
        head.append(f"| **{tag}{label} (this run)** | " + " | ".join(cells) + " |")
    return "\n".join(head) + "\n"


def plot_comparison(rows: Sequence[Row], ax=None, *, title: str = "", synthetic: bool = False):
    """Horizontal bars of NME % for :func:`comparison_rows`; measured bars hatched and coloured.

    A synthetic measurement puts "synthetic data, not comparable" into the title. Returns the Axes.
    """
    if ax is None:
        from .viz import new_figure

        _, ax = new_figure(size=(6.5, 0.32 * len(rows) + 1.2))
    y = np.arange(len(rows))[::-1]
    colors = ["#d62728" if r.measured else ("#1f77b4" if "HIH" in r.label else
                                             "#17becf" if "H3R" in r.label else "#bbbbbb") for r in rows]
    bars = ax.barh(y, [r.nme for r in rows], color=colors)
    for bar, r in zip(bars, rows):
        if r.measured:
            bar.set_hatch("//")
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {r.nme:.2f}", va="center", fontsize=7)
    ax.set_yticks(y)
    ax.set_yticklabels([r.label for r in rows], fontsize=7)
    ax.set_xlabel("NME (%)")
    ax.grid(True, axis="x", alpha=0.3)
    if synthetic:
        title = (title + "\n" if title else "") + "measured on SYNTHETIC data: not comparable with the published rows"
    if title:
        ax.set_title(title, fontsize=8)
    return ax


# -- quantization error on a dataset's annotations ------------------------------------------------

def inside_crop(coords, input_size: int) -> np.ndarray:
    """(N,) bool: faces whose landmarks all lie inside the crop, coords (N, K, 2) crop pixels.

    The crop spans [-1/2, input_size - 1/2] (pixel centres at integer coordinates); a landmark
    outside it has no heatmap cell, so no heatmap representation can encode it.
    """
    c = np.asarray(coords, dtype=np.float64)
    return ((c >= -0.5) & (c <= input_size - 0.5)).all(axis=(-1, -2))


def quantization_table(records: Sequence, norm: tuple[int, int], *,
                       decoders: Iterable[tuple[str, str]] | None = None, heatmap_size: int = 64,
                       input_size: int = 256, scale: float = 1.25) -> dict[str, float]:
    """Mean NME (%) caused by the representation alone on a dataset's annotations, per decoder.

    Each face's landmarks are mapped into the square crop of its box (side ``scale`` x box side,
    resized to ``input_size``), encoded on a ``heatmap_size`` grid and decoded with no network
    (``hihlib.analysis``). Faces with a landmark outside the crop are left out (see
    :func:`inside_crop`; count them with it). records: FaceRecords (only ``landmarks`` (K, 2) and
    ``box`` (4,) are read); norm: landmark index pair.
    Returns {"codec/method": NME %}, e.g. {"gaussian/argmax": 1.31, ...}.
    """
    from .analysis import ALL_DECODERS, crop_coords, quantization_nme

    decoders = list(decoders or ALL_DECODERS)
    landmarks = np.stack([r.landmarks for r in records])
    boxes = np.stack([r.box for r in records])
    coords, _ = crop_coords(landmarks, boxes, input_size=input_size, scale=scale)
    coords = coords[inside_crop(coords, input_size)]
    out = {}
    for name, method in decoders:
        nm = quantization_nme(coords, tuple(norm), name, method, input_size=input_size, heatmap_size=heatmap_size)
        out[f"{name}/{method}"] = 100 * float(nm.mean())
    return out


# -- training logs ---------------------------------------------------------------------------------

def read_metrics(path: str | os.PathLike) -> dict[str, dict[str, list]]:
    """A trainer's ``metrics.jsonl`` as columns: kind -> key -> list of values, in file order.

    kinds are the records' ``"kind"`` ("train", "epoch", "eval"); e.g. ``m["train"]["loss"]`` is the
    logged training loss at the steps ``m["train"]["step"]``, and ``m["eval"]["expectation"]`` the list
    of ``{"nme", "fr", "auc", "n"}`` dicts of that decode method. A line that is not JSON raises
    ``DataError`` naming the file and the line.
    """
    import json

    from .errors import DataError

    path = Path(path)
    out: dict[str, dict[str, list]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(path, lineno, "one JSON object per line", f"{line.strip()[:40]!r} ({e.msg})") from None
            cols = out.setdefault(record.get("kind", "train"), {})
            n = len(next(iter(cols.values()))) if cols else 0
            for key, value in record.items():
                if key != "kind":
                    cols.setdefault(key, [None] * n).append(value)
            for key, values in cols.items():  # keys missing from this record stay aligned
                if len(values) == n:
                    values.append(None)
    return out


# -- where the data comes from ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DataSource:
    """A dataset folder and what it holds: the real download, or a synthetic export in its format.

    description: one line to print above every result computed on it.
    """

    dataset: str
    root: Path
    synthetic: bool
    description: str


def data_source(dataset: str, root: str | os.PathLike | None = None, *, env: str | None = None,
                synth_dir: str | os.PathLike | None = None, synth_args: Sequence[str] = ()) -> DataSource:
    """The real dataset when ``root`` (or the environment variable ``env``) names a folder, else a
    synthetic export in the dataset's format, written by ``hih data synth --format DATASET``.

    root: explicit folder (wins over ``env``); env: e.g. "HIH_WFLW_ROOT"; synth_dir: where to write
    the export (default: a temporary folder); synth_args: extra ``hih data synth`` arguments (sizes).
    A root that is given but does not exist is an error (a typo must not silently fall back to
    synthetic data).
    """
    from .errors import HihError

    name = {"wflw": "WFLW", "cofw": "COFW", "300w": "300W"}[dataset]
    given = root if root is not None else (os.environ.get(env) if env else None)
    if given:
        path = Path(given).expanduser()
        if not path.exists():
            raise HihError(f"{path}: the {name} folder does not exist"
                           + (f" (from ${env})" if root is None and env else ""))
        return DataSource(dataset, path, False, f"{name} from {path}")
    import tempfile

    from .cli import main as hih

    out = Path(synth_dir) if synth_dir is not None else Path(tempfile.mkdtemp(prefix=f"hih_synth_{dataset}_"))
    code = hih(["data", "synth", "--format", dataset, "--out", str(out), *synth_args])
    if code:
        raise HihError(f"hih data synth --format {dataset} --out {out} failed (exit {code})")
    return DataSource(dataset, out, True,
                      f"SYNTHETIC faces exported in the {name} format to {out} (not {name}: "
                      f"set {env or 'the root'} to a {name} download for real numbers)")


__all__ = [
    "Published", "PUBLISHED", "WFLW_SUBSETS", "HIH_WFLW_SUBSETS", "QUANTIZATION_NME", "published", "Row",
    "comparison_rows", "comparison_table", "rank_among_published", "wflw_subset_table", "synthetic_warning",
    "plot_comparison", "inside_crop", "quantization_table", "read_metrics", "DataSource", "data_source",
]
