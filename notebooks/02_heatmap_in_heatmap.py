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
# # 02 · Heatmap In Heatmap and coordinate soft-classification
#
# **The claims (HIH, Lan et al. 2021).**
# 1. Splitting a landmark's position into an *integer* heatmap (which cell) and a *decimal* heatmap (where
#    inside that cell, as one of d×d interval classes) removes the quantization error of notebook 01 at the
#    cost of one small extra map per landmark.
# 2. Learning the decimal part as a **soft classification** over intervals (CSC) is easier than regressing
#    the sub-cell offset as a number.
#
# This notebook draws the representation, compares the published decoding (argmax of the decimal map,
# divided by d) with hihlib's expectation decoding and with the published soft label (a softmax of
# Gaussian *values*), and runs a small CPU experiment on claim 2. `HIH_SMOKE=1` makes it run in seconds.

# %%
import os

SMOKE = os.environ.get("HIH_SMOKE", "0") == "1"

import numpy as np
import torch
from IPython.display import Markdown, display
from torch import nn

from hihlib import viz
from hihlib.teaching import widgets
from hihlib.teaching.analysis import ROUNDING_ERROR, uniform_coords
from hihlib.codecs import get_codec
from hihlib.codecs.hih import decimal_expectation
from hihlib.losses import csc_kl

FIGURES = viz.figure_dir()  # runs/figures unless HIH_FIGURES says otherwise (figures/ for the committed ones)
gen = torch.Generator().manual_seed(0)
print(f"smoke mode: {SMOKE}; figures go to {viz.shown_path(FIGURES)}")

# %% [markdown]
# ## 1. One landmark, two heatmaps
#
# Notebook 01 showed the problem: a heatmap of stride s can only say *which cell* holds the landmark, so
# reading it by argmax is off by up to half a cell (2 px at stride 4). HIH keeps that heatmap for the
# coarse answer and adds a second, small heatmap per landmark for the fine answer. Step by step, for a
# landmark at input pixel (x, y) = (101.3, 87.8) of a 256×256 crop, stride s = 4 (a 64×64 heatmap), and
# decimal size d = 8. Everything happens on each axis separately; the numbers are for y.
#
# 1. **Heatmap position.** u = (y + 0.5)/s − 0.5 = 21.575 cells (notebook 01's convention: cell i is
#    centred on u = i). For x, u = 24.95.
# 2. **Round to the decimal grid.** The *decimal grid* is the grid of 1/d of a cell: 0, 1/8, 2/8, … Write u
#    on it: n = round(d·u) = round(172.6) = 173, i.e. u ≈ 173/8 = 21.625 (off by 0.05 cell, and never by
#    more than 1/(2d) = 1/16 cell).
# 3. **Split into integer and decimal parts.** Integer cell i = floor(n/d) = 21, decimal index
#    j = n − d·i = 5, so u ≈ i + j/d = 21 + 5/8. For x: n = 200, i = 25, j = 0.
# 4. **Two targets.** The **integer heatmap** is the usual H×W map, a Gaussian (σ = 1.5 cells) on cell
#    (25, 21). The **decimal heatmap** is a d×d = 8×8 map with one class per pair (j_x, j_y): decimal cell j
#    stands for the fractions [(j − ½)/d, (j + ½)/d) measured from the centre of cell i. Its target is a
#    *soft label*, a Gaussian of σ = 1 decimal cell around the exact fraction (u − i)·d (here 4.6 in y and
#    −0.4 in x), normalised to sum to 1, and it is trained as a classification (a KL loss: coordinate
#    soft-classification, CSC).
# 5. **Decoding** reverses the split: integer cell from the integer map's peak, plus the decimal map's
#    answer divided by d (section 3).
#
# **The integer cell is not the nearest cell.** 21.575 is nearer to cell 22 (0.425 away) than to cell 21
# (0.575 away), yet i = 21: step 3 *floors*. Right after notebook 01 showed flooring to be a bias (−½ cell
# on average), why is that fine here? Because the integer cell is not HIH's answer: the decimal part adds
# j/d back, and i + j/d is the rounding of u to the decimal grid, unbiased and within 1/(2d) cell. Flooring
# is simply the split that gives every position exactly one (integer cell, decimal class) pair with the
# fraction in [0, 1) of a cell. Two consequences a student should know:
#
# * the integer Gaussian sits up to 15/16 of a cell from the landmark (it is centred on cell i, not on u),
#   so the integer map's peak alone reads the landmark with flooring's half-cell bias;
# * a HIH model read *without* its decimal map must therefore not return cell i: hihlib's `argmax` method
#   for HIH returns i + (d − 1)/(2d) (cell i moved to the middle of the fractions it stands for, 7/16 of a
#   cell), which is unbiased and as accurate as argmax on a Gaussian map. The cell below measures both.
#
# In the left figure the integer map's peak cell is outlined in white and the red square is the stretch
# of the image the decimal map covers: from 1/16 cell before the centre of cell i to 1/16 cell before the
# centre of cell i + 1 on each axis. This landmark lies 0.05 cell left of the centre of its integer cell in
# x (decimal position −0.4, inside the red square's first 1/16).

# %%
# NBVAL_CHECK_OUTPUT
hih = get_codec("hih", input_size=256, heatmap_size=64, sigma=1.5, decimal_size=8, decimal_sigma=1.0)
xy = torch.tensor([[[101.3, 87.8]]], dtype=torch.float64)
t = hih.encode(xy)
i, f = hih.split(xy)
u = hih.to_cells(xy)[0, 0]
print("heatmap position u (cells):", u.numpy().round(4))
print("on the decimal grid: n = round(8u) =", torch.round(8 * u).numpy(), " nearest cell:", torch.round(u).numpy())
print("integer cell i:", i[0, 0].numpy(), " decimal position (u - i) * 8:", f[0, 0].numpy().round(3))
print("target shapes:", {k: tuple(v.shape) for k, v in t.items()}, " decimal mass:", round(float(t["decimal"].sum()), 6))
assert torch.allclose(i[0, 0] + f[0, 0] / 8, u) and abs(float(t["decimal"].sum()) - 1) < 1e-6
assert i[0, 0].tolist() == [25, 21] and torch.round(u).tolist() == [25, 22]   # y: cell 21, not the nearest (22)
assert torch.round(8 * u).tolist() == [200, 173]

# Over many landmarks: the integer cell alone is biased like flooring; i + j/d and hihlib's HIH `argmax`
# (cell i moved by 7/16) are not. Errors in cells, mean over uniform landmarks; closed forms beside them.
many = uniform_coords(1, 20_000, 256, margin=8, generator=torch.Generator().manual_seed(0))
cells_i, _ = hih.split(many)
u_many = hih.to_cells(many)
on_grid = torch.round(8 * u_many) / 8
bias = {"integer cell i alone": (cells_i - u_many).mean((0, 1)),
        "i + j/d (the decimal grid)": (on_grid - u_many).mean((0, 1)),
        "hihlib's HIH argmax, i + 7/16": (hih.to_cells(hih.roundtrip(many, "argmax")) - u_many).mean((0, 1))}
for name, b in bias.items():
    bx, by_ = (round(float(v), 3) + 0.0 for v in b)   # + 0.0: no "-0.000"
    print(f"mean error of {name:30s}: x {bx:+.3f}, y {by_:+.3f} cells")
print(f"largest error of i + j/d: {float((on_grid - u_many).abs().max()):.4f} cells (bound 1/16 = 0.0625)")
assert torch.allclose(bias["integer cell i alone"], torch.tensor(-7 / 16, dtype=torch.float64), atol=0.01)
assert bias["i + j/d (the decimal grid)"].abs().max() < 0.01 and bias["hihlib's HIH argmax, i + 7/16"].abs().max() < 0.01
assert float((on_grid - u_many).abs().max()) <= 1 / 16 + 1e-9

fig, (ax1, ax2) = viz.new_figure(1, 2, size=(9.5, 4.2))
viz.plot_heatmap(t["heatmap"][0, 0], ax1, grid=True, points={"true": u.tolist()})
ix, iy = (int(v) for v in i[0, 0])
viz.outline_cell(ax1, iy, ix, color="w", lw=1.0)
viz.outline_box(ax1, ix - 1 / 16, iy - 1 / 16, ix + 15 / 16, iy + 15 / 16, color="r")
ax1.set_xlim(17.5, 32.5)
ax1.set_ylim(28.5, 13.5)
ax1.set_title("integer heatmap (64×64, zoomed): peak cell in white,\nspan of the decimal map in red", fontsize=9)
viz.plot_decimal_map(t["decimal"][0, 0], ax2, true=f[0, 0].tolist(),
                     title="decimal heatmap (8×8) over the red square: soft label")
viz.show(fig, save_to=FIGURES / "hih_representation.png")

# %% [markdown]
# ## 2. Soft labels: the normalised Gaussian and the published one
#
# The released code builds its soft label as `softmax` of the Gaussian *values* (which lie in [0, 1]). A
# softmax of numbers that differ by at most 1 is nearly uniform: its peak holds at most e/(e + 63) ≈ 4 %
# of the mass instead of the ≈ 25 % of the normalised Gaussian. The label still has its maximum in the
# right cell, so argmax decoding is unaffected, but most of the training signal is spent on a flat floor.

# %%
# NBVAL_CHECK_OUTPUT
published = widgets.published_soft_label(hih, xy)
ours = t["decimal"]
entropy = lambda p: float(-(p * p.clamp_min(1e-30).log()).sum())  # noqa: E731  (nats)
display(Markdown(f"""| soft label (d = 8, σ = 1) | peak mass | entropy (nats; uniform = {np.log(64):.2f}) |
|---|---|---|
| normalised Gaussian (hihlib) | {float(ours.max()):.3f} | {entropy(ours):.2f} |
| softmax of Gaussian values (published) | {float(published.max()):.4f} | {entropy(published):.3f} |"""))
assert float(published.max()) < np.e / (np.e + 63) + 1e-6 and float(ours.max()) > 0.2
assert torch.equal(ours.flatten().argmax(), published.flatten().argmax())

fig, (ax1, ax2) = viz.new_figure(1, 2, size=(9.5, 3.6))
viz.plot_decimal_map(ours[0, 0], ax1, true=f[0, 0].tolist(), title="normalised Gaussian (hihlib)")
viz.plot_decimal_map(published[0, 0], ax2, true=f[0, 0].tolist(), title="softmax of values (published)")
viz.show(fig, save_to=FIGURES / "hih_soft_labels.png")

# %% [markdown]
# ## 3. Decoding exact maps: published vs expectation
#
# Give each decoder the exact targets (as logits, the log of the label) of many landmarks uniform over the
# crop. **official** takes the argmax of the decimal map: it rounds the fraction to the 1/d grid, so the
# closed form of notebook 01 applies with a step of 1/d: 0.3826/8 = 0.048 cells = 0.19 px. **expectation**
# reads the centre of the Gaussian that the decimal distribution follows around its peak, which is exact
# for the normalised label; on the published label (whose log is a Gaussian, not a parabola) it is not.

# %%
coords = uniform_coords(1, 2_000 if SMOKE else 20_000, 256, margin=8, generator=gen)
targets = hih.encode(coords)
published_targets = {**targets, "decimal": widgets.published_soft_label(hih, coords)}
rows = {}
for label_name, tg in (("normalised", targets), ("published", published_targets)):
    logits = hih.perfect_outputs(tg)
    for method in ("official", "expectation", "local_mean", "softmax_mean"):
        err = (hih.decode(logits, method).double() - coords).norm(dim=-1)
        rows[(label_name, method)] = err.mean().item()
table = "\n".join(f"| {lab} | {m} | {e:.4f} | {e / 4:.4f} |" for (lab, m), e in rows.items())
display(Markdown("| soft label | decoder | mean error (px) | (cells) |\n|---|---|---|---|\n" + table))
official = rows[("normalised", "official")] / 4
assert abs(official / (ROUNDING_ERROR / 8) - 1) < 0.03, official        # 0.048 cells
assert rows[("normalised", "expectation")] < 0.01                         # exact (below 0.01 px)
assert rows[("published", "expectation")] > 10 * rows[("normalised", "expectation")]
assert abs(rows[("published", "official")] - rows[("normalised", "official")]) < 1e-6  # same argmax

# %% [markdown]
# The decimal size sets the published decoder's floor: 0.3826/d cells. The expectation decoder needs a
# 3-cell stencil around the peak, so it is exact from d = 3 on (at d = 2 it falls back to the argmax).

# %%
DS = (2, 3, 4, 6, 8, 12, 16)
c_small = coords[:, :1_000]
err_d = {"hih/official": [], "hih/expectation": []}
for d in DS:
    codec = get_codec("hih", decimal_size=d)
    for method in ("official", "expectation"):
        err_d[f"hih/{method}"].append((codec.roundtrip(c_small.float(), method).double() - c_small).norm(dim=-1).mean().item())
fig, ax = viz.new_figure(size=(5.5, 3.6))
ax.plot(DS, np.array(err_d["hih/official"]), "o-", color=viz.METHOD_COLORS["official"], label="official (argmax / d)")
ax.plot(DS, np.maximum(err_d["hih/expectation"], 1e-4), "o-", color=viz.METHOD_COLORS["expectation"], label="expectation")
ax.plot(DS, 4 * ROUNDING_ERROR / np.array(DS), "k--", lw=1, label="0.3826 · 4 px / d")
ax.set_yscale("log")
ax.set_xlabel("decimal size d")
ax.set_ylabel("mean error of exact maps (px)")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
viz.show(fig, save_to=FIGURES / "hih_decimal_size.png")
assert all(abs(e / (4 * ROUNDING_ERROR / d) - 1) < 0.08 for e, d in zip(err_d["hih/official"], DS))
assert max(err_d["hih/expectation"][1:]) < 0.01

# %% [markdown]
# ## 4. Explore the representation
#
# Drag the landmark with the x and y sliders (input pixels), change the decimal size (2–16) and the soft
# label's σ, and switch to the published soft label. Both maps and the decoded points are redrawn; the
# caption gives each decoder's error on these exact maps.

# %%
widgets.hih_explorer().show()

# %% [markdown]
# ## 5. Why classify intervals instead of regressing the offset?
#
# A small controlled experiment. Each sample is a 16×16 patch (one heatmap cell seen at 16× zoom, so that
# one decimal cell of d = 8 is 2 px) holding a Gaussian blob (σ = 1.5 px) at a random sub-pixel position,
# plus noise. Two networks share the same convolutional trunk (3 conv layers, 8 channels, stride 2 to an
# 8×8 feature map) and differ only in the head:
#
# * **regression**: flatten → linear → (x, y), trained with MSE on the position (divided by 16);
# * **interval classification**: a 1×1 conv → an 8×8 map of logits, one per interval class, trained with
#   the CSC loss (KL to the normalised soft label) and decoded by expectation.
#
# Same data stream, same optimiser (Adam, lr 3e-3), same batch (64) and the same number of steps. What
# differs is *where* the answer lives: the classifier's answer is a map aligned with the input, so a single
# local detector shared by all positions (a convolution) can learn it from every sample; the regressor must
# turn "where" into a number, a different linear readout per position, learned position by position.

# %%
torch.set_num_threads(1)  # tiny convolutions: one thread is fastest and leaves the other cores alone
S, D, C, NOISE = 16, 8, 8, 0.1
STEPS = 100 if SMOKE else 1_500


def make_patches(n, g):
    """n patches (n, 1, S, S) and the blob centres (n, 2), patch pixels (pixel centres at integers)."""
    p = torch.rand(n, 2, generator=g) * S - 0.5
    grid = torch.arange(S, dtype=torch.float32)
    x = torch.exp(-((grid[None, None, :] - p[:, 0, None, None]) ** 2
                    + (grid[None, :, None] - p[:, 1, None, None]) ** 2) / (2 * 1.5**2))
    return (x + NOISE * torch.randn(x.shape, generator=g))[:, None], p


def soft_label(p):
    """CSC label (n, D, D): a Gaussian of 1 decimal cell at the position, decimal index units."""
    c = (p + 0.5) / (S / D) - 0.5
    g = torch.arange(D, dtype=torch.float32)
    ex = torch.exp(-((g - c[:, 0, None]) ** 2) / 2)
    ey = torch.exp(-((g - c[:, 1, None]) ** 2) / 2)
    return (ey / ey.sum(-1, keepdim=True))[:, :, None] * (ex / ex.sum(-1, keepdim=True))[:, None, :]


def trunk():
    return nn.Sequential(nn.Conv2d(1, C, 3, padding=1), nn.ReLU(), nn.Conv2d(C, C, 3, padding=1, stride=2), nn.ReLU(),
                         nn.Conv2d(C, C, 3, padding=1), nn.ReLU())


class Regressor(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk, self.head = trunk(), nn.Linear(C * D * D, 2)

    def forward(self, x):  # (n, 1, S, S) -> (n, 2) patch pixels
        return self.head(self.trunk(x).flatten(1)) * S

    def loss(self, x, p):
        return ((self(x) - p) ** 2).mean() / S**2


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.trunk, self.head = trunk(), nn.Conv2d(C, 1, 1)

    def forward(self, x):  # (n, 1, S, S) -> (n, 2) patch pixels, via expectation decoding
        return (decimal_expectation(self.logits(x)[:, None])[:, 0] + 0.5) * (S / D) - 0.5

    def logits(self, x):
        return self.head(self.trunk(x))[:, 0]  # (n, D, D)

    def loss(self, x, p):
        return csc_kl(self.logits(x)[:, None], soft_label(p)[:, None])


x_test, p_test = make_patches(1_000, torch.Generator().manual_seed(1))
curves, params = {}, {}
for name, cls in (("regression", Regressor), ("interval classification", Classifier)):
    torch.manual_seed(0)
    model, g = cls(), torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    params[name] = sum(q.numel() for q in model.parameters())
    curve = []
    for step in range(STEPS + 1):
        if step % (STEPS // 10) == 0:
            with torch.no_grad():
                curve.append((step, (model(x_test) - p_test).norm(dim=-1).mean().item()))
        x, p = make_patches(64, g)
        loss = model.loss(x, p)
        opt.zero_grad()
        loss.backward()
        opt.step()
    curves[name] = np.array(curve)

fig, ax = viz.new_figure(size=(5.5, 3.6))
for k, (name, c) in enumerate(curves.items()):
    ax.plot(c[:, 0], c[:, 1], "o-", ms=3, color=f"C{k}", label=f"{name} ({params[name]} parameters)")
ax.set_yscale("log")
ax.set_xlabel("training step (batch 64)")
ax.set_ylabel("mean test error (px of the 16 px patch)")
ax.grid(True, alpha=0.3)
ax.legend(fontsize=8)
viz.show(fig, save_to=FIGURES / "hih_classification_vs_regression.png")
final = {name: c[-1, 1] for name, c in curves.items()}
display(Markdown("| head | test error after {} steps (px) | decimal cells |\n|---|---|---|\n".format(STEPS) + "\n".join(
    f"| {n} | {e:.3f} | {e / (S / D):.3f} |" for n, e in final.items())))
assert final["interval classification"] < final["regression"]

# %% [markdown]
# With the same trunk and the same budget, the interval classifier reaches a lower error, and gets there
# sooner: its head is one shared 1×1 convolution (9 parameters) where the regressor needs a 1,026-parameter
# readout that must learn each position separately. This is the argument HIH makes for CSC: the decimal
# heatmap keeps the *heatmap* form, spatial and translation-equivariant, one level down, instead of
# switching to coordinate regression for the last fraction of a cell. (The experiment is small and
# synthetic: it shows the mechanism, not the size of the gain on faces; notebook 04 trains the full heads.)

# %% [markdown]
# ## 6. On faces: why the released decimal head learns so slowly, and a head that reads the cell
#
# Section 5's argument is about *where the answer lives*. The released HIH decimal head does not follow it
# all the way: it computes one global 8×8 map per landmark from the final feature map pooled below the
# integer map (`hihlib.models.DecimalHead`; 8× at the released geometry, heatmap 64 → decimal 8). The decimal map's grid is not the image's: it stands for the
# fraction inside whichever cell the landmark fell in, anywhere on the face. So to put landmark k's
# probability mass on the right decimal cell, the head must first find landmark k in a coarse, pooled map,
# then turn "where inside its cell" into "which of 64 classes" by a read-out that depends on the landmark's
# position — the regressor's problem of section 5, learned position by position.
#
# `hih_local` (hihlib's extension, `hihlib.models.heads.LocalDecimalHead`) is told the cell: it gathers the
# features of a 4×4 block around each landmark's integer cell (the ground-truth cell in training, the
# integer map's argmax at test time) and classifies the fraction from them with a per-landmark linear layer,
# the same question wherever the face is: translation-equivariant, like the interval classifier above.
#
# **Geometry and recipe.** The runs behind this section's conclusion used heatmap 16 → decimal 8, where the
# released code cannot build its decimal head (its HIH_head gives a 7×7 map); they trained hihlib's
# extension `hih_ext` (one padded max-pool, no down block: each decimal class sees 3×3 cells, 4 % of the
# map, and the decimal map is pooled 2× below the integer map) with hihlib's recipe (normalised label,
# per-landmark KL × 0.05/64, PyTorch init, align_corners=False). At the released geometry, 64 → 8 (each class
# sees up to 39×39 cells, 37 % of the map), with the released recipe (notebook 07: 128 px crops at stride
# 2, 25 of 98 landmarks, 4,000 steps of 8 faces, synthetic faces; hourglass trunks of 1 stack × width 16, the
# demo's 1 stack × width 32 and 2 stacks × width 64), the released head's decimal KL also stays at the
# average-label level on every trunk (0.0319 vs 0.0317–0.0318 nats), with the demo's spread of faces and with
# tightly aligned ones, and reading its decimal map makes the landmarks worse than the integer map alone (demo spread, NME
# 2.00 % vs 1.88 % at width 32, 1.79 % vs 1.66 % at 2 × 64), while `hih_local` on the same trunk goes below it
# (0.025) and improves on the integer map (1.38 % vs 1.92 %, 1.05 % vs 1.64 %). Trunk-free oracles (300 steps of
# 16 faces × 98 landmarks) agree at 16, 32 and 64 → 8 and every landmark spread. The paper-scale answer (4 stacks
# of width 256, 256 px) is left to `benchmarks/gpu_check.sh decimal`.
#
# Measured at 16 → 8: notebook 04 trains both heads on the same backbone, data and budget (with a linear probe of the
# features and a sweep of the released head's loss weight), and `hih demo --long` trains them 8× longer.
# The long run's decimal KL and test NME against steps (`figures/long/demo_results.md` has the numbers, the
# machine and the time):
#
# ![the long run: decimal KL and test NME against steps for the released head and hih_local](../figures/long/demo_long.png)
