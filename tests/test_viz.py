"""hihlib.viz: what is drawn sits where hihlib's coordinate convention says, and figures are written safely."""

import struct
import subprocess

import numpy as np
import pytest
import torch

from hihlib import viz


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_heatmap_cell_centres_sit_on_integer_coordinates():
    h = np.zeros((5, 7))
    h[2, 3] = 1.0
    ax = viz.plot_heatmap(h, points={"true": (3.0, 2.0)})
    im = ax.get_images()[0]
    # cell (i, j) spans [j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]: the extent is the grid of centres +- 0.5
    assert im.get_extent() == [-0.5, 6.5, 4.5, -0.5]
    line = ax.get_lines()[0]
    assert line.get_xdata()[0] == 3.0 and line.get_ydata()[0] == 2.0


def test_heatmap_rejects_a_batch():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        viz.plot_heatmap(np.zeros((2, 4, 4)))


def test_outline_cell_borders_the_cell():
    ax = viz.plot_heatmap(np.zeros((4, 4)))
    rect = viz.outline_cell(ax, 1, 2)
    assert rect.get_xy() == (1.5, 0.5) and rect.get_width() == 1.0 and rect.get_height() == 1.0


def test_decimal_map_spans_d_interval_classes():
    d = 8
    ax = viz.plot_decimal_map(np.full((d, d), 1 / d**2), true=(2.25, 5.5), decoded={"official": (2.0, 6.0)})
    assert ax.get_images()[0].get_extent() == [-0.5, d - 0.5, d - 0.5, -0.5]
    assert ax.get_xlim() == (-0.5, d - 0.5)
    xs = [ln.get_xdata()[0] for ln in ax.get_lines()]
    assert xs == [2.25, 2.0]


def test_error_histogram_marks_the_mean_of_vector_norms():
    e = torch.tensor([[3.0, 4.0], [0.0, 1.0], [6.0, 8.0]])  # norms 5, 1, 10: mean 16/3
    ax = viz.plot_error_histogram(e, expected=0.3826)
    measured, closed = [ln.get_xdata()[0] for ln in ax.get_lines()]
    assert measured == pytest.approx(16 / 3)
    assert closed == pytest.approx(0.3826)


def test_error_vs_resolution_clips_exact_decoders_for_the_log_axis():
    ax = viz.plot_error_vs_resolution([16, 32, 64], {"gaussian/dark": [0.5, 0.01, 0.0], "gaussian/argmax": [6, 3, 1.5]})
    dark, argmax = ax.get_lines()[:2]
    np.testing.assert_allclose(dark.get_ydata(), [0.5, 0.01, 1e-4])
    np.testing.assert_allclose(argmax.get_ydata(), [6, 3, 1.5])
    assert dark.get_color() == viz.METHOD_COLORS["dark"]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"


def test_ced_curve_is_the_fraction_of_faces_at_or_below_each_threshold():
    nmes = np.array([0.01, 0.02, 0.02, 0.05, 0.2])
    ax = viz.plot_ced({"hih": nmes}, bins=100)
    line = ax.get_lines()[0]
    t = line.get_xdata() / 100
    expected = np.array([(nmes <= x + 1e-12).mean() for x in t])
    np.testing.assert_allclose(line.get_ydata(), expected)
    label = ax.get_legend().get_texts()[0].get_text()
    assert "NME 6.00%" in label and "FR@10% 20.0%" in label


def test_ced_axis_reaches_curves_that_rise_beyond_the_failure_threshold():
    flat = viz.plot_ced({"low": np.full(10, 0.03)})
    assert flat.get_xlim() == (0.0, 10.0)                       # every face below 10 %: the usual axis
    late = viz.plot_ced({"low": np.full(10, 0.03), "high": np.linspace(0.12, 0.17, 10)})
    assert late.get_xlim() == (0.0, 20.0)                      # the 16.9 % curve is drawn, not flat at 0
    assert late.get_lines()[-1].get_xdata()[0] == 10.0         # the threshold marked at 10 %


def test_ced_curves_never_share_a_colour():
    methods = ("expectation", "official", "local_mean", "softmax_mean", "argmax")
    ax = viz.plot_ced({m: np.linspace(0.01, 0.05, 5) for m in methods})
    colors = [line.get_color() for line in ax.get_lines()]
    assert len(set(colors)) == len(methods)
    assert colors[0] == viz.METHOD_COLORS["expectation"] and colors[-1] == viz.METHOD_COLORS["argmax"]
    assert viz.distinct_colors(["gaussian/argmax", "hih/argmax"])[0] == viz.METHOD_COLORS["argmax"]
    assert len(set(viz.distinct_colors(["gaussian/argmax", "hih/argmax"]))) == 2


def test_a_title_wider_than_its_panel_is_wrapped_when_rendered():
    fig, ax = viz.new_figure(size=(4, 3))
    title = "CED, inter_ocular NME; data: synthetic WFLW-format faces, 16 images, seed 10000 (held-out seed)"
    ax.set_title(title, fontsize=9)
    viz.figure_png(fig)
    lines = ax.get_title().split("\n")
    assert len(lines) >= 2 and " ".join(lines) == title
    renderer = fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else fig._get_renderer()
    assert ax.title.get_window_extent(renderer).x1 <= fig.bbox.x1 and ax.title.get_window_extent(renderer).x0 >= 0


def test_face_accepts_a_normalised_chw_tensor_and_uses_pixel_centres():
    img = torch.randn(3, 20, 30)
    gt = np.array([[0.0, 0.0], [29.0, 19.0]])
    ax = viz.plot_face(img, gt=gt, pred=gt + 0.5, groups={"line": ((0, 1), False)})
    im = ax.get_images()[0]
    assert im.get_extent() == [-0.5, 29.5, 19.5, -0.5]
    shown = im.get_array()
    assert shown.shape == (20, 30, 3) and shown.min() >= 0 and shown.max() <= 1


def test_save_figure_writes_a_png_at_the_documented_size_and_leaves_no_temporary(tmp_path):
    fig, _ = viz.new_figure(1, 2, size=(4.0, 2.0))
    path = viz.save_figure(fig, tmp_path / "sub" / "f.png", dpi=100)
    assert png_size(path.read_bytes()) == (400, 200)
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.png"]


def test_show_can_save_the_png_it_displays(tmp_path):
    fig, _ = viz.new_figure(size=(2.0, 1.0))
    png = viz.show(fig, dpi=50, save_to=tmp_path / "f.png")
    assert png_size(png) == (100, 50)
    assert (tmp_path / "f.png").read_bytes() == png


def test_figures_go_to_untracked_runs_figures_unless_HIH_FIGURES_says_otherwise(tmp_path, monkeypatch):
    root = viz.project_root()
    fake = tmp_path / "repo"   # figure_dir creates the folder: not in the real repository's runs/
    monkeypatch.setattr(viz, "project_root", lambda: fake)
    monkeypatch.delenv("HIH_FIGURES", raising=False)
    assert viz.figure_dir() == fake / "runs" / "figures"
    monkeypatch.delenv("HIH_RUNS", raising=False)
    assert viz.runs_dir("nb05") == fake / "runs" / "nb05" and (fake / "runs" / "nb05").is_dir()
    monkeypatch.setenv("HIH_RUNS", str(tmp_path / "scratch"))
    assert viz.runs_dir("nb06") == tmp_path / "scratch" / "nb06"
    monkeypatch.setenv("HIH_FIGURES", str(tmp_path / "figs"))
    assert viz.figure_dir("widgets") == tmp_path / "figs" / "widgets" and (tmp_path / "figs" / "widgets").is_dir()
    monkeypatch.setenv("HIH_FIGURES", "figures")      # the explicit regeneration of the committed figures
    assert viz.figure_dir() == fake / "figures"
    if not (root / ".git").exists():
        return  # not a git checkout: nothing can be tracked
    ignored = subprocess.run(["git", "check-ignore", "-q", str(root / "runs" / "figures" / "x.png")], cwd=root,
                             timeout=60)
    assert ignored.returncode == 0, "runs/ must be ignored by git"


def test_the_same_point_kind_has_the_same_marker_in_both_hih_explorer_panels():
    """Notebook 02's explorer: 'official' and 'expectation' were drawn with swapped markers in its panels."""
    from hihlib.teaching.widgets import hih_explorer

    fig, _ = hih_explorer().render()
    markers = [{ln.get_label(): ln.get_marker() for ln in ax.get_lines() if not ln.get_label().startswith("_")}
               for ax in fig.axes[:2]]
    assert set(markers[0]) == set(markers[1]) == {"true", "official", "expectation"}
    assert markers[0] == markers[1]
