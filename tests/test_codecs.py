"""Codecs: round trips on exact targets against the closed forms, and H3R's statistics."""

import math

import pytest
import torch

from hihlib.teaching.analysis import ROUNDING_ERROR
from hihlib.codecs import CODECS, cells_to_pixels, get_codec, pixels_to_cells

STRIDE = 4.0  # 256 input, 64 heatmap
SIGMA = 1.5


def coords_away_from_border(n=64, k=98, margin_cells=3 * SIGMA, seed=0, size=256):
    """Uniform coordinates at least margin_cells heatmap cells (in pixels: * stride) from the border."""
    g = torch.Generator().manual_seed(seed)
    lo = margin_cells * STRIDE + STRIDE
    return lo + (size - 1 - 2 * lo) * torch.rand(n, k, 2, generator=g)


def mean_error_px(codec, coords, method):
    return (codec.roundtrip(coords, method) - coords).norm(dim=-1).mean().item()


def test_convention_maps_image_extent_onto_heatmap_extent():
    x = torch.tensor([-0.5, 255.5, 1.5, 0.0])
    u = pixels_to_cells(x, STRIDE)
    assert torch.allclose(u, torch.tensor([-0.5, 63.5, 0.0, -0.375]))
    assert torch.allclose(cells_to_pixels(u, STRIDE), x)


def test_gaussian_target_peaks_at_subpixel_position():
    codec = get_codec("gaussian", sigma=SIGMA)
    c = torch.tensor([[[101.3, 57.9]]])
    hm = codec.encode(c)["heatmap"]
    assert hm.shape == (1, 1, 64, 64)
    u = codec.to_cells(c)[0, 0]
    iy, ix = divmod(hm.flatten().argmax().item(), 64)
    assert (ix, iy) == (round(u[0].item()), round(u[1].item()))
    # value at a cell equals the closed-form Gaussian
    expected = math.exp(-((ix - u[0]) ** 2 + (iy - u[1]) ** 2).item() / (2 * SIGMA**2))
    assert hm[0, 0, iy, ix].item() == pytest.approx(expected, rel=1e-5)


def test_gaussian_argmax_error_is_the_rounding_closed_form():
    codec = get_codec("gaussian", sigma=SIGMA)
    err = mean_error_px(codec, coords_away_from_border(), "argmax")
    assert err / STRIDE == pytest.approx(ROUNDING_ERROR, rel=0.02)  # 0.3826 cells
    assert err == pytest.approx(1.53, rel=0.02)


def test_quarter_offset_beats_argmax():
    codec = get_codec("gaussian", sigma=SIGMA)
    c = coords_away_from_border()
    assert mean_error_px(codec, c, "quarter") < 0.6 * mean_error_px(codec, c, "argmax")


def test_dark_is_exact_on_gaussian_targets():
    codec = get_codec("gaussian", sigma=SIGMA)
    assert mean_error_px(codec, coords_away_from_border(), "dark") < 0.01


def test_integral_is_exact_on_untruncated_targets():
    # integral needs the whole Gaussian inside the map: keep 6 sigma from the border
    codec = get_codec("gaussian", sigma=SIGMA)
    c = coords_away_from_border(margin_cells=6 * SIGMA)
    assert mean_error_px(codec, c, "integral") < 0.01


def test_hih_official_decoding_rounds_to_eighths_of_a_cell():
    codec = get_codec("hih")
    err = mean_error_px(codec, coords_away_from_border(), "official")
    assert err / STRIDE == pytest.approx(ROUNDING_ERROR / 8, rel=0.03)  # 0.048 cells
    assert err == pytest.approx(0.19, abs=0.01)


def test_hih_default_decoding_is_lossless():
    codec = get_codec("hih")
    assert codec.default_method == "expectation"
    assert mean_error_px(codec, coords_away_from_border(), None) < 0.01


def test_hih_fraction_near_one_carries_into_next_cell_instead_of_overflowing():
    codec = get_codec("hih")
    # u = 10.97 cells: fraction 0.97 >= 15/16; published code would put the peak past decimal cell 7
    x = cells_to_pixels(torch.tensor([10.97, 20.0]), STRIDE)
    t = codec.encode(x.view(1, 1, 2))
    iy, ix = divmod(t["heatmap"].flatten().argmax().item(), 64)
    assert (ix, iy) == (11, 20)
    jy, jx = divmod(t["decimal"].flatten().argmax().item(), 8)
    assert (jx, jy) == (0, 0)
    assert t["decimal"].sum().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(codec.roundtrip(x.view(1, 1, 2)), x.view(1, 1, 2), atol=1e-3)


def test_h3r_mean_of_encodings_converges_to_bilinear_target():
    codec = get_codec("h3r")
    c = torch.tensor([[[100.7, 50.2], [30.1, 200.9]]])
    g = torch.Generator().manual_seed(1)
    n = 4000
    mean = sum(codec.encode(c, generator=g)["heatmap"] for _ in range(n)) / n
    expected = codec.expected(c)["heatmap"]
    assert expected.sum((-2, -1)).allclose(torch.ones(1, 2))
    assert (expected > 0).sum().item() == 8  # four cells per landmark
    # each cell is a Bernoulli mean: within 4.5 standard errors
    se = (expected * (1 - expected) / n).sqrt()
    assert ((mean - expected).abs() <= 4.5 * se + 1e-9).all()


def test_h3r_topk_decodes_log_of_expected_target_exactly():
    codec = get_codec("h3r")
    c = coords_away_from_border(seed=3)
    out = codec.decode(codec.perfect_outputs(codec.expected(c)))
    assert (out - c).abs().max().item() < 1e-3


def test_h3r_randomized_rounding_is_unbiased_and_rounding_is_not():
    codec = get_codec("h3r")
    g = torch.Generator().manual_seed(2)
    c = torch.tensor([[[101.3, 57.9]]]).expand(20000, 1, 2).contiguous()
    u = codec.to_cells(c[0, 0])
    q = codec.round_randomly(c, g)  # (N, 1, 2)
    frac = u - u.floor()
    se = (frac * (1 - frac) / q.shape[0]).sqrt()
    z = (q.mean((0, 1)) - u) / se
    assert z.abs().max().item() < 4.0
    bias_of_rounding = (u.round() - u).abs()
    assert (bias_of_rounding > 20 * se).all()  # deterministic rounding is biased far beyond the noise


def test_h3r_draws_are_fresh_each_call_and_seedable():
    codec = get_codec("h3r")
    c = coords_away_from_border(n=4, k=20, seed=5)
    a = codec.encode(c, generator=torch.Generator().manual_seed(7))["heatmap"]
    b = codec.encode(c, generator=torch.Generator().manual_seed(7))["heatmap"]
    g = torch.Generator().manual_seed(7)
    first, second = codec.encode(c, generator=g)["heatmap"], codec.encode(c, generator=g)["heatmap"]
    assert torch.equal(a, b)
    assert not torch.equal(first, second)
    assert torch.equal(a.sum((-2, -1)), torch.ones(4, 20))


# What each decoder gives back from perfect maps, in cells, from its definition (not from the code):
# ("mean", m): the mean error over uniformly placed landmarks is m within 0.03 cells (400 points: the
# mean's s.d. is ~0.008); ("max", m): no error above m. Argmax rounds each axis: E||e|| of e uniform on
# the unit square = ROUNDING_ERROR (0.3826). Quarter-offset moves 1/4 cell towards the larger neighbour,
# leaving e uniform on [-1/4, 1/4]^2: half of it. HIH "official" reads the decimal map (d = 8) by argmax:
# e uniform on [-1/16, 1/16]^2, an eighth. DARK (Taylor step on the log of a Gaussian), H3R top-k and HIH
# expectation are exact on perfect maps; integral (soft-argmax over the map) only loses the Gaussian's
# tails at the border; HIH's local/softmax means of the decimal map are within a quarter cell. A decoder
# that fell back to argmax at some heatmap size would miss every sub-pixel line by ~0.35 cells.
EXPECTED_CELLS = {"argmax": ("mean", ROUNDING_ERROR), "quarter": ("mean", ROUNDING_ERROR / 2),
                  "official": ("mean", ROUNDING_ERROR / 8), "dark": ("max", 1e-3), "topk": ("max", 1e-3),
                  "expectation": ("max", 1e-3), "integral": ("max", 0.03), "local_mean": ("max", 0.25),
                  "softmax_mean": ("max", 0.25)}


@pytest.mark.parametrize("name", sorted(CODECS) or ["gaussian", "h3r", "hih"])
@pytest.mark.parametrize("size", [16, 32, 128])
def test_every_method_recovers_coordinates_at_other_sizes(name, size):
    codec = get_codec(name, heatmap_size=size)
    stride = 256 / size
    c = 4 * stride + (256 - 1 - 8 * stride) * torch.rand(8, 50, 2, generator=torch.Generator().manual_seed(0))
    assert set(codec.methods) <= set(EXPECTED_CELLS), "a decoder without an expectation here"
    for method in codec.methods:
        err = (codec.roundtrip(c, method) - c).norm(dim=-1) / stride   # cells
        assert err.shape == (8, 50)
        assert err.max().item() <= math.sqrt(2) / 2 + 1e-5   # never worse than argmax's worst case
        kind, value = EXPECTED_CELLS[method]
        if kind == "mean":
            assert err.mean().item() == pytest.approx(value, abs=0.03), method
        else:
            assert err.max().item() <= value, method


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="no decode method 'nope'"):
        get_codec("gaussian").decode({"heatmap": torch.zeros(1, 1, 64, 64)}, "nope")
    with pytest.raises(ValueError, match="unknown codec"):
        get_codec("spline")
    with pytest.raises(ValueError, match=r"\(B, K, 2\)"):
        get_codec("hih").encode(torch.zeros(3, 2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_codecs_run_on_cuda():
    c = coords_away_from_border(n=4, k=10).cuda()
    for name in ("gaussian", "h3r", "hih"):
        codec = get_codec(name)
        for method in codec.methods:
            out = codec.roundtrip(c, method)
            assert out.device.type == "cuda"
            assert torch.allclose(out.cpu(), get_codec(name).roundtrip(c.cpu(), method), atol=1e-3)


def test_hih_integer_only_decoding_has_the_rounding_error():
    codec = get_codec("hih")
    err = mean_error_px(codec, coords_away_from_border(), "argmax")
    assert err / STRIDE == pytest.approx(ROUNDING_ERROR, rel=0.02)


def test_h3r_landmarks_outside_the_crop_decode_to_the_border_not_nan():
    codec = get_codec("h3r")
    c = torch.tensor([[[-30.0, 100.0], [300.0, 270.0]]])
    out = codec.roundtrip(c)
    assert torch.isfinite(out).all()
    assert torch.allclose(out, codec.to_pixels(torch.tensor([[[0.0, codec.to_cells(torch.tensor(100.0)).item()], [63.0, 63.0]]])), atol=1e-3)
    # a landmark outside on both axes: every random draw and the expectation sit on the corner cell
    draw = codec.encode(c, generator=torch.Generator().manual_seed(0))["heatmap"][0, 1]
    assert torch.equal(draw, codec.expected(c)["heatmap"][0, 1])
    assert draw[63, 63].item() == 1.0


def test_accepted_options_keep_only_what_each_codec_takes():
    from hihlib.codecs import accepted_options

    opts = {"sigma": 2.0, "k": 4, "decimal_size": 4}
    assert accepted_options("gaussian", opts) == {"sigma": 2.0}
    assert accepted_options("h3r", opts) == {"k": 4}
    assert accepted_options("hih", opts) == {"sigma": 2.0, "decimal_size": 4}
