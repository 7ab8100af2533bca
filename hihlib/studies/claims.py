"""The claims ``hih demo`` checks, computed from its result rows, and how they are reported.

* ``claims(rows, sizes, heads)``: the measured gaps and the three verdicts (sub-pixel beats argmax,
  the gap widens as the heatmap shrinks, the coarsest heatmap beats perfect maps read by argmax);
* ``results_markdown(results)``: ``demo_results.md``;
* ``readme_block`` / ``readme_long_block``: the README's result blocks, written from the results files
  by ``tools/update_readme.py`` (``tests/test_readme.py`` checks the README against them).

Rows are dicts with head, heatmap, stride, decoder, nme, fr, auc, floor_nme (NME and FR in %).
"""

from __future__ import annotations

HEADS = ("gaussian", "h3r", "hih", "hih_local")
# The decoder each paper proposes, compared against argmax on the same network. For the HIH heads
# "argmax" is the integer map read alone (the codec's "argmax" method).
SUBPIXEL = {"gaussian": "dark", "h3r": "topk", "hih": "expectation", "hih_local": "expectation", "hih_ext": "expectation"}


def claims(rows: list[dict], sizes, heads=HEADS) -> dict:
    """The demo's claims, computed from its result rows (each a dict with head, heatmap, decoder, nme,
    floor_nme):

    * ``gap_argmax_minus_subpixel_nme``: argmax NME - sub-pixel NME, per head and heatmap size;
    * ``subpixel_beats_argmax``: that gap is positive at every size;
    * ``gap_widens_as_heatmap_shrinks``: it grows strictly from the largest heatmap to the smallest;
    * ``subpixel_beats_argmax_floor``: per head, at the smallest heatmap, the trained network's
      sub-pixel NME is below the NME of perfect maps read by argmax (the head's argmax floor).
    """
    by = {(r["head"], r["heatmap"], r["decoder"]): r for r in rows}
    gaps = {head: {int(hm): by[(head, hm, "argmax")]["nme"] - by[(head, hm, SUBPIXEL[head])]["nme"] for hm in sizes}
            for head in heads}
    ordered = sorted(sizes, reverse=True)  # large heatmap -> small heatmap
    coarsest = min(sizes)
    return {
        "gap_argmax_minus_subpixel_nme": gaps,
        "subpixel_beats_argmax": {h: all(g > 0 for g in gaps[h].values()) for h in heads},
        "gap_widens_as_heatmap_shrinks": {h: all(gaps[h][a] < gaps[h][b] for a, b in zip(ordered, ordered[1:]))
                                          for h in heads},
        "subpixel_beats_argmax_floor": {h: by[(h, coarsest, SUBPIXEL[h])]["nme"] < by[(h, coarsest, "argmax")]["floor_nme"]
                                        for h in heads},
    }


def _load_text(results: dict) -> str:
    """", 1-minute load average L at the start" from the results file, or nothing if it was not read."""
    load = results.get("load_average_start")
    return f", 1-minute load average {load[0]} at the start" if load else ""


def _threads_text(threads) -> str:
    if isinstance(threads, int):
        return str(threads)
    per_model = threads[1:] or threads
    return str(per_model[0]) if len(set(per_model)) == 1 else ", ".join(map(str, per_model))


HOW_TO_READ = (
    "How to read the table: each row is one trained network (head, heatmap size) read by one decoder. Compare "
    "rows of the same head and heatmap: they share the network, so their difference is the decoder's alone. "
    "The head's own sub-pixel decoder ({subpixel}) against `argmax` is the papers' claim; `argmax` snaps to "
    "a cell centre, so its floor (perfect maps) is the quantization error of the grid and grows with the "
    "stride. A trained row above its floor is the network's error plus the decoder's; a sub-pixel row "
    "below the argmax floor means the network read by that decoder beats a perfect map read by argmax.")


def integral_text(results: dict) -> str:
    """Why the integral decoder fails on the demo's trained maps, from the run's own measurement
    (``results["integral"]``, written by ``hihlib.studies.demo.integral_report``); "" when it has none."""
    integ = results.get("integral") or {}
    if not integ:
        return ""
    by = {(r["head"], r["heatmap"], r["decoder"]): r for r in results["rows"]}
    head = next(h for (h, _, m) in by if m == "integral")
    parts = []
    for hm, d in sorted(integ.items(), key=lambda kv: -int(kv[0])):
        parts.append(f"at heatmap {hm}, {100 * d['mass_outside_mean']:.0f} % of a map's positive mass on average "
                     f"(median {100 * d['mass_outside_median']:.0f} %) lies outside the {d['window_cells']}x"
                     f"{d['window_cells']}-cell window around its peak, with its centre of mass "
                     f"{d['outside_to_centre_cells']:.1f} cells from the map's centre (the truth is on average "
                     f"{d['truth_to_centre_cells']:.1f} cells from it), so the estimates land "
                     f"{d['pull_toward_centre_px']:.1f} px nearer the centre than the truth: NME "
                     f"{by[(head, int(hm), 'integral')]['nme']:.2f} % against {d['nme_window']:.2f} % for the same "
                     "expectation over the window alone")
    floors = ", ".join(f"{by[(head, int(hm), 'integral')]['floor_nme']:.2f} % at heatmap {hm}"
                       for hm in sorted(integ, key=lambda h: -int(h)))
    crop = results["profile"]["input_size"]
    return ("Why `integral` fails on trained maps: not because the decoder is wrong (on perfect maps it costs "
            f"{floors}, where the map's border cuts the Gaussian), but because it is the centre of mass of the "
            "whole map (negative values clipped). A network trained with MSE leaves small positive values all over "
            "the map; each is tiny, but there are hundreds of cells, and their centre of mass is near the map's "
            "centre, so they pull every estimate toward it. Measured on this run's test maps (distances in cells "
            f"and in pixels of the {crop} px crop): " + "; ".join(parts) + ". Integral regression works when the "
            "network is trained through the integral itself (Sun et al. 2018), not on maps trained to be Gaussians.")


def seeds_text(seeds: dict | None) -> str:
    """One paragraph on run-to-run variation from a ``demo_seeds.json`` (``tools/demo_seeds.py``)."""
    if not seeds:
        return ""
    spread = seeds["spread"]
    sub = {k: v for k, v in spread.items() if k.startswith("nme/") and not k.endswith("/argmax")}
    widest = max(sub, key=lambda k: sub[k]["max"] - sub[k]["min"])
    gaps = seeds["gap_spread"]
    wg = max(gaps, key=lambda k: gaps[k]["max"] - gaps[k]["min"])
    held = seeds["claims_held"]
    nme_range = sub[widest]["max"] - sub[widest]["min"]
    gap_range = gaps[wg]["max"] - gaps[wg]["min"]
    return (f"Run-to-run variation (`figures/demo_seeds.json`, the {seeds['profile']} profile run with seeds "
            f"{', '.join(map(str, seeds['seeds']))}; a seed changes the training and test faces and the initial "
            f"weights): a sub-pixel NME moves by up to {sub[widest]['max'] - sub[widest]['min']:.2f} points between "
            f"seeds ({widest[4:].replace('/', ' ')}: {sub[widest]['min']:.2f} to {sub[widest]['max']:.2f} %, s.d. "
            f"{sub[widest]['sd']:.2f}); the argmax − sub-pixel gap by up to {gaps[wg]['max'] - gaps[wg]['min']:.2f} "
            f"points ({wg.replace('/', ' ')}: {gaps[wg]['min']:+.2f} to {gaps[wg]['max']:+.2f}), and its smallest "
            f"value over all seeds, heads and sizes is {min(g['min'] for g in gaps.values()):+.2f}"
            + (": the decoders' gain varies far less than the NMEs themselves"
               if gap_range < 0.5 * nme_range else "")
            + f". Claims held, out of {len(seeds['seeds'])} runs: "
            + "; ".join(_held_text(v, held, len(seeds["seeds"])) for v in VERDICTS)
            + ". Differences between heads smaller than the spread are not results."
            + "".join(_repeat_text(rep) for rep in seeds.get("same_seed_repeats", [])))


def _held_text(verdict: str, held: dict, n: int) -> str:
    per = held["per_head"][verdict]
    text = f"{VERDICTS[verdict]}: {held[verdict]}"
    if held[verdict] < n:
        text += " (" + ", ".join(f"{h} {k} of {n}" for h, k in per.items()) + ")"
    return text


def _repeat_text(rep: dict) -> str:
    a, b = (set(t) if isinstance(t, list) else {t} for t in rep["torch_threads"])
    if rep["max_abs_nme_diff"] == 0:
        return (f" Seed {rep['seed']} run again with the same torch threads ({', '.join(map(str, sorted(a)))}) gave "
                "identical numbers.")
    return (f" Seed {rep['seed']} run again with {'other' if a != b else 'the same'} torch thread counts "
            f"({', '.join(map(str, sorted(b)))} against {', '.join(map(str, sorted(a)))}; the order of floating-point "
            f"sums changes) moved by up to {rep['max_abs_nme_diff']:.2f} points ({rep['at'].replace('/', ' ')}: "
            f"{rep['nme'][1]:.2f} against {rep['nme'][0]:.2f} %).")


def results_markdown(results: dict, seeds: dict | None = None) -> str:
    p = results["profile"]
    load = results["load_average_start"]
    lines = [f"# hih demo results ({p['name']} profile)", "",
             f"data: {results['data']}", "",
             f"Every model: hourglass `hg_tiny` (stacks {p['num_stacks']}, width {p['width']}, levels down to 4x4), "
             f"{p['input_size']}px input, AdamW, warmup + cosine from lr {p['lr']}, {p['steps']} steps of batch "
             f"{p['batch_size']}, no augmentation; HIH decimal weight {p['decimal_weight']:.3g}. "
             f"Device {results['device']} ({results.get('device_name', '?')}"
             + (f"; torch threads per model {_threads_text(results['torch_threads'])}" if results.get('torch_threads') else "")
             + f"; 1-minute load average {load[0] if load else '?'} at the start); "
             f"{results['seconds_total']:.0f} s wall, {results['cpu_seconds']:.0f} CPU-seconds of this process.", "",
             "NME in % of the inter-ocular distance on the test faces; FR@0.1 in %; *floor* = NME of decoding "
             "perfect targets with the same decoder (the representation alone, no network).", "",
             "| head | heatmap | stride | decoder | NME % | FR@0.1 % | AUC@0.1 | floor NME % |",
             "|---|---:|---:|---|---:|---:|---:|---:|"]
    for r in results["rows"]:
        lines.append(f"| {r['head']} | {r['heatmap']} | {r['stride']} | {r['decoder']} | {r['nme']:.2f} | "
                     f"{r['fr']:.1f} | {r['auc']:.3f} | {r['floor_nme']:.2f} |")
    c = results["claims"]
    heads = list(c["gap_argmax_minus_subpixel_nme"])
    lines += ["", "## Claims, as measured", "",
              "| head | sub-pixel decoder | argmax NME − sub-pixel NME, per heatmap size | beats argmax everywhere "
              "| gap widens as the heatmap shrinks | beats perfect maps read by argmax (coarsest heatmap) |",
              "|---|---|---|---|---|---|"]
    yes = lambda v: "yes" if v else "NO"  # noqa: E731
    for h in heads:
        gaps = ", ".join(f"{hm}: {g:+.2f}" for hm, g in c["gap_argmax_minus_subpixel_nme"][h].items())
        lines.append(f"| {h} | {SUBPIXEL[h]} | {gaps} | {yes(c['subpixel_beats_argmax'][h])} | "
                     f"{yes(c['gap_widens_as_heatmap_shrinks'][h])} | {yes(c['subpixel_beats_argmax_floor'][h])} |")
    subs = ", ".join(f"{SUBPIXEL[h]} for {h}" for h in heads)
    lines += ["", "## Reading the results", "", HOW_TO_READ.format(subpixel=subs)]
    for extra in (integral_text(results), seeds_text(seeds)):
        if extra:
            lines += ["", extra]
    return "\n".join(lines) + "\n"


README_BEGIN, README_END = "<!-- begin:demo-results -->", "<!-- end:demo-results -->"


def readme_block(results: dict, source: str = "figures/demo_results.json") -> str:
    """The README's demo paragraph and table, written from a results file (``tools/update_readme.py``
    puts it between ``README_BEGIN`` and ``README_END``; a test checks the README against the file)."""
    p, rows = results["profile"], results["rows"]
    by = {(r["head"], r["heatmap"], r["decoder"]): r for r in rows}
    heads, sizes = list(p["heads"]), sorted(p["heatmap_sizes"], reverse=True)
    c = results["claims"]
    load = results.get("load_average_start")
    threads = _threads_text(results["torch_threads"]) if results.get("torch_threads") else None
    details = ([f"{threads} torch thread{'' if threads == '1' else 's'}"] if threads else []) \
        + ([f"load average {load[0]} at the start"] if load else [])
    lines = [f"The committed run (`{source}`): **{results['seconds_total']:.0f} s wall** on "
             f"{results.get('device_name', results['device'])}"
             + (f" ({', '.join(details)})" if details else "")
             + f", {p['name']} profile. **Data: {results['data']}.** These are not WFLW numbers. Every model: "
             f"hourglass `hg_tiny` (width {p['width']}, {p['num_stacks']} stack), {p['steps']} steps of batch "
             f"{p['batch_size']}. NME % inter-ocular (FR@0.1 % in brackets) of each head's sub-pixel decoder / "
             "argmax on the same network; the last column reads *perfect* heatmaps with argmax.", "",
             "| heatmap (stride) | " + " | ".join(f"{h}: {SUBPIXEL[h]} / argmax" for h in heads)
             + " | argmax on perfect maps |",
             "|---|" + "---|" * (len(heads) + 1)]
    for hm in sizes:
        cells = [f"{by[(h, hm, SUBPIXEL[h])]['nme']:.2f} ({by[(h, hm, SUBPIXEL[h])]['fr']:.1f}) / "
                 f"{by[(h, hm, 'argmax')]['nme']:.2f} ({by[(h, hm, 'argmax')]['fr']:.1f})" for h in heads]
        lines.append(f"| {hm} ({p['input_size'] // hm}) | " + " | ".join(cells)
                     + f" | {by[(heads[0], hm, 'argmax')]['floor_nme']:.2f} |")
    yes = lambda v: "yes" if v else "**no**"  # noqa: E731
    lines += ["", "Claims, as measured by the demo's claims table:", ""]
    for h in heads:
        g = c["gap_argmax_minus_subpixel_nme"][h]   # keys are strings once read back from JSON
        gaps = " / ".join(f"{g.get(hm, g.get(str(hm))):+.2f}" for hm in sizes)
        lines.append(f"- **{h}** ({SUBPIXEL[h]} vs argmax): gain {gaps} NME points at heatmap "
                     + " / ".join(map(str, sizes)) + f"; beats argmax at every size: {yes(c['subpixel_beats_argmax'][h])}; "
                     f"gap widens as the heatmap shrinks: {yes(c['gap_widens_as_heatmap_shrinks'][h])}; beats perfect "
                     f"maps read by argmax at stride {p['input_size'] // min(sizes)}: {yes(c['subpixel_beats_argmax_floor'][h])}.")
    lines += ["", "How to read the table: each cell is one trained network read two ways, so the difference within a "
              "cell (sub-pixel / argmax) is the decoder's alone; argmax snaps to a cell centre, so its error on "
              "perfect maps (last column) is the grid's quantization error and doubles with the stride. A sub-pixel "
              "number below the last column means the network read by that decoder beats a perfect map read by "
              "argmax. `demo_results.md` has every decoder of every head (quarter-offset, integral, the HIH variants)."]
    integral = integral_text(results)
    if integral:
        lines += ["", integral]
    return "\n".join(lines) + "\n"


LONG_BEGIN, LONG_END = "<!-- begin:long-results -->", "<!-- end:long-results -->"


def readme_long_block(results: dict, source: str = "figures/long/demo_results.json") -> str:
    """The README's sentence on the long run (``hih demo --long``), written from its results file."""
    p = results["profile"]
    by = {(r["head"], r["decoder"]): r for r in results["rows"]}
    parts = []
    for key, c in results["curves"].items():
        head = key.rsplit("_", 1)[0]
        e, a = by[(head, SUBPIXEL[head])], by[(head, "argmax")]
        parts.append(f"`{head}` decimal KL {c['decimal_kl'][0]:.2f} → {c['decimal_kl'][-1]:.2f} nats, test NME "
                     f"{e['nme']:.2f} % (FR@0.1 {e['fr']:.1f} %) read with its decimal map against {a['nme']:.2f} % "
                     "for its integer map alone")
    return (f"The long run (`{source}`, {p['steps']} steps of batch {p['batch_size']} at stride "
            f"{p['input_size'] // p['heatmap_sizes'][0]}, {results['seconds_total']:.0f} s on "
            f"{results.get('device_name', results['device'])}" + _load_text(results)
            + "; data: synthetic faces as above): " + "; ".join(parts) + ".\n")


VERDICTS = {"subpixel_beats_argmax": "sub-pixel beats argmax at every size",
            "gap_widens_as_heatmap_shrinks": "the gap widens as the heatmap shrinks",
            "subpixel_beats_argmax_floor": "sub-pixel beats perfect maps read by argmax at the coarsest heatmap"}


def seed_spread(runs: list[dict]) -> dict:
    """Run-to-run variation over demo runs that differ only in their seed (each a ``demo_results.json``
    content, same profile): per (head, heatmap, decoder) NME and per (head, heatmap) argmax − sub-pixel
    gap, the values per seed with their mean, s.d. (n - 1), min and max; and how many runs held each claim."""
    import statistics

    profiles = {r["profile"]["name"] for r in runs}
    if len(profiles) != 1:
        raise ValueError(f"runs of one profile expected, got {sorted(profiles)}")

    def stats(values):
        return {"values": values, "mean": statistics.fmean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
                "min": min(values), "max": max(values)}

    keys = [(r["head"], r["heatmap"], r["decoder"]) for r in runs[0]["rows"]]
    nme = {k: [next(r["nme"] for r in run["rows"] if (r["head"], r["heatmap"], r["decoder"]) == k) for run in runs]
           for k in keys}
    gaps = {}
    for run in runs:
        for h, per in run["claims"]["gap_argmax_minus_subpixel_nme"].items():
            for hm, g in per.items():
                gaps.setdefault(f"{h}/{hm}", []).append(g)
    held = {v: sum(all(run["claims"][v].values()) for run in runs) for v in VERDICTS}
    held["all"] = sum(all(all(run["claims"][v].values()) for v in VERDICTS) for run in runs)
    held["per_head"] = {v: {h: sum(bool(run["claims"][v][h]) for run in runs) for h in runs[0]["claims"][v]}
                        for v in VERDICTS}
    return {"profile": profiles.pop(), "seeds": [run["seed"] for run in runs],
            "spread": {f"nme/{h}/{hm}/{m}": stats(v) for (h, hm, m), v in nme.items()},
            "gap_spread": {k: stats(v) for k, v in gaps.items()}, "claims_held": held}


def same_seed_repeat(a: dict, b: dict) -> dict:
    """Two demo runs with the same seed (e.g. on another number of torch threads, which changes the order
    of floating-point sums in training): the largest NME difference between their rows, and where."""
    key = lambda r: (r["head"], r["heatmap"], r["decoder"])  # noqa: E731
    other = {key(r): r for r in b["rows"]}
    diffs = [(abs(r["nme"] - other[key(r)]["nme"]), key(r), r["nme"], other[key(r)]["nme"]) for r in a["rows"]]
    d, (head, hm, m), x, y = max(diffs)
    return {"seed": a.get("seed"), "torch_threads": [a.get("torch_threads"), b.get("torch_threads")],
            "max_abs_nme_diff": d, "at": f"{head}/{hm}/{m}", "nme": [x, y],
            "verdicts_equal": all(a["claims"][v] == b["claims"][v] for v in VERDICTS)}


SEEDS_BEGIN, SEEDS_END = "<!-- begin:demo-seeds -->", "<!-- end:demo-seeds -->"


def readme_seeds_block(seeds: dict) -> str:
    """The README's sentence on run-to-run variation, written from ``figures/demo_seeds.json``."""
    return seeds_text(seeds) + "\n"
