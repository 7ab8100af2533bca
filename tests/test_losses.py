"""hihlib.losses: every loss against a hand computation on tiny tensors, and the optimum claims."""

import math

import pytest
import torch

from hihlib.codecs import get_codec
from hihlib.codecs.h3r import topk_decode
from hihlib.errors import ConfigError
from hihlib.losses import (adaptive_wing, make_loss, csc_kl, csc_official, h3r_bce, h3r_softmax_ce,
                           heatmap_mse)


# -- MSE ------------------------------------------------------------------------------------------

def test_mse_averages_every_element_of_every_stack():
    target = torch.tensor([[[[1.0, 0.0], [0.0, 0.0]]]])           # (B=1, K=1, 2, 2)
    pred = torch.zeros(1, 2, 1, 2, 2)                               # (B, S=2, K, 2, 2)
    pred[0, 0] = 1.0       # stack 0: errors 0, 1, 1, 1 -> 0.75
    pred[0, 1, 0, 0, 0] = 3.0  # stack 1: error 2 at the peak, 0 elsewhere -> 4 / 4 = 1
    assert heatmap_mse(pred, target).item() == pytest.approx((0.75 + 1.0) / 2)


def test_mse_without_stack_axis_equals_one_stack():
    torch.manual_seed(0)
    pred, target = torch.rand(2, 3, 4, 4), torch.rand(2, 3, 4, 4)
    assert heatmap_mse(pred, target).item() == pytest.approx(heatmap_mse(pred[:, None], target).item())
    assert heatmap_mse(pred, target).item() == pytest.approx(((pred - target) ** 2).mean().item())


def test_mismatched_shapes_are_reported():
    with pytest.raises(ValueError, match="does not match"):
        heatmap_mse(torch.zeros(1, 2, 3, 4, 4), torch.zeros(1, 3, 5, 5))


# -- Adaptive Wing --------------------------------------------------------------------------------

def _awing_scalar(pred, y, alpha=2.1, omega=14.0, eps=1.0, theta=0.5):
    """Independent scalar transcription of the paper's equation."""
    e, p = abs(pred - y), alpha - y
    if e < theta:
        return omega * math.log(1 + (e / eps) ** p)
    a = omega * (1 / (1 + (theta / eps) ** p)) * p * (theta / eps) ** (p - 1) * (1 / eps)
    c = theta * a - omega * math.log(1 + (theta / eps) ** p)
    return a * e - c


@pytest.mark.parametrize("pred,y", [(0.25, 0.0), (0.9, 0.0), (0.3, 1.0), (-0.2, 1.0), (0.7, 0.5), (2.0, 0.2)])
def test_adaptive_wing_matches_the_equation(pred, y):
    got = adaptive_wing(torch.tensor([[[[pred]]]]), torch.tensor([[[[y]]]])).item()
    assert got == pytest.approx(_awing_scalar(pred, y), rel=1e-5)


def test_adaptive_wing_hand_value_on_background():
    # y = 0, error 0.25 < theta: 14 * ln(1 + 0.25 ** 2.1)
    got = adaptive_wing(torch.full((1, 1, 1, 1), 0.25), torch.zeros(1, 1, 1, 1)).item()
    assert got == pytest.approx(14 * math.log(1 + 0.25 ** 2.1), rel=1e-6)
    assert got == pytest.approx(0.7417, abs=1e-4)


@pytest.mark.parametrize("y", [0.0, 0.5, 1.0])
def test_adaptive_wing_pieces_meet_in_value_and_slope_at_theta(y):
    target = torch.full((1, 1, 1, 2), y)
    e = torch.tensor([0.5 - 1e-4, 0.5 + 1e-4], dtype=torch.float64)
    vals = [_awing_scalar(y + float(x), y) for x in e]
    assert vals[0] == pytest.approx(vals[1], abs=1e-2)
    pred = (target.double() + e.view(1, 1, 1, 2)).requires_grad_()
    adaptive_wing(pred, target.double()).backward()
    g = pred.grad.flatten() * 2  # mean over 2 elements
    assert g[0].item() == pytest.approx(g[1].item(), rel=1e-3)


def test_adaptive_wing_weighted_map_dilates_the_foreground_by_3x3():
    target = torch.zeros(1, 1, 5, 5)
    target[0, 0, 2, 2] = 1.0      # one foreground pixel -> a 3x3 weight-11 block, 16 pixels weight 1
    pred = torch.full((1, 1, 5, 5), 0.25)
    pred[0, 0, 2, 2] = 1.0        # no error at the peak
    plain = _awing_scalar(0.25, 0.0)
    expected = (8 * 11 * plain + 16 * plain) / 25
    got = adaptive_wing(pred, target, weighted=True).item()
    assert got == pytest.approx(expected, rel=1e-5)
    assert adaptive_wing(pred, target).item() == pytest.approx(24 * plain / 25, rel=1e-5)


# -- CSC (HIH decimal maps) -----------------------------------------------------------------------

def test_csc_kl_hand_values():
    label = torch.tensor([1.0, 0.0, 0.0, 0.0]).view(1, 1, 2, 2)
    assert csc_kl(torch.zeros(1, 1, 2, 2), label).item() == pytest.approx(math.log(4))
    # label (1/2, 1/2, 0, 0), logits (log 3, 0, 0, 0) -> q = (1/2, 1/6, 1/6, 1/6)
    label = torch.tensor([0.5, 0.5, 0.0, 0.0]).view(1, 1, 2, 2)
    logits = torch.tensor([math.log(3), 0.0, 0.0, 0.0]).view(1, 1, 2, 2)
    expected = 0.5 * math.log(0.5 / 0.5) + 0.5 * math.log(0.5 / (1 / 6))
    assert csc_kl(logits, label).item() == pytest.approx(expected, rel=1e-6)


def test_csc_kl_is_zero_for_the_codec_label_and_averages_over_landmarks():
    codec = get_codec("hih", input_size=256, heatmap_size=64)
    targets = codec.encode(torch.tensor([[[100.3, 57.9], [13.1, 200.6]]]))
    label = targets["decimal"]
    assert csc_kl(label.log() + 5.0, label).item() == pytest.approx(0.0, abs=1e-6)
    uniform = torch.zeros_like(label)
    per_map = [(label[0, k] * (label[0, k] * 64).log()).nansum().item() for k in range(2)]
    assert csc_kl(uniform, label).item() == pytest.approx(sum(per_map) / 2, rel=1e-5)


def test_csc_official_is_softmax_of_values_averaged_over_elements():
    # label (1/2, 1/2, 0, 0): values (1, 1, 0, 0), soft label (e, e, 1, 1) / (2e + 2); q uniform.
    label = torch.tensor([0.5, 0.5, 0.0, 0.0]).view(1, 1, 2, 2)
    s = [math.e / (2 * math.e + 2)] * 2 + [1 / (2 * math.e + 2)] * 2
    expected = sum(v * math.log(v / 0.25) for v in s) / 4
    assert csc_official(torch.zeros(1, 1, 2, 2), label).item() == pytest.approx(expected, rel=1e-6)


def test_csc_official_label_is_nearly_flat():
    codec = get_codec("hih", input_size=256, heatmap_size=64)
    label = codec.encode(torch.tensor([[[101.5 + 2.0, 77.5 + 2.0]]]))["decimal"]  # centre of the 8x8 map
    values = label / label.max()
    soft = values.flatten().softmax(0)
    assert label.max().item() == pytest.approx(0.16, abs=0.01)   # normalised Gaussian, sigma = 1
    assert soft.max().item() == pytest.approx(0.040, abs=0.003)  # softmax of the values
    # The element-mean KL is d*d = 64 times smaller than the per-map KL of the same distributions.
    logits = torch.randn(1, 1, 8, 8)
    assert csc_official(logits, label).item() * 64 == pytest.approx(
        csc_kl(logits, soft.view(1, 1, 8, 8)).item(), rel=1e-5)


# -- H3R ------------------------------------------------------------------------------------------

def test_h3r_softmax_ce_hand_values():
    target = torch.zeros(1, 1, 4, 4)
    target[0, 0, 1, 2] = 1
    assert h3r_softmax_ce(torch.zeros(1, 1, 4, 4), target).item() == pytest.approx(math.log(16))
    logits = torch.zeros(1, 1, 4, 4)
    logits[0, 0, 1, 2] = math.log(15)  # softmax puts 1/2 on the target cell
    assert h3r_softmax_ce(logits, target).item() == pytest.approx(math.log(2), rel=1e-6)
    # Two stacks are averaged; an all-zero target map is left out.
    both = torch.stack([torch.zeros(1, 4, 4), logits[0]], 0)[None]  # (1, S=2, 1, 4, 4)
    assert h3r_softmax_ce(both, target).item() == pytest.approx((math.log(16) + math.log(2)) / 2, rel=1e-6)
    two = torch.cat([target, torch.zeros_like(target)], 1)           # K = 2, second map empty
    assert h3r_softmax_ce(torch.zeros(1, 2, 4, 4), two).item() == pytest.approx(math.log(16))


def test_h3r_bce_hand_values():
    target = torch.zeros(1, 1, 2, 2)
    target[0, 0, 0, 0] = 1
    # logits 0: every pixel costs log 2; the positive weighs H*W - 1 = 3 -> (3 + 3) log 2 / 4
    assert h3r_bce(torch.zeros(1, 1, 2, 2), target).item() == pytest.approx(1.5 * math.log(2))
    assert h3r_bce(torch.zeros(1, 1, 2, 2), target, pos_weight=1.0).item() == pytest.approx(math.log(2))
    # focal gamma = 2 at s = 1/2 multiplies every term by 1/4
    assert h3r_bce(torch.zeros(1, 1, 2, 2), target, gamma=2.0).item() == pytest.approx(0.375 * math.log(2))


def _bilinear_p():
    """Expected randomized-rounding target of one landmark at cell (2.25, 1.6) on a 6x6 map."""
    codec = get_codec("h3r", input_size=24, heatmap_size=6)
    coords = codec.to_pixels(torch.tensor([[[2.25, 1.6]]], dtype=torch.float64))
    return codec.expected(coords)["heatmap"]


def test_softmax_ce_optimum_is_log_p_and_topk_decodes_it_exactly():
    p = _bilinear_p()
    z = (p.clamp_min(1e-30).log() + 3.0).requires_grad_()
    # Expected loss over the random one-hot draws = the loss on the expected target p.
    h3r_softmax_ce(z, p).backward()
    assert z.grad.abs().max().item() < 1e-12
    assert topk_decode(z.detach(), k=9)[0, 0].tolist() == pytest.approx([2.25, 1.6], abs=1e-6)  # decoder computes in float32


def test_bce_optimum_is_biased_toward_the_nearest_cell():
    p = _bilinear_p()
    w = 35.0  # H*W - 1
    # The expected weighted BCE is minimal at sigmoid(z) = w p / (w p + 1 - p): its gradient is 0 there ...
    z = torch.log(w * p / (1 - p)).clamp_min(-60).requires_grad_()
    h3r_bce(z, p, pos_weight=w).backward()
    assert z.grad[p > 0].abs().max().item() < 1e-12
    # ... and the top-k mean of those logits is pulled toward the nearest cell (2, 2): the 4 cells
    # weigh p / (1 - p) instead of p.
    u = topk_decode(z.detach(), k=9)[0, 0]
    px, py = torch.tensor([0.75, 0.25]), torch.tensor([0.4, 0.6])    # cells x = 2, 3 and y = 1, 2
    pp = py[:, None] * px[None, :]
    odds = pp / (1 - pp)
    expected = [2 + odds[:, 1].sum() / odds.sum(), 1 + odds[1].sum() / odds.sum()]
    assert u.tolist() == pytest.approx([float(v) for v in expected], abs=1e-6)
    assert u[0].item() < 2.25 - 0.05 and u[1].item() > 1.6 + 0.04


def test_bce_optimum_1d_weights_nine_to_one():
    # One row: p = (3/4, 1/4) on cells x = 2 and 3 -> odds 3 and 1/3 -> mean 2.1 instead of 2.25.
    p = torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    p[..., 0, 2], p[..., 0, 3] = 0.75, 0.25
    z = torch.log(5 * p / (1 - p)).clamp_min(-60)
    assert topk_decode(z, k=9)[0, 0, 0].item() == pytest.approx(2.1, abs=1e-6)


# -- make_loss -------------------------------------------------------------------------------------

def _hih_batch():
    torch.manual_seed(0)
    codec = get_codec("hih", input_size=64, heatmap_size=16)
    targets = codec.encode(torch.rand(2, 3, 2) * 63)
    outputs = {"heatmaps": torch.rand(2, 2, 3, 16, 16), "decimal": torch.randn(2, 3, 8, 8)}
    outputs["heatmap"] = outputs["heatmaps"][:, -1]
    return outputs, targets


def test_build_loss_hih_total_is_mse_plus_weighted_csc():
    outputs, targets = _hih_batch()
    total, parts = make_loss("hih")(outputs, targets)
    mse = heatmap_mse(outputs["heatmaps"], targets["heatmap"]).item()
    kl = csc_kl(outputs["decimal"], targets["decimal"]).item()
    assert parts["heatmap"].item() == pytest.approx(mse)
    assert parts["decimal"].item() == pytest.approx(kl)
    assert total.item() == pytest.approx(mse + 0.05 / 64 * kl, rel=1e-6)  # the released balance, per-landmark KL
    total2, _ = make_loss("hih", decimal_weight=1.0, decimal_loss="official")(outputs, targets)
    assert total2.item() == pytest.approx(mse + csc_official(outputs["decimal"], targets["decimal"]).item(), rel=1e-6)


def test_build_loss_gaussian_awing_and_h3r_variants():
    outputs, targets = _hih_batch()
    total, parts = make_loss("gaussian", heatmap_loss="awing", awing={"weighted": True})(outputs, targets)
    assert set(parts) == {"heatmap", "total"}
    assert total.item() == pytest.approx(adaptive_wing(outputs["heatmaps"], targets["heatmap"], weighted=True).item())
    onehot = get_codec("h3r", input_size=64, heatmap_size=16).encode(torch.rand(2, 3, 2) * 63)
    total, _ = make_loss("h3r")(outputs, onehot)
    assert total.item() == pytest.approx(h3r_softmax_ce(outputs["heatmaps"], onehot["heatmap"]).item())
    total, _ = make_loss("h3r", h3r_loss="bce", gamma=1.0)(outputs, onehot)
    assert total.item() == pytest.approx(h3r_bce(outputs["heatmaps"], onehot["heatmap"], gamma=1.0).item())


def test_build_loss_accepts_bf16_outputs_and_returns_float32():
    outputs, targets = _hih_batch()
    total, parts = make_loss("hih")({k: v.bfloat16() for k, v in outputs.items()}, targets)
    assert total.dtype == torch.float32
    ref, _ = make_loss("hih")(outputs, targets)
    assert total.item() == pytest.approx(ref.item(), rel=2e-2)


@pytest.mark.parametrize("codec,cfg", [("dark", {}), ("hih", {"decmal_weight": 1}), ("hih", {"decimal_loss": "ce"}),
                                       ("gaussian", {"heatmap_loss": "l1"}), ("h3r", {"h3r_loss": "focal"}),
                                       ("hih", {"decimal_weight": -1}), ("gaussian", {"heatmap_loss": "awing",
                                                                                      "awing": {"omgea": 1}})])
def test_build_loss_rejects_bad_options(codec, cfg):
    with pytest.raises(ConfigError):
        make_loss(codec, **cfg)
