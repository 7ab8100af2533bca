"""The codec interface and hihlib's one coordinate convention.

Coordinate convention
---------------------
* **Input pixels.** Landmarks are (x, y) in pixels of the network input (e.g. a 256x256 crop),
  0-based, with the *centre* of pixel (row i, column j) at (x=j, y=i). An image of width W spans
  x in [-0.5, W - 0.5]. This is OpenCV's convention for ``warpAffine``/``remap``, so landmarks and
  images follow the same affine matrix with no half-pixel correction.
* **Heatmap cells.** The same convention on the heatmap grid: cell (i, j) has its centre at heatmap
  coordinates (u=j, v=i).
* **Pixels to cells.** With stride ``s = input_size / heatmap_size`` the image extent maps onto the
  heatmap extent exactly:

      u = (x + 0.5) / s - 0.5          x = s * (u + 0.5) - 0.5

  So with s = 4, cell 0 covers input pixels 0..3 and its centre is at x = 1.5.

Other frames (the peers' readings of a heatmap coordinate)
----------------------------------------------------------
Published decoders read the same heatmap coordinate differently. ``heatmap_to_pixels`` /
``pixels_to_heatmap`` / ``convert_frame`` convert between them; pixels are always hihlib's input pixels
(centres at integers). With stride ``s``:

=================  ==========================  ==============================================================
frame              heatmap u -> input pixel x  who
=================  ==========================  ==============================================================
``"hihlib"``       x = s (u + 0.5) - 0.5       every hihlib codec (cell i centred on u = i)
``"mmpose"``       x = s u                     mmpose's codecs and the released H3R code (cell i read at s i)
``"released_h3r"`` x = s u                     the released H3R decoder (the same reading as mmpose's)
``"released_hih"`` x = s u - 0.5               released HIH code: u = 64 x_norm, integer cell floor(u),
                                               decimal offset measured from the cell's *corner*
=================  ==========================  ==============================================================

So the same cell coordinate reads (s - 1)/2 = 1.5 px further right/down in hihlib's frame than in
mmpose's, and s/2 = 2.0 px further than in the released HIH frame (at s = 4). The HIH codec decodes in
either ``"hihlib"`` or ``"released_hih"`` (its ``frame`` option), the H3R codec in ``"hihlib"`` or
``"released_h3r"`` (its ``frame`` option); the Gaussian codec decodes in ``"hihlib"``.

A codec turns coordinates into training targets (``encode``) and network outputs back into
coordinates (``decode``). Both work on batches of faces and landmarks at once, on any device.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor


def pixels_to_cells(xy: Tensor, stride: float) -> Tensor:
    """Input pixels -> heatmap cell coordinates (any shape, last dim may be (x, y))."""
    return (xy + 0.5) / stride - 0.5


def cells_to_pixels(uv: Tensor, stride: float) -> Tensor:
    """Heatmap cell coordinates -> input pixels (inverse of ``pixels_to_cells``)."""
    return (uv + 0.5) * stride - 0.5


#: Heatmap-coordinate frames: u -> x = scale * u + offset(s), with s the stride (see the module docstring).
FRAMES: dict[str, tuple[float, float]] = {
    # name: (a, b) with x = s * (u + a) + b
    "hihlib": (0.5, -0.5),
    "mmpose": (0.0, 0.0),
    "released_hih": (0.0, -0.5),
    "released_h3r": (0.0, 0.0),
}


def _frame(name: str) -> tuple[float, float]:
    if name not in FRAMES:
        raise ValueError(f"unknown coordinate frame {name!r}; choose one of {sorted(FRAMES)}")
    return FRAMES[name]


def heatmap_to_pixels(uv: Tensor, stride: float, frame: str = "hihlib") -> Tensor:
    """Heatmap coordinates read in ``frame`` -> hihlib input pixels (any shape; same unit on both axes)."""
    a, b = _frame(frame)
    return (uv + a) * stride + b


def pixels_to_heatmap(xy: Tensor, stride: float, frame: str = "hihlib") -> Tensor:
    """hihlib input pixels -> heatmap coordinates in ``frame`` (inverse of ``heatmap_to_pixels``)."""
    a, b = _frame(frame)
    return (xy - b) / stride - a


def convert_frame(uv: Tensor, stride: float, src: str, dst: str) -> Tensor:
    """Heatmap coordinates in frame ``src`` -> the coordinates that denote the same pixel in frame ``dst``.

    E.g. ``convert_frame(u, 4, "released_hih", "hihlib") == u - 0.5``; ``("mmpose", "hihlib")`` gives
    ``u - 0.5 + 0.5 / stride``."""
    return pixels_to_heatmap(heatmap_to_pixels(uv, stride, src), stride, dst)


def grid_coords(size: int, *, device=None, dtype=torch.float32) -> Tensor:
    """Cell-centre coordinates 0..size-1 of one heatmap axis, shape (size,)."""
    return torch.arange(size, device=device, dtype=dtype)


class Codec:
    """Base class. Subclasses set ``name``, ``methods`` (decode methods, first is the default),
    ``target_keys`` and implement ``encode``/``decode``.

    Shapes: ``B`` faces, ``K`` landmarks, ``H = W = heatmap_size``.

    * ``encode(coords, *, generator=None)``: coords (B, K, 2) float, (x, y) in input pixels -> dict
      of targets (``generator``: the source of a random codec's draws; ignored by the others).
    * ``decode(outputs, method=None)``: dict with the same keys, holding network outputs
      (see each codec for whether a map holds values or logits) -> (B, K, 2) input pixels.
    * ``perfect_outputs(targets)``: the outputs of a network that predicts the targets exactly
      (the identity for regressed maps, ``log`` for maps decoded as logits). ``roundtrip`` uses it
      to measure the error that the representation alone causes.
    """

    name: ClassVar[str] = "base"
    methods: ClassVar[tuple[str, ...]] = ()
    target_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, input_size: int = 256, heatmap_size: int = 64):
        if input_size <= 0 or heatmap_size <= 0:
            raise ValueError(f"input_size and heatmap_size must be positive, got {input_size}, {heatmap_size}")
        self.input_size = int(input_size)
        self.heatmap_size = int(heatmap_size)
        self.stride = self.input_size / self.heatmap_size

    # -- conversions ---------------------------------------------------------------------------
    def to_cells(self, xy: Tensor) -> Tensor:
        return pixels_to_cells(xy, self.stride)

    def to_pixels(self, uv: Tensor) -> Tensor:
        return cells_to_pixels(uv, self.stride)

    # -- interface -----------------------------------------------------------------------------
    @property
    def default_method(self) -> str:
        return self.methods[0]

    def encode(self, coords: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """coords (B, K, 2) input pixels -> targets. ``generator`` feeds the random draws of a codec
        whose targets are random (H3R); deterministic codecs ignore it."""
        raise NotImplementedError

    def decode(self, outputs: dict[str, Tensor], method: str | None = None) -> Tensor:
        raise NotImplementedError

    def perfect_outputs(self, targets: dict[str, Tensor]) -> dict[str, Tensor]:
        return dict(targets)

    def roundtrip(self, coords: Tensor, method: str | None = None) -> Tensor:
        """decode(perfect_outputs(encode(coords))): what the representation alone gives back."""
        return self.decode(self.perfect_outputs(self.encode(coords)), method)

    def _check_method(self, method: str | None) -> str:
        method = method or self.default_method
        if method not in self.methods:
            raise ValueError(f"codec {self.name!r} has no decode method {method!r}; choose one of {self.methods}")
        return method

    @staticmethod
    def _check_coords(coords: Tensor) -> Tensor:
        if coords.ndim != 3 or coords.shape[-1] != 2:
            raise ValueError(f"coords must have shape (B, K, 2), got {tuple(coords.shape)}")
        if not coords.is_floating_point():
            coords = coords.float()
        return coords

    def __repr__(self) -> str:
        return f"{type(self).__name__}(input_size={self.input_size}, heatmap_size={self.heatmap_size})"


#: Codec classes by name; each codec module registers its class with ``@register``.
CODECS: dict[str, type[Codec]] = {}


def register(cls: type[Codec]) -> type[Codec]:
    CODECS[cls.name] = cls
    return cls
