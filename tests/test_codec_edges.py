"""Every codec and decoder swept across the whole crop, edge pixels included, against independent
closed forms; the peers' coordinate frames; top-k against torch's full top-k."""

import math

import numpy as np
import pytest
import torch

from hihlib.codecs import FRAMES, convert_frame, get_codec, heatmap_to_pixels, pixels_to_heatmap
from hihlib.codecs.gaussian import dark_decode, topk_cells

S, H, STRIDE, SIGMA, D = 256, 64, 4.0, 1.5, 8


def sweep_coords(step=1 / 4):
    """Landmarks across the whole crop on each axis (the other axis mid-map), from the crop's edge -0.5 to
    the far edge 255.5. Offsets of step/2 keep every u off the half-integers (no argmax ties), plus the two
    edges themselves. Returns (1, N, 2) pixels and the swept axis of each landmark (N,)."""
    x = torch.cat([torch.tensor([-0.5]), -0.5 + step / 2 + step * torch.arange(int(S / step)),
                   torch.tensor([S - 0.5])]).double()
    mid = torch.full_like(x, 131.3)
    coords = torch.cat([torch.stack([x, mid], -1), torch.stack([mid, x], -1)])
    axis = torch.cat([torch.zeros_like(x), torch.ones_like(x)]).long()
    return coords[None], axis


COORDS, AXIS = sweep_coords()
U = (COORDS[0] + 0.5) / STRIDE - 0.5  # (N, 2) heatmap cells, hihlib's frame
SWEPT = U.gather(-1, AXIS[:, None])[:, 0]  # the swept coordinate of each landmark
DIST_PX = torch.minimum(COORDS[0] + 0.5, S - 0.5 - COORDS[0]).gather(-1, AXIS[:, None])[:, 0]


def decoded_cells(codec, method):
    out = codec.roundtrip(COORDS.float(), method)[0].double()
    assert ((out >= -0.5) & (out <= S - 0.5)).all(), f"{codec.name}/{method} left the crop"
    return (out + 0.5) / STRIDE - 0.5


def swept(cells):
    return cells.gather(-1, AXIS[:, None])[:, 0]


# ---------------------------------------------------------------- exact decoders
@pytest.mark.parametrize("name,method,options", [
    ("gaussian", "dark", {}),
    ("hih", "expectation", {}),
    ("hih", "expectation", {"frame": "released_hih"}),
])
def test_exact_decoders_are_exact_up_to_the_edge_pixels(name, method, options):
    cells = decoded_cells(get_codec(name, **options), method)
    err_px = (cells - U).abs().max().item() * STRIDE
    assert err_px < 2e-3, err_px


def test_h3r_topk_returns_the_landmark_clamped_onto_the_cell_grid():
    """H3R's cells are centred on 0..H-1: the half cell beyond is clamped (as the random draws are), so
    top-k returns clamp(u, 0, H-1) exactly; the error there is the same as argmax's."""
    cells = decoded_cells(get_codec("h3r"), "topk")
    assert torch.allclose(cells, U.clamp(0, H - 1), atol=1e-5)


# ---------------------------------------------------------------- argmax family, independent closed forms
def test_argmax_rounds_to_the_nearest_cell_everywhere():
    for name in ("gaussian", "h3r"):
        cells = decoded_cells(get_codec(name), "argmax")
        assert torch.equal(cells, torch.floor(U.clamp(0, H - 1) + 0.5)), name


def test_quarter_shifts_toward_the_landmark_except_in_border_cells():
    i = torch.floor(U + 0.5).clamp(0, H - 1)
    interior = (i > 0) & (i < H - 1)
    expected = i + 0.25 * torch.sign(U - i) * interior
    assert torch.equal(decoded_cells(get_codec("gaussian"), "quarter"), expected)


def test_integral_at_the_edge_is_the_mean_of_the_gaussian_cut_by_the_grid():
    g = np.arange(H, dtype=np.float64)
    w = np.exp(-((g[None] - U.numpy()[..., None]) ** 2) / (2 * SIGMA**2))  # (N, 2, H): separable marginals
    expected = torch.from_numpy((w * g).sum(-1) / w.sum(-1))
    cells = decoded_cells(get_codec("gaussian"), "integral")
    assert torch.allclose(cells, expected, atol=2e-4)
    worst = (cells - U).abs().max().item()
    assert 1.2 < worst < 1.23  # the docstring's "at most 1.22 cells" (at the crop's edge, u = -0.5)


# ---------------------------------------------------------------- HIH decoders that are not exact
def _hih_official_expected(frame):
    """The class (i, j) holding u by the paper's interval-class definition (tests/paper_split.py, not the
    codec's rounding formula) read back as its centre i + j/d: what argmax of both exact maps gives."""
    from paper_split import interval_class

    origin = {"hihlib": 0.0, "released_hih": 0.5}[frame]
    i, j = interval_class(U + origin, H, D)
    return i + j / D - origin


@pytest.mark.parametrize("frame", ["hihlib", "released_hih"])
def test_hih_official_is_argmax_of_both_maps_and_never_leaves_the_map(frame):
    cells = decoded_cells(get_codec("hih", frame=frame), "official")
    assert torch.allclose(cells, _hih_official_expected(frame), atol=1e-6)
    # as good as argmax at the edge: at most half a cell off (argmax's worst case), 1/(2d) inside
    err = (cells - U).abs()
    assert err.max() <= 0.5 + 1e-6
    inner = (DIST_PX > 2 * STRIDE)[:, None].expand_as(err)
    assert err[inner].max() <= 1 / (2 * D) + 1e-6


@pytest.mark.parametrize("frame", ["hihlib", "released_hih"])
@pytest.mark.parametrize("method", ["local_mean", "softmax_mean"])
def test_hih_window_means_degrade_gracefully_at_the_edge(frame, method):
    """Biased everywhere (the label is cut by the window or the cell); at the edge at most argmax's half
    cell more than their own worst case in the interior."""
    err = (swept(decoded_cells(get_codec("hih", frame=frame), method)) - SWEPT).abs()
    interior = err[DIST_PX > 3 * STRIDE].max()
    assert interior < 0.11
    assert err.max() <= interior + 0.5


@pytest.mark.parametrize("frame,first_cell", [("hihlib", (-0.5, 1 - 1 / 16)), ("released_hih", (-0.5, 1 - 1 / 16 - 0.5))])
def test_hih_argmax_reads_the_middle_of_what_the_cell_stands_for_inside_the_crop(frame, first_cell):
    cells = swept(decoded_cells(get_codec("hih", frame=frame), "argmax"))
    lo, hi = first_cell
    in_first = SWEPT < hi
    assert torch.allclose(cells[in_first], torch.tensor(0.5 * (lo + hi), dtype=torch.float64))
    err = (cells - SWEPT).abs()
    assert err[in_first].max() <= 0.5 * (hi - lo) + 1e-6   # the border cell owns more than one cell
    assert err[(DIST_PX > 2 * STRIDE)].max() <= 0.5 + 1e-6


def test_hih_integer_cell_is_never_outside_the_map():
    for frame in ("hihlib", "released_hih"):
        i, _ = get_codec("hih", frame=frame).split(torch.tensor([[[-0.5, 255.5], [-40.0, 300.0]]]))
        assert i.min() >= 0 and i.max() <= H - 1


# ---------------------------------------------------------------- DARK near the edge
def test_dark_replicated_border_walks_outward_and_the_raw_border_does_not():
    """The issue's example: x = 1.7 and 254.3 decoded by smoothing an edge-replicated patch go to -2.5 and
    257.5 (outside the crop); the default (raw log map near the edge) returns them exactly."""
    codec = get_codec("gaussian")
    c = torch.tensor([[[1.7, 128.0], [254.3, 128.0]]])
    maps = codec.encode(c)["heatmap"]
    old = codec.to_pixels(dark_decode(maps, SIGMA, border="replicate"))
    assert torch.allclose(old[0, :, 0], torch.tensor([-2.5, 257.5]))
    assert torch.allclose(codec.decode({"heatmap": maps}, "dark"), c, atol=1e-3)


def test_dark_error_against_distance_to_the_edge():
    """The curve that decided the rule: smoothing an edge-replicated patch errs by pixels within 8 px of the
    edge and is exact only from r + 1 = 6 cells (24 px) on; the raw log map is exact everywhere."""
    codec = get_codec("gaussian")
    maps = codec.encode(COORDS.float())["heatmap"]
    err = {b: (swept(codec.to_pixels(dark_decode(maps, SIGMA, border=b))[0].double()) - swept(COORDS[0])).abs()
           for b in ("replicate", "raw")}
    assert err["replicate"][DIST_PX < 8].max() > 4
    assert err["replicate"][(DIST_PX >= 12) & (DIST_PX < 16)].max() > 0.1
    assert err["replicate"][DIST_PX >= 24 + STRIDE / 2].max() < 1e-3
    assert err["raw"].max() < 2e-3


def test_dark_on_noisy_maps_stays_in_the_crop_and_within_a_cell_of_the_argmax():
    g = torch.Generator().manual_seed(0)
    codec = get_codec("gaussian")
    c = torch.cat([torch.rand(1, 200, 2, generator=g) * 12 - 0.5, 243 + torch.rand(1, 200, 2, generator=g) * 12.5], 1)
    maps = codec.encode(c)["heatmap"] + 0.05 * torch.randn(1, 400, H, H, generator=g)
    out = dark_decode(maps, SIGMA)
    arg = codec.decode_cells(maps, "argmax")
    assert ((out >= -0.5) & (out <= H - 0.5)).all()
    assert ((out - arg).abs() <= 1 + 1e-6).all()


# ---------------------------------------------------------------- frames
def test_frames_read_cell_zero_where_each_peer_does():
    u = torch.zeros(1)
    assert heatmap_to_pixels(u, STRIDE, "hihlib").item() == 1.5          # centre of pixels 0..3
    assert heatmap_to_pixels(u, STRIDE, "mmpose").item() == 0.0          # x = s u
    assert heatmap_to_pixels(u, STRIDE, "released_hih").item() == -0.5   # the crop's corner
    assert heatmap_to_pixels(u + 10, STRIDE, "released_h3r").item() == 40.0  # x = s u, as mmpose
    assert set(FRAMES) == {"hihlib", "mmpose", "released_hih", "released_h3r"}


@pytest.mark.parametrize("src", sorted(FRAMES))
@pytest.mark.parametrize("dst", sorted(FRAMES))
def test_convert_frame_is_an_exact_round_trip(src, dst):
    u = torch.linspace(-0.5, 63.5, 257, dtype=torch.float64)
    v = convert_frame(u, STRIDE, src, dst)
    assert torch.allclose(heatmap_to_pixels(v, STRIDE, dst), heatmap_to_pixels(u, STRIDE, src))
    assert torch.allclose(convert_frame(v, STRIDE, dst, src), u)
    assert torch.allclose(pixels_to_heatmap(heatmap_to_pixels(u, STRIDE, src), STRIDE, src), u)


def test_released_and_hihlib_official_differ_by_exactly_half_a_cell_on_the_same_maps():
    g = torch.Generator().manual_seed(1)
    outputs = {"heatmap": torch.rand(2, 5, H, H, generator=g) + 0.1, "decimal": torch.rand(2, 5, D, D, generator=g) + 0.1}
    ours = get_codec("hih").decode(outputs, "official")
    released = get_codec("hih", frame="released_hih").decode(outputs, "official")
    assert torch.allclose(ours - released, torch.full_like(ours, STRIDE / 2))
    assert math.isclose(convert_frame(torch.tensor(10.0), STRIDE, "released_hih", "hihlib").item(), 9.5)


def test_released_frame_encodes_where_the_released_code_puts_its_targets():
    """Released: u = 64 x_norm (x_norm = (x + 0.5) / 256), integer cell clamp(floor(u), 0, 63), decimal cell
    round(8 frac). hihlib carries fractions >= 15/16 into the next cell instead (those are skipped)."""
    codec = get_codec("hih", frame="released_hih")
    t = codec.encode(COORDS.float())
    u = ((COORDS[0] + 0.5) / S * H).clamp(0, H)
    i = torch.floor(u).clamp(0, H - 1)
    frac = u - i
    keep = (frac < 1 - 1 / (2 * D)).all(-1)
    hm, dec = t["heatmap"][0], t["decimal"][0]
    a, b = hm.flatten(-2).argmax(-1), dec.flatten(-2).argmax(-1)
    ix, iy, jx, jy = a % H, a // H, b % D, b // D
    assert torch.equal(torch.stack([ix, iy], -1)[keep].double(), i[keep])
    assert torch.equal(torch.stack([jx, jy], -1)[keep].double(), torch.floor(frac * D + 0.5)[keep])


def test_released_official_reads_a_non_positive_peak_as_zero():
    outputs = {"heatmap": torch.full((1, 1, H, H), -1.0), "decimal": torch.full((1, 1, D, D), -2.0)}
    outputs["heatmap"][0, 0, 10, 20] = -0.5
    outputs["decimal"][0, 0, 3, 5] = -0.1
    cells = get_codec("hih", frame="released_hih").decode_cells(outputs, "official")
    assert torch.equal(cells, torch.full((1, 1, 2), -0.5))  # released P = 0 -> x = -0.5


# ---------------------------------------------------------------- top-k
def _flat_topk(maps, k):
    v, i = maps.flatten(-2).topk(k, dim=-1)
    return v, i % maps.shape[-1], torch.div(i, maps.shape[-1], rounding_mode="floor")


@pytest.mark.parametrize("kind", ["peaked", "noise", "mixed", "edges"])
def test_topk_cells_equal_the_full_topk(kind):
    g = torch.Generator().manual_seed(2)
    c = 255 * torch.rand(6, 50, 2, generator=g)
    if kind == "edges":
        c = torch.rand(6, 50, 2, generator=g) * 6 - 0.5
        c[:3] = 255.5 - c[:3]
    peaked = get_codec("gaussian", sigma=1.0).encode(c)["heatmap"] * 6 + 1e-3 * torch.randn(6, 50, H, H, generator=g)
    noise = torch.randn(6, 50, H, H, generator=g)
    maps = {"peaked": peaked, "edges": peaked, "noise": noise,
            "mixed": torch.where(torch.rand(6, 50, 1, 1, generator=g) < 0.3, noise, peaked)}[kind]
    for k in (1, 4, 9, 25):
        got, ref = topk_cells(maps, k), _flat_topk(maps, k)
        for a, b in zip(got, ref):
            assert torch.equal(a, b), (kind, k)


def test_topk_merge_is_the_full_topk_where_the_k_plus_1_best_are_distinct_and_says_where_they_are_not():
    """``_topk_merge`` (max extraction over the row maxima, the row search of ``topk_cells``): on maps whose k + 1
    best values are distinct it returns exactly the full top-k, and it marks every map with a tie among them (several
    equal maxima, a tie at the k-th value, twins inside one row) or a NaN as not clean."""
    from hihlib.codecs.gaussian import _topk_merge

    g = torch.Generator().manual_seed(11)
    for h, w, k in ((64, 64, 9), (13, 13, 25), (5, 3, 9), (3, 5, 14), (1, 16, 9), (16, 1, 9)):
        maps = torch.randn(40, h, w, generator=g)
        maps[0] = torch.arange(h * w, dtype=torch.float32).view(h, w)  # the k best in the last row(s), in order
        maps[1, h // 2] += 100.0  # one row holds the k best (when it has k cells)
        maps[2] = torch.randn(h * w, generator=g).abs().view(h, w) - 1e3 * (torch.arange(h)[:, None] != 0)
        c = maps.flatten(-2)
        best = c.topk(k + 1, dim=-1).values
        c[3].view(-1)[c[3].argmin()] = best[3, 0]  # another cell equal to the maximum
        c[4].view(-1)[c[4].argmin()] = best[4, k - 1]  # a tie at the k-th value
        c[5, 0], c[5, 1 if w > 1 else w] = 1e3, 1e3  # two equal maxima, in one row when the row has two cells
        c[6, 7 % (h * w)] = float("nan")
        c[7] = c[7].round()  # small integers: ties everywhere
        row_max = maps.amax(-1)
        vals, ix, iy, clean = _topk_merge(maps, k, row_max, torch.arange(40))
        ref = _flat_topk(maps, k)
        distinct = (best[:, :-1] > best[:, 1:]).all(-1)
        distinct[3:8] = False
        assert torch.equal(clean, distinct), (h, w, k)
        for a, b in zip((vals, ix, iy), ref):
            assert torch.equal(a[clean], b[clean]), (h, w, k)
        assert clean[:3].all() and not clean[3:8].any()


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "python"])
def test_the_topk_kernel_is_the_full_topk_where_the_k_plus_1_best_are_distinct_and_says_where_they_are_not(compiled):
    """The compiled top-k kernel (``hihlib.codecs._compiled``, the CPU path of ``topk_cells``), compiled by numba and
    as plain Python (the same code, so its logic is checked where numba is absent too): on maps whose k + 1 best values
    are distinct it returns exactly the full top-k (values descending, flat cells), and it marks every map with a tie
    among them or a NaN as not clean. Peaked maps anywhere (the 3x3 and column bounds), flat ones (the rank bound),
    one row or column holding the k best, maps of 1-3 rows or columns, k above a map's width, -inf and +inf cells."""
    import numpy as np

    from hihlib.codecs import _compiled

    kernel = _compiled.topk_kernel() if compiled else _compiled._topk_blocks
    if kernel is None:
        pytest.skip("numba is not importable here")
    g = torch.Generator().manual_seed(12)
    for h, w, k in ((64, 64, 9), (13, 13, 25), (5, 3, 9), (3, 5, 14), (1, 16, 9), (16, 1, 9), (20, 9, 9), (9, 20, 4),
                    (64, 64, 1), (17, 17, 2)):
        n = 44 if compiled else 12
        maps = torch.randn(n, h, w, generator=g, dtype=torch.float64 if h == 13 else torch.float32)
        maps[0] = torch.arange(h * w, dtype=maps.dtype).view(h, w)  # the k best in the last row(s), in order
        maps[1, h // 2] += 100.0  # one row holds the k best (when it has k cells)
        maps[2, :, w // 2] += 100.0  # one column
        c = maps.flatten(-2)
        best = c.topk(min(k + 1, h * w), dim=-1).values
        c[3].view(-1)[c[3].argmin()] = best[3, 0]  # another cell equal to the maximum
        c[4].view(-1)[c[4].argmin()] = best[4, k - 1]  # a tie at the k-th value
        c[5, 0], c[5, -1] = 1e3, 1e3  # two equal maxima
        c[6, 7 % (h * w)] = float("nan")
        c[7] = c[7].round()  # small integers: ties everywhere
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        for j, (cy, cx) in zip(range(8, 10), ((h - 1, w - 1), (h // 3, 1))):  # peaks at the corner and inside
            maps[j] = -((yy - cy) ** 2 + 0.37 * (xx - cx) ** 2).to(maps.dtype) + 1e-3 * maps[j]
        maps[10] = 1e-3 * maps[10] - 5.0  # a flat floor
        maps[11] = float("-inf")
        maps[11].view(-1)[: k + 1] = torch.arange(k + 1, dtype=maps.dtype)  # the k + 1 best, then -inf
        c[11, 0] = float("inf")
        if h * w <= k:
            continue
        a = maps.numpy()
        rad = min(2, (min(h, w) - 1) // 2)
        vals, ix, iy = np.empty((n, k), a.dtype), np.empty((n, k), np.int64), np.empty((n, k), np.int64)
        clean, escape = np.empty(n, np.bool_), np.empty(n, np.bool_)
        kernel(a, k, rad, vals, ix, iy, clean, escape)
        idx = iy * w + ix
        v, i = c.topk(k, dim=-1)
        best = c.topk(k + 1, dim=-1).values
        distinct = (best[:, :-1] > best[:, 1:]).all(-1)  # NaN maps are not distinct either
        assert not distinct[3:7].any()  # the ties and the NaN made above
        clean = torch.from_numpy(clean)
        assert torch.equal(clean, distinct), (h, w, k, clean, distinct)
        assert torch.equal(torch.from_numpy(vals)[clean], v[clean]) and torch.equal(torch.from_numpy(idx)[clean],
                                                                                     i[clean]), (h, w, k)
        assert clean[[0, 1, 2, 8, 9, 10, 11]].all() or h * w < k + 3
        # escape: one of the k best outside the (2 rad + 1)^2 window at the maximum, moved inside the map
        top = (torch.from_numpy(iy[:, 0]).clamp(rad, h - 1 - rad) - rad)[:, None]
        left = (torch.from_numpy(ix[:, 0]).clamp(rad, w - 1 - rad) - rad)[:, None]
        y, x = torch.from_numpy(iy), torch.from_numpy(ix)
        outside = ((y < top) | (y > top + 2 * rad) | (x < left) | (x > left + 2 * rad)).any(-1)
        assert torch.equal(torch.from_numpy(escape)[clean], outside[clean])
        assert escape[[8, 9]].sum() == 0 or k > 9 or min(h, w) < 5  # a peaked map keeps its k best around its maximum


@pytest.mark.parametrize("compiled", [True, False], ids=["numba", "python"])
def test_the_dark_kernel_gives_the_torch_paths_argmax_and_stencils(compiled):
    """DARK's compiled kernel (``hihlib.codecs._compiled._dark_stencils``, compiled and as plain Python): the argmax
    cells it is given and, bit for bit, the 3x3 stencils of the torch path (``_smooth_in_order`` where the patch fits,
    the raw 3x3 moved inside the map elsewhere), for kernels of 3, 7 and 11 taps, on maps with peaks anywhere (edges
    and corners included), a NaN, and a group of maps that is not a multiple of the kernel's 16."""
    import numpy as np

    from hihlib.codecs import _compiled
    from hihlib.codecs import gaussian as G

    kernel = _compiled.dark_kernel() if compiled else _compiled._dark_stencils
    if kernel is None:
        pytest.skip("numba is not importable here")
    g = torch.Generator().manual_seed(13)
    for sigma, h in ((0.3, 16), (1.0, 20), (1.5, 64)):
        n = 37
        c = torch.rand(n, 2, generator=g) * (h - 1)
        c[:4] = torch.tensor([[0.0, 0.0], [h - 1.0, 3.0], [5.0, h - 1.0], [2.0, 1.0]])
        u = torch.arange(h, dtype=torch.float32)
        maps = torch.exp(-((u - c[:, :1])[:, None, :] ** 2 + (u - c[:, 1:])[:, :, None] ** 2) / 4.5)
        maps = maps + 0.01 * torch.randn(n, h, h, generator=g)
        maps[5, 2, 3] = float("nan")
        r = max(1, math.ceil(3 * sigma))
        kern = torch.exp(-torch.arange(-r, r + 1, dtype=torch.float32) ** 2 / (2 * sigma**2))
        kern = kern / kern.sum()
        a = maps.numpy()
        idx = a.reshape(n, -1).argmax(-1).astype(np.int64)
        ix, iy, out = np.empty(n, np.int64), np.empty(n, np.int64), np.empty((n, 3, 3), np.float32)
        kernel(a, idx, r, kern.numpy(), ix, iy, out)
        assert np.array_equal(iy * h + ix, idx)
        ix_t, iy_t = torch.from_numpy(ix), torch.from_numpy(iy)
        size = 2 * r + 3
        patch = G.gather_patches(maps, ix_t, iy_t, r + 1)  # (n, P, P)
        smooth = G._smooth_in_order(patch.permute(1, 2, 0)[None].contiguous(), kern)[0].permute(2, 0, 1)
        raw = G.gather_patches(maps, ix_t.clamp(1, h - 2), iy_t.clamp(1, h - 2), 1)
        fits = G._patch_fits(ix_t, iy_t, r, h, h)
        want = torch.where(fits[:, None, None], smooth, raw)
        assert size <= h and (~fits).any() and fits.any()
        torch.testing.assert_close(torch.from_numpy(out), want, rtol=0, atol=0, equal_nan=True)


def test_h3r_topk_decode_equals_the_published_softmax_over_the_full_topk():
    g = torch.Generator().manual_seed(3)
    codec = get_codec("h3r")
    c = 255 * torch.rand(4, 30, 2, generator=g)
    logits = codec.expected(c)["heatmap"].clamp_min(1e-4).log() + 0.01 * torch.randn(4, 30, H, H, generator=g)
    v, ix, iy = _flat_topk(logits, 9)
    p = v.softmax(-1)
    ref = codec.to_pixels(torch.stack([(p * ix).sum(-1), (p * iy).sum(-1)], -1))
    assert torch.equal(codec.decode({"heatmap": logits}, "topk"), ref)


@pytest.mark.parametrize("frame", ["hihlib", "released_hih"])
def test_hih_split_puts_a_boundary_in_the_upper_class_as_the_half_open_intervals_say(frame):
    """On the boundary between two integer cells' classes, u belongs to the upper one: the paper's
    intervals [j/d, (j+1)/d) are closed below (tests/paper_split.py). Between two decimal classes of one
    cell the split keeps the exact position (u - i) d, so only the integer cell can be checked there."""
    from paper_split import interval_class

    codec = get_codec("hih", frame=frame)
    # boundaries i - 1/(2d) between cell i - 1 and cell i (both frames measure u' = u + origin), and two
    # positions inside classes
    u_frame = torch.tensor([1 - 1 / 16, 11 - 1 / 16, 32 - 1 / 16, 63 - 1 / 16, 10 + 1 / 16, 20.3], dtype=torch.float64)
    u = u_frame - codec.origin
    px = (u + 0.5) * STRIDE - 0.5
    coords = torch.stack([px, torch.full_like(px, 131.3)], -1)[None]
    i, f = codec.split(coords)
    want_i, _ = interval_class(u_frame, H, D)
    assert torch.equal(i[0, :, 0].double(), want_i)
    assert torch.allclose(f[0, :, 0].double(), (u_frame - want_i) * D)
