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


def results_markdown(results: dict) -> str:
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
