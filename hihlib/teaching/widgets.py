"""ipywidgets explorers for the notebooks, with a static fallback when no frontend is present.

An :class:`Explorer` is a set of controls (sliders, dropdowns) and a ``draw(**values) -> Figure``
function. In JupyterLab it shows the controls above a PNG of the figure and redraws on every change.
Without a frontend (nbval, ``nbconvert --execute``, a plain Python script) it degrades to the figure
for the default values and one line listing them, so the notebook still shows a real result.

The mode comes from :func:`widget_mode`: the environment variable ``HIH_WIDGETS`` (``interactive`` |
``static``) wins; otherwise smoke mode (``HIH_SMOKE=1``, set by the test suite) is static, and
anything else is interactive inside a Jupyter kernel and static outside one.

The explorers themselves (``quantization_explorer``, ``hih_explorer``, ``rounding_explorer``)
draw numbers computed by ``hihlib.teaching.analysis`` (``decoder_errors``, ``published_soft_label``,
``h3r_model_logits``, ``topk_errors``), where they are tested without a browser; figures are drawn
with ``hihlib.viz``.
``tools/check_widgets.py`` checks the live widgets in JupyterLab with headless Chromium.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from .. import viz
from .analysis import decoder_errors, h3r_model_logits, published_soft_label, topk_errors
from ..codecs import get_codec


def widget_mode() -> str:
    """``"interactive"`` or ``"static"`` (see the module docstring for the rule)."""
    forced = os.environ.get("HIH_WIDGETS", "").strip().lower()
    if forced in ("interactive", "static"):
        return forced
    if os.environ.get("HIH_SMOKE", "0") == "1":
        return "static"
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return "static"
    shell = get_ipython()
    # A kernel (ZMQInteractiveShell) may have a frontend; a terminal IPython never does.
    return "interactive" if shell is not None and type(shell).__name__ == "ZMQInteractiveShell" else "static"


class Explorer:
    """Controls plus one figure, redrawn whenever a control changes.

    draw: ``draw(**values)`` returning a ``Figure`` or ``(Figure, caption)``; ``values`` maps each
    control's name to its current value. controls: name -> ipywidgets ``ValueWidget``.
    """

    def __init__(self, draw: Callable[..., object], controls: Mapping[str, object], *, title: str | None = None,
                 dpi: int = viz.DPI):
        self.draw = draw
        self.controls = dict(controls)
        self.title = title
        self.dpi = dpi
        self._image = None
        self._caption = None
        self.redraws = 0

    @property
    def values(self) -> dict:
        """The controls' current values, name -> value."""
        return {name: w.value for name, w in self.controls.items()}

    def render(self, **overrides) -> tuple[Figure, str]:
        """Draw with the current values, some of them overridden; returns (figure, caption)."""
        unknown = set(overrides) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown control(s) {sorted(unknown)}; this explorer has {sorted(self.controls)}")
        out = self.draw(**{**self.values, **overrides})
        fig, caption = out if isinstance(out, tuple) else (out, "")
        return fig, caption

    def describe(self) -> str:
        """One line naming every control and its value."""
        return ", ".join(f"{name} = {_fmt(v)}" for name, v in self.values.items())

    # -- display -------------------------------------------------------------------------------
    def widget(self):
        """The interactive view: controls, the figure as an image widget and a caption."""
        import ipywidgets as w

        fig, caption = self.render()
        # The image keeps the figure's own pixel size (the frontend would otherwise stretch it).
        width = int(round(fig.get_figwidth() * self.dpi))
        self._image = w.Image(value=viz.figure_png(fig, self.dpi), format="png", width=width)
        self._caption = w.HTML(value=_caption_html(caption))
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
            if hasattr(control, "style") and hasattr(control.style, "description_width"):
                control.style.description_width = "initial"  # never truncate a control's name
        header = [w.HTML(f"<b>{self.title}</b>")] if self.title else []
        box = w.GridBox(list(self.controls.values()),
                        layout=w.Layout(grid_template_columns="repeat(2, minmax(260px, 1fr))"))
        return w.VBox(header + [box, self._image, self._caption])

    def _on_change(self, _change=None) -> None:
        fig, caption = self.render()
        self.redraws += 1
        self._image.value = viz.figure_png(fig, self.dpi)
        self._caption.value = _caption_html(caption)

    def show(self, mode: str | None = None) -> None:
        """Display the explorer: live widgets in ``interactive`` mode, the default figure in ``static``."""
        from IPython.display import Markdown, display

        mode = mode or widget_mode()
        if mode == "interactive":
            display(self.widget())
            return
        fig, caption = self.render()
        viz.show(fig, self.dpi)
        note = f"*Static view ({self.describe()}); run this notebook in JupyterLab to move the controls.*"
        display(Markdown((caption + "\n\n" if caption else "") + note))

    def _ipython_display_(self) -> None:
        self.show()


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _caption_html(caption: str) -> str:
    return f"<pre style='margin:0;font-size:12px'>{caption}</pre>" if caption else ""


# -- the explorers ---------------------------------------------------------------------------------
#: Each codec's decode methods, as the codec lists them (the first is its default).
CODEC_METHODS = {name: get_codec(name).methods for name in ("gaussian", "h3r", "hih")}


def quantization_explorer(coords: Tensor | None = None, *, n_points: int = 400, input_size: int = 256,
                          sizes: Sequence[int] = (8, 16, 32, 64, 128, 256), seed: int = 0) -> Explorer:
    """Notebook 01: error vs heatmap resolution for every decoder of a codec.

    Controls: heatmap resolution (8..256), sigma (cells), codec, decode method. Left panel: mean
    round-trip error (pixels of the input) against the resolution for each decoder of the codec, with
    the closed form of argmax (0.3826 cells). Right panel: the error histogram (cells) of the chosen
    decoder at the chosen resolution. coords: (B, K, 2) input pixels; by default ``n_points`` uniform
    positions at least 16 px from the border (synthetic).
    """
    import ipywidgets as w

    from .analysis import ROUNDING_ERROR, uniform_coords

    if coords is None:
        coords = uniform_coords(1, n_points, input_size, margin=16, generator=torch.Generator().manual_seed(seed))
    cache: dict = {}

    def sweep(codec: str, sigma: float) -> dict[str, np.ndarray]:
        key = (codec, round(sigma, 4) if codec != "h3r" else None)  # h3r has no sigma
        if key not in cache:
            cache[key] = decoder_errors(coords, [(codec, m) for m in CODEC_METHODS[codec]], sizes,
                                        input_size=input_size, sigma=sigma)
        return cache[key]

    def draw(resolution, sigma, codec, method):
        errs = sweep(codec, sigma)
        method = method if method in CODEC_METHODS[codec] else CODEC_METHODS[codec][0]
        fig, (ax1, ax2) = viz.new_figure(1, 2, size=(10, 3.8))
        strides = input_size / np.asarray(sizes, dtype=np.float64)
        means = {label: e.mean(-1) for label, e in errs.items()}
        viz.plot_error_vs_resolution(sizes, means, ax1, unit=f"px of a {input_size} input")
        ax1.plot(sizes, ROUNDING_ERROR * strides, "k--", lw=1, label="closed form, rounding")
        ax1.axvline(resolution, color="0.5", lw=0.8)
        ax1.legend(fontsize=7)
        ax1.set_title(f"{codec}: sigma = {sigma:g} cells", fontsize=10)
        r = list(sizes).index(resolution)
        stride = input_size / resolution
        cells = errs[f"{codec}/{method}"][r] / stride
        viz.plot_error_histogram(cells, ax2, expected=ROUNDING_ERROR if method == "argmax" else None,
                                 label=f"{codec}/{method}")
        ax2.set_title(f"{codec}/{method} at {resolution}x{resolution} (stride {stride:g} px)", fontsize=10)
        caption = "  ".join(f"{label}: {means[label][r]:.3f} px" for label in means)
        return fig, f"mean error at {resolution}x{resolution}: {caption}"

    codec_dd = w.Dropdown(options=list(CODEC_METHODS), value="gaussian", description="codec")
    method_dd = w.Dropdown(options=CODEC_METHODS["gaussian"], value="argmax", description="method")

    def on_codec(change):
        method_dd.options = CODEC_METHODS[change["new"]]

    codec_dd.observe(on_codec, names="value")  # registered first: the method list follows the codec
    controls = {
        "resolution": w.SelectionSlider(options=list(sizes), value=64 if 64 in sizes else sizes[len(sizes) // 2],
                                        description="resolution", continuous_update=False),
        "sigma": w.FloatSlider(value=1.5, min=0.5, max=3.0, step=0.25, description="sigma",
                               continuous_update=False),
        "codec": codec_dd,
        "method": method_dd,
    }
    return Explorer(draw, controls, title="Quantization error explorer")


def hih_explorer(*, input_size: int = 256, heatmap_size: int = 64, x: float = 101.3, y: float = 87.8,
                 window: int = 7) -> Explorer:
    """Notebook 02: the integer heatmap, the decimal heatmap inside the peak cell, and the decoded point.

    Controls: landmark x, y (input pixels), decimal size d (2..16), decimal sigma (decimal cells), and
    the soft label (hihlib's normalised Gaussian or the published softmax of Gaussian values). The
    maps shown are the exact targets, decoded as a perfect network's logits would be.
    """
    import ipywidgets as w


    def draw(x, y, decimal_size, decimal_sigma, label):
        codec = get_codec("hih", input_size=input_size, heatmap_size=heatmap_size,
                          decimal_size=decimal_size, decimal_sigma=decimal_sigma)
        coords = torch.tensor([[[x, y]]], dtype=torch.float64)
        t = codec.encode(coords)
        if label == "published":
            t["decimal"] = published_soft_label(codec, coords)
        logits = codec.perfect_outputs(t)
        true_cells = codec.to_cells(coords)[0, 0]
        i, f = codec.split(coords)
        i, f = i[0, 0], f[0, 0]
        decoded = {m: codec.decode_cells(logits, m)[0, 0] for m in ("official", "expectation")}

        fig, (ax1, ax2) = viz.new_figure(1, 2, size=(10, 4.3))
        ci, cj = int(i[1]), int(i[0])
        viz.plot_heatmap(t["heatmap"][0, 0], ax1, grid=True,
                         points={"true": true_cells.tolist(), **{m: p.tolist() for m, p in decoded.items()}})
        viz.outline_cell(ax1, ci, cj, color="w", lw=1.0)
        h = 0.5 / decimal_size  # the decimal map spans [i - 1/(2d), i + 1 - 1/(2d)) on each axis
        viz.outline_box(ax1, cj - h, ci - h, cj + 1 - h, ci + 1 - h, color="r")
        ax1.set_xlim(cj - window - 0.5, cj + window + 0.5)
        ax1.set_ylim(ci + window + 0.5, ci - window - 0.5)
        ax1.set_title(f"integer heatmap {heatmap_size}x{heatmap_size} (zoom): peak cell ({cj}, {ci}) in white,\n"
                      "span of the decimal map in red", fontsize=9)
        viz.plot_decimal_map(t["decimal"][0, 0], ax2, true=f.tolist(),
                             decoded={m: ((p - i) * decimal_size).tolist() for m, p in decoded.items()})
        peak = float(t["decimal"][0, 0].max())
        ax2.set_title(f"decimal heatmap {decimal_size}x{decimal_size} over the red square\n"
                      f"{label} soft label, peak mass {peak:.3f} (uniform {1 / decimal_size**2:.3f})", fontsize=9)
        errs = {m: float((codec.to_pixels(p) - coords[0, 0]).norm()) for m, p in decoded.items()}
        caption = "  ".join(f"{m}: {e:.4f} px" for m, e in errs.items())
        return fig, f"decoding error of the exact maps: {caption}"

    controls = {
        "x": w.FloatSlider(value=x, min=8.0, max=input_size - 9.0, step=0.05, description="x (px)",
                           continuous_update=False, readout_format=".2f"),
        "y": w.FloatSlider(value=y, min=8.0, max=input_size - 9.0, step=0.05, description="y (px)",
                           continuous_update=False, readout_format=".2f"),
        "decimal_size": w.IntSlider(value=8, min=2, max=16, description="decimal d", continuous_update=False),
        "decimal_sigma": w.FloatSlider(value=1.0, min=0.25, max=3.0, step=0.25, description="decimal σ",
                                       continuous_update=False),
        "label": w.Dropdown(options=["normalised", "published"], value="normalised", description="soft label"),
    }
    return Explorer(draw, controls, title="Heatmap In Heatmap explorer")


def rounding_explorer(coords: Tensor | None = None, *, n_points: int = 300, input_size: int = 256,
                      sizes: Sequence[int] = (16, 32, 64, 128), max_k: int = 25, seed: int = 0) -> Explorer:
    """Notebook 03: top-k decoding of randomized-rounding (H3R) maps.

    Controls: k, heatmap resolution, prediction noise (std of the logits). Left panel: one decoded map
    with its top-k cells; right panel: mean error (pixels) against k for that resolution, with the
    argmax error (k = 1) and the chosen k marked. Maps come from :func:`h3r_model_logits`.
    """
    import ipywidgets as w

    from .analysis import uniform_coords
    from ..codecs.gaussian import topk_cells
    from ..codecs.h3r import topk_decode

    if coords is None:
        coords = uniform_coords(1, n_points, input_size, margin=16, generator=torch.Generator().manual_seed(seed))
    ks = list(range(1, max_k + 1))
    cache: dict = {}

    def draw(k, resolution, noise):
        key = (resolution, round(noise, 4))
        if key not in cache:
            cache[key] = topk_errors(coords, ks, heatmap_size=resolution, input_size=input_size, noise=noise, seed=seed)
        errs = cache[key]
        codec = get_codec("h3r", input_size=input_size, heatmap_size=resolution)
        one = coords[:1, :1].float()
        logits = h3r_model_logits(codec, one, noise=noise, seed=seed)
        _, ix, iy = topk_cells(logits, k)
        dec = topk_decode(logits, k)[0, 0]
        true = codec.to_cells(one)[0, 0]
        fig, (ax1, ax2) = viz.new_figure(1, 2, size=(10, 3.9))
        viz.plot_heatmap(logits[0, 0].flatten().softmax(0).view(resolution, resolution),
                         ax1, grid=True, points={"true": true.tolist(), f"top-{k}": dec.tolist()})
        ax1.plot(ix[0, 0].numpy(), iy[0, 0].numpy(), "s", ms=5, mfc="none", mec="w", mew=0.8)
        cu, cv = int(true[0]), int(true[1])
        ax1.set_xlim(cu - 5.5, cu + 6.5)
        ax1.set_ylim(cv + 6.5, cv - 5.5)
        ax1.set_title(f"softmax of the logits, {resolution}x{resolution}; squares: top-{k}", fontsize=10)
        ax2.plot(ks, errs, "o-", ms=3, color=viz.METHOD_COLORS["topk"], label=f"top-k at {resolution}x{resolution}")
        ax2.plot([k], [errs[k - 1]], "o", ms=9, mfc="none", mec="k", mew=1.5)
        ax2.axhline(errs[0], color=viz.METHOD_COLORS["argmax"], ls="--", lw=1, label="k = 1 (argmax)")
        ax2.set_xlabel("k")
        ax2.set_ylabel("mean error (px)")
        ax2.set_title(f"noise {noise:g}: error against k", fontsize=10)
        ax2.grid(True, alpha=0.3)
        ax2.legend(fontsize=8)
        return fig, f"top-{k}: {errs[k - 1]:.3f} px, argmax: {errs[0]:.3f} px, best k = {ks[int(np.argmin(errs))]}"

    controls = {
        "k": w.IntSlider(value=9, min=1, max=max_k, description="k", continuous_update=False),
        "resolution": w.SelectionSlider(options=list(sizes), value=64 if 64 in sizes else sizes[0],
                                        description="resolution", continuous_update=False),
        "noise": w.FloatSlider(value=0.0, min=0.0, max=2.0, step=0.1, description="logit noise",
                               continuous_update=False),
    }
    return Explorer(draw, controls, title="Randomized rounding: top-k decoding")
