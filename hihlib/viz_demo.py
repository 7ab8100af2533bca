"""The figures of ``hih demo``, drawn with ``hihlib.viz``'s helpers from the demo's results.

* ``demo_ced.png``: one panel per heatmap size, each head's sub-pixel decoder (solid) and argmax
  (dashed), every curve its own colour, the x-axis long enough for the slowest curve to rise;
* ``demo_resolution.png``: NME against stride for every head (sub-pixel solid, argmax dashed) next
  to the representation floors, one shared legend below the panels;
* ``demo_samples.png``: test crops at the coarsest heatmap with truth and each head's prediction;
* ``demo_long.png`` (profiles with curves): decimal KL and NME against training steps.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .viz import new_figure, plot_ced, save_figure

HEAD_COLORS = {"gaussian": "#1f77b4", "h3r": "#ff7f0e", "hih": "#2ca02c", "hih_local": "#9467bd", "hih_ext": "#17becf"}
SHORT = "synthetic WFLW-format test faces"


def demo_figures(out: Path, results: dict, nmes: dict, samples: dict, test_set) -> None:
    """Write the demo's figures to ``out``. ``nmes``: (head, heatmap, decoder) -> per-face NMEs
    (fractions); ``samples``: (head, heatmap) -> (n, K, 2) predictions in original-image pixels."""
    SUBPIXEL = results["subpixel"]   # head -> its sub-pixel decoder
    p = results["profile"]
    heads, sizes = list(p["heads"]), sorted(p["heatmap_sizes"], reverse=True)   # large -> small heatmap
    tag = f"data: {SHORT} ({p['name']} profile)"

    fig, axes = new_figure(1, len(sizes), size=(5.2 * len(sizes), 4.6))
    axes = np.atleast_1d(axes)
    for ax, hm in zip(axes, sizes):
        curves = {}
        for head in heads:
            for m in (SUBPIXEL[head], "argmax"):
                curves[f"{head} {m}"] = nmes[(head, hm, m)]
        plot_ced(curves, ax, title=f"heatmap {hm} (stride {p['input_size'] // hm})")
        for line in ax.get_lines():
            label = line.get_label()
            if label.startswith("_"):
                continue
            head = label.split()[0]
            line.set_color(HEAD_COLORS.get(head, line.get_color()))
            line.set_linestyle("--" if " argmax" in label else "-")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"CED; {tag}", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out / "demo_ced.png")

    rows = results["rows"]
    strides = [p["input_size"] // hm for hm in sizes]
    fig, axes = new_figure(1, 2, size=(10.5, 4.6))
    for head in heads:
        for m in sorted({r["decoder"] for r in rows if r["head"] == head}):
            by = {r["heatmap"]: r for r in rows if r["head"] == head and r["decoder"] == m}
            main = m == SUBPIXEL[head] or m == "argmax"
            style = "-" if m == SUBPIXEL[head] else ("--" if m == "argmax" else ":")
            kw = dict(color=HEAD_COLORS.get(head), marker="o", alpha=1.0 if main else 0.45, label=f"{head} {m}")
            axes[0].plot(strides, [by[s]["nme"] for s in sizes], style, **kw)
            axes[1].plot(strides, [max(by[s]["floor_nme"], 1e-3) for s in sizes], style, **kw)
    for ax, title in zip(axes, ("trained networks", "")):
        ax.set_xscale("log", base=2)
        ax.set_xticks(strides, [f"{s}\n({hm} cells)" for s, hm in zip(strides, sizes)])
        ax.set_xlabel("stride (heatmap size)")
        ax.set_ylabel("NME (%)")
        if title:
            ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[1].set_ylabel("NME (%), log scale")
    axes[1].set_title("representation floor (perfect maps, no network;\nfloors below 0.001 % drawn at 0.001 %)",
                      fontsize=10)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(f"NME against heatmap resolution; {tag}", fontsize=10)
    fig.tight_layout(rect=(0, 0.08 + 0.035 * ((len(labels) + 3) // 4), 1, 1))
    save_figure(fig, out / "demo_resolution.png")

    _samples_figure(out, p, heads, SUBPIXEL, samples, test_set, tag)
    if results.get("curves"):
        long_figure(out / "demo_long.png", results)


def _samples_figure(out: Path, p: dict, heads, SUBPIXEL: dict, samples: dict, test_set, tag: str) -> None:
    from .data import denormalize_image
    from .data.transforms import apply_affine

    hm = min(p["heatmap_sizes"])
    n = min(p["num_samples"], len(test_set))
    fig, axes = new_figure(len(heads), n, size=(2.3 * n, 2.4 * len(heads)))
    axes = np.atleast_2d(axes)
    for i in range(n):
        image = denormalize_image(test_set[i]["image"])
        M = test_set.matrices[i].numpy()
        gt_crop = test_set.landmarks[i].numpy()
        for r, head in enumerate(heads):
            ax = axes[r][i]
            ax.imshow(image)
            pred_crop = apply_affine(samples[(head, hm)][i], M)
            ax.scatter(gt_crop[:, 0], gt_crop[:, 1], s=4, c="lime", label="truth")
            ax.scatter(pred_crop[:, 0], pred_crop[:, 1], s=4, c="red", marker="x", linewidths=0.8,
                       label="prediction")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_ylabel(f"{head}\n({SUBPIXEL[head]})", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"heatmap {hm} (stride {p['input_size'] // hm}): green truth, red prediction; {tag}", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out / "demo_samples.png")


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
    fig.tight_layout()
    save_figure(fig, path)
