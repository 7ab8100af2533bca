"""The released switch, the refusal of sizes the release cannot build, receptive fields and the study CLI."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hihlib.studies import decimal_study as ds
from hihlib.errors import ConfigError
from hihlib.losses import csc_official
from hihlib.losses import official_soft_label as csc_soft
from hihlib.models import create
from hihlib.models.heads import released_buildable

REFERENCE = " ".join((Path(__file__).resolve().parents[1] / "docs/REFERENCE.md").read_text().split())


def test_the_released_values_are_the_ones_docs_reference_states():
    """The numbers RECIPES["released"] uses, read in docs/REFERENCE.md (HIH section and section 6)."""
    assert "Gaussian σ=1.5" in REFERENCE and "σ=1.0 decimal cells" in REFERENCE       # sigma, decimal_sigma
    assert "MSE over all stacks' integer maps (weight 1) + 0.05 × KL" in REFERENCE     # decimal_weight
    assert "softmax of the Gaussian *values*" in REFERENCE and "averaged over every element" in REFERENCE
    assert "`align_corners=True`" in REFERENCE
    assert "the decimal offset is measured from the cell's corner" in REFERENCE        # frame
    r = ds.recipe("released")
    assert (r["sigma"], r["decimal_sigma"], r["decimal_weight"]) == (1.5, 1.0, 0.05)
    assert (r["frame"], r["decimal_loss"], r["init"], r["align_corners"]) == ("released_hih", "official", "released", True)
    with pytest.raises(ConfigError, match="unknown recipe"):
        ds.recipe("paper")


def test_the_released_switch_sets_every_knob_on_the_built_model_codec_and_loss():
    torch.manual_seed(0)
    model, codec, loss = ds.build("released", "hih", num_landmarks=5, heatmap_size=32, input_size=64, width=16,
                                  num_stacks=1, depth=3, seed=0)
    assert codec.frame == "released_hih" and codec.sigma == 1.5 and codec.decimal_sigma == 1.0
    # the released loss, 0.05 x csc_official on the Gaussian values, realised as 0.05 / 64 x the per-landmark KL to
    # the codec's target (the released soft label): equal wherever csc_official can recover the values (peak on the map)
    assert loss.decimal_weight == pytest.approx(0.05 / 64)
    coords = torch.tensor([[[20.3, 40.1], [33.6, 12.2], [50.0, 7.7], [9.1, 60.4], [25.25, 30.6]]])
    _, values = ds.released_decimal_values(codec, coords)
    assert bool((values.amax((-2, -1)) == 1).all())
    logits = torch.randn(1, 5, 8, 8, generator=torch.Generator().manual_seed(0))
    ours = loss.decimal_weight * loss.decimal(logits, codec.encode(coords)["decimal"])
    assert ours.item() == pytest.approx(0.05 * csc_official(logits, values).item(), rel=1e-5)
    assert model.config.align_corners is True
    convs = [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    w = torch.cat([c.flatten() for c in convs])
    assert w.std().item() == pytest.approx(0.001, rel=0.05) and abs(w.mean().item()) < 1e-4   # N(0, 0.001^2)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(bool((b.weight == 1).all() and (b.bias == 0).all()) for b in bns)
    # hihlib's recipe keeps PyTorch's default init (Kaiming-uniform: a far larger spread) and the hihlib frame
    m2, c2, l2 = ds.build("hihlib", "hih", num_landmarks=5, heatmap_size=32, input_size=64, width=16, num_stacks=1,
                          depth=3, seed=0)
    assert c2.frame == "hihlib" and l2.decimal_weight == pytest.approx(0.05 / 64) and m2.config.align_corners is False
    first = next(m for m in m2.modules() if isinstance(m, nn.Conv2d))   # the stem's 7x7 conv
    assert first.weight.std().item() > 0.02


def test_the_released_soft_label_is_the_softmax_of_gaussian_values():
    """Closed form: a landmark at the centre of decimal cell (3, 3) has Gaussian values exp(-r^2/2) on the 8 x 8
    cells; its released label is their softmax, whose peak is e / sum exp(values) (about 4 %)."""
    model, codec, _ = ds.build("released", "hih", num_landmarks=1, heatmap_size=32, input_size=64, width=16,
                               num_stacks=1, depth=3)
    u = 10 + 3.0 / 8 - 0.5                     # released frame: u' = u + 1/2 = 10 + 3/8, decimal position 3
    coords = codec.to_pixels(torch.full((1, 1, 2), u))
    label = ds.training_label(codec.encode(coords)["decimal"], "released")[0, 0]
    g = np.arange(8)
    win = np.abs(g - 3) <= 3                   # the released 7 x 7 window: cell 7 is left at 0
    vals = np.exp(-((g[:, None] - 3) ** 2 + (g[None, :] - 3) ** 2) / 2.0) * win[:, None] * win[None, :]
    expected = np.exp(vals) / np.exp(vals).sum()
    assert np.allclose(label.numpy(), expected, atol=1e-6)
    assert 0.03 < expected.max() < 0.05


def test_the_released_head_is_refused_where_the_released_code_cannot_build_it():
    """The released HIH_head: 3x3/2 max-pool without padding, then log2(H/d) - 1 down blocks (ceil halving):
    its output side, computed here independently, is d only for H/d >= 4."""
    def released_side(h, d):
        side = (h - 3) // 2 + 1
        for _ in range(int(math.log2(h // d)) - 1):
            side = (side + 1) // 2
        return side

    for h, d in [(8, 8), (16, 8), (32, 8), (64, 8), (128, 8), (16, 4), (64, 16), (32, 4)]:
        assert released_buildable(h, d) == (released_side(h, d) == d), (h, d)
    with pytest.raises(ConfigError, match=r"head 'hih' \(the released decimal head\) cannot be built at heatmap 16 -> decimal 8"):
        create("hg_tiny", num_landmarks=3, head="hih", heatmap_size=16, input_size=64, width=16, depth=2)
    # the labelled variant builds there, and "hih" builds where the release does, both with a d x d map
    for head, hm in (("hih_ext", 16), ("hih", 32), ("hih_ext", 32)):
        m = create("hg_tiny", num_landmarks=3, head=head, heatmap_size=hm, input_size=4 * hm, width=16, depth=2)
        assert m(torch.zeros(1, 3, 4 * hm, 4 * hm))["decimal"].shape == (1, 3, 8, 8)


def test_receptive_field_matches_the_closed_form_of_the_released_head_at_64_to_8():
    """Released head at 64 -> 8: pool (3, stride 2, no padding), two down blocks (3x3/2 then 3x3) give class r the
    cells 8r - 18 .. 8r + 20 (39 wide), clipped to the 63 cells the unpadded pool reads (0..62)."""
    rf = ds.receptive_field(ds.decimal_head("hih", 64), 64)
    ext = ds.rf_extent(rf)
    for r in range(8):
        lo, hi = max(0, 8 * r - 18), min(62, 8 * r + 20)
        assert ext[r, r].tolist() == [lo, lo, hi, hi]
        assert int(rf[r, r].sum()) == (hi - lo + 1) ** 2          # a full box
    assert float(rf.sum((-2, -1)).max()) / 64 ** 2 == pytest.approx(39 ** 2 / 64 ** 2)
    # hih_ext at 16 -> 8: one padded 3x3/2 max-pool, class j sees cells 2j - 1 .. 2j + 1
    ext16 = ds.rf_extent(ds.receptive_field(ds.decimal_head("hih_ext", 16), 16))
    assert ext16[2, 5].tolist() == [9, 3, 11, 5]
    # hih_local: a 3x3 conv over the window of cells i - 1 .. i + 2: cells i - 2 .. i + 3, for every class
    loc = ds.rf_extent(ds.receptive_field(ds.decimal_head("hih_local", 64), 64, cell=(10, 40)))
    assert (loc == torch.tensor([8, 38, 13, 43])).all()


def test_oracle_input_puts_the_fraction_at_the_cell_and_the_label_at_the_class_positions():
    cells = torch.tensor([[[3, 5]]])
    frac = torch.tensor([[[0.25, 0.5]]])
    label = torch.full((1, 1, 8, 8), 1 / 64)
    x = ds.oracle_input("cell", cells, frac, label, 16)
    assert x.shape == (1, 3, 16, 16) and x[0, :, 5, 3].tolist() == [1.0, 0.25, 0.5] and float(x.abs().sum()) == 1.75
    y = ds.oracle_input("class", cells, frac, label, 64)
    assert int((y[0, 0] > 0).sum()) == 64 and float(y[0, 0, 4, 12]) == 1.0        # class cells 4, 12, ..., 60
    assert ds.class_cells(64, 8).tolist() == [4, 12, 20, 28, 36, 44, 52, 60]


def test_average_label_kl_is_the_kl_to_the_mean_label():
    p = torch.tensor([[[[0.5, 0.5], [0.0, 0.0]]], [[[0.0, 0.0], [0.5, 0.5]]]])   # (2, 1, 2, 2)
    assert ds.average_label_kl(p) == pytest.approx(math.log(2))


def test_the_study_command_writes_results_and_figures(tmp_path):
    import json

    assert ds.main(["--out", str(tmp_path), "--tiny"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    oracle = [r for r in res["rows"] if r["kind"] == "oracle"]
    assert {(r["head"], r["heatmap"]) for r in oracle} == {("hih_ext", 16), ("hih_local", 16), ("hih", 32), ("hih_local", 32)}
    keys = {"kind", "head", "heatmap", "decimal", "recipe", "spread", "steps", "decimal_kl", "average_label_kl"}
    assert all(keys <= set(r) for r in oracle)
    assert (tmp_path / "receptive_fields.png").stat().st_size > 0 and (tmp_path / "oracle.png").stat().st_size > 0


def test_feature_probe_reads_the_fraction_where_the_feature_holds_it():
    """A fake trunk whose merged feature holds each landmark's fraction (x, y) at its own integer cell and
    nothing elsewhere: the probe at the cell explains it (R^2 ~ 1), the probes at the class positions do not."""
    from types import SimpleNamespace

    from hihlib.codecs import get_codec

    H, K, N = 16, 2, 120
    codec = get_codec("hih", input_size=64, heatmap_size=H, decimal_size=8)
    g = torch.Generator().manual_seed(0)
    # landmarks away from the class cells (1, 3, 5, ...): cells 2..2 + 2m, so the class positions read zeros
    cells = 2 + 2 * torch.randint(0, 6, (2 * N, K, 2), generator=g)
    u = cells.float() + torch.rand(2 * N, K, 2, generator=g) * 0.8 - 0.4
    coords = codec.to_pixels(u)
    c, pos = codec.split(coords)
    feats = torch.zeros(2 * N, 2 * K, H, H)
    for i in range(2 * N):
        for k in range(K):
            feats[i, 2 * k:2 * k + 2, int(c[i, k, 1]), int(c[i, k, 0])] = pos[i, k] / 8

    class Trunk(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))
            self.backbone = lambda images: (feats[images[:, 0, 0, 0].long()], None)

    images = torch.arange(2 * N).float()[:, None, None, None].expand(2 * N, 3, 4, 4)
    scheme = SimpleNamespace(num_points=K)
    train = SimpleNamespace(images=images[:N], landmarks=coords[:N], scheme=scheme)
    test = SimpleNamespace(images=images[N:], landmarks=coords[N:], scheme=scheme)
    run = ds.TrainedRun(heatmap=H, input_size=64, point_stride=1)
    r = ds.feature_probe(Trunk(), codec, run, train, test, num_fit=N)
    assert r["cell"] > 0.99
    assert r["class_mean"] < 0.05 and r["class_best"] < 0.1


def _gen_woo_head_1landmark(pt, size, sigma):
    """Independent transcription of the released gen_woo_head (lib/dataset/gen_heads.py) for one point with an
    integer sigma: gen_heat's (6 sigma + 1)^2 patch pasted at ul = round(pt - 3 sigma), clipped to the map."""
    tmp = int(3 * sigma)
    n = 2 * tmp + 1
    x = np.arange(n, dtype=np.float32)
    heat = np.exp(-((x - tmp) ** 2 + (x[:, None] - tmp) ** 2) / (2 * sigma ** 2))
    out = np.zeros((size, size), np.float32)
    ul = [int(round(pt[0] - tmp)), int(round(pt[1] - tmp))]
    br = [int(round(pt[0] + tmp)) + 1, int(round(pt[1] + tmp)) + 1]
    gx = max(0, -ul[0]), min(br[0], size) - ul[0]
    gy = max(0, -ul[1]), min(br[1], size) - ul[1]
    ix = max(0, ul[0]), min(br[0], size)
    iy = max(0, ul[1]), min(br[1], size)
    out[iy[0]:iy[1], ix[0]:ix[1]] = heat[gy[0]:gy[1], gx[0]:gx[1]]
    return out


def test_released_decimal_values_are_the_released_generator():
    """Against a transcription of gen_hih_head: integer cell floor(64 x_norm), decimal map gen_woo_head at
    8 * frac (7 x 7 window at sigma 1, a peak at 8 when frac rounds up, cut by the map)."""
    _, codec, _ = ds.build("released", "hih", num_landmarks=1, heatmap_size=32, input_size=64, width=8, num_stacks=1,
                           depth=2)
    g = torch.Generator().manual_seed(1)
    coords = torch.rand(1, 40, 2, generator=g) * 60 + 2
    coords[0, 0] = torch.tensor([2.0 * (10 + 0.97) - 0.5, 2.0 * (7 + 0.02) - 0.5])   # frac 0.97 -> c = 8; 0.02 -> 0
    cells, values = ds.released_decimal_values(codec, coords)
    x_norm = (coords[0].numpy().astype(np.float64) + 0.5) / 64          # released labels: [0, 1] across the crop
    w = x_norm * 32
    for k in range(coords.shape[1]):
        cell = np.floor(w[k])
        assert cells[0, k].tolist() == cell.astype(int).tolist()
        expected = _gen_woo_head_1landmark((w[k] - cell) * 8, 8, 1.0)
        assert np.allclose(values[0, k].numpy(), expected, atol=1e-6), k
    assert values[0, 0].argmax().item() == 7 and values[0, 0, 0, 7].item() == pytest.approx(math.exp(-0.5))
    # the released recipe's codec uses it: same cells, the released soft label
    ours, _ = codec.split(coords)
    assert torch.equal(ours.long(), cells)
    assert torch.allclose(codec.encode(coords)["decimal"], csc_soft(values))
    # hihlib's earlier label (HIHCodec's) differs: it carries frac 0.97 into the next cell, and centres its
    # Gaussian at the exact position (so the labels differ a little everywhere)
    from hihlib.codecs.hih import HIHCodec

    assert HIHCodec.split(codec, coords)[0][0, 0, 0].item() == 11 and cells[0, 0, 0].item() == 10
    mis = ds.label_mismatch(codec, coords)
    assert mis["cell_differs"] > 0 and 0 < mis["tv_mean"] < mis["tv_max"] < 0.2
