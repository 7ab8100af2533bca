"""Compiled CPU kernels for the decoders (numba), where torch's vectorised operations cannot stay near one memory pass.

``topk_cells`` (H3R's top-k decoder) needs the k largest cells of every map. With torch alone that is one max-reduction
and then a few dozen small operations per batch (a window around the peak, or k rounds of a merge over the row
maxima when the k best cells are spread over the map, as in a trained network's logits): 3-4.5x one memory pass on
one core (BENCHMARKS.md, decode-cpu). The kernel here reads each map once and keeps the work after that proportional
to the few cells that can be among the k best:

1. one vectorised pass over the map: the maximum of every 8-row band of every column (and a NaN flag);
2. a lower bound t on the k-th largest value, each the minimum of k distinct cells: the maxima of the k columns
   around the peak's column, the 3x3 cells around the peak (k <= 9), and, where those leave more than 2k columns
   in play (no clear peak), the k-th largest column maximum;
3. every cell >= t, found in the (band, column) blocks whose maximum reaches t, goes through a sorted buffer of the
   k + 1 best.

It returns the k best values in descending order with their flat cell indices, and ``clean``: the maps whose k + 1
best values are distinct and free of NaN. There the top k is one set of cells in one order, whichever way it is
found (``torch.topk``'s too); the caller takes every other map (ties, NaN) the way it did before.

numba is a dependency of hihlib; where it cannot be imported (a Python that numba does not support yet), or with
``ENABLED = False``, ``topk_kernel()`` returns None and the decoders use their torch paths, which give the same
coordinates (tests/test_decoder_pinning.py runs both). The first call compiles the kernel (about a second), cached on
disk after that (numba's ``cache=True``).
"""

from __future__ import annotations

import numpy as np

#: Use the compiled kernels where numba imports (tests switch it off to check the torch paths).
ENABLED = True

_KERNELS: dict[str, object] = {}


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
    cols = np.empty(w, np.int64)  # the columns in play
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
        # (the columns in play, the peak's first, so that the buffer fills early with large values and then keeps
        # out whole blocks; cnt counts the cells >= t met, up to k + 1)
        ncand = 1
        cols[0] = cs
        for c in range(w):
            if cm[c] >= t and c != cs:
                cols[ncand] = c
                ncand += 1
        cnt = 0
        for j in range(ncand):
            c = cols[j]
            for b in range(nb):
                if not bm[b, c] >= t or (cnt > k and not bm[b, c] > bv[k]):
                    continue
                for y in range(b * bh, min(h, b * bh + bh)):
                    x = m[y, c]
                    if x >= t:
                        cnt += 1
                        if x > bv[k]:
                            q = k
                            while q > 0 and bv[q - 1] < x:
                                bv[q] = bv[q - 1]
                                bi[q] = bi[q - 1]
                                q -= 1
                            bv[q] = x
                            bi[q] = y * w + c
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


def topk_kernel():
    """The compiled ``_topk_blocks``, or None where numba is unavailable or ``ENABLED`` is False."""
    if not ENABLED:
        return None
    if "topk" not in _KERNELS:
        try:
            import numba
        except ImportError:  # pragma: no cover (numba is a dependency)
            _KERNELS["topk"] = None
        else:
            try:  # compiled code cached on disk: beside this file, or in the user's cache folder
                _KERNELS["topk"] = numba.njit(nogil=True, boundscheck=False, cache=True)(_topk_blocks)
            except RuntimeError:  # no writable place for the cache: compiled in each process
                _KERNELS["topk"] = numba.njit(nogil=True, boundscheck=False)(_topk_blocks)
    return _KERNELS["topk"]
