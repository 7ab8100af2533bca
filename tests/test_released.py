"""The released HIH weights: key mapping, bit-identical outputs, released coordinates, one-line errors.

``ReleasedPort`` is a compact re-implementation of the released network (starhiking/HeatmapInHeatmap,
lib/model/get_hourglass.py: StackedHourGlass with the HIH head), written from its structure and key
names, so that the mapping is checked against the released layout and not only against itself.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hihlib.pipeline.checkpoint import load_checkpoint
from hihlib.cli import main
from hihlib.codecs import get_codec
from hihlib.inference.released_hih import load_released_hih, released_state_dict
from hihlib.models import create
from hihlib.inference.released_hih import ReleasedCheckpointError, convert_released

pytestmark = pytest.mark.usefixtures("one_torch_thread")

WIDTH, DEPTH, STACKS, K, INPUT, D = 32, 2, 2, 98, 64, 4  # heatmap 16, decimal 4 (one down block)


# ---------------------------------------------------------------- the released network, re-implemented
class CBR(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1, relu=True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x):
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class Res(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1, self.conv2 = CBR(cin, cout // 2, 1), CBR(cout // 2, cout // 2, 3)
        self.conv3, self.skip_layer = CBR(cout // 2, cout, 1, relu=False), CBR(cin, cout, 1, relu=False)
        self.need_skip = cin != cout

    def forward(self, x):
        skip = self.skip_layer(x) if self.need_skip else x
        return F.relu(self.conv3(self.conv2(self.conv1(x))) + skip)


class Down(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1, self.conv2 = CBR(c, c, 3, 2), CBR(c, c, 3, relu=False)
        self.downsample = nn.Sequential(CBR(c, c, 1, 2, relu=False))

    def forward(self, x):
        return F.relu(self.conv2(self.conv1(x)) + self.downsample(x))


class HG(nn.Module):
    def __init__(self, n, f):
        super().__init__()
        self.n = n
        self._build(n, f)

    def _build(self, n, f):
        setattr(self, f"res{n}_1", Res(f, f))
        setattr(self, f"res{n}_2", Res(f, f))
        if n > 1:
            self._build(n - 1, f)
        else:
            self.res_center = Res(f, f)
        setattr(self, f"res{n}_3", Res(f, f))

    def _forward(self, x, n):
        up1 = getattr(self, f"res{n}_1")(x)
        low = getattr(self, f"res{n}_2")(F.max_pool2d(x, 2))
        low = self._forward(low, n - 1) if n > 1 else self.res_center(low)
        low = getattr(self, f"res{n}_3")(low)
        return up1 + F.interpolate(low, scale_factor=2, mode="bilinear", align_corners=True)

    def forward(self, x):
        return self._forward(x, self.n)


class ReleasedPort(nn.Module):
    def __init__(self, f=WIDTH, depth=DEPTH, stacks=STACKS, k=K, heatmap=INPUT // 4, d=D, target_c=48):
        super().__init__()
        self.stacks = stacks
        self.pre_conv = nn.Sequential(CBR(3, f // 4, 7, 2), Res(f // 4, f // 2), nn.MaxPool2d(2, 2),
                                      Res(f // 2, f // 2), Res(f // 2, f))
        for i in range(stacks):
            setattr(self, f"hg{i}", HG(depth, f))
            setattr(self, f"hg{i}_res1", Res(f, f))
            setattr(self, f"hg{i}_lin1", CBR(f, f, 1))
            setattr(self, f"hg{i}_conv_pred", nn.Conv2d(f, k, 1))
            setattr(self, f"hg{i}_conv1", CBR(f, f, 1))
            setattr(self, f"hg{i}_conv2", CBR(k, f, 1))
        self.offset_head = nn.Module()
        self.offset_head.conv1 = CBR(f, target_c, 1)
        downs = (heatmap // d).bit_length() - 2  # log2(H / d) - 1
        self.offset_head.down_ops = nn.Sequential(*(Down(target_c) for _ in range(downs)))
        self.offset_head.head = nn.Sequential(CBR(target_c, target_c, 1), nn.Conv2d(target_c, k, 1))

    def forward(self, x):
        x = self.pre_conv(x)
        preds = []
        for i in range(self.stacks):
            feature = getattr(self, f"hg{i}_lin1")(getattr(self, f"hg{i}_res1")(getattr(self, f"hg{i}")(x)))
            p = getattr(self, f"hg{i}_conv_pred")(feature)
            preds.append(p)
            x = x + getattr(self, f"hg{i}_conv1")(feature) + getattr(self, f"hg{i}_conv2")(p)
        h = self.offset_head
        offset = h.head(h.down_ops(F.max_pool2d(h.conv1(x), 3, 2)))
        return torch.stack(preds, 1), offset


def released_decode(heatmap, decimal):
    """The released decode_hih_head: argmax cell + argmax(decimal) / d, a map whose maximum is <= 0 read as
    0; P in heatmap units of the released frame -> hihlib crop pixels x = stride * P - 0.5."""
    def woo(maps):
        v, idx = maps.flatten(-2).max(-1)
        p = torch.stack([idx % maps.shape[-1], idx // maps.shape[-1]], -1).float()
        return p * (v > 0)[..., None]
    p = woo(heatmap) + woo(decimal) / decimal.shape[-1]
    return (INPUT / heatmap.shape[-1]) * p - 0.5


def randomise(module, seed=0):
    """Random weights and BatchNorm statistics, so that a wrong mapping cannot go unnoticed."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.fill_(7)
            elif name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=g))
            elif name.endswith(("running_mean", "bias")):
                t.copy_(0.1 * torch.randn(t.shape, generator=g))
            elif name.endswith("bn.weight") or t.ndim == 1:
                t.copy_(1 + 0.1 * torch.randn(t.shape, generator=g))
            else:
                t.copy_(torch.randn(t.shape, generator=g) / t[0].numel() ** 0.5)
    return module.eval()


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """(port, path of its checkpoint saved in the released format, input batch)."""
    port = randomise(ReleasedPort())
    path = tmp_path_factory.mktemp("released") / "WFLW.pth"
    torch.save({"state_dict": port.state_dict(), "best_nme": 0.0408, "optimizer": {"state": {}}, "epoch": 59}, path)
    x = torch.randn(2, 3, INPUT, INPUT, generator=torch.Generator().manual_seed(1))
    return port, path, x


def test_released_model_is_bit_identical_to_the_released_network(released):
    port, path, x = released
    model = load_released_hih(path, input_size=INPUT)
    assert model.config.align_corners and model.decimal_size == D and model.config.num_stacks == STACKS
    with torch.no_grad():
        heatmaps, offset = port(x)
        out = model(x)
    assert torch.equal(out["heatmaps"], heatmaps)
    assert torch.equal(out["decimal"], offset)
    # the up-sampling is what makes it identical: hihlib's default changes the heatmaps
    other = create("hih_b", num_landmarks=K, num_stacks=STACKS, depth=DEPTH, width=WIDTH, input_size=INPUT,
                   heatmap_size=INPUT // 4, decimal_size=D, decimal_channels=48, official_unused_shortcut=True)
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        rel = (other.eval()(x)["heatmap"] - heatmaps[:, -1]).norm() / heatmaps[:, -1].norm()
    assert rel > 1e-3


def test_converted_checkpoint_decodes_the_released_coordinates(released, tmp_path):
    port, path, x = released
    ckpt = convert_released(path, tmp_path / "hih.pt", input_size=INPUT)
    model, codec, cfg = load_checkpoint(ckpt)
    assert codec.frame == "released_hih" and cfg["model"]["options"]["align_corners"] is True
    assert codec.default_method == "official"  # hih predict's default: the released decoder
    with torch.no_grad():
        heatmaps, offset = port(x)
        out = model(x)
    expected = released_decode(heatmaps[:, -1], offset)
    assert torch.equal(codec.decode(out, "official"), expected)
    # hihlib's own frame reads the same maps half a cell (2.0 px at stride 4; here s = 4) further on
    ours = get_codec("hih", input_size=INPUT, heatmap_size=INPUT // 4, decimal_size=D).decode(out, "official")
    # (where both peaks are positive, and hihlib's reading stays inside the crop: it clamps to the crop's edge)
    visible = (heatmaps[:, -1].amax((-2, -1)) > 0) & (offset.amax((-2, -1)) > 0) & (ours < INPUT - 0.5).all(-1)
    assert visible.sum() > 50
    assert torch.equal((ours - expected)[visible], torch.full_like(ours[visible], 2.0))
    saved = torch.load(ckpt, weights_only=False)
    assert saved["released"]["preprocessing"]["mean"] == [0.485, 0.456, 0.406]
    assert saved["released"]["best_nme"] == 0.0408


@pytest.mark.parametrize("stacks,entries", [(1, 484), (2, 840), (4, 1552)])
def test_hihlib_model_in_the_released_format_has_the_released_key_count_and_round_trips(stacks, entries, tmp_path):
    """The paper's layout (256 input, 64x64 and 8x8 maps, depth 4; the width, 32 here for speed, changes no
    key): 484 / 840 / 1552 released entries, as in the released files; written in the released format and
    read back bit for bit."""
    model = create("hih_b", num_stacks=stacks, width=32, official_unused_shortcut=True, align_corners=True)
    sd = released_state_dict(model)
    assert len(sd) == entries
    assert sum(k.endswith("num_batches_tracked") for k in sd) == sum(k.endswith("running_mean") for k in sd) > 0
    if stacks != 1:
        return
    randomise(model, seed=3)
    path = tmp_path / "r.pth"
    torch.save({"state_dict": released_state_dict(model), "best_nme": 1.0, "optimizer": {}, "epoch": 1}, path)
    back = load_released_hih(path)
    for (k, a), (k2, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        o1, o2 = model(x), back(x)
    codec = get_codec("hih", frame="released_hih")
    assert all(torch.equal(o1[k], o2[k]) for k in o1)
    assert torch.equal(codec.decode(o1), codec.decode(o2))


def _save(sd, path):
    torch.save({"state_dict": sd, "best_nme": 0.0, "optimizer": {}, "epoch": 0}, path)
    return path


def test_missing_key_names_the_key_and_the_expected_shape(released, tmp_path):
    sd = dict(released[0].state_dict())
    del sd["hg1_conv_pred.bias"]
    with pytest.raises(ReleasedCheckpointError, match=r"key 'hg1_conv_pred.bias' missing \(expected shape \(98,\)"):
        load_released_hih(_save(sd, tmp_path / "m.pth"), input_size=INPUT)


def test_wrong_shape_and_unexpected_key_are_one_line_errors(released, tmp_path):
    sd = dict(released[0].state_dict())
    sd["hg0.res2_1.conv2.conv.weight"] = torch.zeros(16, 16, 1, 1)
    with pytest.raises(ReleasedCheckpointError, match=r"'hg0.res2_1.conv2.conv.weight' has shape \(16, 16, 1, 1\), "
                                                      r"expected \(16, 16, 3, 3\)"):
        load_released_hih(_save(sd, tmp_path / "s.pth"), input_size=INPUT)
    sd = dict(released[0].state_dict())
    sd["hg0.extra.weight"] = torch.zeros(3)
    with pytest.raises(ReleasedCheckpointError, match=r"unexpected key 'hg0.extra.weight' \(3,\)"):
        load_released_hih(_save(sd, tmp_path / "u.pth"), input_size=INPUT)


def test_cli_convert_writes_a_checkpoint_and_refuses_a_bad_file_in_one_line(released, tmp_path, capsys):
    _, path, _ = released
    assert main(["convert", "--released", str(path), "--out", str(tmp_path / "c.pt"), "--input-size", "64"]) == 0
    assert (tmp_path / "c.pt").is_file()
    sd = dict(released[0].state_dict())
    sd["offset_head.head.1.weight"] = torch.zeros(5, 48, 1, 1)
    capsys.readouterr()
    assert main(["convert", "--released", str(_save(sd, tmp_path / "b.pth")), "--out", str(tmp_path / "d.pt"),
                 "--input-size", "64"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "'offset_head.head.1.weight' has shape (5, 48, 1, 1), expected (98, 48, 1, 1)" in err
    assert not (tmp_path / "d.pt").exists()
    assert main(["convert", "--released", str(tmp_path / "nothing.pth"), "--out", str(tmp_path / "e.pt")]) == 2
