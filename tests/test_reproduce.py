"""hihlib.studies.reproduce: the published tables and how a measurement is placed among them."""

import dataclasses

import numpy as np
import pytest

from hihlib import viz
from hihlib.studies import reproduce as R
from hihlib.teaching import analysis
from hihlib.pipeline.checkpoint import read_metrics
from hihlib.data.source import data_source
from hihlib.teaching.analysis import ROUNDING_ERROR


def test_hih_wflw_row_matches_the_paper():
    full = R.published("wflw", method="HIH_B")
    assert [(p.nme, p.fr, p.auc) for p in full] == [(4.08, 2.60, 0.605)]
    subsets = {p.subset: p.nme for p in R.PUBLISHED if p.method.startswith("HIH_B") and p.dataset == "wflw"}
    assert subsets == {"full": 4.08, "pose": 6.87, "expression": 4.06, "illumination": 4.34,
                       "makeup": 3.85, "occlusion": 4.85, "blur": 4.66}


def test_wflw_landscape_is_sorted_and_leaves_out_ground_truth_boxes():
    rows = R.published("wflw")
    assert [p.nme for p in rows] == sorted(p.nme for p in rows)
    assert rows[0].method == "ORFormer" and rows[0].nme == 3.86
    h3r = [p for p in rows if p.method == "H3R HRNet-W18"]
    assert [p.nme for p in h3r] == [3.95]  # 3.81 used ground-truth boxes
    assert 3.81 in [p.nme for p in R.published("wflw", box=None)]
    assert {p.method: p.nme for p in rows}["HRNetV2-W18"] == 4.60
    # HIH's three sizes
    assert sorted(p.nme for p in rows if p.method.startswith("HIH")) == [4.08, 4.13, 4.27]


def test_cofw_has_both_normalisers():
    io = {p.method: p.nme for p in R.published("cofw", norm="inter_ocular")}
    ip = {p.method: p.nme for p in R.published("cofw", norm="inter_pupil")}
    assert io == {"PIPNet": 3.08, "HIH_B (4 stacks)": 3.21, "SLPT": 3.32, "HRNet": 3.45}
    assert ip == {"ORFormer": 4.46, "STAR": 4.62, "HIH_B (4 stacks)": 4.63, "ADNet": 4.68, "AWing": 4.94}
    assert R.published("cofw", norm="inter_pupil", method="HIH")[0].fr == 0.39


def test_unknown_dataset_is_an_error():
    with pytest.raises(ValueError, match="no published results"):
        R.published("aflw")


def test_rank_of_a_measurement_among_published():
    # 4.00 beats STAR 4.02 and everything above it, loses to H3R 3.95, LDEQ 3.92, ORFormer 3.86
    assert R.rank_among_published(4.00, "wflw") == 4
    assert R.rank_among_published(3.0, "wflw") == 1
    # a tie ranks after the published row
    assert R.rank_among_published(4.08, "wflw") == 1 + sum(p.nme <= 4.08 for p in R.published("wflw"))


def test_comparison_rows_place_and_label_the_measurement():
    rows = R.comparison_rows({"hg_tiny hih/expectation": {"nme": 4.05, "fr": 3.0, "auc": 0.6}}, "wflw",
                             data="unit-test data")
    nmes = [r.nme for r in rows]
    assert nmes == sorted(nmes)
    mine = [r for r in rows if r.measured]
    assert len(mine) == 1 and mine[0].label == "hg_tiny hih/expectation (this run)" and mine[0].data == "unit-test data"
    assert rows.index(mine[0]) == R.rank_among_published(4.05, "wflw") - 1
    assert len(rows) == len(R.published("wflw")) + 1


def test_synthetic_measurements_are_labelled_everywhere():
    table = R.comparison_table({"tiny": 12.5}, "wflw", data="rendered faces", synthetic=True)
    assert table.startswith("**Synthetic data, not WFLW:**")
    assert "[synthetic] tiny (this run)" in table and "**12.50**" in table
    real = R.comparison_table({"tiny": 12.5}, "wflw", data="WFLW test")
    assert "synthetic" not in real.lower()
    sub = R.wflw_subset_table({"tiny": {"full": 5.0, "pose": 9.0}}, data="rendered", synthetic=True)
    assert "[synthetic] tiny (this run)" in sub and "Synthetic data, not WFLW" in sub
    assert "| 4.08 | 6.87 | 4.06 | 4.34 | 3.85 | 4.85 | 4.66 |" in sub
    assert "| **[synthetic] tiny (this run)** | 5.00 | 9.00 |  |  |  |  |  |" in sub


def test_plot_comparison_marks_measured_bars_and_synthetic_title():
    rows = R.comparison_rows({"mine": 4.5}, "cofw", data="x", norm="inter_pupil", synthetic=True)
    ax = viz.plot_comparison(rows, synthetic=True, title="COFW")
    widths = [p.get_width() for p in ax.patches]
    assert widths == [r.nme for r in rows]
    hatched = [p.get_hatch() for p in ax.patches]
    assert hatched.count("//") == 1 and hatched[[r.measured for r in rows].index(True)] == "//"
    assert "SYNTHETIC" in ax.get_title()


@dataclasses.dataclass
class _Rec:
    landmarks: np.ndarray
    box: np.ndarray


def test_quantization_table_matches_the_rounding_closed_form():
    # Faces whose crop is a pure translation (box side 204.8 -> crop side 256 at scale 1.25) and whose
    # normalising pair is 100 crop pixels apart: argmax error = 0.3826 cells x stride 4 px / 100 px.
    rng = np.random.default_rng(0)
    recs = []
    for _ in range(400):
        x0, y0 = rng.uniform(0, 50, 2)
        box = np.array([x0, y0, x0 + 204.8, y0 + 204.8])
        pts = box[:2] - 25.6 + rng.uniform(8, 247, (60, 2))
        pts[1, 0] = pts[0, 0] = box[0] - 25.6 + rng.uniform(8, 140)  # both inside the crop
        pts[1, 0] += 100.0
        pts[1, 1] = pts[0, 1]
        recs.append(_Rec(pts, box))
    # a face with a landmark outside the crop cannot be encoded: it is left out
    bad = _Rec(recs[0].landmarks.copy(), recs[0].box)
    bad.landmarks[5] = bad.box[:2] - 25.6 + [258.0, 100.0]
    table = analysis.quantization_table(recs + [bad], (0, 1), decoders=[("gaussian", "argmax"), ("hih", "expectation"),
                                                               ("h3r", "topk")])
    assert table["h3r/topk"] < 0.01
    assert table["gaussian/argmax"] == pytest.approx(100 * ROUNDING_ERROR * 4 / 100, rel=0.03)
    assert table["hih/expectation"] < 0.01


def test_data_source_prefers_the_real_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HIH_TEST_ROOT", str(tmp_path))
    src = data_source("wflw", env="HIH_TEST_ROOT")
    assert (src.root, src.synthetic) == (tmp_path, False) and src.description == f"WFLW from {tmp_path}"


def test_data_source_refuses_a_missing_folder(tmp_path):
    from hihlib.errors import HihError

    with pytest.raises(HihError, match="does not exist"):
        data_source("cofw", tmp_path / "nope")


def test_read_metrics_gives_aligned_columns(tmp_path):
    from hihlib.errors import DataError

    p = tmp_path / "metrics.jsonl"
    p.write_text('{"kind": "train", "step": 5, "loss": 0.5}\n'
                 '{"kind": "eval", "step": 5, "argmax": {"nme": 9.0}}\n'
                 '{"kind": "train", "step": 10, "loss": 0.25, "decimal": 1.5}\n\n')
    m = read_metrics(p)
    assert m["train"] == {"step": [5, 10], "loss": [0.5, 0.25], "decimal": [None, 1.5]}
    assert m["eval"]["argmax"] == [{"nme": 9.0}]
    p.write_text('{"kind": "train", "step": 5}\n{"kind": "train", "step": \n')
    with pytest.raises(DataError, match=":2"):
        read_metrics(p)


def test_data_source_falls_back_to_a_synthetic_export_in_the_format(tmp_path, monkeypatch):
    from hihlib.data import COFW

    monkeypatch.delenv("HIH_COFW_ROOT", raising=False)
    src = data_source("cofw", env="HIH_COFW_ROOT", synth_dir=tmp_path / "cofw",
                        synth={"train": 2, "test": 3, "image_size": 64})
    assert src.synthetic and src.root == tmp_path / "cofw"
    assert "SYNTHETIC" in src.description and "not COFW" in src.description
    assert len(COFW(src.root, "test").records) == 3


def test_inside_crop_uses_the_pixel_centre_extent():
    c = np.zeros((3, 2, 2))
    c[1, 0] = [255.5, 10.0]   # on the edge of a 256 crop: inside
    c[2, 1] = [-0.51, 3.0]    # just outside
    assert analysis.inside_crop(c, 256).tolist() == [True, True, False]
