"""Released H3R and HRNet-facial weights: family recognition, bit-identical maps, the released decoders'
coordinates with and without the flip test, one-line errors.

The released files are made from hihlib's own modules with random weights and BatchNorm statistics, written
under the released key names (``h3r_state_dict``, ``hrnet_facial_state_dict``). The reference outputs come
from ``released_forward`` below: a functional re-implementation of the released networks
(baoshengyu/H3R torchalign/backbone/{hrnet,mobilenet}.py + BinaryHeadBlock; HRNet-facial lib/models/hrnet.py)
that reads the released state dict by its key names, so that the mapping is checked against the released
layout and not only against itself, and of the released decoders and flip test
(``FacialLandmarkDetector.forward``, ``BinaryHeatmap2Coordinate``; HRNet-facial ``decode_preds``).
Inputs are 64 px (16x16 maps), so that everything runs in seconds.
"""

import pytest
import torch
import torch.nn.functional as F
import yaml

from hihlib.pipeline.checkpoint import load_checkpoint
from hihlib.cli import main
from hihlib.data.schemes import get_scheme
from hihlib.inference.evaluate import predict_batch
from hihlib.models import create
from hihlib.inference.released_hih import ReleasedCheckpointError
from hihlib.inference.released_h3r import convert_any, h3r_state_dict, hrnet_facial_state_dict
from tests.test_released import randomise

pytestmark = pytest.mark.usefixtures("one_torch_thread")

S, K = 64, 98
FLIP_ORDER = list(get_scheme("wflw").mirror)


# ---------------------------------------------------------------- the released networks, functionally
def _bn(sd, p, x):
    return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                        False, 0.1, 1e-5)


def _conv(sd, p, x, stride=1, groups=1):
    w = sd[p + ".weight"]
    return F.conv2d(x, w, sd.get(p + ".bias"), stride, (w.shape[-1] - 1) // 2, 1, groups)


def _count(sd, prefix):
    """Number of children i of ``prefix`` (keys ``prefix.i.``)."""
    return len({k[len(prefix) + 1:].split(".")[0] for k in sd if k.startswith(prefix + ".")})


def _basic(sd, p, x):
    out = F.relu(_bn(sd, p + ".bn1", _conv(sd, p + ".conv1", x)))
    out = _bn(sd, p + ".bn2", _conv(sd, p + ".conv2", out))
    res = _bn(sd, p + ".downsample.1", _conv(sd, p + ".downsample.0", x)) if p + ".downsample.0.weight" in sd else x
    return F.relu(out + res)


def _bottleneck(sd, p, x):
    out = F.relu(_bn(sd, p + ".bn1", _conv(sd, p + ".conv1", x)))
    out = F.relu(_bn(sd, p + ".bn2", _conv(sd, p + ".conv2", out)))
    out = _bn(sd, p + ".bn3", _conv(sd, p + ".conv3", out))
    res = _bn(sd, p + ".downsample.1", _conv(sd, p + ".downsample.0", x)) if p + ".downsample.0.weight" in sd else x
    return F.relu(out + res)


def _hr_module(sd, p, xs, upsample):
    xs = list(xs)
    for b in range(len(xs)):
        for k in range(_count(sd, f"{p}.branches.{b}")):
            xs[b] = _basic(sd, f"{p}.branches.{b}.{k}", xs[b])
    out = []
    for i in range(len(xs)):
        y = None
        for j in range(len(xs)):
            f = f"{p}.fuse_layers.{i}.{j}"
            if j == i:
                t = xs[j]
            elif j > i:
                t = _bn(sd, f + ".1", _conv(sd, f + ".0", xs[j]))
                t = (F.interpolate(t, scale_factor=2 ** (j - i), mode="nearest") if upsample == "nearest"
                     else F.interpolate(t, size=xs[i].shape[-2:], mode="bilinear", align_corners=False))
            else:
                t = xs[j]
                n = i - j
                for k in range(n):
                    t = _bn(sd, f"{f}.{k}.1", _conv(sd, f"{f}.{k}.0", t, stride=2))
                    t = F.relu(t) if k < n - 1 else t
            y = t if y is None else y + t
        out.append(F.relu(y))
    return out


def released_hrnet(sd, p, x, upsample):
    x = F.relu(_bn(sd, p + "bn1", _conv(sd, p + "conv1", x, 2)))
    x = F.relu(_bn(sd, p + "bn2", _conv(sd, p + "conv2", x, 2)))
    for k in range(_count(sd, p + "layer1")):
        x = _bottleneck(sd, f"{p}layer1.{k}", x)
    ys = [x]
    for t in (1, 2, 3):
        xs = []
        for i in range(_count(sd, f"{p}stage{t + 1}.0.branches")):
            q = f"{p}transition{t}.{i}"
            if q + ".0.weight" in sd:        # same resolution, new width: conv3x3 BN ReLU on branch i
                xs.append(F.relu(_bn(sd, q + ".1", _conv(sd, q + ".0", ys[i]))))
            elif q + ".0.0.weight" in sd:    # a new branch: strided conv3x3 BN ReLU from the last branch
                xs.append(F.relu(_bn(sd, q + ".0.1", _conv(sd, q + ".0.0", ys[-1], 2))))
            else:
                xs.append(ys[i])
        for m in range(_count(sd, f"{p}stage{t + 1}")):
            xs = _hr_module(sd, f"{p}stage{t + 1}.{m}", xs, upsample)
        ys = xs
    return torch.cat([F.interpolate(y, size=ys[0].shape[-2:], mode="bilinear", align_corners=False) if i else y
                      for i, y in enumerate(ys)], 1)


def released_mobilenet(sd, p, x):
    strides = {2: 2, 4: 2, 7: 2}  # first block of each strided (t, c, n, s) group
    x = F.relu6(_bn(sd, p + "features.0.1", _conv(sd, p + "features.0.0", x, 2)))
    feats = []
    for i in range(1, 14):
        q, s, inp = f"{p}features.{i}.conv", strides.get(i, 1), x
        if q + ".6.weight" in sd:
            x = F.relu6(_bn(sd, q + ".1", _conv(sd, q + ".0", x)))
            x = F.relu6(_bn(sd, q + ".4", _conv(sd, q + ".3", x, s, groups=x.shape[1])))
            x = _bn(sd, q + ".7", _conv(sd, q + ".6", x))
        else:
            x = F.relu6(_bn(sd, q + ".1", _conv(sd, q + ".0", x, s, groups=x.shape[1])))
            x = _bn(sd, q + ".4", _conv(sd, q + ".3", x))
        if s == 1 and inp.shape == x.shape:
            x = x + inp
        if i in (3, 6, 13):
            feats.append(x)
    return torch.cat([F.interpolate(f, size=feats[0].shape[-2:], mode="bilinear", align_corners=False)
                      for f in feats], 1)


def released_forward(sd, family, x):
    """The released network's heatmap output: H3R (N, 2, K, H, W); HRNet-facial (N, K, H, W)."""
    if family == "h3r":
        f = released_mobilenet(sd, "backbone.", x) if "backbone.features.0.0.weight" in sd \
            else released_hrnet(sd, "backbone.", x, "nearest")
        h = "heatmap_head.head.layers."
        y = _conv(sd, h + "3", F.relu(_bn(sd, h + "1", _conv(sd, h + "0", f))))
        return y.view(y.shape[0], 2, -1, *y.shape[-2:])
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    f = released_hrnet(sd, "", x, "bilinear")
    return _conv(sd, "head.3", F.relu(_bn(sd, "head.1", _conv(sd, "head.0", f))))


def h3r_decode(planes, topk=9, stride=4.0):
    """BinaryHeatmap2Coordinate: top-k of plane 1, softmax, weighted (index % W, index // W), x stride."""
    heatmap = planes[:, 1]
    N, C, H, W = heatmap.shape
    score, index = heatmap.reshape(N, C, 1, -1).topk(topk, dim=-1)
    coord = torch.cat([index % W, index // W], dim=2)
    return stride * (coord * F.softmax(score, dim=-1)).sum(-1)


def hrnet_facial_decode(maps):
    """HRNet-facial decode_preds up to its crop transform (1-based argmax, quarter shift, + 0.5), in crop
    pixels with centres at integers: x = 4 (p - 1) - 0.5 (p - 1 is the corner-based map coordinate)."""
    N, C, H, W = maps.shape
    maxval, idx = maps.reshape(N, C, -1).max(2)
    idx = idx + 1
    preds = torch.stack([(idx - 1) % W + 1, torch.floor((idx - 1) / W) + 1], -1).float()
    preds = preds * (maxval > 0)[..., None].float()
    for n in range(N):
        for p in range(C):
            hm = maps[n][p]
            px, py = int(preds[n][p][0]), int(preds[n][p][1])
            if 1 < px < W and 1 < py < H:
                diff = torch.tensor([hm[py - 1][px] - hm[py - 1][px - 2], hm[py][px - 1] - hm[py - 2][px - 1]])
                preds[n][p] += diff.sign() * 0.25
    preds += 0.5
    return (S / W) * (preds - 1) - 0.5


def facial_valid(maps):
    """(N, K) where HRNet-facial's decoder and hihlib's quarter decoding read the same rule: a positive
    maximum (else HRNet-facial reads cell 0) inside the map on both axes (else it shifts on neither)."""
    N, C, H, W = maps.shape
    maxval, idx = maps.reshape(N, C, -1).max(2)
    ix, iy = idx % W, idx // W
    return (maxval > 0) & (ix > 0) & (ix < W - 1) & (iy > 0) & (iy < H - 1)


def released_flip(predict, x):
    """FacialLandmarkDetector.forward's flip test on crops x: (plain + flip_landmark(mirrored)) / 2."""
    landmark = predict(x)
    data = x.flip(dims=[-1])
    landmark_ = predict(data)
    landmark_[..., 0] = data.shape[-1] - 1 - landmark_[..., 0]
    landmark_ = landmark_[..., FLIP_ORDER, :]
    return (landmark + landmark_) / 2.0


# ---------------------------------------------------------------- released-format files
def _h3r_model(name, seed):
    return randomise(create(name, head="h3r", input_size=S), seed)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """name -> (released state dict, path, family of the reference forward)."""
    root = tmp_path_factory.mktemp("released")
    out = {}
    for name, arch, yaml_arch in (("h3r_hrnet", "hrnet_w18", "hrnet18"), ("h3r_mobilenet", "mobilenetv2", "mobilenetv2")):
        folder = root / name
        folder.mkdir()
        sd = h3r_state_dict(_h3r_model(arch, seed=len(out)))
        torch.save(sd, folder / "model.pth")
        if name == "h3r_mobilenet":  # with the config.yaml of a released folder (sizes of this test)
            config = {"INPUT": {"SIZE": [S, S], "BBOX": "P2"}, "BACKBONE": {"ARCH": yaml_arch},
                      "HEATMAP": {"IN_CHANNEL": 152, "PROJ_CHANNEL": 152, "OUT_CHANNEL": K, "TOPK": 9}}
            (folder / "config.yaml").write_text(yaml.safe_dump(config))
        out[name] = (sd, folder / "model.pth", "h3r")
    facial = randomise(create("hrnet_w18", head="gaussian", input_size=S, upsample="bilinear"), seed=5)
    facial.heatmap_head[3].bias.data += 3.0  # positive maxima, where HRNet-facial's decoder reads the maps
    for name, prefix in (("facial", ""), ("facial_300w_style", "module.")):
        sd = hrnet_facial_state_dict(facial, prefix)
        torch.save(sd, root / f"{name}.pth")
        out[name] = (sd, root / f"{name}.pth", "facial")
    return out


X = torch.randn(2, 3, S, S, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("name", ["h3r_hrnet", "h3r_mobilenet", "facial", "facial_300w_style"])
def test_converted_checkpoint_reproduces_the_released_network_and_decoder(files, name, tmp_path):
    sd, path, family = files[name]
    ckpt, found = convert_any(path, tmp_path / "c.pt", input_size=None if name == "h3r_mobilenet" else S)
    assert found == ("H3R" if family == "h3r" else "HRNet-facial")
    model, codec, cfg = load_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=False)
    assert saved["mirror"] == FLIP_ORDER and saved["released"]["family"] == found
    with torch.no_grad():
        ref = released_forward(sd, family, X)
        out = model(X)
    if family == "h3r":
        assert torch.equal(out["planes"], ref) and torch.equal(out["heatmap"], ref[:, 1])
        assert codec.frame == "released_h3r" and codec.default_method == "topk"
        want = h3r_decode(ref)
        assert cfg["data"]["box"] == ("dataset" if name == "h3r_mobilenet" else "landmarks")  # P2 / P1 (default)
    else:
        assert torch.equal(out["heatmap"], ref)
        assert codec.default_method == "quarter"
        want = hrnet_facial_decode(ref)
        valid = facial_valid(ref)
        assert valid.sum() > 100
        got = codec.decode(out)
        assert torch.equal(got[valid], want[valid])
        with torch.no_grad():
            flipped = predict_batch(model, codec, X, ["quarter"], flip=True)["quarter"]
            both = valid & facial_valid(released_forward(sd, family, X.flip(-1)))[:, FLIP_ORDER]
            expected = released_flip(lambda x: hrnet_facial_decode(released_forward(sd, family, x)), X)
        assert both.sum() > 50
        assert torch.equal(flipped[both], expected[both])
        return
    # the released coordinates, to the bit (x = 4 u in the released frame)
    got = codec.decode(out)
    assert torch.equal(got, want)
    # ... and with the flip test: predict_batch against the released forward's arithmetic
    with torch.no_grad():
        flipped = predict_batch(model, codec, X, [codec.default_method], flip=True)[codec.default_method]
        decoder = h3r_decode if family == "h3r" else hrnet_facial_decode
        expected = released_flip(lambda x: decoder(released_forward(sd, family, x)), X)
    assert torch.equal(flipped, expected)
    assert (flipped - got).abs().max() > 1e-3  # the flip test changes the prediction


def test_unknown_files_are_one_line_errors_naming_the_families(files, tmp_path, capsys):
    sd = {"encoder.conv.weight": torch.zeros(3), "decoder.weight": torch.zeros(2)}
    torch.save(sd, tmp_path / "foreign.pth")
    with pytest.raises(ReleasedCheckpointError, match=r"tried HIH: key 'encoder.conv.weight' is not one of its keys; "
                                                      r"H3R: key 'encoder.conv.weight'.*; HRNet-facial: key 'encoder"):
        convert_any(tmp_path / "foreign.pth", tmp_path / "x.pt")
    assert main(["convert", "--released", str(tmp_path / "foreign.pth"), "--out", str(tmp_path / "y.pt")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "HRNet-facial" in err
    # a released H3R file with a wrong shape: that key, in one line
    bad = dict(files["h3r_mobilenet"][0])
    bad["heatmap_head.head.layers.0.weight"] = torch.zeros(152, 150, 1, 1)
    (tmp_path / "b").mkdir()
    torch.save(bad, tmp_path / "b" / "model.pth")
    with pytest.raises(ReleasedCheckpointError, match=r"'heatmap_head.head.layers.0.weight' has shape \(152, 150, 1, 1\), "
                                                      r"expected \(152, 152, 1, 1\)"):
        convert_any(tmp_path / "b" / "model.pth", tmp_path / "z.pt", input_size=S)
    # config.yaml that contradicts the weights
    (tmp_path / "b" / "config.yaml").write_text("BACKBONE: {ARCH: hrnet18}\nINPUT: {SIZE: [64, 64]}\n")
    torch.save(files["h3r_mobilenet"][0], tmp_path / "b" / "model.pth")
    with pytest.raises(ReleasedCheckpointError, match=r"config.yaml says BACKBONE.ARCH 'hrnet_w18' but model.pth "
                                                      r"holds 'mobilenetv2'"):
        convert_any(tmp_path / "b" / "model.pth", tmp_path / "z.pt")
    assert not (tmp_path / "z.pt").exists()


def test_cli_convert_then_predict_with_flip(files, tmp_path, capsys):
    """hih convert on an H3R folder, then hih predict --flip on a photo with --box: the landmarks are the
    flip-test prediction of the converted model mapped back to the photo (here an independent check
    of the last step: the plain and the flip-test runs differ, and both lie in the box's crop)."""
    import cv2
    import json

    import numpy as np

    _, path, _ = files["h3r_mobilenet"]
    ckpt = tmp_path / "h3r.pt"
    assert main(["convert", "--released", str(path), "--out", str(ckpt)]) == 0
    assert "H3R weights" in capsys.readouterr().out
    image = (np.random.default_rng(0).random((120, 100, 3)) * 255).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "face.png"), image)
    runs = {}
    for flag in ([], ["--flip"]):
        out = tmp_path / ("flip" if flag else "plain")
        assert main(["predict", str(tmp_path / "face.png"), "--checkpoint", str(ckpt), "--box", "20", "30", "80", "90",
                     "--out", str(out), "--device", "cpu", *flag]) == 0
        report = json.loads((out / "face_landmarks.json").read_text())
        runs[bool(flag)] = np.array(report["faces"][0]["landmarks"])
        assert report.get("flip", False) == bool(flag)
    assert runs[True].shape == (K, 2) and np.abs(runs[True] - runs[False]).max() > 1e-3
    # the crop of the box: side 1.25 x 60 = 75 px centred at (50, 60)
    assert (runs[True] >= [50 - 38, 60 - 38]).all() and (runs[True] <= [50 + 38, 60 + 38]).all()


def test_flip_test_of_an_exactly_mirror_equivariant_model_returns_its_landmarks():
    """Independent of the released code: a "model" that outputs the exact H3R maps of landmarks L for the
    crops and of their mirror image (x -> S - 1 - x, points re-ordered) for the mirrored crops. The flip
    test must give L back (hihlib's frame: the mirror of pixel centres is x -> S - 1 - x)."""
    from hihlib.codecs import get_codec

    codec = get_codec("h3r", input_size=S, heatmap_size=S // 4)
    g = torch.Generator().manual_seed(3)
    L = 4 + torch.rand(2, K, 2, generator=g) * (S - 8)                  # (B, K, 2) away from the border
    M = L.clone()
    M[..., 0] = S - 1 - M[..., 0]
    M = M[:, FLIP_ORDER]
    images = torch.randn(2, 3, S, S, generator=g)

    class Oracle(torch.nn.Module):
        def forward(self, x):
            coords = L if torch.equal(x, images) else M
            return codec.perfect_outputs(codec.expected(coords))

    plain = predict_batch(Oracle(), codec, images, ["topk"])["topk"]
    flipped = predict_batch(Oracle(), codec, images, ["topk"], flip=True)["topk"]
    torch.testing.assert_close(plain, L, rtol=0, atol=1e-4)
    torch.testing.assert_close(flipped, L, rtol=0, atol=1e-4)
    # an oracle that is wrong by +1 px in x on the mirrored crops: the average moves by -0.5 px
    M[..., 0] += 1
    flipped = predict_batch(Oracle(), codec, images, ["topk"], flip=True)["topk"]
    torch.testing.assert_close(flipped - L, torch.tensor([-0.5, 0.0]).expand_as(L), rtol=0, atol=1e-4)


def test_h3r_codec_in_the_released_frame():
    from hihlib.codecs import get_codec

    ours, rel = get_codec("h3r", input_size=S, heatmap_size=16), get_codec("h3r", input_size=S, heatmap_size=16,
                                                                          frame="released_h3r")
    maps = {"heatmap": torch.randn(2, 5, 16, 16, generator=torch.Generator().manual_seed(0))}
    # the same maps read 1.5 px (= (s - 1) / 2) further right/down in hihlib's frame
    torch.testing.assert_close(ours.decode(maps) - rel.decode(maps), torch.full((2, 5, 2), 1.5), rtol=0, atol=1e-5)
    coords = 6 + torch.rand(2, 5, 2) * 50
    torch.testing.assert_close(rel.roundtrip(coords), coords, rtol=0, atol=1e-4)


def test_hih_eval_h3r_protocol_reproduces_the_released_evaluation(files, tmp_path, capsys):
    """``hih eval --protocol h3r --flip`` on a WFLW-format fixture against the released pipeline written out
    here (examples/test_wflw.py + FacialLandmarkDetector: P2 box, 1.25 x max(w+1, h+1) square, PIL crop and
    bilinear resize, ToTensor + Normalize, flip test, inverse crop, NME over |p60 - p72|)."""
    import json

    import numpy as np
    from PIL import Image

    from tests.formats import build_wflw_fixture

    root = tmp_path / "WFLW"
    faces = build_wflw_fixture(root)["test"]
    sd, path, _ = files["h3r_mobilenet"]                        # its config.yaml says P2, 64 px
    ckpt = tmp_path / "h3r.pt"
    assert main(["convert", "--released", str(path), "--out", str(ckpt)]) == 0
    assert main(["eval", "--checkpoint", str(ckpt), "--dataset", "wflw", "--root", str(root), "--out",
                 str(tmp_path / "ev"), "--protocol", "h3r", "--flip", "--device", "cpu"]) == 0
    report = json.loads((tmp_path / "ev" / "eval_wflw.json").read_text())
    assert report["protocol"] == "h3r" and report["flip"] and report["box"] == "dataset"
    assert "H3R's crop (P2" in capsys.readouterr().out

    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    nmes = []
    for face in faces:
        img = Image.open(root / "WFLW_images" / face["image"]).convert("RGB")
        bbox = torch.tensor(face["box"], dtype=torch.float32)[None]
        wh = (bbox[:, 2:] - bbox[:, :2] + 1).max(1)[0] * 1.25
        xy = (bbox[:, :2] + bbox[:, 2:] - wh.unsqueeze(1) + 1) / 2.0
        rect = torch.cat([xy, xy + wh.unsqueeze(1)], 1)
        crop = img.crop(rect[0].tolist()).resize((S, S), Image.BILINEAR)
        data = ((torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1).float() / 255 - mean) / std)[None]
        with torch.no_grad():
            landmark = released_flip(lambda x: h3r_decode(released_forward(sd, "h3r", x)), data)
        scale = torch.stack([S / (rect[:, 2] - rect[:, 0]), S / (rect[:, 3] - rect[:, 1])]).t()
        landmark = landmark / scale[:, None, :] + rect[:, None, :2]
        gt = torch.tensor(face["landmarks"], dtype=torch.float32)
        nmes.append(((landmark[0] - gt).norm(dim=1).mean() / (gt[60] - gt[72]).norm()).item())
    got = report["metrics"]["inter_ocular"]["full"]["topk"]["nme"]
    assert got == pytest.approx(100 * np.mean(nmes), rel=1e-4)
