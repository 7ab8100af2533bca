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
  moved to the middle of the fractions it stands for, i + (d - 1) / (2d) (in a border cell, the middle of
  the part of the crop it stands for). Its error is argmax's.

Frames (``frame`` option; see ``hihlib.codecs.base``):
* ``"hihlib"`` (default): the split above, on u in hihlib's frame; the decimal offset is measured from the
  integer cell's centre.
* ``"released_hih"``: the released code's frame. Its coordinate is u' = u + 1/2 = 64 x_norm, the integer
  cell is floor(u') and the decimal offset is measured from the cell's *corner*; encode and every decoder
  apply the same split to u' and return u = u' - 1/2. A checkpoint converted from the released weights
  (``hihlib.inference.released_hih``) uses this frame: on the same maps its ``official`` decoding is the released
  one, 2.0 px (half a cell) up-left of what ``"hihlib"`` would read. In this frame ``official`` also keeps
  the released rule that a map whose maximum is <= 0 reads as cell 0, and it is the default method (first
  in ``methods``), so that ``hih predict`` gives the released coordinates.

At the crop's edge: the integer cell is clamped onto the map (as the released code does), so a border
cell also stands for the part of the crop between it and the edge (in hihlib's frame, u in [-1/2, -1/(2d))
goes to cell 0 with a decimal position below -1/2). ``expectation`` reads that part exactly; ``official``
returns the border cell (at most half a cell off, as argmax); ``argmax`` returns the middle of what the
border cell stands for; no decoder returns a point outside the crop.

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

from .base import Codec, grid_coords, register

#: Where a frame puts the origin of the integer/decimal split, in cells added to hihlib's coordinate u:
#: hihlib measures the decimal offset from the cell's centre, the released code from its corner.
FRAME_ORIGINS = {"hihlib": 0.0, "released_hih": 0.5}
from .gaussian import argmax_2d, gaussian_1d, gaussian_maps, max_2d


def _parabola_peak(left: Tensor, mid: Tensor, right: Tensor) -> Tensor:
    """Vertex offset (from the middle sample) of the parabola through three equally spaced samples.
    Zero where the samples are not concave."""
    curv = left - 2 * mid + right
    ok = curv < 0
    off = 0.5 * (left - right) / torch.where(ok, curv, -torch.ones_like(curv))
    return torch.where(ok, off, torch.zeros_like(off))


def decimal_expectation(logits: Tensor, lo: Tensor | float = -0.5, hi: Tensor | float | None = None) -> Tensor:
    """Gaussian-mean decoding of decimal maps. logits (B, K, d, d) -> (B, K, 2) decimal-index units.

    The result is clamped to [lo, hi] (default [-1/2, d - 1/2], the span of the d cells); ``lo``/``hi``
    may be (B, K, 2) tensors, which the codec uses to let a border integer cell reach the crop's edge."""
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
    hi = d - 0.5 if hi is None else hi
    if isinstance(lo, Tensor) or isinstance(hi, Tensor):
        lo, hi = torch.as_tensor(lo, dtype=pos.dtype), torch.as_tensor(hi, dtype=pos.dtype)
        return torch.minimum(torch.maximum(pos, lo), hi)
    return pos.clamp(lo, hi)


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
                 decimal_size: int = 8, decimal_sigma: float = 1.0, frame: str = "hihlib"):
        super().__init__(input_size=input_size, heatmap_size=heatmap_size)
        if frame not in FRAME_ORIGINS:
            raise ValueError(f"hih frame must be one of {sorted(FRAME_ORIGINS)}, got {frame!r}")
        self.sigma = float(sigma)
        self.decimal_size = int(decimal_size)
        self.decimal_sigma = float(decimal_sigma)
        self.frame = frame
        self.origin = FRAME_ORIGINS[frame]
        if frame == "released_hih":  # the released decoder first: the default of hih predict and of training's "best"
            self.methods = ("official",) + tuple(m for m in type(self).methods if m != "official")

    def frame_cells(self, coords: Tensor) -> Tensor:
        """coords (B, K, 2) input pixels -> the heatmap coordinate that the integer/decimal split reads:
        u + origin (origin 0 in hihlib's frame, 1/2 in the released frame), clamped to the crop's extent."""
        u = self.to_cells(self._check_coords(coords)) + self.origin
        return u.clamp(self.origin - 0.5, self.heatmap_size - 0.5 + self.origin)

    def split(self, coords: Tensor) -> tuple[Tensor, Tensor]:
        """coords (B, K, 2) input pixels -> (integer cells i, decimal position (u - i) * d), both (B, K, 2).

        u is read in the codec's frame (``frame_cells``). The integer cell is kept on the map (0..H-1):
        in hihlib's frame a landmark in the border half-cell (u < -1/(2d), i.e. x < 1.25 px at 256 -> 64)
        stays in cell 0 with a decimal position below -1/2 (down to -d/2), which only ``expectation``
        reads out exactly; elsewhere the decimal position lies in [-1/2, d - 1/2)."""
        u = self.frame_cells(coords)
        d = self.decimal_size
        n = torch.floor(u * d + 0.5)
        i = torch.div(n, d, rounding_mode="floor").clamp(0, self.heatmap_size - 1)
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
        """The integer map itself and, for the decimal map, logits log(d^2 p): the log-ratio of the soft label
        to the uniform distribution. Logits are defined up to a constant; this one makes the peak logit
        positive (as the released decoder, which reads a non-positive peak as 0, needs)."""
        d = self.decimal_size
        return {"heatmap": targets["heatmap"], "decimal": (targets["decimal"] * (d * d)).log()}

    def decode_cells(self, outputs: dict[str, Tensor], method: str | None = None) -> Tensor:
        """-> (B, K, 2) heatmap cells in hihlib's frame (whatever the codec's ``frame``), inside the map's
        extent [-0.5, H - 0.5]."""
        method = self._check_method(method)
        heat = outputs["heatmap"]
        h = heat.shape[-1]
        peak, ix, iy = max_2d(heat)  # the one pass over the integer map
        integer = torch.stack([ix, iy], -1).float()
        d = self.decimal_size
        # the coordinates (frame cells) that integer cell i stands for: [i - 1/(2d), i + 1 - 1/(2d)), and a
        # border cell also owns the rest of the crop up to its edge (the split clamps the cell onto the map)
        lo = torch.where(integer == 0, self.origin - 0.5, integer - 0.5 / d)
        hi = torch.where(integer == h - 1, h - 0.5 + self.origin, integer + 1 - 0.5 / d)
        if method == "argmax":
            # the middle of that range, inside the crop
            mid = 0.5 * (lo.clamp_min(self.origin - 0.5) + hi.clamp_max(h - 0.5 + self.origin))
            pos = (mid - integer) * d
        elif method == "official":
            jx, jy = argmax_2d(outputs["decimal"])
            pos = torch.stack([jx, jy], -1).float()
            if self.frame == "released_hih":  # the released decoder: a map whose maximum is <= 0 reads as 0
                integer = integer * (peak > 0)[..., None]
                pos = pos * (outputs["decimal"].amax((-2, -1)) > 0)[..., None]
        elif method == "expectation":
            pos = decimal_expectation(outputs["decimal"], ((lo - integer) * d).clamp_max(-0.5),
                                      ((hi - integer) * d).clamp_min(d - 0.5))
        elif method == "local_mean":
            pos = decimal_window_mean(outputs["decimal"], 1)
        else:
            pos = decimal_window_mean(outputs["decimal"], None)
        return (integer + pos / d - self.origin).clamp(-0.5, h - 0.5)

    def decode(self, outputs: dict[str, Tensor], method: str | None = None) -> Tensor:
        """{"heatmap": (B, K, H, W), "decimal": (B, K, d, d) logits} -> (B, K, 2) input pixels."""
        return self.to_pixels(self.decode_cells(outputs, method))

    def __repr__(self) -> str:
        return (f"HIHCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, sigma={self.sigma}, "
                f"decimal_size={self.decimal_size}, decimal_sigma={self.decimal_sigma}, frame={self.frame!r})")
