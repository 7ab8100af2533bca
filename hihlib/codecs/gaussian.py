"""Gaussian heatmaps: the classic target of heatmap regression, and its four classic decoders.

Target: for each landmark a Gaussian of standard deviation ``sigma`` (heatmap cells) with peak 1.0
centred at the landmark's *sub-pixel* heatmap position (no rounding of the centre, no truncation
radius). Decoders (``decode(outputs, method)``, ``outputs["heatmap"]`` holds regressed values):

* ``argmax``   integer cell of the maximum. Loses the fraction: for uniformly distributed offsets the
  mean error is (sqrt(2) + asinh(1)) / 6 = 0.3826 cells (``hihlib.analysis.ROUNDING_ERROR``).
* ``quarter``  argmax + 0.25 cell toward the larger neighbour on each axis (Hourglass, HRNet).
* ``dark``     DARK (Zhang et al. 2020): smooth the map with the training Gaussian, take the log, one
  Newton step from the peak with finite-difference gradient and Hessian. Exact for a Gaussian.
  Only the (2r+3)^2 neighbourhood of each peak is smoothed (r = kernel radius), so the cost beyond
  the argmax is independent of the heatmap size.
* ``integral`` soft-argmax: expectation of the cell coordinates under the map normalised to sum 1
  (negative values clipped). Unbiased on an untruncated target away from the border.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from . import register
from .base import Codec, grid_coords


def gaussian_1d(centres: Tensor, size: int, sigma: float) -> Tensor:
    """exp(-(g - c)^2 / 2 sigma^2) on the grid g = 0..size-1. centres (...,) -> (..., size)."""
    g = grid_coords(size, device=centres.device, dtype=centres.dtype)
    return torch.exp(-((g - centres[..., None]) ** 2) / (2 * sigma**2))


def gaussian_maps(uv: Tensor, size: int, sigma: float) -> Tensor:
    """Separable 2-D Gaussians with peak 1. uv (B, K, 2) cells -> (B, K, size, size)."""
    ex = gaussian_1d(uv[..., 0], size, sigma)  # (B, K, W)
    ey = gaussian_1d(uv[..., 1], size, sigma)  # (B, K, H)
    return ey[..., :, None] * ex[..., None, :]


def argmax_2d(maps: Tensor) -> tuple[Tensor, Tensor]:
    """Integer peak of each map (first in row-major order on ties). maps (B, K, H, W) -> (ix, iy), (B, K) long.

    Two stages, because a flat argmax over H*W is several times slower than a max-reduction on CPU:
    the row maxima (one pass over the maps), the best row, then the argmax within that row only.
    """
    iy = maps.amax(-1).argmax(-1)  # (B, K)
    return select_rows(maps, iy[..., None]).squeeze(-2).argmax(-1), iy


def select_rows(maps: Tensor, rows: Tensor) -> Tensor:
    """maps (B, K, H, W), rows (B, K, R) row indices -> (B, K, R, W) those rows of each map.
    (index_select on the flattened rows: several times faster than gather with an expanded index on CPU.)"""
    b, k, h, w = maps.shape
    flat_rows = (torch.arange(b * k, device=maps.device).view(b, k, 1) * h + rows).flatten()
    return maps.reshape(b * k * h, w).index_select(0, flat_rows).view(b, k, rows.shape[-1], w)


def topk_cells(maps: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """The k largest values of each map and their cells. maps (B, K, H, W) -> values, ix, iy, each (B, K, k),
    values in descending order.

    The k best cells lie in the k rows with the largest maxima (a row outside them has k rows whose
    maxima beat all its values), so only those rows are searched after one max-reduction pass.
    """
    h, w = maps.shape[-2:]
    rows = maps.amax(-1).topk(min(k, h), dim=-1).indices  # (B, K, k')
    cand = select_rows(maps, rows)  # (B, K, k', W)
    vals, idx = cand.flatten(-2).topk(k, dim=-1)
    return vals, idx % w, rows.gather(-1, torch.div(idx, w, rounding_mode="floor"))


def gather_patches(maps: Tensor, ix: Tensor, iy: Tensor, radius: int) -> Tensor:
    """Square patches of side 2*radius+1 centred on (ix, iy); indices outside the map are clamped
    (edge replication). maps (B, K, H, W), ix/iy (B, K) -> (B, K, P, P)."""
    b, k, h, w = maps.shape
    off = torch.arange(-radius, radius + 1, device=maps.device)
    rows = (iy[..., None] + off).clamp(0, h - 1)  # (B, K, P)
    cols = (ix[..., None] + off).clamp(0, w - 1)
    flat = rows[..., :, None] * w + cols[..., None, :]  # (B, K, P, P)
    p = off.numel()
    return maps.flatten(-2).gather(-1, flat.flatten(-2)).view(b, k, p, p)


def argmax_decode(maps: Tensor) -> Tensor:
    """(B, K, H, W) -> (B, K, 2) cell coordinates of the maximum."""
    ix, iy = argmax_2d(maps)
    return torch.stack([ix, iy], -1).to(maps.dtype)


def quarter_decode(maps: Tensor) -> Tensor:
    """argmax + 0.25 cell toward the larger neighbour on each axis (no shift on a border)."""
    ix, iy = argmax_2d(maps)
    p = gather_patches(maps, ix, iy, 1)  # (B, K, 3, 3), centre at [1, 1]
    h, w = maps.shape[-2:]
    dx = torch.sign(p[..., 1, 2] - p[..., 1, 0]) * ((ix > 0) & (ix < w - 1))
    dy = torch.sign(p[..., 2, 1] - p[..., 0, 1]) * ((iy > 0) & (iy < h - 1))
    return torch.stack([ix + 0.25 * dx, iy + 0.25 * dy], -1).to(maps.dtype)


def dark_decode(maps: Tensor, sigma: float, *, eps: float = 1e-10) -> Tensor:
    """DARK: Gaussian smoothing, log, one Newton step from the peak. (B, K, H, W) -> (B, K, 2) cells.

    The smoothing kernel is the training Gaussian truncated at radius ceil(3 sigma); it is applied
    only to the patch around each peak (the 3x3 smoothed values that the finite differences need).
    The Newton step is taken only where the Hessian is negative definite and is clipped to one cell.
    """
    maps = maps.float()
    ix, iy = argmax_2d(maps)
    r = max(1, math.ceil(3 * sigma))
    patch = gather_patches(maps, ix, iy, r + 1)  # (B, K, 2r+3, 2r+3)
    kern = torch.exp(-torch.arange(-r, r + 1, device=maps.device, dtype=maps.dtype) ** 2 / (2 * sigma**2))
    kern = kern / kern.sum()
    # separable 'valid' convolution: (2r+3) -> 3 along each axis
    win = patch.unfold(-1, 2 * r + 1, 1)  # (B, K, P, 3, 2r+1)
    rows = (win * kern).sum(-1)  # (B, K, P, 3)
    win = rows.transpose(-1, -2).unfold(-1, 2 * r + 1, 1)  # (B, K, 3, 3, 2r+1) [x, y, taps]
    smooth = (win * kern).sum(-1).transpose(-1, -2)  # (B, K, 3, 3) [y, x]
    lg = smooth.clamp_min(eps).log()
    dx = 0.5 * (lg[..., 1, 2] - lg[..., 1, 0])
    dy = 0.5 * (lg[..., 2, 1] - lg[..., 0, 1])
    dxx = lg[..., 1, 2] - 2 * lg[..., 1, 1] + lg[..., 1, 0]
    dyy = lg[..., 2, 1] - 2 * lg[..., 1, 1] + lg[..., 0, 1]
    dxy = 0.25 * (lg[..., 2, 2] - lg[..., 2, 0] - lg[..., 0, 2] + lg[..., 0, 0])
    det = dxx * dyy - dxy**2
    ok = (dxx < 0) & (det > 0)
    safe = torch.where(ok, det, torch.ones_like(det))
    # offset = -H^-1 g with H = [[dxx, dxy], [dxy, dyy]]
    ox = -(dyy * dx - dxy * dy) / safe
    oy = -(dxx * dy - dxy * dx) / safe
    ox = torch.where(ok, ox, torch.zeros_like(ox)).clamp(-1, 1)
    oy = torch.where(ok, oy, torch.zeros_like(oy)).clamp(-1, 1)
    return torch.stack([ix + ox, iy + oy], -1)


def integral_decode(maps: Tensor) -> Tensor:
    """Soft-argmax: expectation of cell coordinates under max(map, 0) / sum. (B, K, H, W) -> (B, K, 2)."""
    p = maps.float().clamp_min(0)
    h, w = p.shape[-2:]
    px = p.sum(-2)  # (B, K, W) marginal over rows
    py = p.sum(-1)  # (B, K, H)
    total = px.sum(-1).clamp_min(1e-12)
    ux = (px * grid_coords(w, device=p.device)).sum(-1) / total
    uy = (py * grid_coords(h, device=p.device)).sum(-1) / total
    return torch.stack([ux, uy], -1)


@register
class GaussianCodec(Codec):
    """Sub-pixel centred Gaussian heatmaps.

    Args: input_size, heatmap_size (pixels, cells), sigma: standard deviation in heatmap cells.
    Targets: {"heatmap": (B, K, H, W) float, peak 1}. Outputs decoded: {"heatmap": regressed values}.
    """

    name = "gaussian"
    methods = ("dark", "argmax", "quarter", "integral")
    target_keys = ("heatmap",)

    def __init__(self, *, input_size: int = 256, heatmap_size: int = 64, sigma: float = 1.5):
        super().__init__(input_size=input_size, heatmap_size=heatmap_size)
        self.sigma = float(sigma)

    def encode(self, coords: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """coords (B, K, 2) input pixels -> {"heatmap": (B, K, H, W)}."""
        coords = self._check_coords(coords)
        return {"heatmap": gaussian_maps(self.to_cells(coords), self.heatmap_size, self.sigma)}

    def decode_cells(self, maps: Tensor, method: str | None = None) -> Tensor:
        """(B, K, H, W) values -> (B, K, 2) heatmap cells."""
        method = self._check_method(method)
        if method == "argmax":
            return argmax_decode(maps)
        if method == "quarter":
            return quarter_decode(maps)
        if method == "dark":
            return dark_decode(maps, self.sigma)
        return integral_decode(maps)

    def decode(self, outputs: dict[str, Tensor], method: str | None = None) -> Tensor:
        """{"heatmap": (B, K, H, W)} -> (B, K, 2) input pixels."""
        return self.to_pixels(self.decode_cells(outputs["heatmap"], method).float())

    def __repr__(self) -> str:
        return f"GaussianCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, sigma={self.sigma})"
