"""hihlib.models: the paper's parameter and MAC counts, output shapes of every registered model and
head, heatmap sizes, the decimal head's pooling, and the forward's compatibility (channels_last, bf16).

The paper-size models are built on the ``meta`` device (shapes without memory or compute), so the
test of every registered model stays fast; one real forward of hih_t at batch 1 checks them for real.
"""

import pytest
import torch

from hihlib.errors import ConfigError
from hihlib.losses import make_loss
from hihlib.models.heads import HIH_HEADS, LocalDecimalHead, codec_name
from hihlib.models import (HEADS, DecimalHead, HourglassConfig, count_macs, count_parameters, create,
                           list_models, model_config)

PAPER = {"hih_t": (1, 10.37e6, 6.99e9), "hih_s": (2, 14.47e6, 10.38e9), "hih_b": (4, 22.68e6, 17.15e9)}
# Exact counts (98 landmarks, head "hih"): with the released, unused 1x1 shortcut / without it.
EXACT = {"hih_t": (10_365_700, 9_424_388), "hih_s": (14_469_478, 12_603_494), "hih_b": (22_677_034, 18_961_706)}
# the single-feature backbones (tests/test_backbones.py): full-size shapes on the meta device here
BACKBONES = {"hrnet_w18", "hrnet_w18_small_v2", "hrnet_w32", "mobilenetv2"}
SMALL = [n for n in list_models() if n not in PAPER and n not in BACKBONES]


def _meta(name, **kw):
    with torch.device("meta"):
        return create(name, **kw)


@pytest.mark.parametrize("name", list(PAPER))
def test_paper_parameter_counts_within_one_percent(name):
    stacks, params, _ = PAPER[name]
    with_shortcut = count_parameters(_meta(name, official_unused_shortcut=True))
    without = count_parameters(_meta(name))
    assert (with_shortcut, without) == EXACT[name]
    assert abs(with_shortcut / params - 1) < 0.01
    # The unused shortcuts: 13 per hourglass of depth 4 + 1 per stack, of 256x256 conv + BN, and one
    # 128x128 in the stem.
    assert with_shortcut - without == stacks * 14 * (256 * 256 + 2 * 256) + (128 * 128 + 2 * 128)


@pytest.mark.parametrize("name", list(PAPER))
def test_paper_macs_within_one_and_a_half_percent(name):
    _, _, macs = PAPER[name]
    got = count_macs(_meta(name))
    assert abs(got / macs - 1) < 0.015


def test_registry_names_and_aliases():
    assert list_models()[:3] == ["hih_t", "hih_s", "hih_b"]
    assert {"hg_tiny", "hg_small"} <= set(list_models())
    assert model_config("tiny") == model_config("hg_tiny")
    cfg = model_config("hih_b")
    assert (cfg.num_stacks, cfg.depth, cfg.width, cfg.input_size, cfg.heatmap_size) == (4, 4, 256, 256, 64)


def _check_outputs(out, *, b, stacks, k, h, head, d=8):
    assert out["heatmaps"].shape == (b, stacks, k, h, h)
    assert out["heatmap"].shape == (b, k, h, h)
    if out["heatmap"].device.type != "meta":  # meta tensors hold no values: the real forwards check this
        assert torch.equal(out["heatmap"], out["heatmaps"][:, -1])
    assert ("decimal" in out) == (head in HIH_HEADS)
    if head in HIH_HEADS:
        assert out["decimal"].shape == (b, k, d, d)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_and_head(name, head):
    cfg = model_config(name)
    if name in PAPER or name in BACKBONES:  # shapes on the meta device: no memory, no compute
        model = _meta(name, head=head)
        x = torch.zeros(1, 3, cfg.input_size, cfg.input_size, device="meta")
        b = 1
    else:
        torch.manual_seed(0)
        model = create(name, head=head, num_landmarks=7)
        x = torch.randn(2, 3, cfg.input_size, cfg.input_size)
        b = 2
    out = model(x)
    k = 98 if name in PAPER or name in BACKBONES else 7
    _check_outputs(out, b=b, stacks=cfg.num_stacks, k=k, h=cfg.heatmap_size, head=head)
    assert (model.input_size, model.heatmap_size) == (cfg.input_size, cfg.heatmap_size)
    if name not in PAPER and name not in BACKBONES:
        assert all(torch.isfinite(v).all() for v in out.values())


# Seeded-output checksums of the paper models: ``torch.manual_seed(0); create(name)`` (98 landmarks, head
# "hih", 256 px input), in eval mode, on the image ``torch.randn(1, 3, 256, 256)`` of
# ``torch.Generator().manual_seed(1)``, on the CPU. Values: heatmap sum, |heatmap| sum, heatmap^2 sum, decimal
# sum, |decimal| sum, heatmap[0, 0, 10, 20], heatmap[0, 97, 63, 0], decimal[0, 50, 3, 4], computed once with
# torch 2.13 (CPU, float32, summed in float64) when the architecture matched the released code
# (parameter counts above). One or two threads agree to 2e-6 relative; rtol 1e-4 leaves room for other
# CPUs' kernels while any change to a layer, its order or its initialisation moves them by far more.
CHECKSUMS = {
    "hih_t": [315.561339, 2226.92715, 18.6750476, -0.101326475, 0.786179397, -0.00311577506, -0.000888604671,
              -0.000269507698],
    "hih_s": [180.904745, 2762.99525, 32.2225846, -0.10615825, 1.52596186, -0.000676938915, -0.0100429766,
              -0.000291012053],
    "hih_b": [-2251.51497, 10031.248, 400.230263, -0.0907819575, 4.24813951, -0.0524362214, -0.00346509763,
              -0.000676593045],
}


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("name", list(PAPER))
def test_paper_model_seeded_output_matches_its_checksum(name):
    torch.manual_seed(0)
    model = create(name).eval()
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)
    _check_outputs(out, b=1, stacks=PAPER[name][0], k=98, h=64, head="hih")
    h, d = out["heatmap"].double(), out["decimal"].double()
    got = [h.sum(), h.abs().sum(), (h ** 2).sum(), d.sum(), d.abs().sum(), h[0, 0, 10, 20], h[0, 97, 63, 0], d[0, 50, 3, 4]]
    assert [float(v) for v in got] == pytest.approx(CHECKSUMS[name], rel=1e-4, abs=1e-9)


@pytest.mark.parametrize("heatmap_size", [64, 32, 16])
def test_one_backbone_at_heatmap_sizes_64_32_16(heatmap_size):
    torch.manual_seed(0)
    head = "hih" if heatmap_size >= 32 else "hih_ext"   # the released head is not buildable at 16 -> 8
    model = create("hg_tiny", head=head, num_landmarks=5, heatmap_size=heatmap_size)
    out = model(torch.randn(1, 3, 128, 128))
    _check_outputs(out, b=1, stacks=1, k=5, h=heatmap_size, head=head)
    reference = create("hg_tiny", head="hih", num_landmarks=5)
    assert count_parameters(model.backbone) == count_parameters(reference.backbone)


@pytest.mark.parametrize("heatmap_size,decimal_size,pool_padding,down_blocks",
                         [(64, 8, 0, 2), (128, 8, 0, 3), (32, 8, 0, 1), (16, 8, 1, 0), (8, 8, None, 0), (64, 4, 0, 3)])
def test_decimal_head_reaches_d_by_d(heatmap_size, decimal_size, pool_padding, down_blocks):
    head = DecimalHead(16, 3, heatmap_size=heatmap_size, decimal_size=decimal_size, channels=8)
    assert len(head.down) == down_blocks
    assert getattr(head.pool, "padding", None) == pool_padding
    with torch.device("meta"):
        out = head.to("meta")(torch.zeros(2, 16, heatmap_size, heatmap_size))
    assert out.shape == (2, 3, decimal_size, decimal_size)


def test_paper_decimal_head_sizes_64_31_16_8():
    head = DecimalHead(256, 98)
    sizes = []
    x = torch.zeros(1, 256, 64, 64, device="meta")
    head = head.to("meta")
    x = head.pool(head.reduce(x))
    sizes.append(x.shape[-1])
    for block in head.down:
        x = block(x)
        sizes.append(x.shape[-1])
    assert sizes == [31, 16, 8]
    assert head.reduce[0].out_channels == 384


@pytest.mark.parametrize("bad", [dict(heatmap_size=48), dict(heatmap_size=128), dict(depth=6, heatmap_size=16),
                                 dict(width=30), dict(num_stacks=0), dict(depht=3)])
def test_bad_configs_raise_config_error(bad):
    with pytest.raises(ConfigError):
        create("hg_tiny", **bad)


def test_bad_names_raise_config_error():
    with pytest.raises(ConfigError, match="unknown model"):
        create("hih_xl")
    with pytest.raises(ConfigError, match="head"):
        create("hg_tiny", head="dsnt")
    with pytest.raises(ConfigError, match="power of 2"):
        create("hg_tiny", head="hih", decimal_size=6)


def _train_step(model, head, k=5, seed=0):
    from hihlib.codecs import get_codec

    torch.manual_seed(seed)
    name = codec_name(head)
    codec = get_codec(name, input_size=model.input_size, heatmap_size=model.heatmap_size)
    coords = torch.rand(2, k, 2) * (model.input_size - 1)
    targets = codec.encode(coords)
    out = model(torch.randn(2, 3, model.input_size, model.input_size), landmarks=coords)
    total, _ = make_loss(name)(out, targets)
    total.backward()
    return total


@pytest.mark.parametrize("head", HEADS)
def test_every_parameter_gets_a_gradient_by_default(head):
    """No dead weights: DistributedDataParallel's default (find_unused_parameters=False) works."""
    model = create("hg_tiny", head=head, num_landmarks=5)
    _train_step(model, head)
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_official_unused_shortcut_is_really_unused():
    model = create("hg_tiny", head="hih", num_landmarks=5, official_unused_shortcut=True)
    _train_step(model, "hih")
    dead = {n for n, p in model.named_parameters() if p.grad is None}
    assert dead and all(".shortcut." in n for n in dead)
    shortcuts = [m for m in model.modules() if hasattr(m, "needs_projection") and not m.needs_projection]
    # hg_tiny: depth 3 -> 10 residuals per hourglass, + 1 per stack, + 1 in the stem; conv weight + BN w, b
    assert len(shortcuts) == 12 and len(dead) == 12 * 3


def test_h3r_head_starts_at_the_positive_rate():
    model = create("hg_tiny", head="h3r", num_landmarks=5).eval()
    with torch.no_grad():
        z = model(torch.randn(1, 3, 128, 128))["heatmap"]
    assert torch.sigmoid(z).mean().item() == pytest.approx(1 / 32 ** 2, rel=0.05)


def test_channels_last_gives_the_same_outputs():
    torch.manual_seed(0)
    model = create("hg_tiny", head="hih", num_landmarks=5).eval()
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        ref = model(x)
        model = model.to(memory_format=torch.channels_last)
        out = model(x.contiguous(memory_format=torch.channels_last))
    for key in ref:
        torch.testing.assert_close(out[key], ref[key], rtol=1e-4, atol=1e-5)


def test_bf16_autocast_forward_and_backward():
    torch.manual_seed(0)
    model = create("hg_tiny", head="hih", num_landmarks=5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total = _train_step(model, "hih")
    assert total.dtype == torch.float32 and torch.isfinite(total)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_a_few_steps_fit_one_batch():
    """The backbone, head and loss are wired so that gradient descent fits a fixed batch."""
    from hihlib.codecs import get_codec

    torch.manual_seed(0)
    model = create("hg_tiny", head="gaussian", num_landmarks=3, width=32, depth=2, input_size=64, heatmap_size=16)
    codec = get_codec("gaussian", input_size=64, heatmap_size=16)
    x = torch.randn(2, 3, 64, 64)
    targets = codec.encode(torch.rand(2, 3, 2) * 63)
    loss = make_loss("gaussian")
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(12):
        total, _ = loss(model(x), targets)
        opt.zero_grad()
        total.backward()
        opt.step()
        history.append(total.item())
    assert history[-1] < 0.5 * history[0]


def test_config_dataclass_reads_like_the_paper():
    cfg = HourglassConfig()
    assert (cfg.num_stacks, cfg.depth, cfg.width, cfg.input_size, cfg.heatmap_size, cfg.stride) == (4, 4, 256, 256, 64, 4)
    assert cfg.official_unused_shortcut is False


# -- hih_local: the decimal head that reads the feature at the integer cell ---------------------------
def test_local_decimal_head_parameter_count_is_its_closed_form():
    """reduce: 3x3 conv w->c (no bias) + BN (2c); classifier: K x (c * window^2) x 2d weights + K x 2d biases."""
    w, c, n, k, d = 32, 16, 4, 98, 8
    head = LocalDecimalHead(w, k, decimal_size=d, channels=c, window=n)
    assert count_parameters(head) == w * c * 9 + 2 * c + k * c * n * n * 2 * d + k * 2 * d == 407_616
    model = create("hg_tiny", head="hih_local", num_landmarks=k, width=w, depth=2, input_size=64, heatmap_size=16)
    released = create("hg_tiny", head="hih_ext", num_landmarks=k, width=w, depth=2, input_size=64, heatmap_size=16)
    # the same backbone (final remap included); only the decimal heads differ
    assert count_parameters(model) - count_parameters(model.decimal) == (
        count_parameters(released) - count_parameters(released.decimal))


def test_local_decimal_head_reads_the_given_cell_and_is_translation_equivariant():
    torch.manual_seed(0)
    head = LocalDecimalHead(8, 3, decimal_size=4, channels=4).eval()
    feature = torch.randn(2, 8, 16, 16)
    cells = torch.tensor([[[5, 6], [7, 2], [9, 9]], [[3, 3], [8, 9], [9, 4]]])
    out = head(feature, cells)
    assert out.shape == (2, 3, 4, 4)
    # shift the feature map by (2, 1) cells and the cells with it: the same logits (away from the border)
    shifted = torch.roll(feature, shifts=(1, 2), dims=(2, 3))
    moved = head(shifted, cells + torch.tensor([2, 1]))
    torch.testing.assert_close(moved, out, rtol=1e-5, atol=1e-6)
    # logits are an outer sum: log-probabilities factorise over the two axes
    lp = out.flatten(-2).log_softmax(-1).view_as(out)
    px, py = lp.logsumexp(-2), lp.logsumexp(-1)
    torch.testing.assert_close(lp, py[..., :, None] + px[..., None, :], rtol=1e-5, atol=1e-5)


def test_hih_local_samples_ground_truth_cells_in_training_and_argmax_cells_without_them():
    from hihlib.codecs import get_codec
    from hihlib.codecs.gaussian import argmax_2d

    torch.manual_seed(0)
    model = create("hg_tiny", head="hih_local", num_landmarks=4, width=16, depth=2, input_size=64,
                   heatmap_size=16).eval()
    x = torch.randn(2, 3, 64, 64)
    coords = torch.rand(2, 4, 2) * 60 + 2
    with torch.no_grad():
        out = model(x, landmarks=coords)
        feature, heatmaps = model.backbone(x)
        cells = get_codec("hih", input_size=64, heatmap_size=16).split(coords)[0]
        torch.testing.assert_close(out["decimal"], model.decimal(feature, cells))
        free = model(x)
        torch.testing.assert_close(free["decimal"], model.decimal(feature, torch.stack(argmax_2d(heatmaps[:, -1]), -1)))


def test_hih_local_learns_one_batch_decimal_kl_falls_far_below_the_label_entropy():
    """200 steps on 4 fixed faces: the decimal KL must fall from ~the entropy gap of a flat guess to
    under a tenth of it, and the expectation decoding beats the integer map alone on those faces."""
    from hihlib.codecs import get_codec

    torch.manual_seed(0)
    model = create("hg_tiny", head="hih_local", num_landmarks=6, width=16, depth=2, input_size=64, heatmap_size=16)
    codec = get_codec("hih", input_size=64, heatmap_size=16)
    loss_fn = make_loss("hih", decimal_weight=0.05)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 3, 64, 64, generator=g)
    coords = torch.rand(4, 6, 2, generator=g) * 56 + 4
    targets = codec.encode(coords)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    kls = []
    for _ in range(200):
        total, parts = loss_fn(model(x, landmarks=coords), targets)
        opt.zero_grad()
        total.backward()
        opt.step()
        kls.append(float(parts["decimal"]))
    assert kls[-1] < 0.1 * kls[0]
    model.eval()
    with torch.no_grad():
        out = model(x, landmarks=coords)   # the ground-truth cells: the decimal map alone is tested
    err = {m: (codec.decode(out, m) - coords).norm(dim=-1).mean().item() for m in ("expectation", "argmax")}
    assert err["expectation"] < 0.5 * err["argmax"]
