"""Published results as data, and a measured result put beside them.

The notebooks that reproduce the papers (05_wflw, 06_cofw) end with the same question: where does
this number stand? This module holds the published tables (HIH, H3R and the WFLW / COFW landscape,
all from the papers as collected in docs/REFERENCE.md) as one tuple of :class:`Published` rows, and the
functions that place a measurement among them (as tables; ``hihlib.viz.plot_comparison`` draws them).

Every measured row carries the description of the data it was computed on, and a measurement on
synthetic data is labelled as such in every table and figure: a synthetic export in the WFLW format
is *not* WFLW, and its NME says nothing about the published numbers (the faces are easier, the
images are rendered, the boxes are exact).

Units: NME and FR in %, AUC@0.1 in [0, 1]. ``norm`` is "inter_ocular" or "inter_pupil".
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

from ..data.datasets import DATASETS


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
WFLW_SUBSETS = DATASETS["wflw"].attributes

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
    name = DATASETS[dataset].title if dataset in DATASETS else dataset
    return (f"**Synthetic data, not {name}:** the measured rows come from rendered faces exported in the "
            f"{name} file format. They test the pipeline; they are not comparable with the published {name} numbers.")


def comparison_table(measured: Mapping[str, float | Mapping[str, float]], dataset: str, *, data: str,
                     norm: str = "inter_ocular", subset: str = "full", synthetic: bool = False,
                     box: str | None = "dataset") -> str:
    """Markdown table of :func:`comparison_rows`, measured rows in bold, with a ``data:`` line on top."""
    rows = comparison_rows(measured, dataset, data=data, norm=norm, subset=subset, synthetic=synthetic, box=box)
    name = DATASETS[dataset].title if dataset in DATASETS else dataset
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


__all__ = [
    "Published", "PUBLISHED", "WFLW_SUBSETS", "HIH_WFLW_SUBSETS", "QUANTIZATION_NME", "published", "Row",
    "comparison_rows", "comparison_table", "rank_among_published", "wflw_subset_table", "synthetic_warning",
]
