# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · The quantization error of heatmap regression
#
# **The claim (HIH, Lan et al. 2021, Fig. 4).** A landmark detector that predicts a 64×64 heatmap for a
# 256×256 crop and reads the landmark off the *argmax* cell throws away the sub-pixel part of every
# coordinate. Encoding the ground truth and decoding it again, with no network at all, already costs
# **1.29 % NME on WFLW, 1.11 on 300W and 0.86 on COFW**, while the best methods of the time scored 4.14,
# 2.93 and 3.32: about a third of the total error comes from the representation alone.
#
# This notebook measures that error: its closed form, its distribution, its size in NME on face-shaped
# (synthetic) landmarks, and how each decoder (argmax, quarter shift, DARK, integral, H3R's top-k, HIH's
# decimal heatmap) trades it off against the heatmap resolution.
#
# Set `HIH_SMOKE=1` for a run of a few seconds (the test suite does); the committed outputs come from a
# full run (`HIH_SMOKE=0`) on a CPU.

# %%
import os

SMOKE = os.environ.get("HIH_SMOKE", "0") == "1"

import numpy as np
import torch
from IPython.display import Markdown, display

from hihlib import viz
from hihlib.teaching import widgets
from hihlib.teaching.analysis import (ALL_DECODERS, FLOORING_ERROR, ROUNDING_ERROR, crop_coords, expected_flooring_error,
                             expected_rounding_error, quantization_nme, uniform_coords)
from hihlib.codecs import get_codec

FIGURES = viz.figure_dir()  # runs/figures unless HIH_FIGURES says otherwise (figures/ for the committed ones)
N_POINTS = 2_000 if SMOKE else 20_000
gen = torch.Generator().manual_seed(0)
print(f"smoke mode: {SMOKE}; figures go to {viz.shown_path(FIGURES)}")

# %% [markdown]
# ## 1. What is lost, in one dimension and in two
#
# hihlib's convention (see `hihlib/codecs/base.py`): pixel centres sit at integer coordinates, and an input
# pixel x maps to the heatmap coordinate **u = (x + 0.5) / s − 0.5** with stride s = 256 / 64 = 4. Cell i
# is centred on u = i. Argmax decoding returns the centre of the cell that holds the landmark, i.e. it
# *rounds* u. For a landmark whose position within its cell is uniformly distributed, the error vector e
# is uniform on the square [−½, ½]² and
#
# $$\mathbb{E}\lVert e\rVert = \int_{[-1/2,1/2]^2}\sqrt{x^2+y^2}\,dx\,dy = \frac{\sqrt2 + \operatorname{asinh}(1)}{6} \approx 0.3826\ \text{cells} \approx 1.53\ \text{px at stride 4}.$$
#
# A decoder that *floors* instead (a wrong half-cell convention, common in released code) has e uniform on
# [0, 1]² and twice the error, 0.7652 cells. The closed forms first (checked against a direct numerical
# integration on a 2000 × 2000 grid of the square), then by Monte Carlo.

# %%
# NBVAL_CHECK_OUTPUT
g = (torch.arange(2000, dtype=torch.float64) + 0.5) / 2000 - 0.5            # midpoints of [-1/2, 1/2]
numeric = torch.sqrt(g[:, None] ** 2 + g[None, :] ** 2).mean().item()       # E||e|| for e uniform on the square
display(Markdown(f"""| reading of a cell | error e uniform on | E‖e‖ closed form (cells) | numerical integral (cells) | px at stride 4 |
|---|---|---|---|---|
| rounding (argmax) | [−½, ½]² | {ROUNDING_ERROR:.6f} | {numeric:.6f} | {4 * ROUNDING_ERROR:.4f} |
| flooring | [0, 1]² | {FLOORING_ERROR:.6f} | {2 * numeric:.6f} | {4 * FLOORING_ERROR:.4f} |
| rounding to 1/8 cell (HIH's published decoding) | [−1/16, 1/16]² | {ROUNDING_ERROR / 8:.6f} | {numeric / 8:.6f} | {4 * ROUNDING_ERROR / 8:.4f} |"""))
assert abs(numeric - ROUNDING_ERROR) < 1e-6 and abs(ROUNDING_ERROR - (np.sqrt(2) + np.arcsinh(1)) / 6) < 1e-15
assert FLOORING_ERROR == 2 * ROUNDING_ERROR   # [0, 1]^2 is [0, 1/2]^2 scaled by 2, and [-1/2, 1/2]^2 is 4 mirrored copies of [0, 1/2]^2

# %%
e_round = torch.rand(N_POINTS, 2, generator=gen, dtype=torch.float64) - 0.5
e_floor = torch.rand(N_POINTS, 2, generator=gen, dtype=torch.float64)
mc_round, mc_floor = e_round.norm(dim=-1).mean().item(), e_floor.norm(dim=-1).mean().item()
print(f"rounding: closed form {expected_rounding_error():.4f} cells, Monte Carlo {mc_round:.4f}")
print(f"flooring: closed form {expected_flooring_error():.4f} cells, Monte Carlo {mc_floor:.4f}")
tol = 0.03 if SMOKE else 0.01
assert abs(mc_round / ROUNDING_ERROR - 1) < tol and abs(mc_floor / FLOORING_ERROR - 1) < tol

# %% [markdown]
# ## 2. The same error, measured through a real encoder and decoder
#
# Now the landmarks go through the `gaussian` codec: a Gaussian heatmap (σ = 1.5 cells) centred on the
# exact sub-pixel position, decoded by argmax. Landmarks are uniform over the 256×256 crop (at least 3σ
# from the border). The error histogram is not uniform: it is the distribution of the distance from a
# uniform point in a square to the square's centre, with its mean at the closed form.
#
# For comparison, *flooring*: the cell chosen by truncation, i = int(u), as an integer cast in target
# generation code does, and read back at its centre; and HIH's expectation decoding of its decimal
# heatmap, on the same landmarks.

# %%
coords = uniform_coords(1, N_POINTS, 256, margin=20, generator=gen)  # (1, N, 2) input pixels
gauss = get_codec("gaussian", input_size=256, heatmap_size=64, sigma=1.5)
err_argmax = (gauss.roundtrip(coords.float(), "argmax").double() - coords)[0] / gauss.stride  # (N, 2) cells
u = gauss.to_cells(coords)[0]  # (N, 2) heatmap cells
err_floor = torch.floor(u) - u   # truncation instead of rounding: uniform on (-1, 0]^2
hih = get_codec("hih", input_size=256, heatmap_size=64)
err_hih = (hih.roundtrip(coords.float()).double() - coords)[0] / hih.stride

m_argmax = err_argmax.norm(dim=-1).mean().item()
m_floor = err_floor.norm(dim=-1).mean().item()
m_hih = err_hih.norm(dim=-1).mean().item()
display(Markdown(f"""| decoder | mean error (cells) | mean error (px, stride 4) | closed form (cells) |
|---|---|---|---|
| argmax (rounds) | {m_argmax:.4f} | {4 * m_argmax:.3f} | {ROUNDING_ERROR:.4f} |
| flooring (cell = int(u)) | {m_floor:.4f} | {4 * m_floor:.3f} | {FLOORING_ERROR:.4f} |
| HIH expectation | {m_hih:.5f} | {4 * m_hih:.4f} | 0 |"""))
assert abs(m_argmax / ROUNDING_ERROR - 1) < 0.02, m_argmax          # the closed form, within 2 %
assert abs(m_floor / FLOORING_ERROR - 1) < 0.02, m_floor           # twice the rounding error
assert m_hih < 0.01 / 4                                              # below 0.01 px

# %% [markdown]
# Rounding is unbiased (its mean error vector is 0); flooring moves every landmark up and left by half a
# cell on average, a *bias* of −½ cell (−2 px at stride 4) that no amount of training removes. The
# same happens to decoders that mix up the two conventions for where a cell's centre is.

# %%
print("mean error vector, argmax (cells):       ", err_argmax.mean(0).numpy().round(4))
print("mean error vector, flooring (cells):    ", err_floor.mean(0).numpy().round(4))
assert err_argmax.mean(0).abs().max() < 0.02 and (err_floor.mean(0) + 0.5).abs().max() < 0.02

# %% [markdown]
# ## 3. Every decoder, every resolution
#
# The quantization error scales with the stride: halve the heatmap and the error in pixels doubles. The
# decoders that recover the fraction (DARK and integral for Gaussian targets, top-k for H3R, expectation
# for HIH) are exact on exact targets at 64×64, but not all of them survive coarse maps: at 8×8 or 16×16 a
# σ = 1.5-cell Gaussian is cut by the border of the map (landmarks here stay 20 px from the border of the
# crop, which is under one cell at stride 32), which biases integral. DARK stays exact: near the border it
# steps on the unsmoothed log map (section 4 shows why).

# %%
SIZES = (16, 32, 64) if SMOKE else (8, 16, 32, 64, 128, 256)
sweep_points = coords[:, : (100 if SMOKE else 2_000)]
sweep = widgets.decoder_errors(sweep_points, ALL_DECODERS, SIZES, sigma=1.5)
means = {label: e.mean(-1) for label, e in sweep.items()}
header = "| decoder | " + " | ".join(f"{s}×{s}" for s in SIZES) + " |\n|---|" + "---|" * len(SIZES) + "\n"
rows = "\n".join(f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals) + " |" for label, vals in means.items())
display(Markdown("Mean round-trip error in pixels of the 256×256 input:\n\n" + header + rows))
r64 = SIZES.index(64)
assert abs(means["gaussian/argmax"][r64] / (4 * ROUNDING_ERROR) - 1) < (0.12 if SMOKE else 0.03)
assert means["gaussian/quarter"][r64] < means["gaussian/argmax"][r64]
assert means["gaussian/dark"][r64] < 0.01 and means["hih/expectation"][r64] < 0.01
assert abs(means["hih/official"][r64] / (4 * ROUNDING_ERROR / 8) - 1) < 0.1  # rounding to 1/8 cell
assert means["h3r/topk"][r64] < 1e-3

# %% [markdown]
# The figure for the README: the argmax error histogram at 64×64 and the error of every decoder against
# the resolution. Argmax follows its closed form 0.3826·s exactly; HIH's published decoding (argmax of the
# decimal map) is the same rounding on a grid eight times finer, 0.3826·s/8.

# %%
fig, (ax1, ax2) = viz.new_figure(1, 2, size=(10.5, 3.9))
viz.plot_error_histogram(err_argmax, ax1, expected=ROUNDING_ERROR, label="gaussian/argmax", bins=60)
ax1.set_title("argmax at 64×64: error of exact targets", fontsize=10)
viz.plot_error_vs_resolution(SIZES, means, ax2)
ax2.plot(SIZES, ROUNDING_ERROR * 256 / np.array(SIZES), "k--", lw=1, label="0.3826 · stride")
for note in [t for t in ax2.texts if "drawn at 1e-4" in t.get_text()]:
    note.remove()  # said once, in the legend's title, instead of under the curves drawn at 1e-4
ax2.set_ylim(top=ax2.get_ylim()[1] * 30)  # headroom: the legend sits above the curves
ax2.legend(fontsize=7, ncol=2, loc="upper right", title="errors below 1e-4 (exact decoders) drawn at 1e-4",
           title_fontsize=7)
ax2.set_title("encode → decode, no network (256×256 input)", fontsize=10)
viz.show(fig, save_to=FIGURES / "quantization_error.png")

# %% [markdown]
# ## 4. At the crop's edge
#
# Landmarks near the edge of the crop are common (profile faces, chins, loose boxes). Each decoder is swept
# across the whole crop here, edge pixels included: a landmark every 1/8 px along x, from the crop's edge
# (x = −0.5) inward, on exact 64×64 targets; the curve is the worst error at each distance from the edge
# (both edges pooled).
#
# DARK smooths the map with the training Gaussian before its Newton step. Near the edge the smoothing patch
# (radius r + 1 = 6 cells) leaves the map; padding it by repeating the edge (mmpose's `gaussian_blur`, and
# hihlib's first release: `dark_decode(..., border="replicate")`) turns the peak into a plateau running off
# the map and the step walks *outward*, by pixels, out of the crop. The curve decides the rule: the error is
# exactly zero from 6 cells (24 px) on, where the patch fits, and nonzero everywhere closer. So hihlib's DARK
# smooths only where the patch fits and elsewhere steps on the unsmoothed log map with its 3×3 stencil kept
# inside the map (the log of a Gaussian is a quadratic: exact up to the edge pixels), and never leaves the crop.

# %%
# NBVAL_CHECK_OUTPUT
from hihlib.codecs.gaussian import dark_decode

step = 0.125   # the same sweep in smoke and full runs (a second), so that this table is compared by nbval
xs = torch.arange(-0.5, 255.5 + 1e-9, step, dtype=torch.float64)
edge_coords = torch.stack([xs, torch.full_like(xs, 131.3)], -1)[None]  # (1, N, 2): along x, y mid-crop
dist = torch.minimum(xs + 0.5, 255.5 - xs)  # px from the nearer edge of the crop
gmaps = gauss.encode(edge_coords.float())["heatmap"]
edge_x = {
    "gaussian/argmax": gauss.decode({"heatmap": gmaps}, "argmax")[0, :, 0],
    "DARK, edge replicated (first release)": gauss.to_pixels(dark_decode(gmaps, 1.5, border="replicate"))[0, :, 0],
    "gaussian/dark": gauss.decode({"heatmap": gmaps}, "dark")[0, :, 0],
    "gaussian/integral": gauss.decode({"heatmap": gmaps}, "integral")[0, :, 0],
    "h3r/topk": get_codec("h3r").roundtrip(edge_coords.float(), "topk")[0, :, 0],
    "hih/official": hih.roundtrip(edge_coords.float(), "official")[0, :, 0],
    "hih/expectation": hih.roundtrip(edge_coords.float(), "expectation")[0, :, 0],
}
edge_err = {k: (v.double() - xs).abs() for k, v in edge_x.items()}
bins = torch.arange(0, 32 + 1e-9, 1.0)  # 1-px bins of the distance to the edge
centres = (bins[:-1] + 0.5).numpy()
curves = {k: np.array([e[(dist >= a) & (dist < b)].max().item() for a, b in zip(bins[:-1], bins[1:])])
          for k, e in edge_err.items()}
outside = {k: int(((v < -0.5) | (v > 255.5)).sum()) for k, v in edge_x.items()}
old = curves["DARK, edge replicated (first release)"]
below = {tol: centres[np.nonzero(old > tol)[0].max() + 1] - 0.5 for tol in (1e-3, 1e-5)}  # px from the edge
display(Markdown("Worst error (px) by distance to the crop's edge, exact 64×64 targets:\n\n"
                 "| decoder | 0–2 px | 2–8 px | 8–16 px | 16–24 px | ≥ 24 px (whole crop) | outside the crop |\n"
                 "|---|---|---|---|---|---|---|\n" + "\n".join(
                     f"| {k} | {e[dist < 2].max():.3f} | {e[(dist >= 2) & (dist < 8)].max():.3f} | "
                     f"{e[(dist >= 8) & (dist < 16)].max():.3f} | {e[(dist >= 16) & (dist < 24)].max():.3f} | "
                     f"{e[dist >= 24].max():.3f} | {outside[k]} |" for k, e in edge_err.items())
                 + f"\n\nEdge-replicated DARK errs by less than 0.001 px only from {below[1e-3]:.0f} px on, "
                   f"by less than 1e-5 px from {below[1e-5]:.0f} px on."))
assert edge_err["gaussian/dark"].max() < 2e-3 and outside["gaussian/dark"] == 0
assert edge_err["hih/expectation"].max() < 2e-3
assert old.max() > 4 and outside["DARK, edge replicated (first release)"] > 0
assert 20 <= below[1e-5] <= 24  # the smoothing patch fits from r + 1 = 6 cells (24 px) on
assert edge_err["hih/official"].max() <= 2.0 + 1e-6 and edge_err["h3r/topk"].max() <= 2.0 + 1e-6  # argmax's half cell

# %%
fig, ax = viz.new_figure(1, 1, size=(9.5, 3.6))
for i, (label, c) in enumerate(curves.items()):
    style = dict(ls="--", color="0.3") if "replicated" in label else dict(color=viz.METHOD_COLORS.get(label.split("/")[-1], f"C{i}"))
    ax.plot(centres, np.maximum(c, 1e-4), marker="os^vDPX"[i % 7], ms=3, lw=1.3, label=label, **style)
ax.axvline(24, color="0.6", lw=0.8, ls=":")
ax.text(24.3, 2e-4, "smoothing patch fits\n(r + 1 = 6 cells)", fontsize=7, color="0.35")
ax.set_yscale("log")
ax.set_xlabel("distance of the landmark from the crop's edge (px of a 256 input)")
ax.set_ylabel("worst error (px)")
ax.set_title("exact 64×64 targets, decoded near the crop's edge", fontsize=10)
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="errors below 1e-4\ndrawn at 1e-4",
          title_fontsize=7)
viz.show(fig, save_to=FIGURES / "edge_error.png")

# %% [markdown]
# Argmax, H3R's top-k and HIH's published decoding err by at most half a cell (2 px) at the edge, as
# everywhere: H3R's cells are centred on 0..63, so a landmark in the outer half cell is clamped onto the
# border cell; HIH's integer cell is clamped onto the map (a landmark in the first 1.25 px used to get cell
# −1, which does not exist) and its expectation decoding reads the rest of the way to the edge exactly.
# Integral decoding is pulled inward wherever the Gaussian is cut by the map, by up to 1.22 cells (4.9 px)
# at the very edge.
#
# ## 5. The paper's Figure 4 analysis, in NME
#
# The paper reports the error in NME (mean error divided by the inter-ocular distance) on the real
# annotations of WFLW, 300W and COFW, cropped to 256×256 like the training data. `hihlib.teaching.analysis` runs the
# same measurement on any coordinates. Without the datasets, we use **synthetic** WFLW-style faces
# (`hihlib.data.synthetic`: 98 points, the WFLW mix of poses and attributes), cropped with the standard
# protocol (square of 1.25× the face box). These are *not* WFLW numbers; notebook 05 runs the same cells on
# the real annotations when they are present.

# %%
from hihlib.data.synthetic import SyntheticFaces

faces = SyntheticFaces(30 if SMOKE else 1_000, seed=0)
landmarks = np.stack([r.landmarks for r in faces.records])
boxes = np.stack([r.box for r in faces.records])
crop, _ = crop_coords(landmarks, boxes, input_size=256, scale=1.25)
iod = np.linalg.norm(crop[:, 60] - crop[:, 72], axis=-1)
rows = []
for name, method in ALL_DECODERS:
    nmes = quantization_nme(crop, (60, 72), name, method, heatmap_size=64)
    rows.append((f"{name}/{method}", 100 * nmes.mean()))
table = "\n".join(f"| {label} | {v:.3f} |" for label, v in rows)
display(Markdown(f"""**Synthetic WFLW-style faces** ({len(crop)} faces, median inter-ocular distance in the crop
{np.median(iod):.0f} px). Quantization NME (%, inter-ocular) at 64×64:

| decoder | NME (%) |
|---|---|
{table}

Published (real annotations, argmax at 64×64): WFLW 1.29, 300W 1.11, COFW 0.86."""))
nme_argmax = dict(rows)["gaussian/argmax"]
# argmax costs 1.53 px on average: the NME is that over the inter-ocular distance
assert abs(nme_argmax - 100 * np.mean(4 * ROUNDING_ERROR / iod)) < (0.15 if SMOKE else 0.05)
assert 0.8 < nme_argmax < 2.0 and dict(rows)["hih/expectation"] < 0.01

# %% [markdown]
# With faces whose inter-ocular distance in the crop is about 120 px, 1.53 px of rounding error is ≈ 1.3 %
# NME, the paper's WFLW figure; COFW faces sit larger in their crops, hence its smaller 0.86.
#
# ## 6. Explore
#
# Move the resolution, σ, codec and decoder. The left panel redraws the error against the resolution for
# every decoder of the codec (and the closed form of rounding); the right panel shows the error histogram of
# the chosen decoder at the chosen resolution. Without a live kernel (nbval, a static render) the explorer
# shows its default view.

# %%
explorer = widgets.quantization_explorer(n_points=100 if SMOKE else 400,
                                         sizes=(16, 64) if SMOKE else (8, 16, 32, 64, 128, 256))
explorer.show()
