"""HIH: Heatmap In Heatmap with coordinate soft-classification (Lan et al. 2021).

Representation of a landmark at heatmap position u (cells; see ``hihlib.codecs.base``), per axis:

* the position is first written on the fine grid of 1/d cell: n = round(u * d);
* the **integer cell** is i = floor(n / d) and the **decimal index** is j = n - i * d, in 0..d-1.
  Decimal cell j is the interval class of fractions [(j - 1/2)/d, (j + 1/2)/d) measured from the centre
  of integer cell i, so u = i + j/d up to 1/(2d).

Targets:
* ``heatmap`` (B, K, H, W): a Gaussian (``sigma`` cells, peak 1) centred on the integer cell i.
* ``decimal`` (B, K, d, d): the CSC soft label, a Gaussian of ``decimal_sigma`` decimal cells centred at
  the exact fractional position (u - i) * d in decimal-index units, normalised to sum to 1 over the
  d x d cells (a probability distribution over the d^2 interval classes).

Decoding (``outputs["heatmap"]`` holds values, ``outputs["decimal"]`` holds *logits*):
* ``expectation`` (default): integer cell = argmax of the heatmap; the decimal position is the mean of
  the Gaussian that the decimal distribution follows around its peak, read from the log-probabilities
  of the peak and its two neighbours on each axis (a parabola in log space; the stencil is moved inside
  the d cells at the border). For a CSC soft label this is exactly the label's centre, so exact targets
  decode with no loss.
* ``official``: argmax of the heatmap + argmax of the decimal map / d, as published. Exact maps still
  leave |error| <= 1/(2d) cells per axis: 0.3826 / d cells on average (0.048 cells, 0.19 px at d = 8,
  stride 4).
* ``local_mean``: softmax-weighted mean of the decimal positions in the 3x3 window around the peak.
* ``softmax_mean``: softmax-weighted mean over all d^2 decimal cells (biased toward the middle of the
  cell wherever the label is cut by the cell's edges; shown for comparison).
* ``argmax``: the integer map alone, what a HIH model gives without its decimal head: the argmax cell
  moved to the middle of the fractions it stands for, i + (d - 1) / (2d). Its error is argmax's.

How the published code differs (and why this module does not copy it):
* its decimal target is centred at frac(u) * d on cells 0..d-1, so for fractions >= (d - 1/2)/d
  (15/16 at d = 8) the peak overflows the last decimal cell; here such a position carries into the
  next integer cell (j = 0 of cell i + 1), so every fraction has a valid class;
* for integer cells 0-4 its target peak is shifted by one cell (an index truncation bug); not copied;
* its soft label is the softmax of the Gaussian *values* (a nearly flat distribution) and its KL is
  averaged over every element; ``hihlib.losses`` offers that variant for comparison, while the codec's
  label is the normalised Gaussian.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import register
from .base import Codec, grid_coords
from .gaussian import argmax_2d, gaussian_1d, gaussian_maps


def _parabola_peak(left: Tensor, mid: Tensor, right: Tensor) -> Tensor:
    """Vertex offset (from the middle sample) of the parabola through three equally spaced samples.
    Zero where the samples are not concave."""
    curv = left - 2 * mid + right
    ok = curv < 0
    off = 0.5 * (left - right) / torch.where(ok, curv, -torch.ones_like(curv))
    return torch.where(ok, off, torch.zeros_like(off))


def decimal_expectation(logits: Tensor) -> Tensor:
    """Gaussian-mean decoding of decimal maps. logits (B, K, d, d) -> (B, K, 2) decimal-index units."""
    d = logits.shape[-1]
    lg = logits.float().flatten(-2).log_softmax(-1).view(logits.shape)
    jx, jy = argmax_2d(lg)
    if d < 3:
        return torch.stack([jx, jy], -1).to(lg.dtype)
    cx = jx.clamp(1, d - 2)  # stencil centre kept inside the grid
    cy = jy.clamp(1, d - 2)
    row = lg.gather(-2, jy[..., None, None].expand(*jy.shape, 1, d)).squeeze(-2)  # (B, K, d) along x
    col = lg.gather(-1, jx[..., None, None].expand(*jx.shape, d, 1)).squeeze(-1)  # (B, K, d) along y

    def vertex(line: Tensor, c: Tensor) -> Tensor:
        pick = lambda o: line.gather(-1, (c + o)[..., None]).squeeze(-1)  # noqa: E731
        return c + _parabola_peak(pick(-1), pick(0), pick(1))

    pos = torch.stack([vertex(row, cx), vertex(col, cy)], -1)
    return pos.clamp(-0.5, d - 0.5)


def decimal_window_mean(logits: Tensor, radius: int | None = 1) -> Tensor:
    """Softmax-weighted mean decimal position, over the (2r+1)^2 window at the peak or (radius=None)
    over all cells. logits (B, K, d, d) -> (B, K, 2) decimal-index units."""
    d = logits.shape[-1]
    p = logits.float().flatten(-2).softmax(-1).view(logits.shape)
    g = grid_coords(d, device=p.device)
    if radius is not None:
        jx, jy = argmax_2d(p)
        wx = ((g - jx[..., None]).abs() <= radius).to(p.dtype)  # (B, K, d)
        wy = ((g - jy[..., None]).abs() <= radius).to(p.dtype)
        p = p * wy[..., :, None] * wx[..., None, :]
    total = p.sum((-2, -1)).clamp_min(1e-12)
    return torch.stack([(p.sum(-2) * g).sum(-1) / total, (p.sum(-1) * g).sum(-1) / total], -1)


@register
class HIHCodec(Codec):
    """Integer heatmap + decimal heatmap (interval classification of the fraction).

    Args: input_size, heatmap_size; sigma: integer-map Gaussian (cells); decimal_size: d;
    decimal_sigma: soft-label Gaussian (decimal cells).
    Targets: {"heatmap": (B, K, H, W), "decimal": (B, K, d, d) probabilities}.
    """

    name = "hih"
    methods = ("expectation", "official", "local_mean", "softmax_mean", "argmax")
    target_keys = ("heatmap", "decimal")

    def __init__(self, *, input_size: int = 256, heatmap_size: int = 64, sigma: float = 1.5,
                 decimal_size: int = 8, decimal_sigma: float = 1.0):
        super().__init__(input_size=input_size, heatmap_size=heatmap_size)
        self.sigma = float(sigma)
        self.decimal_size = int(decimal_size)
        self.decimal_sigma = float(decimal_sigma)

    def split(self, coords: Tensor) -> tuple[Tensor, Tensor]:
        """coords (B, K, 2) input pixels -> (integer cells i, decimal position (u - i) * d), both (B, K, 2).
        The decimal position lies in [-1/2, d - 1/2)."""
        u = self.to_cells(self._check_coords(coords))
        d = self.decimal_size
        n = torch.floor(u * d + 0.5)
        i = torch.div(n, d, rounding_mode="floor")
        return i, (u - i) * d

    def encode(self, coords: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """coords (B, K, 2) input pixels -> {"heatmap": (B, K, H, W), "decimal": (B, K, d, d)}."""
        i, f = self.split(coords)
        d = self.decimal_size
        ex = gaussian_1d(f[..., 0], d, self.decimal_sigma)
        ey = gaussian_1d(f[..., 1], d, self.decimal_sigma)
        ex = ex / ex.sum(-1, keepdim=True)
        ey = ey / ey.sum(-1, keepdim=True)
        return {
            "heatmap": gaussian_maps(i, self.heatmap_size, self.sigma),
            "decimal": ey[..., :, None] * ex[..., None, :],
        }

    def perfect_outputs(self, targets: dict[str, Tensor]) -> dict[str, Tensor]:
        return {"heatmap": targets["heatmap"], "decimal": targets["decimal"].log()}

    def decode_cells(self, outputs: dict[str, Tensor], method: str | None = None) -> Tensor:
        """-> (B, K, 2) heatmap cells."""
        method = self._check_method(method)
        ix, iy = argmax_2d(outputs["heatmap"])
        integer = torch.stack([ix, iy], -1).float()
        if method == "argmax":
            return integer + (self.decimal_size - 1) / (2 * self.decimal_size)
        dec = outputs["decimal"]
        if method == "official":
            jx, jy = argmax_2d(dec)
            pos = torch.stack([jx, jy], -1).float()
        elif method == "expectation":
            pos = decimal_expectation(dec)
        elif method == "local_mean":
            pos = decimal_window_mean(dec, 1)
        else:
            pos = decimal_window_mean(dec, None)
        return integer + pos / self.decimal_size

    def decode(self, outputs: dict[str, Tensor], method: str | None = None) -> Tensor:
        """{"heatmap": (B, K, H, W), "decimal": (B, K, d, d) logits} -> (B, K, 2) input pixels."""
        return self.to_pixels(self.decode_cells(outputs, method))

    def __repr__(self) -> str:
        return (f"HIHCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, sigma={self.sigma}, "
                f"decimal_size={self.decimal_size}, decimal_sigma={self.decimal_sigma})")
