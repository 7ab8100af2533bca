"""The CUDA paths, each checked against the same computation on the CPU.

Skipped without a CUDA device (every test here needs one). ``benchmarks/gpu_check.sh`` runs this file
first on a GPU machine; on the project's CPU machines the whole module is skipped.
"""

import numpy as np
import pytest
import torch

from hihlib import models
from hihlib.codecs import get_codec
from hihlib.losses import make_loss
from hihlib.models.heads import codec_name

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

HEADS = ("gaussian", "h3r", "hih_ext", "hih_local")   # hih_ext: heatmap 16 -> 8 (hih is refused there)


def codec_of(head: str, **kw):
    return get_codec(codec_name(head), **kw)


def small_model(head: str, heatmap_size: int = 16):
    torch.manual_seed(0)
    return models.create("hg_tiny", num_landmarks=7, head=head, heatmap_size=heatmap_size, input_size=64,
                         width=16, depth=2)


@pytest.mark.parametrize("head", HEADS)
def test_forward_on_cuda_matches_cpu_in_fp32(head):
    model = small_model(head).eval()
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        cpu = model(x)
        gpu = model.cuda()(x.cuda())
    for k in cpu:
        assert gpu[k].device.type == "cuda"
        # cuDNN and the CPU sum in different orders (and TF32 may be on): agreement to 1e-3 relative
        scale = cpu[k].abs().max().item() + 1e-6
        assert (gpu[k].float().cpu() - cpu[k]).abs().max().item() <= 2e-3 * scale, k


@pytest.mark.parametrize("head", HEADS)
def test_training_step_bf16_channels_last_on_cuda_lowers_the_loss(head):
    """bf16 autocast + channels_last (the GPU recipe): 30 steps on one batch must lower the loss."""
    model = small_model(head).cuda().to(memory_format=torch.channels_last).train()
    codec = codec_of(head, input_size=64, heatmap_size=16)
    loss_fn = make_loss(codec_name(head))
    g = torch.Generator(device="cuda").manual_seed(0)
    coords = torch.rand(8, 7, 2, device="cuda", generator=g) * 50 + 7
    images = torch.randn(8, 3, 64, 64, device="cuda", generator=g).contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        targets = codec.encode(coords, generator=g) if head == "h3r" else codec.encode(coords)
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(images, landmarks=coords)
        loss, _ = loss_fn({k: v.float() for k, v in out.items()}, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0]


@pytest.mark.parametrize("name", ["gaussian", "h3r", "hih"])
def test_every_decoder_on_cuda_matches_cpu(name):
    codec = get_codec(name, input_size=64, heatmap_size=16)
    g = torch.Generator().manual_seed(3)
    # the whole crop, edges included
    coords = torch.rand(4, 50, 2, generator=g) * 64 - 0.5
    enc = codec.expected(coords) if name == "h3r" else codec.encode(coords)
    outs = codec.perfect_outputs(enc)
    for method in codec.methods:
        cpu = codec.decode(outs, method)
        gpu = codec.decode({k: v.cuda() for k, v in outs.items()}, method)
        assert gpu.device.type == "cuda"
        assert torch.allclose(gpu.cpu(), cpu, atol=1e-3), method


def test_trainer_and_evaluation_run_on_cuda(tmp_path):
    """A few steps of the library's Trainer on CUDA with bf16 and channels_last, then evaluation."""
    from hihlib.studies.demo import PROFILES, make_data, train_one, predict_all

    import dataclasses

    p = dataclasses.replace(PROFILES["quick"], num_train=32, num_test=16, steps=6)
    train_set, test_set, _ = make_data(p, seed=0)
    model, codec, _ = train_one(p, "hih_local", p.heatmap_sizes[-1], train_set, tmp_path, "cuda")
    assert next(model.parameters()).device.type == "cuda"
    preds = predict_all(model, codec, test_set, torch.device("cuda"))
    for m, v in preds.items():
        assert v.shape == (16, 98, 2) and np.isfinite(v).all(), m


@pytest.mark.parametrize("head", HEADS)
def test_landmark_graph_and_its_onnx_export_from_cuda_match_the_cpu(head):
    """hihlib.inference.export's graph (normalisation, network, decoder) on CUDA, and a graph exported from a CUDA
    model, give the CPU's landmarks (TF32 off: full fp32 convolutions; a landmark whose argmax is a
    near-tie may move a cell, so the 95th percentile is checked)."""
    from hihlib.inference.export import LandmarkGraph

    tf32 = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    try:
        model = small_model(head).eval()
        codec = codec_of(head, input_size=64, heatmap_size=16)
        x = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 255
        cpu_pts, cpu_scores = LandmarkGraph(model, codec)(x)
        gpu_pts, gpu_scores = LandmarkGraph(model.cuda(), codec)(x.cuda())
        err = (gpu_pts.cpu() - cpu_pts).abs().amax(-1)
        assert float(err.quantile(0.95)) < 1e-3, err.max()
        np.testing.assert_allclose(gpu_scores.cpu().numpy(), cpu_scores.numpy(), atol=1e-4)
        if pytest.importorskip("onnxruntime") and head == "hih":
            pytest.importorskip("onnxscript")
            import onnxruntime as ort

            from hihlib.inference.export import export_onnx

            session = ort.InferenceSession(export_onnx(model, codec).SerializeToString(), providers=["CPUExecutionProvider"])
            got = session.run(None, {"images": x.numpy()})[0]
            assert float(np.quantile(np.abs(got - cpu_pts.numpy()).max(-1), 0.95)) < 1e-3
    finally:
        torch.backends.cudnn.allow_tf32 = tf32


@pytest.mark.parametrize("kind", ["gauss", "peaked", "log_gauss", "mixed", "edges", "ties", "nan"])
def test_decoders_on_cuda_give_the_cpu_coordinates(kind):
    """Every decoder of every codec on CUDA against the CPU on the pinning test's maps (64 x 64, 9 x 11 maps):
    argmax cells (the GPU's one flat argmax) bit for bit, NaN where NaN; H3R top-k, which takes one flat
    ``torch.topk`` on the GPU: the same cells and values bit for bit on maps whose 10 best values are distinct, its
    coordinates within 1e-4 cells there; everything else within 1e-4 cells (the GPU's own exp and sums: on the H200
    top-k's coordinates missed a 1e-5 tolerance, every other decoder met 1e-4)."""
    from hihlib.codecs.gaussian import topk_cells
    from tests.test_decoder_pinning import _maps

    g = torch.Generator().manual_seed(hash(("cuda", kind)) % 2**31)
    maps = _maps(kind, 9, 11, 64, g)
    decimal = _maps("peaked" if kind == "edges" else kind, 9, 11, 8, g)
    best = maps.flatten(-2).topk(10, dim=-1).values
    distinct = (best[..., :-1] > best[..., 1:]).all(-1)  # (9, 11)
    clean = distinct[..., None].expand(9, 11, 2)
    for a, b in zip(topk_cells(maps.cuda(), 9), topk_cells(maps, 9)):
        torch.testing.assert_close(a.cpu()[distinct], b[distinct], rtol=0, atol=0, equal_nan=True)
    for name in ("gaussian", "h3r", "hih"):
        codec = get_codec(name)
        outputs = {"heatmap": maps} if name != "hih" else {"heatmap": maps, "decimal": decimal}
        for method in codec.methods:
            cpu = codec.decode_cells(outputs if name == "hih" else maps, method)
            gpu_in = {k: v.cuda() for k, v in outputs.items()}
            gpu = codec.decode_cells(gpu_in if name == "hih" else gpu_in["heatmap"], method).cpu()
            where = f"{name}/{method} on {kind}"
            if method == "argmax":
                torch.testing.assert_close(gpu, cpu, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"{where}: {m}")
            elif method == "topk":
                torch.testing.assert_close(gpu[clean], cpu[clean], rtol=0, atol=1e-4, equal_nan=True,
                                           msg=lambda m: f"{where}: {m}")
            elif kind not in ("ties", "nan"):  # ties: argmax order decides the cell either way; NaN: NaN
                torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-4, equal_nan=True, msg=lambda m: f"{where}: {m}")
