"""The README's demo block is generated from the committed results (figures/demo_results.json), so the
text cannot drift from the numbers; the code that renders it puts hand-made numbers and verdicts where
they belong."""

import json
from pathlib import Path

from hihlib.studies.claims import LONG_BEGIN, LONG_END, README_BEGIN, README_END, SUBPIXEL, readme_block, readme_long_block

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


def _hand_made_results():
    """A results dict as ``hih demo`` writes it, with numbers chosen by hand: heads gaussian and hih_local at
    heatmaps 32 and 16 of a 64 px input; hih_local loses to argmax at 32 (a claim that fails)."""
    table = {("gaussian", 32): (2.11, 1.0, 3.42, 6.5, 2.55), ("gaussian", 16): (3.33, 2.0, 5.67, 30.0, 5.10),
             ("hih_local", 32): (3.50, 4.0, 3.40, 7.0, 2.55), ("hih_local", 16): (2.90, 1.5, 5.90, 33.0, 5.10)}
    rows = []
    for (head, hm), (sub, sub_fr, arg, arg_fr, floor) in table.items():
        for decoder, nme, fr in ((SUBPIXEL[head], sub, sub_fr), ("argmax", arg, arg_fr)):
            rows.append({"head": head, "heatmap": hm, "stride": 64 // hm, "decoder": decoder, "nme": nme, "fr": fr,
                         "auc": 0.5, "floor_nme": floor if decoder == "argmax" else 0.0})
    profile = {"name": "cpu", "heads": ["gaussian", "hih_local"], "heatmap_sizes": [32, 16], "input_size": 64,
               "width": 32, "num_stacks": 1, "steps": 500, "batch_size": 16}
    from hihlib.studies.claims import claims

    return {"profile": profile, "rows": rows, "claims": claims(rows, (32, 16), ("gaussian", "hih_local")),
            "data": "hand-made faces", "device": "cpu", "device_name": "a test CPU", "seconds_total": 123.4,
            "torch_threads": [2, 2], "load_average_start": [0.5, 0.5, 0.5]}


def test_readme_block_renders_the_numbers_and_verdicts_it_is_given():
    """The code that writes the README's block (``claims.readme_block``), on hand-made results: every
    number lands in its row and column, and a claim that fails reads **no**."""
    text = readme_block(_hand_made_results(), "x.json")
    lines = text.splitlines()
    assert "**123 s wall** on a test CPU (2 torch threads, load average 0.5 at the start)" in lines[0]
    assert "**Data: hand-made faces.**" in lines[0] and "`hg_tiny` (width 32, 1 stack), 500 steps of batch 16" in lines[0]
    header = next(line for line in lines if line.startswith("| heatmap"))
    assert header.split("|")[2:4] == [" gaussian: dark / argmax ", " hih_local: expectation / argmax "]
    row32 = next(line for line in lines if line.startswith("| 32 (2) |"))
    row16 = next(line for line in lines if line.startswith("| 16 (4) |"))
    assert [c.strip() for c in row32.split("|")[2:5]] == ["2.11 (1.0) / 3.42 (6.5)", "3.50 (4.0) / 3.40 (7.0)", "2.55"]
    assert [c.strip() for c in row16.split("|")[2:5]] == ["3.33 (2.0) / 5.67 (30.0)", "2.90 (1.5) / 5.90 (33.0)", "5.10"]
    assert lines.index(row32) < lines.index(row16)     # the larger heatmap first
    gaussian = next(line for line in lines if line.startswith("- **gaussian**"))
    hih = next(line for line in lines if line.startswith("- **hih_local**"))
    # gaussian: gains +1.31 / +2.34; hih_local: -0.10 / +3.00
    assert "gain +1.31 / +2.34 NME points at heatmap 32 / 16" in gaussian
    assert "beats argmax at every size: yes" in gaussian and "gap widens as the heatmap shrinks: yes" in gaussian
    assert "beats perfect maps read by argmax at stride 4: yes" in gaussian   # 3.33 < 5.10
    assert "gain -0.10 / +3.00" in hih and "beats argmax at every size: **no**" in hih
    assert "gap widens as the heatmap shrinks: yes" in hih and "at stride 4: yes" in hih
