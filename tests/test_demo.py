"""``hih demo --quick``: the whole demo pipeline at toy scale (synthetic faces, three heads, every
decoder, two heatmap sizes, figures and tables), checked against closed forms where they exist."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hihlib.cli import main
from hihlib.demo import HEADS, PROFILES, SUBPIXEL, claims, make_data

# E||e|| of rounding a uniformly distributed 2-D position to the nearest cell centre, in cells
# (docs/REFERENCE.md section 1): (sqrt(2) + ln(1 + sqrt(2))) / 6
ROUNDING_ERROR = (np.sqrt(2) + np.log(1 + np.sqrt(2))) / 6


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    import io
    from contextlib import redirect_stdout

    buf = io.StringIO()
    with redirect_stdout(buf):
        rc = main(["demo", "--quick", "--out", str(out), "--work-dir", str(out / "runs")])
    assert rc == 0
    return out, json.loads((out / "demo_results.json").read_text()), buf.getvalue()


def test_quick_demo_writes_figures_and_tables(demo):
    out, results, stdout = demo
    for name in ("demo_ced.png", "demo_resolution.png", "demo_samples.png"):
        assert (out / name).stat().st_size > 10_000, name
    md = (out / "demo_results.md").read_text()
    assert md.splitlines()[2].startswith("data: synthetic WFLW-format faces (hihlib.data.synthetic), 64 training faces")
    assert "data: synthetic WFLW-format faces" in stdout
    assert results["profile"]["name"] == "quick" and results["seconds_total"] > 0


def test_every_head_is_evaluated_with_every_decoder_at_every_heatmap_size(demo):
    _, results, _ = demo
    got = {(r["head"], r["heatmap"]): set() for r in results["rows"]}
    for r in results["rows"]:
        got[(r["head"], r["heatmap"])].add(r["decoder"])
    expected = {"gaussian": {"dark", "argmax", "quarter", "integral"}, "h3r": {"topk", "argmax"},
                "hih": {"expectation", "official", "local_mean", "softmax_mean", "argmax"}}
    assert got == {(h, s): expected[h] for h in HEADS for s in PROFILES["quick"].heatmap_sizes}
    assert all(np.isfinite(r["nme"]) and 0 <= r["auc"] <= 1 for r in results["rows"])


def test_argmax_floor_matches_the_rounding_closed_form(demo):
    """Decoding perfect Gaussian maps with argmax costs 0.3826 cells on average: NME = 0.3826 x stride / IOD."""
    _, results, _ = demo
    p = PROFILES["quick"]
    _, test_set, _ = make_data(p)
    i, j = test_set.scheme.normaliser()
    iod = np.linalg.norm((test_set.landmarks[:, i] - test_set.landmarks[:, j]).numpy(), axis=1)  # crop pixels
    for r in results["rows"]:
        if r["head"] == "gaussian" and r["decoder"] == "argmax":
            expected = 100 * ROUNDING_ERROR * r["stride"] * np.mean(1 / iod)
            assert r["floor_nme"] == pytest.approx(expected, rel=0.1)
        if (r["head"], r["decoder"]) in (("hih", "expectation"), ("h3r", "topk")):
            # lossless up to the landmarks that fall outside the heatmap (clamped at its border)
            assert r["floor_nme"] < 0.05


def test_claims_summary_is_computed_from_the_rows(demo):
    _, results, _ = demo
    by = {(r["head"], r["heatmap"], r["decoder"]): r["nme"] for r in results["rows"]}
    sizes = PROFILES["quick"].heatmap_sizes
    for h in HEADS:
        for s in sizes:
            gap = results["claims"]["gap_argmax_minus_subpixel_nme"][h][str(s)]
            assert gap == pytest.approx(by[(h, s, "argmax")] - by[(h, s, SUBPIXEL[h])])
    assert claims(results["rows"], sizes)["subpixel_beats_argmax"] == results["claims"]["subpixel_beats_argmax"]
