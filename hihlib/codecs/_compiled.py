"""Compiled CPU kernels for the decoders (numba), where torch's vectorised operations cannot stay near one memory pass.

``topk_cells`` (H3R's top-k decoder) needs the k largest cells of every map. With torch alone that is one max-reduction
and then a few dozen small operations per batch (a window around the peak, or k rounds of a merge over the row
maxima when the k best cells are spread over the map, as in a trained network's logits): 3-4.5x one memory pass on
one core (BENCHMARKS.md, decode-cpu). The kernel here reads each map once and keeps the work after that proportional
to the few cells that can be among the k best:

1. one vectorised pass over the map: the maximum of every 8-row band of every column (a NaN wins: np.maximum);
2. a lower bound t on the k-th largest value, each the minimum of k distinct cells: the maxima of the k columns
   around the peak's column, the 3x3 cells around the peak (k <= 9), and, where those leave more than 2k columns
   in play (no clear peak), the k-th largest column maximum;
3. every cell >= t, found in the (band, column) blocks whose maximum reaches t (collected without branches, which
   would be mispredicted a few dozen times per map), goes through a sorted buffer of the k + 1 best.

It returns the k best values in descending order with their cells, and ``clean``: the maps whose k + 1 best values
are distinct and free of NaN. There the top k is one set of cells in one order, whichever way it is found
(``torch.topk``'s too); the caller takes every other map (ties, NaN) the way it did before.

``dark_decode`` (DARK) needs the argmax of every map and a (2r + 3)^2 patch around it, smoothed into a 3x3 stencil in
the order of torch's sums. ``_dark_stencils`` takes numpy's argmax of a small chunk of maps (numpy's SIMD argmax is
about one memory pass) and, while the chunk is in the core's cache, copies each patch and sums it for 16 maps at a
time in SIMD lanes, each product and sum as torch rounds it: the same bits as the torch path, without its 20-odd
passes over the patches' intermediate terms.

numba is a dependency of hihlib; where it cannot be imported (a Python that numba does not support yet), or with
``ENABLED = False``, ``topk_kernel()`` and ``dark_kernel()`` return None and the decoders use their torch paths, which
give the same coordinates (tests/test_decoder_pinning.py runs both). A kernel's first call compiles it (a few seconds),
cached on disk after that (numba's ``cache=True``, beside this file or in the user's cache folder).
"""

from __future__ import annotations

import numpy as np

#: Use the compiled kernels where numba imports (tests switch it off to check the torch paths).
ENABLED = True

_KERNELS: dict[str, object] = {}


def _insert_best(bv, bi, k, x, cell):  # pragma: no cover (numba compiles it; one test runs it)
    """Insert the value x of flat cell ``cell`` into the buffer bv (k + 1,) kept in descending order (bi its cells),
    the smallest falling out; x > bv[k]."""
    p = k
    while p > 0 and bv[p - 1] < x:
        bv[p] = bv[p - 1]
        bi[p] = bi[p - 1]
        p -= 1
    bv[p] = x
    bi[p] = cell


def _topk_blocks(a, k, rad, vals, ix, iy, clean, escape):  # pragma: no cover (numba compiles it; one test runs it)
    """a (n, H, W) float32/float64 C-contiguous, 0 < k < H * W -> writes vals (n, k) descending, ix, iy (n, k) int64
    their cells, clean (n,) bool (k + 1 best distinct and no NaN in the map) and escape (n,) bool: on a clean map,
    whether one of its k best cells lies outside the (2 rad + 1)^2 window around its maximum, moved inside the map
    (the window of ``hihlib.codecs.gaussian._topk_window_flags``; rad >= 0, 2 rad + 1 <= min(H, W))."""
    n, h, w = a.shape
    bh = 8
    nb = (h + bh - 1) // bh
    bm = np.empty((nb, w), a.dtype)  # maximum of each 8-row band of each column
    cm = np.empty(w, a.dtype)  # column maxima
    rank = np.empty(w, np.int32)
    cols = np.empty(w + 1, np.int64)  # the columns in play
    blk = np.empty(nb * w + 1, np.int64)  # the (band, column) blocks in play
    cap = 64
    cv = np.empty(cap + 1, a.dtype)  # the cells >= t
    ci = np.empty(cap + 1, np.int64)
    bv = np.empty(k + 1, a.dtype)  # the k + 1 best so far, descending
    bi = np.empty(k + 1, np.int64)
    for i in range(n):
        m = a[i]
        # 1. band maxima, column by column in SIMD lanes (np.maximum: a NaN wins, so a NaN map has a NaN maximum)
        for b in range(nb):
            y0 = b * bh
            r0 = m[y0]
            for c in range(w):
                bm[b, c] = r0[c]
            for y in range(y0 + 1, min(h, y0 + bh)):
                row = m[y]
                for c in range(w):
                    bm[b, c] = np.maximum(bm[b, c], row[c])
        for c in range(w):
            cm[c] = bm[0, c]
        for b in range(1, nb):
            for c in range(w):
                cm[c] = np.maximum(cm[c], bm[b, c])
        nan = False
        for c in range(w):
            nan |= cm[c] != cm[c]
        # the peak: its column, its band in that column, its row
        cs = 0
        for c in range(1, w):
            if cm[c] > cm[cs]:
                cs = c
        bs = 0
        for b in range(1, nb):
            if bm[b, cs] > bm[bs, cs]:
                bs = b
        ys = bs * bh
        for y in range(bs * bh + 1, min(h, bs * bh + bh)):
            if m[y, cs] > m[ys, cs]:
                ys = y
        # 2. lower bounds on the k-th largest value, each the minimum of k distinct cells
        t = -np.inf
        if w >= k:
            c0 = min(max(cs - k // 2, 0), w - k)  # the k columns around the peak's: their maxima
            t = cm[c0]
            for c in range(c0 + 1, c0 + k):
                t = cm[c] if cm[c] < t else t
        if k <= 9 and h >= 3 and w >= 3:  # the 3x3 cells around the peak
            y0 = min(max(ys - 1, 0), h - 3)
            x0 = min(max(cs - 1, 0), w - 3)
            u = m[y0, x0]
            for y in range(y0, y0 + 3):
                for x in range(x0, x0 + 3):
                    u = m[y, x] if m[y, x] < u else u
            t = u if u > t else t
        if w >= k:
            ncol = 0
            for c in range(w):
                ncol += cm[c] >= t
            if ncol > 2 * k:  # no clear peak: the k-th largest column maximum, by counting ranks
                for c in range(w):
                    rank[c] = 0
                for c2 in range(w):
                    v = cm[c2]
                    for c in range(w):
                        rank[c] += v > cm[c]
                u = np.inf
                for c in range(w):
                    v = cm[c] if rank[c] < k else np.inf
                    u = v if v < u else u
                t = u if u > t else t
        # 3. every cell >= t, in the blocks whose maximum reaches t, through the buffer of the k + 1 best
        for q in range(k + 1):
            bv[q] = -np.inf
            bi[q] = -1
        # (the columns and blocks in play, then their cells >= t, collected without branches: a branch per cell
        # or block would be mispredicted a few dozen times per map)
        ncand = 0
        for c in range(w):
            cols[ncand] = c
            ncand += cm[c] >= t
        nblk = 0
        for j in range(ncand):
            c = cols[j]
            for b in range(nb):
                blk[nblk] = b * w + c
                nblk += bm[b, c] >= t
        cnt = 0
        for q in range(nblk):
            b = blk[q] // w
            c = blk[q] - b * w
            for y in range(b * bh, min(h, b * bh + bh)):
                x = m[y, c]
                slot = min(cnt, cap)
                cv[slot] = x
                ci[slot] = y * w + c
                cnt += x >= t
        for q in range(min(cnt, cap)):
            if cv[q] > bv[k]:
                _insert_best(bv, bi, k, cv[q], ci[q])
        if cnt > cap:  # more cells than the collection holds (a map without a peak): through the buffer one by one
            for q in range(k + 1):
                bv[q] = -np.inf
                bi[q] = -1
            for q in range(nblk):
                b = blk[q] // w
                c = blk[q] - b * w
                for y in range(b * bh, min(h, b * bh + bh)):
                    x = m[y, c]
                    if x >= t and x > bv[k]:
                        _insert_best(bv, bi, k, x, y * w + c)
        ok = (not nan) and cnt >= k
        top = min(max(bi[0] // w, rad), h - 1 - rad) - rad
        left = min(max(bi[0] % w, rad), w - 1 - rad) - rad
        out = False
        for q in range(k):
            vals[i, q] = bv[q]
            y = bi[q] // w
            x = bi[q] - y * w
            iy[i, q] = y
            ix[i, q] = x
            out |= (y < top) | (y > top + 2 * rad) | (x < left) | (x > left + 2 * rad)
        escape[i] = out
        for q in range(k - 1):
            if not bv[q] > bv[q + 1]:
                ok = False
        if cnt > k and not bv[k - 1] > bv[k]:  # the (k + 1)-th, where it is among the cells >= t
            ok = False
        clean[i] = ok


def _sum_taps(src, y, dy, x, dx, k, sums, out, gn):  # pragma: no cover (numba compiles it; one test runs it)
    """out[j] = the sum over t of (src[y + t dy, x + t dx, j] * k[t]) for the maps j < gn, each product rounded to
    float32, the terms added in the order of torch's CPU ``sum`` over a short row (``gaussian._taps_sum``): four
    interleaved partial sums over the first 4 (taps // 4) terms, the rest added into the first, then the four
    together, then + 0 (the sign of a zero sum). src (., ., G) float32, k (taps,) float32, sums (4, G) scratch, out
    (G,). Every loop runs over the maps, innermost: SIMD lanes. taps < 64."""
    taps = k.shape[0]
    m = taps // 4
    if m == 0:
        for j in range(gn):
            sums[0, j] = src[y, x, j] * k[0]
        for t in range(1, taps):
            for j in range(gn):
                sums[0, j] += src[y + t * dy, x + t * dx, j] * k[t]
        for j in range(gn):
            out[j] = sums[0, j] + np.float32(0.0)
        return
    for c in range(4):
        for j in range(gn):
            sums[c, j] = src[y + c * dy, x + c * dx, j] * k[c]
    for i in range(1, m):
        for c in range(4):
            t = 4 * i + c
            for j in range(gn):
                sums[c, j] += src[y + t * dy, x + t * dx, j] * k[t]
    for t in range(4 * m, taps):
        for j in range(gn):
            sums[0, j] += src[y + t * dy, x + t * dx, j] * k[t]
    for j in range(gn):
        out[j] = sums[0, j] + sums[1, j] + sums[2, j] + sums[3, j] + np.float32(0.0)


def _dark_stencils(a, idx, r, kern, ix, iy, out):  # pragma: no cover (numba compiles it; one test runs it)
    """DARK's 3x3 stencils: a (n, H, W) float32 maps, idx (n,) int64 each map's argmax as a flat cell index, r the
    smoothing radius, kern (2r + 1,) float32 taps (2r + 1 < 64) -> writes ix, iy (n,) int64 the argmax cell and out
    (n, 3, 3) float32 [y, x]: where the smoothing patch (radius r + 1 around the argmax) lies inside the map, the 3x3
    around the argmax of the map smoothed by the separable kernel, rows first, each sum in torch's order: bit for bit
    ``gaussian._smooth_in_order`` (products rounded to float32 one by one, then ``_sum_taps``'s order); elsewhere the
    map's own 3x3 at the argmax moved one cell inside the map (``dark_decode``'s raw stencil). By groups of 16 maps
    (one SIMD register of float32): their patches copied with the maps innermost, then every sum over the group."""
    n, h, w = a.shape
    taps = kern.shape[0]
    size = taps + 2
    g = 16
    pt = np.zeros((size, size, g), a.dtype)  # [y, x, map] the group's patches
    rows = np.empty((size, 3, g), a.dtype)  # [y, x, map] smoothed along x
    sums = np.empty((4, g), a.dtype)
    res = np.empty(g, a.dtype)
    for g0 in range(0, n, g):
        gn = min(g, n - g0)
        for j in range(gn):
            i = g0 + j
            m = a[i]
            y = idx[i] // w
            x = idx[i] - y * w
            ix[i] = x
            iy[i] = y
            if r < x < w - 1 - r and r < y < h - 1 - r:
                for py in range(size):
                    row = m[y - r - 1 + py]
                    for px in range(size):
                        pt[py, px, j] = row[x - r - 1 + px]
            else:  # the raw stencil; the group's sums for this map are computed on a stale patch and not used
                sy = min(max(y, 1), h - 2) - 1
                sx = min(max(x, 1), w - 2) - 1
                for oy in range(3):
                    for ox in range(3):
                        out[i, oy, ox] = m[sy + oy, sx + ox]
        for py in range(size):
            for px in range(3):
                _sum_taps(pt, py, 0, px, 1, kern, sums, rows[py, px], gn)  # along x
        for oy in range(3):
            for ox in range(3):
                _sum_taps(rows, oy, 1, ox, 0, kern, sums, res, gn)  # along y
                for j in range(gn):
                    i = g0 + j
                    y = iy[i]
                    x = ix[i]
                    if r < x < w - 1 - r and r < y < h - 1 - r:
                        out[i, oy, ox] = res[j]


def _jit(name: str, fn, *helpers):
    """``fn`` compiled by numba (nogil, cached on disk where there is a writable place), with the module-level
    ``helpers`` it calls compiled first; None where numba is not importable or ``ENABLED`` is False."""
    if not ENABLED:
        return None
    if name not in _KERNELS:
        try:
            import numba
        except ImportError:  # pragma: no cover (numba is a dependency)
            _KERNELS[name] = None
            return None
        g = fn.__globals__
        for h in helpers:  # numba resolves calls through the module's globals: compiled versions there
            if not hasattr(g[h.__name__], "py_func"):
                g[h.__name__] = _njit(numba, h)
        _KERNELS[name] = _njit(numba, fn)
    return _KERNELS[name]


def _njit(numba, fn):
    try:  # compiled code cached on disk: beside this file, or in the user's cache folder
        return numba.njit(nogil=True, boundscheck=False, cache=True)(fn)
    except RuntimeError:  # no writable place for the cache: compiled in each process
        return numba.njit(nogil=True, boundscheck=False)(fn)


def dark_kernel():
    """The compiled ``_dark_stencils``, or None where numba is unavailable or ``ENABLED`` is False."""
    return _jit("dark", _dark_stencils, _sum_taps)


def topk_kernel():
    """The compiled ``_topk_blocks``, or None where numba is unavailable or ``ENABLED`` is False."""
    return _jit("topk", _topk_blocks, _insert_best)
