"""Plots shared by the notebooks, the widgets and the ``hih`` command.

Every function draws on a matplotlib ``Axes`` that the caller passes (or creates one) and returns
it, so a notebook can arrange panels freely and a test can inspect what was drawn. Figures are made
with :func:`new_figure`, which does not go through pyplot: no global state, no figure left open,
and nothing is shown twice by the notebook's inline backend. :func:`show` displays a figure as a
PNG (works under any matplotlib backend, including ``Agg`` under nbval); :func:`save_figure`
writes it atomically.

Heatmaps are drawn in hihlib's coordinate convention (see ``hihlib.codecs.base``): cell (i, j) has
its centre at (u=j, v=i), so a heatmap of size H spans [-0.5, H - 0.5] on both axes and a point
given in cell coordinates lands on the cell it belongs to.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..io import write_bytes

DPI = 110

# One colour per decoder, so that every figure of the project reads the same way.
METHOD_COLORS = {
    "argmax": "#d62728",
    "floor": "#8c564b",
    "quarter": "#ff7f0e",
    "dark": "#2ca02c",
    "integral": "#9467bd",
    "topk": "#17becf",
    "official": "#e377c2",
    "expectation": "#1f77b4",
}


def _color(label: str, i: int) -> str:
    """The decoder's colour when the label ends with a decoder name ("hih/official"), else C{i}."""
    key = label.replace("/", " ").split()[-1] if label.strip() else ""
    return METHOD_COLORS.get(key, f"C{i % 10}")


# One marker per point kind, so that the same point looks the same in every panel.
METHOD_MARKERS = {"true": "x", "official": "+", "expectation": "o", "argmax": "s", "dark": "^", "topk": "D"}
_SPARE_MARKERS = "v<>phP*"


def _marker(label: str, i: int) -> str:
    """The marker of a point kind (:data:`METHOD_MARKERS`), else one of the spare markers by position."""
    return METHOD_MARKERS.get(label, _SPARE_MARKERS[i % len(_SPARE_MARKERS)])


def _np(x) -> np.ndarray:
    """Tensor or array-like -> numpy array (detached, on the CPU)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


# -- figures -------------------------------------------------------------------------------------
def new_figure(nrows: int = 1, ncols: int = 1, *, size: tuple[float, float] | None = None, **subplot_kw):
    """A figure outside pyplot and its axes (a single ``Axes`` or an array, as ``plt.subplots``).

    ``size`` is (width, height) in inches; the default gives each panel about 4 x 3.2 inches.
    """
    size = size or (4.0 * ncols, 3.2 * nrows)
    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=True, **subplot_kw)
    return fig, axes


def wrap_titles(fig: Figure) -> Figure:
    """Wrap every axes title (and the figure's suptitle) that is wider than its panel or would cross
    the figure's edge onto several lines, so that no title is clipped. The figure is laid out once
    first, so the panels' final widths (after the layout made room for tick labels) are measured."""
    import textwrap

    fig.draw_without_rendering()
    renderer = fig._get_renderer()
    fig_w = fig.bbox.width

    def wrap(text_obj, centre: float, panel: float) -> None:
        text = text_obj.get_text()
        if not text or not text_obj.get_visible():
            return
        box = text_obj.get_window_extent(renderer)
        allowed = 0.97 * min(panel, 2 * min(centre, fig_w - centre))
        if box.width <= allowed and box.x0 >= 0 and box.x1 <= fig_w:
            return
        lines = text.split("\n")
        longest = max(len(line) for line in lines)
        chars = max(12, int(longest * allowed / max(box.width, 1.0)))
        text_obj.set_text("\n".join(w for line in lines for w in textwrap.wrap(line, chars, break_on_hyphens=False)
                                    or [""]))

    for ax in fig.axes:
        extent = ax.get_window_extent(renderer)
        for t in (ax.title, ax._left_title, ax._right_title):
            wrap(t, 0.5 * (extent.x0 + extent.x1), 1.15 * extent.width)
    if getattr(fig, "_suptitle", None) is not None:
        wrap(fig._suptitle, 0.5 * fig_w, fig_w)
    return fig


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure rendered as PNG bytes (titles wider than their panel wrapped: :func:`wrap_titles`)."""
    wrap_titles(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def project_root() -> Path:
    """The repository holding hihlib when it runs from a checkout (the folder with pyproject.toml
    beside the hihlib package), else the current folder."""
    here = Path(__file__).resolve().parents[2]   # hihlib/viz/__init__.py -> the checkout
    return here if (here / "pyproject.toml").is_file() else Path.cwd()


def figure_dir(sub: str | None = None) -> Path:
    """The folder notebooks and tools write their figures to, created if needed.

    Default ``runs/figures/`` of the repository (git ignores ``runs/``), so running a notebook never
    changes a tracked file. The environment variable ``HIH_FIGURES`` chooses another folder; a
    relative one is taken from the repository root (notebooks run in ``notebooks/``), so that
    ``HIH_FIGURES=figures`` is the explicit command that regenerates the committed figures. ``sub``:
    a sub-folder (e.g. "widgets").
    """
    return _env_folder("HIH_FIGURES", "runs/figures", sub)


def runs_dir(sub: str | None = None) -> Path:
    """The folder notebooks keep their scratch data in (exports, CPU training runs), created if needed.

    Default ``runs/`` of the repository (untracked); the environment variable ``HIH_RUNS`` chooses
    another folder (relative: from the repository root). The test suite points it, and ``HIH_FIGURES``,
    at a temporary folder, so that running the suite never touches a user's ``runs/``.
    """
    return _env_folder("HIH_RUNS", "runs", sub)


def _env_folder(variable: str, default: str, sub: str | None) -> Path:
    """The folder the environment variable names (else ``default``; relative: from the repository root),
    with its sub-folder ``sub``, created if needed."""
    folder = Path(os.environ.get(variable) or default).expanduser()
    if not folder.is_absolute():
        folder = project_root() / folder
    if sub:
        folder = folder / sub
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def shown_path(path: str | os.PathLike) -> str:
    """``path`` relative to the repository when it lies inside it (what notebooks print, so that their
    committed outputs hold no machine's absolute paths), else as given."""
    p = Path(path).resolve()
    try:
        return str(p.relative_to(project_root().resolve()))
    except ValueError:
        return str(path)


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Write the figure as a PNG, atomically (a reader never sees half a file)."""
    return write_bytes(path, figure_png(fig, dpi))


def show(fig: Figure, dpi: int = DPI, *, save_to: str | os.PathLike | None = None) -> bytes:
    """Display the figure as a PNG in IPython/Jupyter (nothing is displayed outside IPython).

    save_to: also write the same PNG there, atomically (the figure is rendered once).
    Returns the PNG bytes.
    """
    png = figure_png(fig, dpi)
    if save_to is not None:
        write_bytes(save_to, png)
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover - IPython is a dependency of jupyterlab
        return png
    if get_ipython() is not None:
        display(Image(data=png, format="png"))
    return png


# -- quantization error --------------------------------------------------------------------------
def plot_error_histogram(errors, ax: Axes | None = None, *, expected: float | None = None,
                         bins: int = 50, label: str | None = None, unit: str = "cells") -> Axes:
    """Histogram (as a density) of error magnitudes.

    errors: (N,) magnitudes, or (N, 2) error vectors whose Euclidean norm is taken, in ``unit``.
    expected: a closed-form mean to draw as a dashed line beside the measured mean (solid).
    """
    if ax is None:
        _, ax = new_figure()
    e = _np(errors).astype(np.float64)
    if e.ndim == 2:
        e = np.linalg.norm(e, axis=-1)
    e = e.reshape(-1)
    i = len(ax.patches)
    color = _color(label or "", i)
    ax.hist(e, bins=bins, density=True, alpha=0.55, color=color, label=label)
    ax.axvline(e.mean(), color=color, lw=1.5, label=f"measured mean {e.mean():.4f}")
    if expected is not None:
        ax.axvline(expected, color="k", ls="--", lw=1.2, label=f"closed form {expected:.4f}")
    ax.set_xlabel(f"error magnitude ({unit})")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return ax


def plot_error_vs_resolution(resolutions: Sequence[int], errors: Mapping[str, Sequence[float]],
                             ax: Axes | None = None, *, unit: str = "px of a 256 input",
                             reference: Mapping[str, float] | None = None, logy: bool = True) -> Axes:
    """Mean error of each decoder against the heatmap resolution (log-log).

    resolutions: heatmap sizes (cells per side). errors: label -> mean error per resolution, in
    ``unit``. reference: label -> a constant to draw as a horizontal dotted line (e.g. a published
    figure). Zero errors (exact decoders) are clipped to 1e-4 so that the log axis can show them.
    """
    if ax is None:
        _, ax = new_figure()
    res = np.asarray(resolutions)
    clipped = False
    markers = "osD^vPX*"  # exact decoders overlap at the clip level: markers tell them apart
    for i, (label, values) in enumerate(errors.items()):
        raw = np.asarray(values, dtype=np.float64)
        v = np.maximum(raw, 1e-4) if logy else raw
        clipped |= bool(logy and np.any(raw < 1e-4))
        ax.plot(res, v, "-", marker=markers[i % len(markers)], ms=4, lw=1.5, color=_color(label, i), label=label,
                mfc="none" if i % 2 else None)
    if clipped:
        ax.text(0.01, 0.01, "errors below 1e-4 (exact decoders) drawn at 1e-4", transform=ax.transAxes,
                fontsize=7, color="0.35", va="bottom")
    for label, value in (reference or {}).items():
        ax.axhline(value, color="0.4", ls=":", lw=1)
        ax.text(res[0], value, f" {label}", va="bottom", fontsize=7, color="0.3")
    ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.set_xticks(res)
    ax.set_xticklabels([str(int(r)) for r in res])
    ax.set_xlabel("heatmap resolution (cells per side)")
    ax.set_ylabel(f"mean error ({unit})")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    return ax


# -- heatmaps ------------------------------------------------------------------------------------
def plot_heatmap(heatmap, ax: Axes | None = None, *, points: Mapping[str, Sequence[float]] | None = None,
                 title: str | None = None, cmap: str = "viridis", grid: bool = False,
                 colorbar: bool = False, **imshow_kw) -> Axes:
    """One heatmap (H, W) in cell coordinates, cell (i, j) centred on (u=j, v=i).

    points: label -> (u, v) in cells of this map, drawn as markers on top (e.g. the true position
    and a decoded one). grid: draw the cell borders (useful for small maps).
    """
    if ax is None:
        _, ax = new_figure()
    h = _np(heatmap).astype(np.float64)
    if h.ndim != 2:
        raise ValueError(f"heatmap must have shape (H, W), got {h.shape}")
    H, W = h.shape
    im = ax.imshow(h, cmap=cmap, origin="upper", extent=(-0.5, W - 0.5, H - 0.5, -0.5),
                   interpolation="nearest", **imshow_kw)
    if grid:
        ax.set_xticks(np.arange(-0.5, W, 1.0), minor=True)
        ax.set_yticks(np.arange(-0.5, H, 1.0), minor=True)
        ax.grid(True, which="minor", color="w", lw=0.4, alpha=0.5)
        ax.tick_params(which="minor", length=0)
    for i, (label, (u, v)) in enumerate((points or {}).items()):
        color = "c" if label == "true" else _color(label, i + 1)
        ax.plot([u], [v], _marker(label, i), ms=9, mew=2, color=color, mfc="none", label=label)
    if points:
        ax.legend(fontsize=7, loc="lower right", framealpha=0.7)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, shrink=0.8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def outline_cell(ax: Axes, i: int, j: int, *, color: str = "r", lw: float = 1.5) -> Rectangle:
    """Draw the border of cell (row i, column j) on a heatmap drawn by :func:`plot_heatmap`."""
    rect = Rectangle((j - 0.5, i - 0.5), 1.0, 1.0, fill=False, ec=color, lw=lw)
    ax.add_patch(rect)
    return rect


def outline_box(ax: Axes, x0: float, y0: float, x1: float, y1: float, *, color: str = "r", lw: float = 1.5,
                ls: str = "-") -> Rectangle:
    """Draw the rectangle [x0, x1] x [y0, y1] (in the axes' data coordinates, e.g. heatmap cells)."""
    rect = Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec=color, lw=lw, ls=ls)
    ax.add_patch(rect)
    return rect


def plot_decimal_map(decimal, ax: Axes | None = None, *, true: Sequence[float] | None = None,
                     decoded: Mapping[str, Sequence[float]] | None = None, title: str | None = None,
                     cmap: str = "magma") -> Axes:
    """The decimal heatmap (d, d) of HIH: the inside of one integer cell, split into d x d interval classes.

    Positions are in decimal-index units (1/d of a heatmap cell): decimal cell (a, b) is centred on
    (b, a), like any heatmap in hihlib (see ``hihlib.codecs.hih``). true: the exact (x, y) position;
    decoded: label -> (x, y) positions from decoders, drawn over the map.
    """
    if ax is None:
        _, ax = new_figure()
    m = _np(decimal).astype(np.float64)
    d = m.shape[-1]
    plot_heatmap(m, ax, cmap=cmap, grid=True)
    if true is not None:
        ax.plot([true[0]], [true[1]], _marker("true", 0), ms=11, mew=2.2, color="c", label="true")
    for i, (label, (x, y)) in enumerate((decoded or {}).items()):
        ax.plot([x], [y], _marker(label, i + 1), ms=9, mew=1.8, mfc="none", color=_color(label, i + 2), label=label)
    if true is not None or decoded:
        ax.legend(fontsize=7, loc="lower right", framealpha=0.7)
    ax.set_xlim(-0.5, d - 0.5)
    ax.set_ylim(d - 0.5, -0.5)
    ax.set_xlabel(f"decimal x (1/{d} cell)")
    ax.set_ylabel(f"decimal y (1/{d} cell)")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


# -- faces and curves ----------------------------------------------------------------------------
def plot_face(image, ax: Axes | None = None, *, pred=None, gt=None, title: str | None = None,
              groups: Mapping[str, tuple[Sequence[int], bool]] | None = None, ms: float = 6.0) -> Axes:
    """An image (H, W, 3) uint8 RGB or (3, H, W) float with predicted and true landmarks (K, 2).

    Landmarks are (x, y) pixels of this image (pixel centres at integer coordinates, so they are
    drawn on an extent of [-0.5, W - 0.5]). groups: name -> (indices, closed) from a
    ``LandmarkScheme``, drawn as polylines through the predictions (or the truth).
    """
    if ax is None:
        _, ax = new_figure()
    img = _np(image)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[-1] != 3:
        img = img.transpose(1, 2, 0)
    if img.dtype != np.uint8:
        lo, hi = float(img.min()), float(img.max())
        img = (img - lo) / max(hi - lo, 1e-12)
    H, W = img.shape[:2]
    ax.imshow(img, extent=(-0.5, W - 0.5, H - 0.5, -0.5), cmap="gray" if img.ndim == 2 else None)
    line_pts = pred if pred is not None else gt
    if groups and line_pts is not None:
        p = _np(line_pts)
        for idx, closed in groups.values():
            idx = list(idx) + ([idx[0]] if closed else [])
            ax.plot(p[idx, 0], p[idx, 1], "-", lw=0.7, color="y", alpha=0.7)
    if gt is not None:
        g = _np(gt)
        ax.plot(g[:, 0], g[:, 1], "o", ms=ms * 0.5, color="lime", label="true")
    if pred is not None:
        p = _np(pred)
        ax.plot(p[:, 0], p[:, 1], "x", ms=ms * 0.7, mew=1.2, color="r", label="predicted")
    if gt is not None or pred is not None:
        ax.legend(fontsize=7, loc="lower right", framealpha=0.7)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def distinct_colors(labels: Sequence[str]) -> list[str]:
    """One colour per label, no two alike: a label ending with a decoder name gets the decoder's colour
    (:data:`METHOD_COLORS`) unless an earlier label took it; every other label gets the first colour
    of matplotlib's tab10, then tab20, palette that no label uses."""
    import matplotlib

    palette = list(matplotlib.colormaps["tab10"].colors) + list(matplotlib.colormaps["tab20"].colors)
    palette = [matplotlib.colors.to_hex(c) for c in palette]
    wanted = [METHOD_COLORS.get(label.replace("/", " ").split()[-1] if label.strip() else "") for label in labels]
    colors: list[str | None] = []
    for w in wanted:
        colors.append(w if w is not None and w not in colors else None)
    taken = set(c for c in colors if c) | set(w for w in wanted if w)
    free = iter([c for c in palette if c not in taken] + [c for c in palette if c in taken])
    return [c if c is not None else next(free) for c in colors]


def plot_ced(curves: Mapping[str, Sequence[float]], ax: Axes | None = None, *, max_nme: float = 0.10,
             x_max: float | None = None, title: str | None = None, bins: int = 1000) -> Axes:
    """Cumulative error distribution: label -> per-face NMEs (fractions, e.g. 0.04 for 4 %).

    max_nme: the failure threshold, marked by a dotted line; the legend gives each curve's mean NME (in %)
    and its failure rate there (FR = fraction of faces above it). x_max: right end of the NME axis
    (default: ``max_nme``, extended to where the curves reach 90 % when they rise later, up to 100 % NME,
    so that a curve is never drawn flat at zero). Curves get distinct colours (:func:`distinct_colors`);
    a long title is wrapped to the panel's width when the figure is rendered (:func:`figure_png`).
    """
    if ax is None:
        _, ax = new_figure()
    data = {label: np.sort(_np(nmes).astype(np.float64).reshape(-1)) for label, nmes in curves.items()}
    if x_max is None:
        q90 = max((float(np.quantile(e, 0.9)) for e in data.values() if len(e)), default=0.0)
        x_max = max_nme if q90 <= max_nme else min(1.0, float(np.ceil(q90 / 0.05) * 0.05))
    t = np.linspace(0.0, x_max, bins + 1)
    for (label, e), color in zip(data.items(), distinct_colors(list(data))):
        frac = np.searchsorted(e, t, side="right") / max(len(e), 1)
        fr = 1.0 - np.searchsorted(e, max_nme, side="right") / max(len(e), 1)
        ax.plot(t * 100, frac, lw=1.6, color=color,
                label=f"{label}: NME {100 * e.mean():.2f}%, FR@{100 * max_nme:g}% {100 * fr:.1f}%")
    if x_max > max_nme:
        ax.axvline(max_nme * 100, color="0.4", ls=":", lw=1)
    ax.set_xlim(0, x_max * 100)
    ax.set_ylim(0, 1)
    ax.set_xlabel("NME (%)")
    ax.set_ylabel("fraction of faces")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    if title is not None:
        ax.set_title(title, fontsize=9)
    return ax


def plot_curves(curves: Mapping[str, Sequence[float]], ax: Axes | None = None, *, xlabel: str = "step",
                ylabel: str = "loss", logy: bool = True, x: Sequence[float] | None = None) -> Axes:
    """Learning curves: label -> values per step (or at the steps ``x``)."""
    if ax is None:
        _, ax = new_figure()
    for i, (label, values) in enumerate(curves.items()):
        v = _np(values).astype(np.float64)
        xs = np.arange(len(v)) if x is None else np.asarray(x)
        ax.plot(xs, v, lw=1.4, color=_color(label, i), label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_comparison(rows: Sequence, ax=None, *, title: str = "", synthetic: bool = False):
    """Horizontal bars of NME % for ``hihlib.studies.reproduce.comparison_rows`` (rows with ``label``, ``nme``,
    ``measured``); measured bars hatched and coloured.

    A synthetic measurement puts "synthetic data, not comparable" into the title. Returns the Axes.
    """
    if ax is None:
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


__all__ = [
    "DPI", "METHOD_COLORS", "new_figure", "figure_png", "project_root", "figure_dir", "save_figure", "show",
    "plot_error_histogram", "plot_error_vs_resolution", "plot_heatmap", "outline_cell", "outline_box",
    "plot_decimal_map", "plot_face", "distinct_colors", "plot_ced", "plot_curves", "wrap_titles",
    "plot_comparison",
]

