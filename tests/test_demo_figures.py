"""The demo's figures and explanations, from hand-made inputs: the integral decoder's pull measured by
``analysis.integral_pull`` against a direct count, the sample figure's choice of landmarks, the run-to-run
spread, the compact results file, and every figure redrawn from a results dict alone (no warnings)."""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import warnings

import numpy as np
import pytest
import torch

from hihlib.teaching.analysis import integral_pull
from hihlib.studies.claims import SUBPIXEL, claims, seed_spread, seeds_text


def _gaussian(h, w, cx, cy, sigma=1.5):
    y, x = np.mgrid[0:h, 0:w]
    return np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))


def test_integral_pull_splits_the_mass_as_a_direct_count_does():
    """A Gaussian peak plus a constant background: the window's and the rest's mass and centres, counted
    cell by cell with plain loops, and integral = (1 - f) window + f outside."""
    h = w = 16
    background = 0.02
    m = _gaussian(h, w, 4.3, 11.6) + background
    m[0, 0] = -0.5                                   # a negative value: clipped, as the integral decoder does
    out = integral_pull(torch.tensor(m, dtype=torch.float32)[None, None], radius=3)
    px, py = 4, 12                                    # the maximum's cell
    mass_in = mass_out = 0.0
    sx_in = sy_in = sx_out = sy_out = 0.0
    for y in range(h):
        for x in range(w):
            v = max(m[y, x], 0.0)
            if abs(x - px) <= 3 and abs(y - py) <= 3:
                mass_in, sx_in, sy_in = mass_in + v, sx_in + v * x, sy_in + v * y
            else:
                mass_out, sx_out, sy_out = mass_out + v, sx_out + v * x, sy_out + v * y
    f = mass_out / (mass_in + mass_out)
    assert float(out["mass_outside"]) == pytest.approx(f, rel=1e-5)
    assert out["window"][0, 0].tolist() == pytest.approx([sx_in / mass_in, sy_in / mass_in], rel=1e-5)
    assert out["outside"][0, 0].tolist() == pytest.approx([sx_out / mass_out, sy_out / mass_out], rel=1e-5)
    whole = (1 - f) * np.array([sx_in / mass_in, sy_in / mass_in]) + f * np.array([sx_out / mass_out, sy_out / mass_out])
    assert out["integral"][0, 0].tolist() == pytest.approx(whole.tolist(), rel=1e-5)
    # the background is centred on the map: it pulls the estimate from the peak toward (7.5, 7.5)
    c = (w - 1) / 2
    assert np.hypot(*(out["integral"][0, 0].numpy() - c)) < np.hypot(4.3 - c, 11.6 - c)


def test_integral_pull_without_background_leaves_the_estimate_at_the_window():
    g = _gaussian(32, 32, 15.0, 9.0)
    y, x = np.mgrid[0:32, 0:32]
    g[(abs(x - 15) > 6) | (abs(y - 9) > 6)] = 0.0     # nothing beyond the window
    m = torch.tensor(g, dtype=torch.float32)[None, None]
    out = integral_pull(m, radius=6)
    assert float(out["mass_outside"]) == 0.0
    assert torch.allclose(out["outside"], out["window"]) and torch.allclose(out["integral"], out["window"])
    assert out["window"][0, 0].tolist() == pytest.approx([15.0, 9.0], abs=1e-4)


def test_pick_landmarks_takes_the_largest_disagreements_one_per_face_among_ordinary_landmarks():
    from hihlib.viz.demo_figures import pick_landmarks

    truth = np.zeros((3, 4, 2))
    a, b = truth.copy(), truth.copy()
    b[0, 1] = [3.0, 0.0]        # face 0: disagreement 3 (both within 8 px of the truth)
    b[0, 2] = [2.5, 0.0]        # face 0: 2.5, second on face 0
    b[1, 3] = [0.0, 2.0]        # face 1: 2
    b[2, 0] = [1.0, 0.0]        # face 2: 1
    a[2, 1], b[2, 1] = [40.0, 0.0], [0.0, 0.0]   # face 2: 40, but a failure (40 px off): left out
    assert pick_landmarks(a, b, truth, limit=8.0, count=3) == [(0, 1), (1, 3), (2, 0)]
    # with fewer faces than picks, a face is used twice
    assert pick_landmarks(a[:1], b[:1], truth[:1], limit=8.0, count=2) == [(0, 1), (0, 2)]


def _rows(values):
    """(head, heatmap) -> (sub-pixel NME, argmax NME, argmax floor) as result rows."""
    rows = []
    for (head, hm), (sub, arg, floor) in values.items():
        rows.append({"head": head, "heatmap": hm, "decoder": SUBPIXEL[head], "nme": sub, "floor_nme": 0.0})
        rows.append({"head": head, "heatmap": hm, "decoder": "argmax", "nme": arg, "floor_nme": floor})
    return rows


def _run(seed, values):
    rows = _rows(values)
    return {"profile": {"name": "cpu"}, "seed": seed, "rows": rows, "claims": claims(rows, (32, 16), ("h3r",))}


def test_seed_spread_gives_per_seed_values_their_spread_and_the_claims_held():
    runs = [_run(0, {("h3r", 32): (3.0, 4.0, 2.5), ("h3r", 16): (3.5, 6.0, 5.0)}),
            _run(1, {("h3r", 32): (3.2, 4.1, 2.5), ("h3r", 16): (3.9, 6.5, 5.0)}),
            _run(2, {("h3r", 32): (2.9, 4.5, 2.5), ("h3r", 16): (3.4, 4.8, 5.0)})]   # gap 1.6 -> 1.4: narrows
    s = seed_spread(runs)
    assert s["seeds"] == [0, 1, 2]
    topk16 = s["spread"]["nme/h3r/16/topk"]
    assert topk16["values"] == [3.5, 3.9, 3.4]
    assert topk16["min"] == 3.4 and topk16["max"] == 3.9
    assert topk16["sd"] == pytest.approx(math.sqrt(((3.5 - 3.6) ** 2 + (3.9 - 3.6) ** 2 + (3.4 - 3.6) ** 2) / 2))
    assert s["gap_spread"]["h3r/16"]["values"] == pytest.approx([2.5, 2.6, 1.4])
    held = {k: v for k, v in s["claims_held"].items() if k != "per_head"}
    assert held == {"subpixel_beats_argmax": 3, "gap_widens_as_heatmap_shrinks": 2,
                    "subpixel_beats_argmax_floor": 3, "all": 2}
    assert s["claims_held"]["per_head"]["gap_widens_as_heatmap_shrinks"] == {"h3r": 2}
    text = seeds_text(s)
    assert "moves by up to 0.50 points" in text
    assert "the gap widens as the heatmap shrinks: 2 (h3r 2 of 3)" in text
    assert "sub-pixel beats argmax at every size: 3;" in text
    with pytest.raises(ValueError, match="one profile"):
        seed_spread([runs[0], {**runs[1], "profile": {"name": "quick"}}])


def test_results_file_puts_number_lists_on_one_line_and_reads_back_equal(tmp_path):
    from hihlib.studies.demo import write_results

    results = {"rows": [{"head": "h3r", "nme": 3.25}], "per_face_nme": {"h3r/16/topk": [1.5, 2.0, -0.25]},
               "samples": {"h3r/16": {"topk": [[[1.0, 2.0], [3.0, 4.5]], [[5.0, 6.0], [7.0, 8.0]]]}},
               "name": "a [bracketed], string"}
    path = write_results(tmp_path / "r.json", results)
    text = path.read_text()
    assert json.loads(text) == results
    assert '"h3r/16/topk": [1.5, 2.0, -0.25]' in text
    assert "[[1.0, 2.0], [3.0, 4.5]]" in text


def _hand_made_results():
    """A quick-profile results dict with made-up numbers for two heads, as the figures read it."""
    from hihlib.studies.demo import PROFILES

    p = dataclasses.replace(PROFILES["quick"], heads=("gaussian", "h3r"), num_samples=2)
    rows, per_face, samples = [], {}, {}
    rng = np.random.default_rng(0)
    from hihlib.studies.demo import sample_crops
    from hihlib.data import to_original

    faces = sample_crops(dataclasses.asdict(p), 0, p.num_samples)
    truth = torch.stack([faces[i]["landmarks"] for i in range(p.num_samples)])          # crop px
    matrices = torch.stack([torch.as_tensor(faces[i]["matrix"]) for i in range(p.num_samples)])
    for hm in p.heatmap_sizes:
        for head in p.heads:
            methods = ("dark", "argmax", "quarter", "integral") if head == "gaussian" else ("topk", "argmax")
            for k, m in enumerate(methods):
                rows.append({"head": head, "heatmap": hm, "stride": 64 // hm, "decoder": m, "nme": 3.0 + k + 64 / hm,
                             "fr": 1.0, "auc": 0.5, "floor_nme": 0.0 if k == 0 else 0.4 * 64 / hm})
            for m in (SUBPIXEL[head], "argmax"):
                per_face[f"{head}/{hm}/{m}"] = list(3 + rng.random(32))
                if hm == min(p.heatmap_sizes):
                    off = rng.normal(0, 1.0 if m == "argmax" else 0.3, truth.shape)
                    samples[f"{head}/{hm}"] = {**samples.get(f"{head}/{hm}", {}),
                                               m: to_original(truth + off, matrices).tolist()}
    integral = {str(hm): {"heatmap": hm, "window_cells": 7, "mass_outside_mean": 0.6, "mass_outside_median": 0.62,
                          "outside_to_centre_cells": 1.0, "truth_to_centre_cells": 4.0, "integral_to_centre_cells": 2.0,
                          "pull_toward_centre_px": 5.0, "nme_integral": 12.0, "nme_window": 4.0}
                for hm in p.heatmap_sizes}
    return {"profile": dataclasses.asdict(p), "data": "hand-made", "device": "cpu", "torch_threads": [1],
            "load_average_start": [0.1, 0.1, 0.1], "seconds_total": 1.0, "cpu_seconds": 1.0, "rows": rows,
            "subpixel": {h: SUBPIXEL[h] for h in p.heads}, "claims": claims(rows, p.heatmap_sizes, p.heads),
            "seed": 0, "integral": integral, "per_face_nme": per_face, "samples": samples}


def test_figures_and_markdown_are_redrawn_from_the_results_alone_without_warnings(tmp_path):
    from hihlib.studies.demo import replot, write_results

    write_results(tmp_path / "demo_results.json", _hand_made_results())
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # e.g. matplotlib's tight-layout and empty-legend warnings
        replot(tmp_path)
    for name in ("demo_ced.png", "demo_resolution.png", "demo_samples.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    md = (tmp_path / "demo_results.md").read_text()
    assert "How to read the table" in md
    assert "60 % of a map's positive mass on average" in md and "5.0 px nearer the centre" in md


def test_replot_of_an_older_results_file_is_a_one_line_error(tmp_path):
    from hihlib.studies.demo import replot
    from hihlib.errors import ConfigError

    old = {k: v for k, v in _hand_made_results().items() if k not in ("samples", "per_face_nme")}
    (tmp_path / "demo_results.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="lacks per_face_nme, samples .*run hih demo again"):
        replot(tmp_path)


def test_sample_crops_are_the_demos_test_crops():
    from hihlib.studies.demo import PROFILES, make_data, sample_crops

    p = PROFILES["quick"]
    _, test_set, _ = make_data(p, seed=3)
    again = sample_crops(dataclasses.asdict(p), 3, 2)
    for i in range(2):
        assert torch.allclose(again[i]["landmarks"], test_set[i]["landmarks"])
        assert torch.allclose(again[i]["image"].half().float(), test_set[i]["image"])   # the cache keeps float16


def test_mean_of_hand_made_values_is_what_statistics_says():
    # guards the spread's arithmetic against a silent population/sample s.d. mix-up
    s = seed_spread([_run(i, {("h3r", 32): (v, 5.0, 2.5), ("h3r", 16): (v, 7.0, 5.0)}) for i, v in enumerate((1.0, 2.0, 4.0))])
    assert s["spread"]["nme/h3r/32/topk"]["mean"] == pytest.approx(statistics.fmean([1.0, 2.0, 4.0]))
    assert s["spread"]["nme/h3r/32/topk"]["sd"] == pytest.approx(statistics.stdev([1.0, 2.0, 4.0]))
