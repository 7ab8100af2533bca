"""Every decoder gives exactly the coordinates it gave before the speed work of issue 16: the library's decoders
against a frozen copy of the old ones (tests/reference_decoders.py), bit for bit (NaN where NaN), on the edge
sweeps of tests/test_codec_edges.py, on noisy, peaked, flat, tied, NaN and random maps, at several map sizes,
options and dtypes, and on real network logits (benchmarks/data/h3r_logits.pt); with the compiled top-k kernel and
without it."""

from pathlib import Path

import pytest
import torch

from hihlib.codecs import get_codec
from tests.reference_decoders import reference_decode, reference_decode_cells
from tests.test_codec_edges import COORDS

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "benchmarks" / "data" / "h3r_logits.pt"


@pytest.fixture(autouse=True, params=["compiled", "torch"])
def topk_path(request, monkeypatch):
    """Every test here runs twice: with the compiled top-k kernel (hihlib.codecs._compiled, numba) and with the torch
    paths alone (where numba is not importable, or switched off)."""
    from hihlib.codecs import _compiled

    if request.param == "compiled":
        if _compiled.topk_kernel() is None:
            pytest.skip("numba is not importable here")
    else:
        monkeypatch.setattr(_compiled, "ENABLED", False)
    return request.param


def same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def check(codec, outputs, methods=None):
    for m in methods or codec.methods:
        try:
            ref = reference_decode_cells(codec, outputs, m)
        except RuntimeError:  # e.g. top-k with k above the map's cell count: still an error
            with pytest.raises(RuntimeError):
                codec.decode(outputs, m)
            continue
        same(codec.decode_cells(outputs if codec.name == "hih" else outputs["heatmap"], m), ref)
        same(codec.decode(outputs, m), reference_decode(codec, outputs, m))


CODECS = [("gaussian", {}), ("gaussian", {"sigma": 1.0}), ("gaussian", {"sigma": 2.5}), ("h3r", {}),
          ("h3r", {"k": 1}), ("h3r", {"k": 4}), ("h3r", {"k": 25}), ("hih", {}), ("hih", {"frame": "released_hih"}),
          ("hih", {"decimal_size": 4}), ("hih", {"decimal_size": 2})]


@pytest.mark.parametrize("name,options", CODECS)
def test_perfect_outputs_on_the_edge_sweep(name, options):
    codec = get_codec(name, **options)
    targets = codec.expected(COORDS.float()) if name == "h3r" else codec.encode(COORDS.float())
    check(codec, codec.perfect_outputs(targets))


def _maps(kind, b, k, h, g):
    c = (h - 1) * torch.rand(b, k, 2, generator=g)
    u = torch.arange(h, dtype=torch.float32)
    d2 = (u - c[..., 0:1])[..., None, :] ** 2 + (u - c[..., 1:2])[..., :, None] ** 2
    noise = torch.randn(b, k, h, h, generator=g)
    if kind == "gauss":  # regressed Gaussian + noise
        return torch.exp(-d2 / 4.5) + 0.05 * noise
    if kind == "peaked":  # logits with a quadratic fall-off
        return -0.5 * d2 + 0.01 * noise
    if kind == "log_gauss":  # the log of a noisy Gaussian map (floor of noise)
        return (torch.exp(-d2 / 4.5) + 0.01 * noise.abs()).log()
    if kind == "flat":  # log of a bilinear target clamped at 1e-4 + noise: four cells over a flat noisy floor
        return (1 - (u - c[..., 0:1]).abs()).clamp_min(0)[..., None, :].mul(
            (1 - (u - c[..., 1:2]).abs()).clamp_min(0)[..., :, None]).clamp_min(1e-4).log() + 0.01 * noise
    if kind == "noise":
        return noise
    if kind == "ties":  # small integers: many ties, at the maximum and at the k-th value
        return torch.randint(0, 4, (b, k, h, h), generator=g).float()
    if kind == "const":
        return torch.zeros(b, k, h, h)
    if kind == "nan":
        m = torch.exp(-d2 / 4.5) + 0.05 * noise
        m[0, 0, h // 2, h // 3] = float("nan")
        m[-1, -1] = float("nan")
        if k > 2:
            m[0, 1, 0, 0] = float("inf")
            m[0, 2, h - 1] = -float("inf")
        return m
    if kind == "mixed":
        return torch.where(torch.rand(b, k, 1, 1, generator=g) < 0.3, noise, -0.5 * d2 + 0.01 * noise)
    if kind == "edges":  # peaks within a cell or two of the border
        c = torch.rand(b, k, 2, generator=g) * 2 - 0.5
        c[: b // 2] = h - 1 - c[: b // 2]
        d2 = (u - c[..., 0:1])[..., None, :] ** 2 + (u - c[..., 1:2])[..., :, None] ** 2
        return torch.exp(-d2 / 4.5) + 0.01 * noise
    raise ValueError(kind)


KINDS = ["gauss", "peaked", "log_gauss", "flat", "noise", "ties", "const", "nan", "mixed", "edges"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("h", [64, 13, 5, 3, 2, 1])
def test_random_maps(kind, h):
    g = torch.Generator().manual_seed(hash((kind, h)) % 2**31)
    b, k = (9, 11) if h >= 13 else (3, 5)
    maps = _maps(kind, b, k, h, g)
    for name, options in CODECS:
        codec = get_codec(name, heatmap_size=h, **options)
        outputs = {"heatmap": maps}
        if name == "hih":
            d = codec.decimal_size
            outputs["decimal"] = _maps(kind if kind != "edges" else "peaked", b, k, d, g)
        check(codec, outputs)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_dtypes(dtype):
    g = torch.Generator().manual_seed(4)
    for name, options in CODECS:
        codec = get_codec(name, **options)
        outputs = {"heatmap": _maps("gauss", 4, 7, 64, g).to(dtype)}
        if name == "hih":
            outputs["decimal"] = _maps("peaked", 4, 7, codec.decimal_size, g).to(dtype)
        check(codec, outputs)


def test_a_batch_larger_than_the_probe_and_mostly_peaked():
    """Batches above topk_cells's probe size, with a few peakless maps among peaked ones (the subset path) and
    mostly peakless ones (the whole-batch fallback)."""
    g = torch.Generator().manual_seed(5)
    codec = get_codec("h3r")
    peaked, noise = _maps("peaked", 8, 40, 64, g), _maps("noise", 8, 40, 64, g)
    tied = peaked.round()  # peaked maps whose k best hold ties: the window's and the slow path's orders may differ
    for frac in (0.02, 0.3, 0.7):
        for p in (peaked, tied):
            maps = torch.where(torch.rand(8, 40, 1, 1, generator=g) < frac, noise, p)
            check(codec, {"heatmap": maps})
    for name in ("gaussian", "hih"):
        c = get_codec(name)
        outputs = {"heatmap": torch.where(torch.rand(8, 40, 1, 1, generator=g) < 0.3, noise, peaked.exp())}
        if name == "hih":
            outputs["decimal"] = _maps("peaked", 8, 40, 8, g)
        check(c, outputs)


def test_non_contiguous_inputs():
    g = torch.Generator().manual_seed(6)
    for name, options in CODECS[:4] + CODECS[7:8]:
        codec = get_codec(name, **options)
        maps = _maps("gauss", 6, 9, 64, g).transpose(0, 1)  # (9, 6, H, W), not contiguous
        outputs = {"heatmap": maps}
        if name == "hih":
            outputs["decimal"] = _maps("peaked", 6, 9, 8, g).transpose(0, 1)
        check(codec, outputs)
        check(codec, {k: v.transpose(-1, -2) for k, v in outputs.items()})


@pytest.mark.skipif(not FIXTURE.is_file(), reason="no saved network logits")
def test_real_network_logits():
    logits = torch.load(FIXTURE)["heatmap"].float()
    check(get_codec("h3r", input_size=128), {"heatmap": logits})
    check(get_codec("gaussian", input_size=128), {"heatmap": logits.softmax(-1)})


def test_empty_batch():
    for name, options in CODECS:
        codec = get_codec(name, **options)
        outputs = {"heatmap": torch.zeros(0, 5, 64, 64)}
        if name == "hih":
            outputs["decimal"] = torch.zeros(0, 5, codec.decimal_size, codec.decimal_size)
        check(codec, outputs)


def test_inputs_that_require_grad():
    """Network outputs still attached to their graph decode the same, and integral decoding stays differentiable."""
    g = torch.Generator().manual_seed(7)
    for name, options in CODECS[:4] + CODECS[7:8]:
        codec = get_codec(name, **options)
        outputs = {"heatmap": _maps("gauss", 3, 5, 64, g).requires_grad_()}
        if name == "hih":
            outputs["decimal"] = _maps("peaked", 3, 5, 8, g).requires_grad_()
        for m in codec.methods:
            same(codec.decode(outputs, m).detach(), reference_decode(codec, outputs, m).detach())
    maps = _maps("gauss", 2, 3, 64, g).requires_grad_()
    get_codec("gaussian").decode({"heatmap": maps}, "integral").sum().backward()
    assert maps.grad is not None and maps.grad.abs().sum() > 0


def test_dark_in_chunks(monkeypatch):
    """DARK reads the maps in chunks on the CPU: several chunks, a short last one, and chunks of one map decode the
    same as the reference."""
    import hihlib.codecs.gaussian as gaussian

    g = torch.Generator().manual_seed(8)
    codec = get_codec("gaussian")
    maps = torch.cat([_maps("gauss", 3, 7, 64, g), _maps("edges", 3, 7, 64, g), _maps("nan", 3, 7, 64, g)])
    for chunk_bytes in (5 * 64 * 64 * 4, 1):
        monkeypatch.setattr(gaussian, "DARK_CHUNK_BYTES", chunk_bytes)
        check(codec, {"heatmap": maps}, ["dark"])


@pytest.mark.parametrize("sigma", [0.3, 0.6, 1.2, 3.0])
def test_dark_for_every_length_of_its_smoothing_kernel(sigma):
    """DARK's smoothing sums its 2r + 1 taps in torch's order (four interleaved partial sums, ``_taps_sum``): kernels
    of 3 taps (no partial sums), 5, 9 and 19, on every kind of map, at sizes where the patch fits and where it does
    not."""
    g = torch.Generator().manual_seed(9)
    codec = get_codec("gaussian", sigma=sigma)
    for kind in KINDS:
        for h in (64, 13):
            check(codec, {"heatmap": _maps(kind, 3, 9, h, g)}, ["dark"])


@pytest.mark.parametrize("kind", KINDS)
def test_the_gpu_paths_on_the_cpu(kind):
    """Off the CPU, ``argmax_2d`` / ``max_2d`` take one flat argmax (``_max_2d_flat``) and ``topk_cells`` one flat
    ``torch.topk`` (``_topk_flat``), without the host round trips of the CPU paths. Run here on CPU tensors: the
    argmax path gives the CPU path's cell and value bit for bit on every kind (ties, NaN and +-inf included); top-k
    gives its cells and values in its order on every map whose k + 1 best values are distinct (where the top k is
    one set in one order), and on the others values that are the k largest."""
    from hihlib.codecs import gaussian as G

    g = torch.Generator().manual_seed(hash(("gpu", kind)) % 2**31)
    for h in (64, 13, 5):
        maps = _maps(kind, 9, 11, h, g).reshape(-1, h, h)
        cpu, flat = G._max_2d(maps), G._max_2d_flat(maps)
        for a, b in zip(cpu[:3], flat[:3]):
            same(a, b)
        k = min(9, h * h - 1)
        vals, ix, iy = G.topk_cells(maps, k)
        fv, fx, fy = G._topk_flat(maps, k)
        best = maps.reshape(maps.shape[0], -1).topk(k + 1, dim=-1).values
        clean = (best[:, :-1] > best[:, 1:]).all(-1)  # NaN maps are not clean either
        for a, b in ((vals, fv), (ix, fx), (iy, fy)):
            same(a[clean], b[clean])
        torch.testing.assert_close(fv, best[:, :k], rtol=0, atol=0, equal_nan=True)
        if kind in ("gauss", "peaked", "log_gauss", "mixed"):
            assert clean.float().mean() > 0.9  # the comparison covers most maps
