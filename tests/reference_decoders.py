"""A frozen copy of every decoder as it was before the speed work of issue 16 (commit 59a6de4), kept only
as the reference that tests/test_decoder_pinning.py compares the library's decoders with, bit for bit.

Do not edit: it is the definition of "the same coordinates as before". ``reference_decode`` dispatches like
each codec's ``decode``, using the codec's options (sigma, k, decimal size, frame).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def grid_coords(size: int, *, device=None, dtype=torch.float32) -> Tensor:
    return torch.arange(size, device=device, dtype=dtype)


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
    """The k largest values of each map and their cells, exactly as ``maps.flatten(-2).topk(k)`` finds
    them. maps (B, K, H, W) -> values, ix, iy, each (B, K, k), values in descending order.

    Fast path (``_topk_window``): the top-k of a peaked map lie around its maximum, so they are searched in
    the (2R+1)^2 window at the argmax (R = ceil((sqrt(k) - 1) / 2) + 1: 5x5 for k = 9) and then *checked*:
    the k-th window value must beat every value outside the window, which the row maxima of the argmax pass
    and the 2R+1 rows of the window give without another pass over the map. Maps that fail the check (no
    clear peak, ties at the k-th value) take the slow path (``_topk_rows``), which is exact for any map: the
    k best cells lie in the k rows with the largest maxima (a row outside them has k rows whose maxima beat
    all its values), so only those rows are searched. When the first maps of a batch mostly fail, the whole
    batch goes the slow way at once. Either way the cells and values equal the full top-k's (up to the
    order of tied values).
    """
    h, w = maps.shape[-2:]
    rad = math.ceil((math.sqrt(k) - 1) / 2) + 1
    row_max = maps.amax(-1)  # (B, K, H): the one full pass
    if 2 * rad + 1 > min(h, w):
        return _topk_rows(maps, k, row_max)
    probe = min(PROBE_MAPS, maps.shape[0] * maps.shape[1])
    if probe < maps.shape[0] * maps.shape[1]:
        slow = _topk_window(maps.flatten(0, 1)[None, :probe], k, rad, row_max.flatten(0, 1)[None, :probe])[-1]
        if slow.float().mean() > 0.5:  # peakless maps (a batch of one network's outputs is alike)
            return _topk_rows(maps, k, row_max)
    vals, ix, iy, slow = _topk_window(maps, k, rad, row_max)
    if slow.float().mean() > 0.5:  # mostly peakless maps: no copies of a subset
        return _topk_rows(maps, k, row_max)
    if slow.any():
        sv, sx, sy = _topk_rows(maps[slow][None], k, row_max[slow][None])
        vals, ix, iy = vals.clone(), ix.clone(), iy.clone()
        vals[slow], ix[slow], iy[slow] = sv[0], sx[0], sy[0]
    return vals, ix, iy


PROBE_MAPS = 64


def _topk_window(maps: Tensor, k: int, rad: int, row_max: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Top-k in the (2 rad + 1)^2 window at each map's argmax: (values, ix, iy, slow), slow (B, K) marking
    the maps where a value outside the window may belong to the top k (their results are not valid)."""
    h, w = maps.shape[-2:]
    iy = row_max.argmax(-1)  # (B, K)
    p = 2 * rad + 1
    span = torch.arange(p, device=maps.device)
    top = iy.clamp(rad, h - 1 - rad) - rad  # first row of the window, kept inside the map
    rows = top[..., None] + span  # (B, K, P)
    band = select_rows(maps, rows)  # (B, K, P, W): the window's rows, the argmax row among them
    ix = band.gather(-2, (iy - top)[..., None, None].expand(*iy.shape, 1, w)).squeeze(-2).argmax(-1)
    cols = (ix.clamp(rad, w - 1 - rad) - rad)[..., None] + span
    win = band.gather(-1, cols[..., None, :].expand(*cols.shape[:-1], p, p))  # (B, K, P, P)
    vals, idx = win.flatten(-2).topk(k, dim=-1)
    # the best value outside the window: in the window's rows but other columns, or in other rows
    in_cols = torch.zeros_like(band[..., 0, :]).scatter_(-1, cols, -math.inf)  # (B, K, W): -inf on the window
    outside = (band + in_cols[..., None, :]).amax(-1).amax(-1)
    outside = torch.maximum(outside, row_max.scatter(-1, rows, -math.inf).amax(-1))
    slow = ~(vals[..., -1] > outside)  # NaN maps go the slow way too
    return vals, cols.gather(-1, idx % p), rows.gather(-1, torch.div(idx, p, rounding_mode="floor")), slow


def _topk_rows(maps: Tensor, k: int, row_max: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``topk_cells`` for any map: search the k rows with the largest maxima. maps (B, K, H, W),
    row_max (B, K, H) = maps.amax(-1); returns the same as ``topk_cells``."""
    h, w = maps.shape[-2:]
    rows = row_max.topk(min(k, h), dim=-1).indices  # (B, K, k')
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
    """argmax + 0.25 cell toward the larger neighbour on each axis. (B, K, H, W) -> (B, K, 2) cells.

    Border rule: the shift along an axis is skipped only in the first and last cell of that axis
    (0 < i < W - 1), where one neighbour is missing. mmpose's ``refine_keypoints`` skips the first *two*
    columns/rows (it shifts only for 1 < i < W - 1), so in cell 1 hihlib shifts and mmpose does not;
    everywhere else the two agree. Exact targets in cell 0 or W - 1 therefore decode like argmax.
    """
    ix, iy = argmax_2d(maps)
    p = gather_patches(maps, ix, iy, 1)  # (B, K, 3, 3), centre at [1, 1]
    h, w = maps.shape[-2:]
    dx = torch.sign(p[..., 1, 2] - p[..., 1, 0]) * ((ix > 0) & (ix < w - 1))
    dy = torch.sign(p[..., 2, 1] - p[..., 0, 1]) * ((iy > 0) & (iy < h - 1))
    return torch.stack([ix + 0.25 * dx, iy + 0.25 * dy], -1).to(maps.dtype)


def _newton_step(lg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """One Newton step on a 3x3 log-map stencil (..., 3, 3) [y, x]: (ox, oy, ok), offsets from its centre.
    ok marks a negative-definite Hessian (a maximum); elsewhere the offsets are 0."""
    dx = 0.5 * (lg[..., 1, 2] - lg[..., 1, 0])
    dy = 0.5 * (lg[..., 2, 1] - lg[..., 0, 1])
    dxx = lg[..., 1, 2] - 2 * lg[..., 1, 1] + lg[..., 1, 0]
    dyy = lg[..., 2, 1] - 2 * lg[..., 1, 1] + lg[..., 0, 1]
    dxy = 0.25 * (lg[..., 2, 2] - lg[..., 2, 0] - lg[..., 0, 2] + lg[..., 0, 0])
    det = dxx * dyy - dxy**2
    ok = (dxx < 0) & (det > 0)
    safe = torch.where(ok, det, torch.ones_like(det))
    # offset = -H^-1 g with H = [[dxx, dxy], [dxy, dyy]]
    ox = torch.where(ok, -(dyy * dx - dxy * dy) / safe, torch.zeros_like(dx))
    oy = torch.where(ok, -(dxx * dy - dxy * dx) / safe, torch.zeros_like(dy))
    return ox, oy, ok


def dark_decode(maps: Tensor, sigma: float, *, eps: float = 1e-10, border: str = "raw") -> Tensor:
    """DARK: Gaussian smoothing, log, one Newton step from the peak. (B, K, H, W) -> (B, K, 2) cells.

    The smoothing kernel is the training Gaussian truncated at radius r = ceil(3 sigma); it is applied
    only to the patch around each peak (the 3x3 smoothed values that the finite differences need).

    Near the border (a peak closer than r + 1 cells to an edge, so that the smoothing patch would leave
    the map) the patch cannot be smoothed without inventing values beyond the map. ``border`` says what
    happens there:

    * ``"raw"`` (default): no smoothing; the Newton step uses the log of the map itself on a 3x3 stencil
      kept inside the map (centred one cell in from the edge when the peak is on it). The log of an exact
      Gaussian target is a quadratic, so this is exact on exact targets up to the edge pixels.
    * ``"replicate"``: smooth a patch padded by repeating the edge (what mmpose's ``gaussian_blur`` and
      the first hihlib release did). The peak then looks like a plateau running off the map and the step
      walks outward: up to 6 px of error at stride 4 on exact targets within 8 px of the edge, 0.2 px at
      12-16 px, exactly zero only from r + 1 cells (24 px at sigma 1.5, stride 4). Kept for comparison
      (notebook 01, section 4, draws the error against the distance to the edge for both).

    The step is taken only where the Hessian is negative definite and the result stays within one cell
    of the argmax cell; with ``border="raw"`` it is also kept inside the map's extent [-0.5, W - 0.5] x
    [-0.5, H - 0.5] (the crop), so DARK never moves a landmark outside the crop. (``"replicate"`` is the
    first release's decoder unchanged, outward steps included.)
    """
    if border not in ("raw", "replicate"):
        raise ValueError(f"border must be 'raw' or 'replicate', got {border!r}")
    maps = maps.float()
    h, w = maps.shape[-2:]
    ix, iy = argmax_2d(maps)
    if h < 3 or w < 3:  # no 3x3 stencil fits: nothing to refine
        return torch.stack([ix, iy], -1).to(maps.dtype)
    r = max(1, math.ceil(3 * sigma))
    patch = gather_patches(maps, ix, iy, r + 1)  # (B, K, 2r+3, 2r+3), edge-replicated where it leaves the map
    kern = torch.exp(-torch.arange(-r, r + 1, device=maps.device, dtype=maps.dtype) ** 2 / (2 * sigma**2))
    kern = kern / kern.sum()
    # separable 'valid' convolution: (2r+3) -> 3 along each axis
    win = patch.unfold(-1, 2 * r + 1, 1)  # (B, K, P, 3, 2r+1)
    rows = (win * kern).sum(-1)  # (B, K, P, 3)
    win = rows.transpose(-1, -2).unfold(-1, 2 * r + 1, 1)  # (B, K, 3, 3, 2r+1) [x, y, taps]
    lg = (win * kern).sum(-1).transpose(-1, -2).clamp_min(eps).log()  # (B, K, 3, 3) [y, x]
    cx, cy = ix, iy
    if border == "raw":
        fits = (ix > r) & (ix < w - 1 - r) & (iy > r) & (iy < h - 1 - r)  # smoothing patch inside the map
        sx, sy = ix.clamp(1, w - 2), iy.clamp(1, h - 2)  # raw stencil centre, inside the map
        raw = gather_patches(maps, sx, sy, 1).clamp_min(eps).log()
        lg = torch.where(fits[..., None, None], lg, raw)
        cx, cy = torch.where(fits, ix, sx), torch.where(fits, iy, sy)
    ox, oy, _ = _newton_step(lg)
    x = torch.minimum(torch.maximum(cx + ox, ix - 1.0), ix + 1.0)
    y = torch.minimum(torch.maximum(cy + oy, iy - 1.0), iy + 1.0)
    if border == "raw":
        x, y = x.clamp(-0.5, w - 0.5), y.clamp(-0.5, h - 0.5)
    return torch.stack([x, y], -1)


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


def topk_decode(logits: Tensor, k: int = 9) -> Tensor:
    """Softmax-weighted mean of the top-k cells. logits (B, K, H, W) -> (B, K, 2) cells."""
    vals, ix, iy = topk_cells(logits.float(), k)  # (B, K, k) each
    p = vals.softmax(-1)
    return torch.stack([(p * ix).sum(-1), (p * iy).sum(-1)], -1)


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


class _HIH:
    """The HIH codec's decode_cells, bound to a codec's options."""

    def __init__(self, codec):
        self.decimal_size, self.origin, self.frame = codec.decimal_size, codec.origin, codec.frame

    def _check_method(self, method):
        return method

    def decode_cells(self, outputs: dict[str, Tensor], method: str | None = None) -> Tensor:
        """-> (B, K, 2) heatmap cells in hihlib's frame (whatever the codec's ``frame``), inside the map's
        extent [-0.5, H - 0.5]."""
        method = self._check_method(method)
        heat = outputs["heatmap"]
        h = heat.shape[-1]
        ix, iy = argmax_2d(heat)
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
                integer = integer * (heat.amax((-2, -1)) > 0)[..., None]
                pos = pos * (outputs["decimal"].amax((-2, -1)) > 0)[..., None]
        elif method == "expectation":
            pos = decimal_expectation(outputs["decimal"], ((lo - integer) * d).clamp_max(-0.5),
                                      ((hi - integer) * d).clamp_min(d - 0.5))
        elif method == "local_mean":
            pos = decimal_window_mean(outputs["decimal"], 1)
        else:
            pos = decimal_window_mean(outputs["decimal"], None)
        return (integer + pos / d - self.origin).clamp(-0.5, h - 0.5)


def reference_decode_cells(codec, outputs: dict, method: str | None = None) -> Tensor:
    """The decoder of ``codec`` (a hihlib codec) as it was: outputs -> (B, K, 2) heatmap cells."""
    method = method or codec.default_method
    if codec.name == "gaussian":
        maps = outputs["heatmap"]
        return {"argmax": argmax_decode, "quarter": quarter_decode, "integral": integral_decode,
                "dark": lambda m: dark_decode(m, codec.sigma)}[method](maps)
    if codec.name == "h3r":
        return topk_decode(outputs["heatmap"], codec.k) if method == "topk" else argmax_decode(outputs["heatmap"])
    return _HIH(codec).decode_cells(outputs, method)


def reference_decode(codec, outputs: dict, method: str | None = None) -> Tensor:
    """outputs -> (B, K, 2) input pixels, as ``codec.decode`` returned them."""
    cells = reference_decode_cells(codec, outputs, method)
    return codec.to_pixels(cells if codec.name == "hih" else cells.float())
