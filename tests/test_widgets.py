"""hihlib.teaching.widgets: the explorers' numbers (checked against closed forms) and their two display modes."""

import math

import numpy as np
import pytest
import torch

from hihlib.teaching import analysis, widgets
from hihlib.teaching.analysis import ROUNDING_ERROR, uniform_coords
from hihlib.codecs import get_codec


@pytest.fixture(scope="module")
def coords():
    return uniform_coords(1, 2000, 256, margin=16, generator=torch.Generator().manual_seed(0))


# -- mode --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("forced, smoke, expected", [
    ("interactive", "1", "interactive"), ("static", "0", "static"), ("", "1", "static"), ("", "0", "static"),
])
def test_widget_mode(monkeypatch, forced, smoke, expected):
    # outside a Jupyter kernel (as here) the automatic choice is static
    monkeypatch.setenv("HIH_WIDGETS", forced)
    monkeypatch.setenv("HIH_SMOKE", smoke)
    assert widgets.widget_mode() == expected


# -- numbers -----------------------------------------------------------------------------------------
def test_decoder_errors_match_the_closed_forms(coords):
    errs = analysis.decoder_errors(coords, [("gaussian", "argmax"), ("hih", "official"), ("hih", "expectation"),
                                           ("h3r", "topk")], [64])
    stride = 4.0
    assert errs["gaussian/argmax"].shape == (1, 2000)
    # rounding uniform offsets: E|e| = 0.3826 cells; HIH's argmax/d rounds to a grid of 1/8 cell
    assert errs["gaussian/argmax"].mean() == pytest.approx(ROUNDING_ERROR * stride, rel=0.02)
    assert errs["hih/official"].mean() == pytest.approx(ROUNDING_ERROR / 8 * stride, rel=0.02)
    assert errs["hih/expectation"].max() < 0.01
    assert errs["h3r/topk"].max() < 1e-3


def test_decoder_errors_scale_with_the_stride(coords):
    errs = analysis.decoder_errors(coords[:, :1000], [("gaussian", "argmax")], [16, 128], sigma=1.0)
    np.testing.assert_allclose(errs["gaussian/argmax"].mean(-1), ROUNDING_ERROR * np.array([16.0, 2.0]), rtol=0.04)


def test_published_soft_label_is_the_softmax_of_gaussian_values():
    codec = get_codec("hih", decimal_size=4, decimal_sigma=1.0)
    xy = torch.tensor([[[101.3, 87.8]]], dtype=torch.float64)
    label = analysis.published_soft_label(codec, xy)[0, 0].numpy()
    # independent computation: u = (x + 0.5) / 4 - 0.5 (stride 4), the integer cell i of the interval class
    # holding u by the paper's definition (tests/paper_split.py), the label centred at (u - i) * d
    from paper_split import interval_class

    u = (xy[0, 0].numpy() + 0.5) / 4 - 0.5
    i = interval_class(torch.from_numpy(u), 64, 4)[0].numpy()
    c = (u - i) * 4
    g = np.arange(4.0)
    vals = np.exp(-((g[:, None] - c[1]) ** 2 + (g[None, :] - c[0]) ** 2) / 2)
    expected = np.exp(vals) / np.exp(vals).sum()
    np.testing.assert_allclose(label, expected, rtol=1e-6)
    # flat: no cell holds even twice the uniform share
    assert label.max() < 2 / 16


def test_topk_with_k1_is_argmax_and_k4_recovers_the_bilinear_target(coords):
    c = coords[:, :1000]
    errs = analysis.topk_errors(c, [1, 4], heatmap_size=64, halo=0.0)
    u = (c.double() + 0.5) / 4 - 0.5
    argmax = ((torch.round(u) - u).norm(dim=-1) * 4).mean().item()  # independent rounding, in pixels
    assert errs[0] == pytest.approx(argmax, rel=1e-4)
    assert errs[1] < 1e-3


def test_logit_noise_makes_topk_worse_but_still_beats_argmax(coords):
    c = coords[:, :500]
    clean = analysis.topk_errors(c, [1, 9], noise=0.0)
    noisy = analysis.topk_errors(c, [1, 9], noise=0.5)
    assert clean[1] < noisy[1] < noisy[0]


# -- explorers ---------------------------------------------------------------------------------------
def test_explorer_render_and_redraw_on_change():
    import ipywidgets as w

    calls = []

    def draw(a, b):
        calls.append((a, b))
        from hihlib import viz
        fig, ax = viz.new_figure()
        ax.plot([0, 1], [0, a])
        return fig, f"a={a}"

    ex = widgets.Explorer(draw, {"a": w.IntSlider(value=1, min=0, max=5), "b": w.Dropdown(options=["x", "y"])})
    fig, caption = ex.render(a=3)
    assert caption == "a=3" and calls[-1] == (3, "x")
    assert ex.describe() == "a = 1, b = x"
    with pytest.raises(ValueError, match="unknown control"):
        ex.render(c=1)
    box = ex.widget()
    before = ex._image.value
    ex.controls["a"].value = 4
    assert ex.redraws == 1 and calls[-1] == (4, "x")
    assert ex._image.value != before and before[:4] == b"\x89PNG"
    assert "a=4" in ex._caption.value
    assert len(box.children) == 3


def test_quantization_explorer_follows_the_codec_and_reports_closed_form_numbers(coords):
    ex = widgets.quantization_explorer(coords[:, :800], sizes=(16, 64))
    fig, caption = ex.render(resolution=64)
    assert "gaussian/argmax" in caption
    argmax_px = float(caption.split("gaussian/argmax: ")[1].split(" px")[0])
    assert argmax_px == pytest.approx(ROUNDING_ERROR * 4, rel=0.05)
    ex.controls["codec"].value = "hih"
    assert ex.controls["method"].options == widgets.CODEC_METHODS["hih"]
    _, caption = ex.render()
    assert "hih/expectation: 0.00" in caption


def test_hih_explorer_expectation_is_exact_and_official_is_within_half_a_decimal_cell():
    ex = widgets.hih_explorer()
    # d = 2 has no room for the 3-point stencil: expectation falls back to official there
    for d in (3, 8, 16):
        _, caption = ex.render(decimal_size=d, x=100.37, y=60.91)
        official = float(caption.split("official: ")[1].split(" px")[0])
        expectation = float(caption.split("expectation: ")[1].split(" px")[0])
        assert expectation < 0.01
        assert official <= math.sqrt(2) * 4 / (2 * d) + 1e-6  # at most half a decimal cell per axis


def test_rounding_explorer_caption_reports_argmax_and_topk():
    ex = widgets.rounding_explorer(n_points=200, sizes=(32, 64), max_k=10)
    _, caption = ex.render(k=4, noise=0.0)
    topk = float(caption.split("top-4: ")[1].split(" px")[0])
    argmax = float(caption.split("argmax: ")[1].split(" px")[0])
    assert topk < argmax / 5
