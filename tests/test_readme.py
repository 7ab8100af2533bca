"""The README's demo block is generated from the committed results (figures/demo_results.json), so the
text cannot drift from the numbers; the committed demo run satisfies the claims the README states."""

import json
from pathlib import Path

from hihlib.claims import LONG_BEGIN, LONG_END, README_BEGIN, README_END, SUBPIXEL, readme_block, readme_long_block

ROOT = Path(__file__).resolve().parent.parent
RESULTS = json.loads((ROOT / "figures" / "demo_results.json").read_text())


def test_readme_demo_block_is_the_one_written_from_the_committed_results():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(README_BEGIN) + len(README_BEGIN):readme.index(README_END)].strip("\n")
    assert block == readme_block(RESULTS).strip("\n"), "run: python tools/update_readme.py"


def test_readme_long_run_sentence_is_the_one_written_from_the_long_results():
    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index(LONG_BEGIN) + len(LONG_BEGIN):readme.index(LONG_END)].strip("\n")
    long_results = json.loads((ROOT / "figures" / "long" / "demo_results.json").read_text())
    assert block == readme_long_block(long_results).strip("\n"), "run: python tools/update_readme.py"


def test_committed_demo_run_meets_the_issue_targets():
    """The cpu profile's run: FR@0.1 <= 5 % for every head's sub-pixel decoder at strides 2 and 4, within
    600 s, and every claim of the claims table holding."""
    assert RESULTS["profile"]["name"] == "cpu"
    assert RESULTS["seconds_total"] <= 600
    for r in RESULTS["rows"]:
        if r["decoder"] == SUBPIXEL[r["head"]] and r["stride"] in (2, 4):
            assert r["fr"] <= 5.0, r
    c = RESULTS["claims"]
    for key in ("subpixel_beats_argmax", "gap_widens_as_heatmap_shrinks"):
        assert all(c[key].values()), (key, c[key])
    for r in RESULTS["rows"]:
        assert {"head", "heatmap", "stride", "decoder", "nme", "fr", "floor_nme"} <= set(r)
