"""ipywidgets explorers for the notebooks, with a static fallback when no frontend is present.

An :class:`Explorer` is a set of controls (sliders, dropdowns) and a ``draw(**values) -> Figure``
function. In JupyterLab it shows the controls above a PNG of the figure and redraws on every change.
Without a frontend (nbval, ``nbconvert --execute``, a plain Python script) it degrades to the figure
for the default values and one line listing them, so the notebook still shows a real result.

The mode comes from :func:`widget_mode`: the environment variable ``HIH_WIDGETS`` (``interactive`` |
``static``) wins; otherwise smoke mode (``HIH_SMOKE=1``, set by the test suite) is static, and
anything else is interactive inside a Jupyter kernel and static outside one.

The explorers themselves (``quantization_explorer``, ``hih_explorer``, ``rounding_explorer``)
keep their numerical work in plain functions (``error_vs_resolution``, ...) so that the numbers a
slider shows are tested without a browser.
"""

from __future__ import annotations

import os
from typing import Callable, Mapping

from matplotlib.figure import Figure

from . import viz

DrawResult = "Figure | tuple[Figure, str]"


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
    return f"{v:.3g}" if isinstance(v, float) else str(v)


def _caption_html(caption: str) -> str:
    return f"<pre style='margin:0;font-size:12px'>{caption}</pre>" if caption else ""
