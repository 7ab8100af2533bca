"""The figures of ``hih demo``, drawn with ``hihlib.viz``'s helpers from the demo's results alone
(``demo_results.json``: ``hih demo --replot`` redraws them without training):

* ``demo_ced.png``: one panel per heatmap size, each head's sub-pixel decoder (solid) and argmax
  (dashed), every curve its own colour, the x-axis long enough for the slowest curve to rise;
* ``demo_resolution.png``: one panel per head, NME against stride of the trained network read by its
  sub-pixel decoder and by argmax, beside the same two decoders on perfect maps (the floors, in grey);
  a last panel for the Gaussian head's integral decoder with the measurement that explains its failure;
* ``demo_samples.png``: zooms on the landmarks (of the first test faces, coarsest heatmap) where argmax
  and the sub-pixel decoder disagree most, with the truth and the heatmap's cell grid;
* ``demo_long.png`` (profiles with curves): decimal KL and NME against training steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import new_figure, plot_ced, save_figure

HEAD_COLORS = {"gaussian": "#1f77b4", "h3r": "#ff7f0e", "hih": "#2ca02c", "hih_local": "#9467bd", "hih_ext": "#17becf"}
FLOOR_COLOR = "0.45"
SHORT = "synthetic WFLW-format test faces"
NEEDED = ("per_face_nme", "samples", "integral", "seed")


def demo_figures(out: Path, results: dict, test_set) -> None:
    """Write the demo's figures to ``out`` from its results (``demo_results.json``'s content).

    ``test_set``: the run's test crops (at least its first ``num_samples``), for the sample figure: the
    run's own, or its first faces rendered again from the run's seed (``hihlib.studies.demo.sample_crops``; the
    synthetic faces are deterministic)."""
    missing = [k for k in NEEDED if k not in results]
    if missing:
        raise ValueError(f"demo results lack {', '.join(missing)} (written by an older hih demo): run hih demo again")
    out = Path(out)
    p = results["profile"]
    tag = f"data: {SHORT} ({p['name']} profile, seed {results['seed']})"
    ced_figure(out / "demo_ced.png", results, tag)
    resolution_figure(out / "demo_resolution.png", results, tag)
    samples_figure(out / "demo_samples.png", results, test_set, tag)
    if results.get("curves"):
        long_figure(out / "demo_long.png", results)


def ced_figure(path: Path, results: dict, tag: str) -> None:
    p, SUBPIXEL = results["profile"], results["subpixel"]
    heads, sizes = list(p["heads"]), sorted(p["heatmap_sizes"], reverse=True)   # large -> small heatmap
    per_face = results["per_face_nme"]   # "head/heatmap/decoder" -> per-face NME in %
    fig, axes = new_figure(1, len(sizes), size=(5.2 * len(sizes), 4.8))
    axes = np.atleast_1d(axes)
    for ax, hm in zip(axes, sizes):
        curves = {f"{head} {m}": np.asarray(per_face[f"{head}/{hm}/{m}"]) / 100
                  for head in heads for m in (SUBPIXEL[head], "argmax")}
        plot_ced(curves, ax, title=f"heatmap {hm} (stride {p['input_size'] // hm})")
        for line in ax.get_lines():
            label = line.get_label()
            if label.startswith("_"):
                continue
            head = label.split()[0]
            line.set_color(HEAD_COLORS.get(head, line.get_color()))
            line.set_linestyle("--" if " argmax" in label else "-")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"CED: each head's sub-pixel decoder (solid) and argmax (dashed) on the same network; {tag}",
                 fontsize=10)
    save_figure(fig, path)


def resolution_figure(path: Path, results: dict, tag: str) -> None:
    """One panel per head (sub-pixel vs argmax, trained and on perfect maps) and one for the integral
    decoder, with the measured mass outside the peak's window that pulls it toward the map's centre."""
    p, SUBPIXEL, rows = results["profile"], results["subpixel"], results["rows"]
    heads, sizes = list(p["heads"]), sorted(p["heatmap_sizes"], reverse=True)
    strides = [p["input_size"] // hm for hm in sizes]
    by = {(r["head"], r["heatmap"], r["decoder"]): r for r in rows}
    has_integral = any((h, sizes[0], "integral") in by for h in heads)
    n = len(heads) + has_integral
    fig, axes = new_figure(1, n, size=(3.6 * n, 4.4))
    axes = np.atleast_1d(axes)
    top = max(max(by[(h, hm, m)][k] for m in (SUBPIXEL[h], "argmax") for k in ("nme", "floor_nme"))
              for h in heads for hm in sizes)

    def series(ax, values, fmt, label, **kw):
        ax.plot(strides, values, fmt, marker=kw.pop("marker", "o"), label=label, **kw)
        for x, y in zip(strides, values):
            ax.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(6, -3), fontsize=7,
                        color=kw.get("color"))

    for ax, head in zip(axes, heads):
        sub, color = SUBPIXEL[head], HEAD_COLORS.get(head)
        series(ax, [by[(head, hm, sub)]["nme"] for hm in sizes], "-", f"trained, {sub}", color=color, lw=2)
        series(ax, [by[(head, hm, "argmax")]["nme"] for hm in sizes], "--", "trained, argmax", color=color, lw=2,
               marker="s")
        series(ax, [by[(head, hm, "argmax")]["floor_nme"] for hm in sizes], ":", "perfect maps, argmax",
               color=FLOOR_COLOR, marker="v")
        series(ax, [by[(head, hm, sub)]["floor_nme"] for hm in sizes], "-", f"perfect maps, {sub}",
               color=FLOOR_COLOR, marker="^", lw=0.8)
        ax.set_ylim(0, 1.12 * top)
        ax.set_title(f"{head}: {sub} vs argmax", fontsize=10)
    for ax in axes:
        ax.set_xscale("log", base=2)
        ax.set_xticks(strides, [f"{s}\n({hm} cells)" for s, hm in zip(strides, sizes)])
        ax.set_xlim(strides[0] / 1.3, strides[-1] * 1.5)
        ax.set_xlabel("stride in px (heatmap size)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("NME (% inter-ocular)")
    if has_integral:
        _integral_panel(axes[-1], results, by, sizes, strides)
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("NME against the heatmap's stride: each head's sub-pixel decoder (solid) vs argmax (dashed) on "
                 f"the same network, and on perfect maps (grey: the representation floor); {tag}", fontsize=9)
    save_figure(fig, path)


def _integral_panel(ax, results: dict, by: dict, sizes, strides) -> None:
    head = next(h for h in results["profile"]["heads"] if (h, sizes[0], "integral") in by)
    sub = results["subpixel"][head]
    integ = results["integral"]
    ax.plot(strides, [by[(head, hm, "integral")]["nme"] for hm in sizes], "-", marker="o", color="k",
            lw=2, label="trained, integral (whole map)")
    ax.plot(strides, [integ[str(hm)]["nme_window"] for hm in sizes], "-.", marker="D", color="k",
            label=f"trained, integral over the {integ[str(sizes[0])]['window_cells']}x"
                  f"{integ[str(sizes[0])]['window_cells']} peak window")
    ax.plot(strides, [by[(head, hm, sub)]["nme"] for hm in sizes], "-", marker="o", color=HEAD_COLORS.get(head),
            label=f"trained, {sub}")
    ax.plot(strides, [by[(head, hm, "integral")]["floor_nme"] for hm in sizes], ":", marker="v",
            color=FLOOR_COLOR, label="perfect maps, integral")
    top = max(by[(head, hm, "integral")]["nme"] for hm in sizes)
    ax.set_ylim(0, 2.4 * top)   # the data in the lower part, the legend and the measurement above it
    ax.set_title(f"{head}: why integral fails", fontsize=10)
    text = "\n".join(f"heatmap {hm}: {100 * integ[str(hm)]['mass_outside_mean']:.0f} % of the mass outside the window,\n"
                     f"  its centre {integ[str(hm)]['outside_to_centre_cells']:.1f} cells from the map centre;\n"
                     f"  estimates {integ[str(hm)]['pull_toward_centre_px']:.1f} px nearer the centre than the truth"
                     for hm in sizes)
    ax.text(0.02, 0.76, "measured on the test maps:\n" + text, transform=ax.transAxes, fontsize=6.5, va="top",
            bbox=dict(boxstyle="round", fc="white", ec="0.7", alpha=0.9))


def pick_landmarks(a: np.ndarray, b: np.ndarray, truth: np.ndarray, limit: float, count: int = 3) -> list[tuple[int, int]]:
    """(face, landmark) pairs where the predictions ``a`` and ``b`` (N, K, 2) disagree most, among the
    landmarks both put within ``limit`` px of ``truth`` (the ordinary case, not a failure; all landmarks
    if fewer than ``count`` qualify), at most one per face while there are enough faces: the rule of the
    sample figure, stated in its title. The rule treats the two decoders alike, so it favours neither."""
    d = np.linalg.norm(a - b, axis=-1)                                            # (N, K)
    ok = np.maximum(np.linalg.norm(a - truth, axis=-1), np.linalg.norm(b - truth, axis=-1)) <= limit
    if ok.sum() >= count:
        d = np.where(ok, d, -1.0)
    order = np.dstack(np.unravel_index(np.argsort(-d, axis=None, kind="stable"), d.shape))[0]
    picked, faces = [], set()
    for i, k in order:
        if len(picked) == count:
            break
        if i in faces and len(faces) < len(d):
            continue
        picked.append((int(i), int(k)))
        faces.add(int(i))
    return picked


def samples_figure(path: Path, results: dict, test_set, tag: str, count: int = 3) -> None:
    """Rows: heads; columns: the ``count`` landmarks where argmax and the sub-pixel decoder disagree most
    (first test faces, coarsest heatmap), zoomed, with the heatmap's cell borders."""
    from ..data import denormalize_image
    from ..data.transforms import apply_affine

    p, SUBPIXEL = results["profile"], results["subpixel"]
    heads, hm = list(p["heads"]), min(p["heatmap_sizes"])
    stride = p["input_size"] // hm
    n = min(p["num_samples"], len(test_set))
    matrices = [np.asarray(test_set[i]["matrix"], dtype=np.float64) for i in range(n)]
    truth = np.stack([np.asarray(test_set[i]["landmarks"], dtype=np.float64) for i in range(n)])   # crop px
    fig, axes = new_figure(len(heads), count, size=(2.9 * count, 3.0 * len(heads)))
    axes = np.atleast_2d(axes)
    for r, head in enumerate(heads):
        sub = SUBPIXEL[head]
        pred = {m: np.stack([apply_affine(np.asarray(results["samples"][f"{head}/{hm}"][m][i]), matrices[i])
                             for i in range(n)]) for m in (sub, "argmax")}
        for c, (i, k) in enumerate(pick_landmarks(pred[sub], pred["argmax"], truth, 2 * stride, count)):
            ax = axes[r][c]
            image = denormalize_image(test_set[i]["image"])
            size = image.shape[0]
            ax.imshow(image, extent=(-0.5, size - 0.5, size - 0.5, -0.5), interpolation="nearest")
            t, a, s = truth[i, k], pred["argmax"][i, k], pred[sub][i, k]
            half = max(2.5 * stride, 1.3 * max(np.abs(a - t).max(), np.abs(s - t).max()) + stride / 2)
            for edge in np.arange(-0.5, size, stride):     # cell u spans [s u - 0.5, s (u + 1) - 0.5] px
                ax.axvline(edge, color="white", lw=0.5, alpha=0.6)
                ax.axhline(edge, color="white", lw=0.5, alpha=0.6)
            ax.plot(*t, "o", ms=9, mfc="none", mec="lime", mew=2, label="truth")
            ax.plot(*a, "x", ms=9, color="red", mew=2, label="argmax")
            ax.plot(*s, "+", ms=11, color="cyan", mew=2, label=sub)
            ax.set_xlim(t[0] - half, t[0] + half)
            ax.set_ylim(t[1] + half, t[1] - half)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"face {i}, landmark {k}: off by\nargmax {np.linalg.norm(a - t):.1f} px, "
                         f"{sub} {np.linalg.norm(s - t):.1f} px", fontsize=8)
            if c == 0:
                ax.set_ylabel(head, fontsize=9)
        axes[r][0].legend(fontsize=7, loc="lower left", framealpha=0.8)
    fig.suptitle(f"Heatmap {hm} (stride {stride} px, white lines: cell borders): per head, the {count} landmarks "
                 f"of the first {n} test faces where argmax and the sub-pixel decoder disagree most (among those both put "
                 f"within {2 * stride} px of the truth); {tag}",
                 fontsize=9)
    save_figure(fig, path)


def long_figure(path: Path, results: dict) -> None:
    """Decimal KL (training batches) and test NME against steps, for every (head, heatmap) curve."""
    p = results["profile"]
    fig, axes = new_figure(1, 2, size=(11, 4.4))
    styles = {hm: s for hm, s in zip(sorted(p["heatmap_sizes"], reverse=True), ("-", "--", ":"))}
    for key, c in results["curves"].items():
        head, hm = key.rsplit("_", 1)
        kw = dict(color=HEAD_COLORS.get(head), ls=styles.get(int(hm), "-"))
        axes[0].plot(c["step"], c["decimal_kl"], label=f"{head}, heatmap {hm}", **kw)
        axes[1].plot(c["eval_step"], c["nme"], marker="o", ms=3, label=f"{head} expectation, heatmap {hm}", **kw)
        axes[1].plot(c["eval_step"], c["nme_argmax"], marker="x", ms=3, alpha=0.5,
                     label=f"{head} integer map alone, heatmap {hm}", color=kw["color"], ls=":")
    axes[0].set_ylabel("decimal KL (nats, training batches)")
    axes[0].set_title("CSC loss of the decimal map", fontsize=10)
    axes[1].set_ylabel("NME (%) on the test faces")
    axes[1].set_yscale("log")
    axes[1].set_title("test NME: decimal map read (expectation) vs integer map alone", fontsize=10)
    for ax in axes:
        ax.set_xlabel("optimizer step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(f"HIH heads trained {p['steps']} steps of batch {p['batch_size']} ({p['name']} profile); "
                 f"data: {SHORT}, {results['device']}", fontsize=10)
    save_figure(fig, path)
