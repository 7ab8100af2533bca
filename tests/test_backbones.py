"""HRNetV2 and H3R's MobileNetV2 with every head: the released parameter counts and names, shapes, the
fuse up-sampling, checkpoints. Full-size models on the meta device only; forwards at 64 px."""

import pytest
import torch

from hihlib.pipeline.build import model_from_spec, model_spec
from hihlib.errors import ConfigError
from hihlib.models import HEADS, count_parameters, create, model_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# (state-dict entries, parameters) at 98 landmarks: H3R's released files (REFERENCE section 7) for h3r,
# HRNet-facial's for the gaussian head on hrnet_w18.
RELEASED = {("hrnet_w18", "h3r"): (1837, 9_688_620), ("mobilenetv2", "h3r"): (241, 595_728),
            ("hrnet_w18", "gaussian"): (1839, 9_662_528)}


def _meta(name, **kw):
    with torch.device("meta"):
        return create(name, **kw)


@pytest.mark.parametrize("name,head", list(RELEASED))
def test_released_key_and_parameter_counts(name, head):
    model = _meta(name, head=head)
    assert (len(model.state_dict()), count_parameters(model)) == RELEASED[(name, head)]


def test_backbone_widths_and_the_other_variants():
    # out channels: 18+36+72+144 = 270, 32+...+256 = 480, 24+32+96 = 152; the W18 backbone alone has 1,830
    # state-dict entries (REFERENCE section 7), MobileNetV2 234
    for name, c in (("hrnet_w18", 270), ("hrnet_w18_small_v2", 270), ("hrnet_w32", 480), ("mobilenetv2", 152)):
        m = _meta(name, head="h3r")
        assert m.backbone.out_channels == c
        # the H3R head: C*C + 2C (BN) + C*2K, no biases
        assert count_parameters(m) - count_parameters(m.backbone) == c * c + 2 * c + c * 2 * 98
    assert len(_meta("hrnet_w18", head="h3r").backbone.state_dict()) == 1830
    assert len(_meta("mobilenetv2", head="h3r").backbone.state_dict()) == 234


def test_released_names():
    sd = _meta("hrnet_w18", head="h3r").state_dict()
    for key in ("backbone.conv1.weight", "backbone.bn2.running_var", "backbone.layer1.0.downsample.0.weight",
                "backbone.layer1.3.conv3.weight", "backbone.transition1.0.0.weight", "backbone.transition1.1.0.0.weight",
                "backbone.transition3.3.0.1.num_batches_tracked", "backbone.stage2.0.branches.1.3.bn2.bias",
                "backbone.stage3.3.fuse_layers.2.0.1.0.weight", "backbone.stage4.2.fuse_layers.0.3.1.running_mean",
                "heatmap_head.0.weight", "heatmap_head.1.running_mean", "heatmap_head.3.weight"):
        assert key in sd, key
    assert sd["heatmap_head.3.weight"].shape == (196, 270, 1, 1) and "heatmap_head.3.bias" not in sd
    sd = _meta("mobilenetv2", head="h3r").state_dict()
    assert sd["backbone.features.13.conv.6.weight"].shape == (96, 576, 1, 1)
    assert sd["backbone.features.1.conv.0.weight"].shape == (32, 1, 3, 3)   # depthwise, expansion 1


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("name", ["hrnet_w18_small_v2", "mobilenetv2"])
def test_every_head_on_every_backbone_at_64px(name, head):
    torch.manual_seed(0)
    model = create(name, head=head, num_landmarks=5, input_size=64, decimal_size=4)
    assert (model.input_size, model.heatmap_size) == (64, 16)
    out = model(torch.randn(2, 3, 64, 64), landmarks=torch.rand(2, 5, 2) * 63)
    assert out["heatmap"].shape == (2, 5, 16, 16) and torch.equal(out["heatmaps"][:, 0], out["heatmap"])
    assert ("decimal" in out) == head.startswith("hih")
    if head == "h3r":  # the two planes: plane 1 is the decoded one
        assert out["planes"].shape == (2, 2, 5, 16, 16) and torch.equal(out["planes"][:, 1], out["heatmap"])
    if "decimal" in out:
        assert out["decimal"].shape == (2, 5, 4, 4)
    sum(v.float().sum() for v in out.values()).backward()
    assert model.backbone.features[0][0].weight.grad.abs().sum() > 0 if name == "mobilenetv2" else True


def test_checkpoint_spec_rebuilds_the_model():
    model = create("hrnet_w18_small_v2", head="hih", num_landmarks=5, input_size=64, decimal_size=4,
                   upsample="bilinear").eval()
    back = model_from_spec(model_spec(model))
    back.load_state_dict(model.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), back.eval()(x)
    assert back.config == model.config and all(torch.equal(a[k], b[k]) for k in a)


def test_fuse_upsampling_changes_the_maps_not_the_weights():
    torch.manual_seed(0)
    near = create("hrnet_w18_small_v2", head="gaussian", num_landmarks=5, input_size=64)
    bil = create("hrnet_w18_small_v2", head="gaussian", num_landmarks=5, input_size=64, upsample="bilinear")
    bil.load_state_dict(near.state_dict())
    for m in (near, bil):
        torch.nn.init.normal_(m.heatmap_head[3].weight)  # not the near-zero init, so that the maps differ visibly
    bil.heatmap_head[3].weight.data.copy_(near.heatmap_head[3].weight)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        a, b = near.eval()(x)["heatmap"], bil.eval()(x)["heatmap"]
    assert (a - b).norm() / a.norm() > 1e-3


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="multiple of 32"):
        model_config("hrnet_w18", input_size=100)
    with pytest.raises(ConfigError, match="upsample"):
        model_config("hrnet_w18", upsample="cubic")
    with pytest.raises(ConfigError, match="unknown model option"):
        model_config("mobilenetv2", depth=3)
    assert model_config("mobilenetv2", input_size=128).heatmap_size == 32


@pytest.mark.parametrize("name,size,published,tol", [("hrnet_w18", 256, 4.77e9, 0.01), ("hrnet_w18", 128, 1.19e9, 0.01),
                                                     ("mobilenetv2", 256, 0.47e9, 0.05), ("mobilenetv2", 128, 0.12e9, 0.05)])
def test_macs_against_h3r_published_flops(name, size, published, tol):
    """H3R's models/README.md "FLOPs" (thop MACs of backbone + head, examples/thop-profile.py): HRNet-W18 4.77G
    at 256 (ours 4.80G), 1.19G at 128; MobileNetV2 0.47G / 0.12G (ours 0.49G / 0.12G: 4 % above at 256, a gap
    we have not traced to a layer)."""
    from hihlib.models import count_macs

    got = count_macs(_meta(name, head="h3r", input_size=size))
    assert abs(got / published - 1) < tol


def _imagenet_file(tmp_path, prefix="", wrap=False):
    """An ImageNet HRNet-W18-small-v2 file as HRNet-Image-Classification / timm write it: the backbone's keys
    plus the classification head's (incre_modules, downsamp_modules, final_layer, classifier)."""
    donor = create("hrnet_w18_small_v2", head="gaussian", num_landmarks=5, input_size=64)
    for t in donor.backbone.state_dict().values():
        if t.is_floating_point():
            t.normal_()
    sd = {prefix + k: v for k, v in donor.backbone.state_dict().items()}
    sd.update({prefix + "incre_modules.0.0.conv1.weight": torch.zeros(32, 18, 1, 1),
               prefix + "final_layer.0.weight": torch.zeros(2048, 1024, 1, 1), prefix + "classifier.weight": torch.zeros(1000, 2048),
               prefix + "downsamp_modules.0.0.weight": torch.zeros(256, 128, 3, 3)})
    path = tmp_path / "imagenet.pth"
    torch.save({"state_dict": sd} if wrap else sd, path)
    return donor, path


@pytest.mark.parametrize("prefix,wrap", [("", False), ("module.", True)])
def test_hrnet_starts_from_an_imagenet_file(tmp_path, prefix, wrap):
    donor, path = _imagenet_file(tmp_path, prefix, wrap)
    torch.manual_seed(1)
    model = create("hrnet_w18_small_v2", head="h3r", num_landmarks=5, input_size=64, pretrained=str(path))
    for k, v in donor.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[k], v), k
    fresh = create("hrnet_w18_small_v2", head="h3r", num_landmarks=5, input_size=64)
    assert fresh.heatmap_head[0].weight.shape == model.heatmap_head[0].weight.shape  # the head keeps its init


def test_imagenet_file_that_does_not_fit_is_a_one_line_error(tmp_path):
    _, path = _imagenet_file(tmp_path)
    with pytest.raises(ConfigError, match=r"key 'layer1.2.conv1.weight' missing \(expected shape \(64, 256, 1, 1\); "
                                          r"is this a hrnet_w32 ImageNet file\?\)"):
        create("hrnet_w32", head="h3r", input_size=64, pretrained=str(path))
    sd = torch.load(path)
    sd["transition1.0.0.weight"] = torch.zeros(32, 256, 3, 3)
    torch.save(sd, path)
    with pytest.raises(ConfigError, match=r"key 'transition1.0.0.weight' has shape \(32, 256, 3, 3\), expected "
                                          r"\(18, 256, 3, 3\)"):
        create("hrnet_w18_small_v2", head="h3r", input_size=64, pretrained=str(path))
    sd["stage9.weight"] = torch.zeros(2)
    torch.save(sd, path)
    with pytest.raises(ConfigError, match=r"unexpected key 'stage9.weight' \(2,\)"):
        create("hrnet_w18_small_v2", head="h3r", input_size=64, pretrained=str(path))
    with pytest.raises(ConfigError, match="HRNet backbones only"):
        create("mobilenetv2", head="h3r", input_size=64, pretrained=str(path))


def test_a_training_step_on_hrnet_with_the_h3r_recipe_pieces(tmp_path):
    """The recipe's codec and loss train the HRNet + BinaryHeadBlock model (64 px, one step): plane 1 gets
    gradients, and a converted-style checkpoint round trip keeps the model."""
    from hihlib.codecs import get_codec
    from hihlib.losses import make_loss

    torch.manual_seed(0)
    model = create("hrnet_w18_small_v2", head="h3r", num_landmarks=5, input_size=64)
    codec, loss_fn = get_codec("h3r", input_size=64, heatmap_size=16), make_loss("h3r", h3r_loss="softmax")
    coords = 8 + torch.rand(2, 5, 2) * 48
    out = model(torch.randn(2, 3, 64, 64))
    total, parts = loss_fn(out, codec.encode(coords, generator=torch.Generator().manual_seed(0)))
    total.backward()
    w = model.heatmap_head[3].weight.grad.view(2, 5, -1)   # (planes, K, C): plane 1 trained, plane 0 not read
    assert w[1].abs().sum() > 0 and w[0].abs().sum() == 0
