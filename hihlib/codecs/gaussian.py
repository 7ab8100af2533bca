"""Gaussian heatmaps: the classic target of heatmap regression, and its four classic decoders.

Target: for each landmark a Gaussian of standard deviation ``sigma`` (heatmap cells) with peak 1.0
centred at the landmark's *sub-pixel* heatmap position (no rounding of the centre, no truncation
radius). Decoders (``decode(outputs, method)``, ``outputs["heatmap"]`` holds regressed values):

* ``argmax``   integer cell of the maximum. Loses the fraction: for uniformly distributed offsets the
  mean error is (sqrt(2) + asinh(1)) / 6 = 0.3826 cells (``hihlib.teaching.analysis.ROUNDING_ERROR``).
* ``quarter``  argmax + 0.25 cell toward the larger neighbour on each axis (Hourglass, HRNet); no shift in
  a border cell (``quarter_decode`` says how that differs from mmpose).
* ``dark``     DARK (Zhang et al. 2020): smooth the map with the training Gaussian, take the log, one
  Newton step from the peak with finite-difference gradient and Hessian. Exact for a Gaussian.
  Only the (2r+3)^2 neighbourhood of each peak is smoothed (r = kernel radius), so the cost beyond
  the argmax is independent of the heatmap size. Near the crop's edge it steps on the unsmoothed
  log map (``dark_decode``): exact on exact targets everywhere, and never outside the crop.
* ``integral`` soft-argmax: expectation of the cell coordinates under the map normalised to sum 1
  (negative values clipped). Unbiased on an untruncated target away from the border; near the border
  the map is cut by the edge and the mean is pulled inward (for an exact target it is the mean of the
  Gaussian truncated to the grid: up to 1.22 cells, 4.9 px at stride 4, at sigma 1.5), never outside.

Frame: every decoder here returns heatmap cells in hihlib's frame (cell i centred on u = i) and
``decode`` maps them to input pixels with x = s (u + 0.5) - 0.5 (``hihlib.codecs.base``). mmpose reads
the same cells at x = s u: 1.5 px up-left of hihlib at stride 4.

Cost: every decoder reads each map once (a max-reduction, or integral's clipped sums) and then touches a few cells
per landmark; ``benchmarks/decode.py`` times them against one memory pass. On the CPU the argmax of every decoder is
numpy's flat ``argmax`` (SIMD, about the speed of that pass; ``_numpy_argmax``); DARK's stencils and H3R's top-k
(``topk_cells``) are compiled kernels (numba, ``hihlib.codecs._compiled``) that read each map while it is in the cache,
with the torch paths below (same coordinates) where numba is absent, under autograd or torch.export; on a GPU argmax
and top-k are one flat ``argmax`` / ``topk`` each (no transfers to the host). The speed work of
issue 16 changed no coordinate: tests/test_decoder_pinning.py checks every decoder bit for bit against a frozen
copy of the earlier implementation (tests/reference_decoders.py).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch
from torch import Tensor

from . import _compiled
from .base import Codec, grid_coords, register


def gaussian_1d(centres: Tensor, size: int, sigma: float) -> Tensor:
    """exp(-(g - c)^2 / 2 sigma^2) on the grid g = 0..size-1. centres (...,) -> (..., size)."""
    g = grid_coords(size, device=centres.device, dtype=centres.dtype)
    return torch.exp(-((g - centres[..., None]) ** 2) / (2 * sigma**2))


def gaussian_maps(uv: Tensor, size: int, sigma: float) -> Tensor:
    """Separable 2-D Gaussians with peak 1. uv (B, K, 2) cells -> (B, K, size, size)."""
    ex = gaussian_1d(uv[..., 0], size, sigma)  # (B, K, W)
    ey = gaussian_1d(uv[..., 1], size, sigma)  # (B, K, H)
    return ey[..., :, None] * ex[..., None, :]


#: Bytes of maps that a chunked CPU decoder reads per chunk (``by_chunks``). Integral decoding clips a chunk into one
#: reused buffer and sums it while it is in the cache (clipping the whole batch at once writes a new 100 MB tensor:
#: fresh pages, several times the cost of the pass). 4 MB: 256 maps of 64 x 64, inside a core's share of L3.
#: argmax, quarter and top-k run on the whole batch: with one row or a few cells per map to pick, the per-chunk
#: overhead of torch's operations cost more than the cache saved (measured with benchmarks/decode.py). On a GPU the
#: whole batch is one chunk.
CHUNK_BYTES = 4 << 20

#: Bytes of maps that DARK reads at a time on the CPU (``_dark_patches_raw``): each map once (the argmax pass), then
#: its argmax row and a (2r+3)^2 patch around the maximum, picked while the chunk is still in the cache instead of
#: costing a trip to memory each (measured with benchmarks/decode.py: 4 MB beat 2, 8, 16 MB and one chunk).
DARK_CHUNK_BYTES = 4 << 20
#: Bytes of maps per call of DARK's compiled kernel on the CPU (``_dark_compiled``): small enough to stay in the core's
#: cache between numpy's argmax and the kernel's reads.
DARK_KERNEL_BYTES = 1 << 20


def _needs_grad(t: Tensor) -> bool:
    """Whether autograd records operations on ``t`` (then no decoder writes into preallocated buffers)."""
    return t.requires_grad and torch.is_grad_enabled()


#: Largest scratch buffer (bytes) that a CPU decoder keeps between calls (``_scratch``): a (64, 98, 64, 64) batch's
#: DARK needs 16 MB. Larger requests get fresh memory each call.
SCRATCH_BYTES = 64 << 20
_SCRATCH = threading.local()


def _scratch(slot: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """An uninitialised (shape) tensor for temporary use inside one decoder call, reused from the previous call on
    this thread where it fits (CPU, at most ``SCRATCH_BYTES``): fresh memory of that size costs page faults (the
    kernel zeroes every page on its first touch), measured at ~4 ms for DARK's 11 MB of smoothing terms, as much as
    the whole memory pass. ``slot`` names the buffer (two slots in one call never share memory). Never returned to
    the caller, nor anything that views it."""
    nbytes = math.prod(shape) * dtype.itemsize
    if device.type != "cpu" or nbytes > SCRATCH_BYTES:
        return torch.empty(shape, dtype=dtype, device=device)
    cache = getattr(_SCRATCH, "buffers", None)
    if cache is None:
        cache = _SCRATCH.buffers = {}
    buf = cache.get(slot)
    if buf is None or buf.numel() < nbytes:
        buf = cache[slot] = torch.empty(max(nbytes, 1 << 20), dtype=torch.uint8)
    return buf[:nbytes].view(dtype).view(shape)


def by_chunks(fn, maps: Tensor, *args: Tensor, chunk_bytes: int | None = None) -> tuple[Tensor, ...]:
    """Apply ``fn`` to cache-sized chunks of maps and concatenate: maps (..., H, W), each of ``args`` (..., *) with
    the same leading dims; ``fn(maps (n, H, W), *args (n, *))`` returns a tuple of (n, *) tensors, computed per map
    (so chunking changes no result). Returns them with the leading dims restored: (..., *). ``chunk_bytes``
    (default ``CHUNK_BYTES``; 0: one chunk) sizes the chunks on the CPU; on other devices there is one chunk."""
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, *maps.shape[-2:])  # a view for contiguous maps
    args = tuple(a.reshape(-1, *a.shape[len(lead):]) for a in args)
    n = flat.shape[0]
    step = n
    chunk_bytes = CHUNK_BYTES if chunk_bytes is None else chunk_bytes
    if maps.device.type == "cpu" and chunk_bytes > 0 and not torch.compiler.is_exporting():  # ONNX: one chunk
        step = max(1, chunk_bytes // max(1, flat.shape[1] * flat.shape[2] * flat.element_size()))
    if step >= n:
        outs = fn(flat, *args)
    else:
        parts = [fn(flat[s:s + step], *(a[s:s + step] for a in args)) for s in range(0, n, step)]
        outs = tuple(torch.cat(p) for p in zip(*parts))
    return tuple(o.view(*lead, *o.shape[1:]) for o in outs)


def _numpy_can_take(flat: Tensor) -> bool:
    """Whether the CPU decoders' numpy steps can read ``flat`` in place: a non-empty contiguous float32/float64 CPU
    tensor, not under autograd nor torch.export."""
    return (flat.device.type == "cpu" and flat.dtype in (torch.float32, torch.float64) and flat.is_contiguous()
            and not _needs_grad(flat) and not torch.compiler.is_exporting() and flat.shape[0] > 0)


def _numpy_argmax(flat: Tensor) -> Tensor | None:
    """The first maximum of each map, as a flat index: flat (n, H, W) -> (n,) long; None where numpy cannot take it
    (``_numpy_can_take``).

    numpy's ``argmax`` over the H*W cells of a map is SIMD code that reads each map once at about the speed of
    torch's ``amax`` (the decode benchmark's floor: 4.8 against 4.6 ms for the (64, 98, 64, 64) batch on one core),
    where torch's own argmax over a long row is several times slower. Its result is torch's: the first maximum in
    row-major order, the first NaN where there is one (both treat NaN as the maximum); -0.0 and 0.0 tie."""
    if not _numpy_can_take(flat):
        return None
    n = flat.shape[0]
    return torch.from_numpy(np.argmax(flat.detach().numpy().reshape(n, -1), axis=-1).astype(np.int64, copy=False))


def _max_2d(maps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """maps (n, H, W) -> (value, ix, iy) of each map's maximum, first in row-major order on ties (a NaN counts as the
    maximum, as in ``argmax``). On the CPU numpy's flat argmax (``_numpy_argmax``) where it can take the maps, else
    two stages: the row maxima (one pass), the best row, the argmax within that row (torch's own argmax over H*W is
    several times slower than a max-reduction on the CPU); off the CPU ``_max_2d_flat``."""
    if maps.device.type != "cpu":
        return _max_2d_flat(maps)
    idx = _numpy_argmax(maps)
    if idx is not None:
        return _at_flat_index(maps, idx)
    row_max = maps.amax(-1)  # (n, H): the one pass over the maps
    iy = row_max.argmax(-1)  # (n,)
    ix = select_rows(maps, iy[:, None]).squeeze(-2).argmax(-1)
    return row_max.gather(-1, iy[:, None]).squeeze(-1), ix, iy


def _max_2d_flat(maps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``_max_2d`` as one flat ``argmax`` over H*W, the GPU's way: maps (n, H, W) -> (value, ix, iy). The same cell
    (the first maximum in row-major order, the first NaN where there is one: torch documents argmax's first index on
    every device), one kernel instead of the two-stage path's five."""
    n, h, w = maps.shape
    return _at_flat_index(maps, maps.reshape(n, h * w).argmax(-1))


def _at_flat_index(maps: Tensor, idx: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """maps (n, H, W), idx (n,) flat cell indices -> (value, ix, iy) of those cells, each (n,)."""
    n, h, w = maps.shape
    value = maps.reshape(n, h * w).gather(-1, idx[:, None]).squeeze(-1)
    return value, idx % w, torch.div(idx, w, rounding_mode="floor")


def argmax_2d(maps: Tensor) -> tuple[Tensor, Tensor]:
    """Integer peak of each map (first in row-major order on ties). maps (..., H, W) -> (ix, iy), (...) long;
    see ``_max_2d`` for how it is found."""
    # not chunked: with one row per map to pick, the pass over the whole batch is as fast
    return tuple(t.view(maps.shape[:-2]) for t in _max_2d(maps.reshape(-1, *maps.shape[-2:]))[1:3])


def max_2d(maps: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``argmax_2d`` with the maximum itself: maps (..., H, W) -> (value, ix, iy), each (...)."""
    return tuple(t.view(maps.shape[:-2]) for t in _max_2d(maps.reshape(-1, *maps.shape[-2:]))[:3])


def select_rows(maps: Tensor, rows: Tensor) -> Tensor:
    """maps (..., H, W), rows (..., R) row indices -> (..., R, W) those rows of each map.
    (index_select on the flattened rows: several times faster than gather with an expanded index on CPU.)"""
    h, w = maps.shape[-2:]
    lead = rows.shape[:-1]
    n = rows[..., 0].numel()
    flat_rows = (torch.arange(n, device=maps.device).view(*lead, 1) * h + rows).flatten()
    return maps.reshape(n * h, w).index_select(0, flat_rows).view(*lead, rows.shape[-1], w)


def topk_cells(maps: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """The k largest values of each map and their cells, exactly as ``maps.flatten(-2).topk(k)`` finds
    them. maps (..., H, W) -> values, ix, iy, each (..., k), values in descending order.

    What the first release returned (and this returns, bit for bit: tests/test_decoder_pinning.py). It searched the
    (2R+1)^2 window at the argmax (R = ceil((sqrt(k) - 1) / 2) + 1: 5x5 for k = 9) and *checked* it: the k-th
    window value must beat every value outside the window, which the row maxima of the argmax pass and the 2R+1
    rows of the window give without another pass over the map (``_topk_window``). Maps that failed the check (no
    clear peak, ties at the k-th value) took the slow path (``_topk_rows``), exact for any map: the k best cells lie
    in the k rows with the largest maxima (a row outside them has k rows whose maxima beat all its values). When
    the first ``PROBE_MAPS`` maps, or more than half of all maps, failed the check, every map took the slow path.
    The two paths differ only in the order of tied values.

    So where a map's k + 1 best values are distinct, its top k is one set of cells in one order whichever way it
    is found, and this finds it the fast way (``_topk_fast``): on the CPU the compiled kernel
    (``_compiled.topk_kernel``: one read of each map, then only the blocks that can hold the k best); without numba
    (``_topk_torch``) the window (without ``torch.topk``'s cost on 4096 cells), else ``_topk_merge`` (k rounds of
    max extraction over the row maxima, no ``topk`` at all). Only maps with ties among their k + 1 best values (and
    NaN maps) take the first release's exact path, the way it took it (``_topk_window``, ``_topk_rows`` on those
    maps alone; ``_topk_unclean`` after the kernel).
    """
    h, w = maps.shape[-2:]
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, h, w)
    if not flat.is_contiguous():
        flat = flat.contiguous()
    n = flat.shape[0]
    rad = math.ceil((math.sqrt(k) - 1) / 2) + 1
    # under torch.export (ONNX), under autograd, for k at or above the cell count: the first release's code as is
    if n == 0 or not 0 < k < h * w or _needs_grad(maps) or torch.compiler.is_exporting():
        out = _topk_first_release(flat, k, rad)
    elif flat.device.type != "cpu":
        out = _topk_flat(flat, k)
    else:
        out = _topk_fast(flat, k, rad)
    return tuple(t.view(*lead, t.shape[-1]) for t in out)


#: Maps that ``topk_cells`` tries with the window first, to tell a batch of peakless maps early.
PROBE_MAPS = 64


def _topk_flat(flat: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    """``topk_cells``'s definition as it stands, ``torch.topk`` over the H*W cells, the GPU's way: flat (n, H, W) ->
    (n, k) values, ix, iy. One kernel and no transfer to the host; the CPU paths below check flags on the host
    (.all(), nonzero) several times, each a wait for the GPU (they took 40-80x one memory pass on an H200). Where the
    k + 1 best values are distinct, the same cells in the same order as every path."""
    n, h, w = flat.shape
    vals, idx = flat.reshape(n, h * w).topk(k, dim=-1)
    return vals, idx % w, torch.div(idx, w, rounding_mode="floor")


def _topk_first_release(flat: Tensor, k: int, rad: int) -> tuple[Tensor, Tensor, Tensor]:
    """The first release's ``topk_cells`` on maps (n, H, W) -> (n, k) values, ix, iy."""
    h, w = flat.shape[-2:]
    n = flat.shape[0]
    row_max = flat.amax(-1)  # (n, H): the one full pass
    everything = torch.arange(n, device=flat.device)
    out = None
    # under torch.export (ONNX) the exact row search alone: no data-dependent branches
    if 2 * rad + 1 <= min(h, w) and n > 0 and not torch.compiler.is_exporting():
        probe = min(PROBE_MAPS, n)
        if probe == n or _topk_window(flat[:probe], k, rad, row_max[:probe])[3].float().mean() <= 0.5:
            vals, ix, iy, slow, unique = _topk_window(flat, k, rad, row_max)
            # the slow path where the first release took it and the window's result could differ from it
            need = (slow | ~unique()) if slow.float().mean() > 0.5 else slow
            out = vals, ix, iy
            if need.any():
                which = need.nonzero().squeeze(-1)
                sv, sx, sy = _topk_rows(flat, k, row_max, which)
                out = tuple(t.index_copy(0, which, s) for t, s in zip(out, (sv, sx, sy)))
    if out is None:  # peakless maps (the first ones tell: a batch of one network's outputs is alike)
        out = _topk_rows(flat, k, row_max, everything)
    return out


def _first_argmax(x: Tensor) -> Tensor:
    """``x.argmax(-1)`` (the first maximum) for x (m, L), as one max-reduction and two elementwise passes (torch's
    argmax over short rows costs several times more). (m,) long."""
    v = x.amax(-1, keepdim=True)
    if v.isnan().any():  # argmax's NaN rule
        return x.argmax(-1)
    size = x.shape[-1]
    eq = torch.eq(x, v, out=torch.empty(x.shape, dtype=torch.float64 if size > 2**23 else torch.float32,
                                         device=x.device))
    return eq.mul_(torch.arange(size, device=x.device, dtype=eq.dtype) - size).amin(-1).add_(size).long()


def _topk_fast(flat: Tensor, k: int, rad: int) -> tuple[Tensor, Tensor, Tensor]:
    """``topk_cells`` on contiguous CPU maps (n, H, W), 0 < k < H * W -> (n, k) values, ix, iy; see there. The compiled
    kernel (``_compiled.topk_kernel``) where it runs, else ``_topk_torch``."""
    kernel = _compiled.topk_kernel()
    n, h, w = flat.shape
    if kernel is None or not _numpy_can_take(flat) or 2 * rad + 1 > min(h, w):
        return _topk_torch(flat, k, rad)
    a = flat.detach().numpy()
    vals = np.empty((n, k), a.dtype)
    ix, iy = np.empty((n, k), np.int64), np.empty((n, k), np.int64)
    clean, escape = np.empty(n, np.bool_), np.empty(n, np.bool_)
    kernel(a, k, rad, vals, ix, iy, clean, escape)
    out = torch.from_numpy(vals), torch.from_numpy(ix), torch.from_numpy(iy)
    if clean.all():
        return out
    return _topk_unclean(flat, k, rad, out, clean, escape)


def _topk_unclean(flat: Tensor, k: int, rad: int, out: tuple[Tensor, Tensor, Tensor], clean: np.ndarray,
                  escape: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
    """``_topk_torch``'s result for the maps that are not ``clean`` (ties among the k + 1 best, NaN), the kernel's
    (values, ix, iy) ``out`` (n, k) kept for the others: there the top k is one, whichever way it is found. The first
    release's choices for a batch (its probe, the share of maps whose top k may leave the window) are made from the
    same flags: ``_topk_window_flags``'s slow flag is, on a clean map, whether its top k leaves the window at its
    maximum (``escape`` (n,), from the kernel); the other maps' come from the window itself, where they can change a
    choice. Where the kernel finds ties or NaN so does ``_topk_merge``, so ``_topk_rows_exact`` is ``_topk_rows`` on
    these maps."""
    n = flat.shape[0]
    bad_np = np.flatnonzero(~clean)
    bad = torch.from_numpy(bad_np)
    sub = flat.index_select(0, bad)  # (b, H, W)
    sub_max = sub.amax(-1)
    every = torch.arange(bad.shape[0])
    probe = min(PROBE_MAPS, n)
    head = int(np.searchsorted(bad_np, probe))  # the maps of the probe among them (bad is sorted)
    known = int((escape[:probe] & clean[:probe]).sum())  # the probe's slow maps among the clean ones
    if probe < n and known <= probe / 2 < known + head:  # the other maps decide the probe: their window
        known += int(_topk_window_flags(sub[:head], k, rad, sub_max[:head])[4].sum())
    if probe < n and known > probe / 2:  # the first release's probe failed: the row search for every map
        fill = _topk_rows(sub, k, sub_max, every)
    else:
        wv, wx, wy, _, sub_slow, sub_unique = _topk_window_flags(sub, k, rad, sub_max)
        slow_share = (int((escape & clean).sum()) + int(sub_slow.sum())) / n
        need = (sub_slow | ~sub_unique) if slow_share > 0.5 else sub_slow
        fill = (wv, wx, wy)
        if need.any():
            which = need.nonzero().squeeze(-1)
            fill = tuple(t.index_copy(0, which, s) for t, s in zip(fill, _topk_rows(sub, k, sub_max, which)))
    return tuple(t.index_copy_(0, bad, f) for t, f in zip(out, fill))  # (out: the kernel's, written over)


def _topk_torch(flat: Tensor, k: int, rad: int) -> tuple[Tensor, Tensor, Tensor]:
    """``topk_cells`` on contiguous maps (n, H, W), 0 < k < H * W, with torch operations alone -> (n, k) values, ix,
    iy; see there."""
    n, h, w = flat.shape
    row_max = flat.amax(-1)  # (n, H): the one full pass
    everything = torch.arange(n, device=flat.device)
    if 2 * rad + 1 <= min(h, w):
        probe = min(PROBE_MAPS, n)
        first = _topk_window_flags(flat[:probe], k, rad, row_max[:probe])
        if probe == n or first[4].float().mean() <= 0.5:  # the first release's probe passed: the window
            parts = [first] + ([_topk_window_flags(flat[probe:], k, rad, row_max[probe:])] if probe < n else [])
            vals, ix, iy, good, slow, unique = (torch.cat(t) if len(parts) > 1 else t[0] for t in zip(*parts))
            if good.all():
                return vals, ix, iy
            # the row search where the first release took it and its result could differ from the window's
            need = (slow | ~unique) if slow.float().mean() > 0.5 else slow
            which = (~good & need).nonzero().squeeze(-1)
            if which.numel():
                out = _topk_rows_exact(flat, k, row_max, which)
                vals, ix, iy = (t.index_copy(0, which, s) for t, s in zip((vals, ix, iy), out))
            return vals, ix, iy
    return _topk_rows_exact(flat, k, row_max, everything)  # the first release took the row search for every map


def _topk_rows_exact(flat: Tensor, k: int, row_max: Tensor, which: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``_topk_rows``'s result for the maps ``which``: ``_topk_merge``'s where the k + 1 best values are distinct,
    ``_topk_rows``'s own (its order of ties) elsewhere."""
    vals, ix, iy, clean = _topk_merge(flat, k, row_max, which)
    if not clean.all():
        bad = (~clean).nonzero().squeeze(-1)
        out = _topk_rows(flat, k, row_max, which.index_select(0, bad))
        vals, ix, iy = (t.index_copy(0, bad, s) for t, s in zip((vals, ix, iy), out))
    return vals, ix, iy


def _topk_window_flags(flat: Tensor, k: int, rad: int, row_max: Tensor) -> tuple[Tensor, ...]:
    """``_topk_window``'s window and flags, cheaper: flat (n, H, W) contiguous, row_max (n, H) = flat.amax(-1) ->
    (values, ix, iy) (n, k) its window result (torch.topk's order of ties), good (n,) where that is the map's one
    top k (the k best distinct and above every other cell), and the first release's slow and unique flags (n,)."""
    n, h, w = flat.shape
    dev = flat.device
    p = 2 * rad + 1
    iy = _first_argmax(row_max)  # (n,)
    span = torch.arange(p, device=dev)
    top = iy.clamp(rad, h - 1 - rad) - rad  # first row of the window, kept inside the map
    rows = top[:, None] + span  # (n, P)
    first_row = torch.arange(n, device=dev) * h
    band = flat.view(n * h, w).index_select(0, (first_row[:, None] + rows).view(-1)).view(n, p * w)  # our copy
    ix = _first_argmax(band.view(n * p, w).index_select(0, torch.arange(n, device=dev) * p + iy - top))
    left = ix.clamp(rad, w - 1 - rad) - rad
    cells = (span[:, None] * w + span).view(-1) + left[:, None]  # (n, P * P): the window in the band, row-major
    cells += (torch.arange(n, device=dev) * (p * w))[:, None]  # ... in the flattened band
    win = band.view(-1).index_select(0, cells.view(-1)).view(n, p * p)
    vals, idx = win.topk(k, dim=-1)  # (torch.topk's cost grows with k: k + 1 would cost twice as much)
    # the k best are the map's top k, in one order, when they are distinct and above every other cell: in the band
    # (our copy, with the k best written over) and in the other rows
    band.view(-1).index_fill_(0, cells.gather(-1, idx).view(-1), -math.inf)
    other_rows = row_max.view(-1).index_fill(0, (first_row[:, None] + rows).view(-1), -math.inf).view(n, h).amax(-1)
    good = (vals[:, :-1] > vals[:, 1:]).all(-1) & (vals[:, -1] > torch.maximum(band.amax(-1), other_rows))
    ix, iy = left[:, None] + idx % p, top[:, None] + torch.div(idx, p, rounding_mode="floor")
    # the first release's flags: slow (a value outside the window may be among the k best) and unique (the
    # window's k best distinct and above its other values); good maps have neither problem
    slow = torch.zeros(n, dtype=torch.bool, device=dev)
    unique = torch.ones(n, dtype=torch.bool, device=dev)
    if not good.all():
        bad = (~good).nonzero().squeeze(-1)
        band.view(-1).index_fill_(0, cells.index_select(0, bad).view(-1), -math.inf)  # the whole window, there
        bv = vals.index_select(0, bad)
        kth = bv[:, -1]
        slow[bad] = ~(kth > torch.maximum(band.index_select(0, bad).amax(-1), other_rows.index_select(0, bad)))
        unique[bad] = (bv[:, :-1] > bv[:, 1:]).all(-1) & ((win.index_select(0, bad) >= kth[:, None]).sum(-1) == k)
    return vals, ix, iy, good, slow, unique


def _topk_merge(flat: Tensor, k: int, row_max: Tensor, which: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The top k of the maps ``which`` (m,) of flat (n, H, W) (contiguous; row_max (n, H) = flat.amax(-1)), where
    their k + 1 best values are distinct: k rounds of taking the best of the rows' current maxima, from one row, whose
    current maximum then drops to its next value. Every step is elementwise over the maps (no ``torch.topk``).
    Returns (m, k) values, ix, iy and clean (m,): the maps whose k + 1 best values are distinct (where the result is
    the one top-k; elsewhere it is not to be used: a tie, or a NaN)."""
    n, h, w = flat.shape
    m = which.shape[0]
    dev = flat.device
    rows2d = flat.view(n * h, w)
    cur = row_max.index_select(0, which).t().contiguous()  # (H, m): each row's best value not yet taken
    base = which * h
    along = torch.arange(m, device=dev)
    acc = torch.float32 if (w + 1) * w * w < 2**24 else torch.float64  # exact integer sums
    row_ids = torch.arange(h, device=dev, dtype=torch.float32 if h < 2**24 else torch.float64)[:, None]
    weights = 1 + (w + 1) * torch.arange(w, device=dev, dtype=acc)  # count + (W + 1) * column of a value
    vals = torch.empty(k + 1, m, dtype=flat.dtype, device=dev)
    ix = torch.empty(k, m, dtype=torch.long, device=dev)
    iy = torch.empty(k, m, dtype=torch.long, device=dev)
    single = torch.ones(m, dtype=torch.bool, device=dev)
    at_row = torch.empty(h, m, dtype=row_ids.dtype, device=dev)
    at_col = torch.empty(m, w, dtype=acc, device=dev)
    below = torch.empty(m, w, dtype=flat.dtype, device=dev)
    row = torch.empty(m, w, dtype=flat.dtype, device=dev)  # (buffers: fresh memory each round costs page faults)
    nxt = torch.empty(m, dtype=flat.dtype, device=dev)
    for r in range(k):
        v = torch.amax(cur, 0, out=vals[r])  # (m,) the best value left
        # a row that holds it (the last, on ties: then the tied row keeps it and the next round sees it again)
        j = torch.eq(cur, v, out=at_row).mul_(row_ids).amax(0).long()
        torch.index_select(rows2d, 0, base + j, out=row)  # (m, W)
        s = torch.eq(row, v[:, None], out=at_col).mul_(weights).sum(-1).long()  # count + (W + 1) * its column
        single &= s % (w + 1) == 1  # one cell of that row holds it (not NaN, no tie within the row)
        torch.div(s, w + 1, rounding_mode="floor", out=ix[r])
        iy[r] = j
        # the row's next value: its best one below v (+inf where below, -inf elsewhere, then the minimum)
        torch.lt(row, v[:, None], out=below).sub_(0.5).mul_(math.inf)
        cur.view(-1).index_copy_(0, j * m + along, torch.amax(torch.minimum(row, below, out=below), -1, out=nxt))
    torch.amax(cur, 0, out=vals[k])  # the (k + 1)-th value
    clean = single & (vals[:-1] > vals[1:]).all(0)
    return vals[:k].t().contiguous(), ix.t().contiguous(), iy.t().contiguous(), clean


def _topk_window(maps: Tensor, k: int, rad: int, row_max: Tensor) -> tuple[Tensor, ...]:
    """Top-k in the (2 rad + 1)^2 window at each map's argmax: maps (n, H, W), row_max (n, H) ->
    (values, ix, iy, slow, unique): slow (n,) marks the maps where a value outside the window may belong to the
    top k (their results are not valid); unique() returns (n,) the maps whose k best window values are distinct
    and above every other window value (then the top-k cells and their order do not depend on how they are found).
    """
    h, w = maps.shape[-2:]
    iy = row_max.argmax(-1)  # (n,)
    p = 2 * rad + 1
    span = torch.arange(p, device=maps.device)
    top = iy.clamp(rad, h - 1 - rad) - rad  # first row of the window, kept inside the map
    rows = top[..., None] + span  # (n, P)
    band = select_rows(maps, rows)  # (n, P, W): the window's rows, the argmax row among them
    n = iy.shape[0]
    ix = band.view(n * p, w).index_select(0, torch.arange(n, device=maps.device) * p + iy - top).argmax(-1)
    cols = (ix.clamp(rad, w - 1 - rad) - rad)[..., None] + span
    win_cols = cols[..., None, :].expand(*cols.shape[:-1], p, p)
    win = band.gather(-1, win_cols).flatten(-2)  # (n, P * P)
    vals, idx = win.topk(k, dim=-1)
    kth = vals[..., -1:]

    def unique() -> Tensor:  # computed only when asked (the first release's slow path for most maps)
        return (vals[..., :-1] > vals[..., 1:]).all(-1) & ((win >= kth).sum(-1) == k)

    # the best value outside the window: in the window's rows but other columns (the band, our own copy, with
    # -inf written over the window), or in other rows
    outside = band.scatter_(-1, win_cols, -math.inf).flatten(-2).amax(-1)
    outside = torch.maximum(outside, row_max.scatter(-1, rows, -math.inf).amax(-1))
    slow = ~(kth[..., 0] > outside)  # NaN maps go the slow way too
    return vals, cols.gather(-1, idx % p), rows.gather(-1, torch.div(idx, p, rounding_mode="floor")), slow, unique


def _topk_rows(maps: Tensor, k: int, row_max: Tensor, which: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``topk_cells`` for any map: search the k rows with the largest maxima. maps (n, H, W),
    row_max (n, H) = maps.amax(-1), which (m,) the maps to search; returns (m, k) values, ix, iy."""
    h, w = maps.shape[-2:]
    rows = row_max.index_select(0, which).topk(min(k, h), dim=-1).indices  # (m, k')
    cand = maps.reshape(-1, w).index_select(0, (which[:, None] * h + rows).flatten()).view(*rows.shape, w)
    vals, idx = cand.flatten(-2).topk(k, dim=-1)
    return vals, idx % w, rows.gather(-1, torch.div(idx, w, rounding_mode="floor"))


def gather_patches(maps: Tensor, ix: Tensor, iy: Tensor, radius: int) -> Tensor:
    """Square patches of side 2*radius+1 centred on (ix, iy); indices outside the map are clamped
    (edge replication). maps (..., H, W), ix/iy (...) -> (..., P, P)."""
    h, w = maps.shape[-2:]
    off = torch.arange(-radius, radius + 1, device=maps.device)
    rows = (iy[..., None] + off).clamp(0, h - 1)  # (..., P)
    cols = (ix[..., None] + off).clamp(0, w - 1)
    flat = rows[..., :, None] * w + cols[..., None, :]  # (..., P, P)
    p = off.numel()
    return maps.flatten(-2).gather(-1, flat.flatten(-2)).view(*ix.shape, p, p)


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

    def chunk(m: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        _, ix, iy = _max_2d(m)
        return ix, iy, gather_patches(m, ix, iy, 1)  # (n, 3, 3), centre at [1, 1]

    ix, iy, p = by_chunks(chunk, maps, chunk_bytes=0)
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


def _smooth_exact(patch: Tensor, kern: Tensor) -> Tensor:
    """The 3x3 'valid' separable convolution of (..., P, P) patches [y, x] with ``kern`` (P - 2 taps) -> (..., 3, 3),
    summed as the first release summed it (``torch.sum`` over the taps, rows first)."""
    taps = kern.numel()
    win = patch.unfold(-1, taps, 1)  # (..., P, 3, taps)
    rows = (win * kern).sum(-1)  # (..., P, 3)
    win = rows.transpose(-1, -2).unfold(-1, taps, 1)  # (..., 3, 3, taps) [x, y, taps]
    return (win * kern).sum(-1).transpose(-1, -2)


def _taps_sum(t: Tensor) -> Tensor:
    """Sum over the first dim of t (taps, ...) in the order in which torch's CPU ``sum`` adds a short row (``row_sum``
    in ATen's SumKernel.cpp): 4 interleaved partial sums over the first 4 (taps // 4) terms, the rest added into the
    first, then the four together (exact for taps < 64). Each step is one elementwise operation over all the rest of
    the tensor, so it runs vectorised, and it gives the bits of ``.sum(-1)`` over a row of those terms. The sums are
    accumulated in place, in ``t`` (which they overwrite; the result is a view of t[0]): no new memory to fault in."""
    taps = t.shape[0]
    m = taps // 4
    part = t[0:4]
    for i in range(1, m):
        part.add_(t[4 * i:4 * i + 4])
    acc = t[0]
    for i in range(4 * m if m else 1, taps):
        acc.add_(t[i])
    for c in range(1, 4 if m else 1):
        acc.add_(part[c])
    # torch starts each partial sum at 0 and adds the result to a zeroed output: only the sign of a zero sum
    # depends on those additions of 0, and the last one (kept) makes it +0 as torch's does
    return acc.add_(0.0)


def _smooth_in_order(pt: Tensor, kern: Tensor) -> Tensor:
    """``_smooth_exact`` (bit for bit) on patches laid out with the maps innermost, so that every step is one
    vectorised elementwise operation over the maps: pt (C, P, P, m) [chunk, y, x, map] -> (C, 3, 3, m)."""
    taps = kern.numel()
    c, size, _, m = pt.shape
    k = kern.view(taps, 1, 1, 1, 1)
    terms = _scratch("dark_terms", (taps, c, size, 3, m), pt.dtype, pt.device)
    torch.mul(pt.unfold(2, taps, 1).permute(4, 0, 1, 2, 3), k, out=terms)  # [tap, chunk, y, x, map]
    rows = _taps_sum(terms)  # (C, P, 3, m), in terms[0]
    free = terms.view(-1)[c * size * 3 * m:]  # the rest of that memory, free again
    terms = free[:taps * c * 9 * m].view(taps, c, 3, 3, m)
    torch.mul(rows.unfold(1, taps, 1).permute(4, 0, 1, 2, 3), k, out=terms)  # [tap, chunk, y, x, map]
    return _taps_sum(terms)


def _dark_patches_raw(maps: Tensor, r: int, kern: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """DARK's reads for ``border="raw"``: chunk by chunk (``DARK_CHUNK_BYTES`` on the CPU, one chunk elsewhere) the
    argmax pass, then while the chunk is in the cache one (2r+3)^2 patch per map, copied by one ``index_select``
    with the maps innermost (the patch's corner clamped so that it lies inside the map: where it had to move, the
    map does not fit and its smoothed values are not used). Then the smoothing of every patch at once
    (``_smooth_in_order``: the first release's sums, bit for bit) and the raw 3x3 stencil, read from the patch.
    maps (..., H, W) -> (ix, iy, lg): lg (..., 3, 3) the log of the smoothed 3x3 around the argmax where the
    smoothing patch fits in the map, elsewhere the log of the map's own 3x3 at the argmax moved one cell inside the
    map (``dark_decode``'s ``border="raw"`` stencils, computed here only for the maps that need them)."""
    h, w = maps.shape[-2:]
    lead = maps.shape[:-2]
    flat = maps.reshape(-1, h, w)
    if not flat.is_contiguous():
        flat = flat.contiguous()
    kernel = _compiled.dark_kernel() if kern.numel() < 64 else None
    if kernel is not None and _numpy_can_take(flat):  # compiled: the argmax and stencils of a chunk, one call each
        return _dark_compiled(kernel, flat, r, kern, eps, lead)
    n, size = flat.shape[0], 2 * r + 3
    dev = flat.device
    ix = torch.empty(n, dtype=torch.long, device=dev)
    iy = torch.empty(n, dtype=torch.long, device=dev)
    step = n
    if dev.type == "cpu":  # chunk by chunk: the patches are copied while the chunk is in the cache
        step = min(n, max(1, DARK_CHUNK_BYTES // (h * w * flat.element_size())))
    chunks = -(-n // step)
    pt = _scratch("dark_patches", (chunks, size, size, step), flat.dtype, dev)  # [chunk, y, x, map]: maps innermost
    # the patch's corner (clamped inside the map) from the argmax cell, by table; flat index within a chunk
    corner_y = ((torch.arange(h, device=dev) - (r + 1)).clamp(0, h - size) * w)
    corner_x = (torch.arange(w, device=dev) - (r + 1)).clamp(0, w - size)
    first_cells = torch.arange(step, device=dev) * (h * w)
    square = (torch.arange(size, device=dev)[:, None] * w + torch.arange(size, device=dev)).view(-1, 1)  # (P*P, 1)
    if _numpy_can_take(flat):  # numpy: its argmax pass and its small steps cost less per chunk
        _dark_chunks_numpy(flat, step, pt, ix, iy, corner_y, corner_x, square, first_cells)
    else:  # torch (the GPU, where the whole batch is one chunk)
        row_max = torch.empty(n, h, dtype=flat.dtype, device=dev)
        first_rows = torch.arange(step, device=dev) * h
        for ci, s in enumerate(range(0, n, step)):
            e = min(n, s + step)
            m = flat[s:e]
            rm = torch.amax(m, -1, out=row_max[s:e])  # (c, H): the one pass over the chunk
            cy = torch.argmax(rm, -1, out=iy[s:e])
            row = m.reshape(-1, w).index_select(0, first_rows[:e - s] + cy)  # (c, W): the argmax row
            cx = torch.argmax(row, -1, out=ix[s:e])
            corner = corner_y.index_select(0, cy).add_(corner_x.index_select(0, cx)).add_(first_cells[:e - s])
            if e - s < step:  # the last chunk: its columns past the maps repeat the last map's patch
                corner = torch.cat([corner, corner[-1:].expand(step - (e - s))])
            torch.index_select(m.reshape(-1), 0, (square + corner).view(-1), out=pt[ci].view(-1))
    y0 = corner_y.index_select(0, iy) // w
    x0 = corner_x.index_select(0, ix)
    if dev.type == "cpu" and kern.numel() < 64:  # the order of torch's CPU sums
        smooth = _smooth_in_order(pt, kern).permute(0, 3, 1, 2).reshape(-1, 3, 3)[:n]  # (n, 3, 3) [map, y, x]
    else:
        smooth = _smooth_exact(pt[0].permute(2, 0, 1).contiguous(), kern)
    lg = smooth.clamp_min(eps).log()  # (n, 3, 3), new memory (smooth views the scratch buffer)
    # where the smoothing patch leaves the map: the log of the raw 3x3 stencil at the argmax moved one cell inside
    # the map, read from the patch, for those maps only (usually few)
    fits = _patch_fits(ix, iy, r, h, w)
    if not bool(fits.all()):
        bad = (~fits).nonzero().squeeze(-1)
        bx, by = ix.index_select(0, bad), iy.index_select(0, bad)
        sy = by.clamp(1, h - 2) - 1 - y0.index_select(0, bad)  # the stencil's corner in the patch
        sx = bx.clamp(1, w - 2) - 1 - x0.index_select(0, bad)
        off = torch.arange(3, device=dev)
        cell = ((sy[:, None] + off) * size)[:, :, None] + (sx[:, None] + off)[:, None, :]  # (b, 3, 3)
        first = torch.div(bad, step, rounding_mode="floor") * (size * size * step) + bad % step  # cell 0 of each patch
        raw = pt.view(-1).index_select(0, (first[:, None, None] + cell * step).view(-1)).view(-1, 3, 3)
        lg = lg.index_copy(0, bad, raw.clamp_min(eps).log())
    return ix.view(lead), iy.view(lead), lg.reshape(*lead, 3, 3)


def _dark_compiled(kernel, flat: Tensor, r: int, kern: Tensor, eps: float,
                   lead: torch.Size) -> tuple[Tensor, Tensor, Tensor]:
    """``_dark_patches_raw`` with the compiled kernel (``_compiled.dark_kernel``): per chunk of ``DARK_KERNEL_MAPS``
    maps numpy's flat argmax (the one pass: the first maximum, the first NaN), then the kernel reads each map's
    smoothing patch (or raw stencil) while the chunk is in the cache and sums it in torch's order: the same
    (ix, iy, lg), bit for bit. flat (n, H, W) float32 contiguous."""
    n, h, w = flat.shape
    a = flat.detach().numpy()
    cells = a.reshape(n, h * w)
    idx = np.empty(n, np.int64)
    ix, iy = np.empty(n, np.int64), np.empty(n, np.int64)
    stencils = np.empty((n, 3, 3), np.float32)
    taps = kern.detach().cpu().numpy()
    step = max(1, DARK_KERNEL_BYTES // (h * w * 4))
    for s in range(0, n, step):
        e = min(n, s + step)
        np.argmax(cells[s:e], axis=-1, out=idx[s:e])
        kernel(a[s:e], idx[s:e], r, taps, ix[s:e], iy[s:e], stencils[s:e])
    lg = torch.from_numpy(stencils).clamp_min(eps).log()  # the smoothed 3x3, or the raw one, as _dark_patches_raw
    return torch.from_numpy(ix).view(lead), torch.from_numpy(iy).view(lead), lg.view(*lead, 3, 3)


def _patch_fits(ix: Tensor, iy: Tensor, r: int, h: int, w: int) -> Tensor:
    """Where DARK's smoothing patch (radius r + 1 around the argmax (ix, iy)) lies inside the (H, W) map."""
    return (ix > r) & (ix < w - 1 - r) & (iy > r) & (iy < h - 1 - r)


def _dark_chunks_numpy(flat: Tensor, step: int, pt: Tensor, ix: Tensor, iy: Tensor, corner_y: Tensor,
                       corner_x: Tensor, square: Tensor, first_cells: Tensor) -> None:
    """``_dark_patches_raw``'s loop in numpy (same cells, same copies): per chunk of ``step`` maps the flat argmax
    (``_numpy_argmax``'s), then the patches at once with ``np.take`` into pt[chunk] (maps innermost); writes ix, iy
    (n,) and pt (C, P, P, step). numpy's per-call overhead is a few microseconds against torch's tens, and the chunk
    loop makes ~6 calls per 4 MB chunk."""
    n, h, w = flat.shape
    maps = flat.detach().numpy().reshape(n, h * w)
    ixn, iyn, ptn = ix.numpy(), iy.numpy(), pt.numpy()
    cy_tab, cx_tab, sq = corner_y.numpy(), corner_x.numpy(), square.numpy()  # (H,), (W,), (P*P, 1)
    first = first_cells.numpy()  # (step,) cell 0 of each map in a chunk
    for ci, s in enumerate(range(0, n, step)):
        e = min(n, s + step)
        m = maps[s:e]
        a = np.argmax(m, axis=-1)  # (c,): the one pass over the chunk
        np.floor_divide(a, w, out=iyn[s:e])
        np.remainder(a, w, out=ixn[s:e])
        corner = cy_tab[iyn[s:e]] + cx_tab[ixn[s:e]] + first[:e - s]
        if e - s < step:  # the last chunk: its columns past the maps repeat the last map's patch
            corner = np.concatenate([corner, np.repeat(corner[-1:], step - (e - s))])
        np.take(m.reshape(-1), (sq + corner).reshape(-1), out=ptn[ci].reshape(-1))


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
    if h < 3 or w < 3:  # no 3x3 stencil fits: nothing to refine
        ix, iy = argmax_2d(maps)
        return torch.stack([ix, iy], -1).to(maps.dtype)
    r = max(1, math.ceil(3 * sigma))

    kern = torch.exp(-torch.arange(-r, r + 1, device=maps.device, dtype=maps.dtype) ** 2 / (2 * sigma**2))
    kern = kern / kern.sum()
    raw_done = False
    size = 2 * r + 3
    # the fast CPU path writes into preallocated buffers: not under autograd, nor under torch.export (ONNX),
    # where the gathered-patch path below (same results) exports as plain tensor ops
    if (border == "raw" and h >= size and w >= size and maps.numel() > 0 and not _needs_grad(maps)
            and not torch.compiler.is_exporting()):
        ix, iy, lg = _dark_patches_raw(maps, r, kern, eps)  # the raw stencils already where the patch does not fit
        raw_done = True
    else:
        ix, iy = argmax_2d(maps)  # (B, K)
        patch = gather_patches(maps, ix, iy, r + 1)  # (B, K, 2r+3, 2r+3), edge-replicated where it leaves the map
        lg = _smooth_exact(patch, kern).clamp_min(eps).log()  # (B, K, 3, 3) [y, x]
    cx, cy = ix, iy
    if border == "raw":
        fits = _patch_fits(ix, iy, r, h, w)  # smoothing patch inside the map
        sx, sy = ix.clamp(1, w - 2), iy.clamp(1, h - 2)  # raw stencil centre, inside the map
        if not raw_done:
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
    maps = maps.float()
    h, w = maps.shape[-2:]

    buf = []

    def chunk(m: Tensor) -> tuple[Tensor, Tensor]:  # clipped into a buffer in the cache, summed before it leaves it
        if not buf:
            buf.append(torch.empty_like(m))  # one buffer for every chunk: no fresh pages per chunk
        p = torch.clamp_min(m, 0, out=buf[0][: m.shape[0]])
        return p.sum(-2), p.sum(-1)

    # (B, K, W) marginal over rows, (B, K, H)
    if maps.is_contiguous() and not _needs_grad(maps):
        px, py = by_chunks(chunk, maps)
    else:  # one go: a contiguous copy would sum in another order, and autograd cannot write into a buffer
        p = maps.clamp_min(0)
        px, py = p.sum(-2), p.sum(-1)
    total = px.sum(-1).clamp_min(1e-12)
    ux = (px * grid_coords(w, device=px.device)).sum(-1) / total
    uy = (py * grid_coords(h, device=px.device)).sum(-1) / total
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

    def __init__(self, *, input_size: int = 256, heatmap_size: int = 64, sigma: float = 1.5,
                 method: str | None = None):
        super().__init__(input_size=input_size, heatmap_size=heatmap_size)
        self.sigma = float(sigma)
        if method is not None:  # the default decoder (e.g. "quarter", HRNet-facial's, for its converted weights)
            if method not in type(self).methods:
                raise ValueError(f"gaussian method must be one of {type(self).methods}, got {method!r}")
            self.methods = (method,) + tuple(m for m in type(self).methods if m != method)

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
