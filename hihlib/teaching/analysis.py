"""Quantization-error analysis: the error that a target representation causes on its own.

The HIH paper (Fig. 4) encodes the ground truth of a dataset into 64x64 heatmaps of 256x256 crops and
decodes it again, with no network: argmax alone costs 1.29 NME on WFLW, 1.11 on 300W and 0.86 on
COFW (inter-ocular, %). This module measures the same thing for any codec, decode method and
heatmap size, on real annotations (landmarks + boxes, cropped like the training data) or on
synthetic coordinates, and gives the closed forms.

Closed forms, for sub-cell offsets uniformly distributed over a cell (e = offset error, in cells):
* rounding to the nearest cell: e uniform on [-1/2, 1/2]^2, E||e|| = (sqrt(2) + asinh(1)) / 6 = 0.3826;
* flooring: e uniform on [0, 1]^2, E||e|| = (sqrt(2) + asinh(1)) / 3 = 0.7652;
* rounding to a grid of step 1/d (HIH's published decoding): 0.3826 / d.
"""

from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import Tensor

from ..codecs import accepted_options, get_codec
from ..metrics import nme

#: E||e|| for e uniform on the unit square centred at 0 (cells): the mean error of argmax rounding.
ROUNDING_ERROR = (math.sqrt(2) + math.asinh(1)) / 6
#: E||e|| for e uniform on [0, 1]^2 (cells): the mean error of flooring.
FLOORING_ERROR = 2 * ROUNDING_ERROR


def expected_rounding_error(step: float = 1.0) -> float:
    """Mean 2-D error of rounding uniform offsets to a grid of the given step (same unit as step)."""
    return ROUNDING_ERROR * step


def expected_flooring_error(step: float = 1.0) -> float:
    """Mean 2-D error of flooring uniform offsets to a grid of the given step."""
    return FLOORING_ERROR * step


def uniform_coords(n_faces: int, n_landmarks: int, input_size: int = 256, margin: float = 0.0,
                   generator: torch.Generator | None = None) -> Tensor:
    """Coordinates uniform over [margin, input_size - 1 - margin]^2, shape (n_faces, n_landmarks, 2), pixels."""
    span = input_size - 1 - 2 * margin
    return margin + span * torch.rand(n_faces, n_landmarks, 2, generator=generator, dtype=torch.float64)


def roundtrip_errors(coords: Tensor, codec, method: str | None = None) -> Tensor:
    """Per-landmark error (pixels) of decode(perfect_outputs(encode(coords))). coords (B, K, 2) -> (B, K)."""
    coords = torch.as_tensor(coords)
    out = codec.roundtrip(coords.float(), method)
    return (out.double() - coords.double()).norm(dim=-1)


def quantization_nme(coords, norm, codec="gaussian", method: str | None = None, *, batch: int = 256,
                     **codec_options) -> np.ndarray:
    """Per-face NME (fraction) caused by the representation alone.

    coords: (B, K, 2) landmarks in input-crop pixels (e.g. 256x256 crops); norm: a landmark index pair
    such as (60, 72) or per-face distances (B,) in the same frame; codec: a codec object or a name
    (then built with ``codec_options``, e.g. heatmap_size=64). Faces are processed ``batch`` at a time.
    """
    if isinstance(codec, str):
        codec = get_codec(codec, **codec_options)
    coords = torch.as_tensor(np.asarray(coords) if not isinstance(coords, Tensor) else coords).double()
    preds = torch.cat([codec.roundtrip(c.float(), method).double() for c in coords.split(batch)])
    if isinstance(norm, tuple):
        return nme(preds, coords, norm)
    return nme(preds, coords, torch.as_tensor(np.asarray(norm)))


def crop_coords(landmarks, boxes, input_size: int = 256, scale: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """Landmarks of a dataset mapped into square crops of their boxes, as the training data is.

    landmarks (B, K, 2) original-image pixels; boxes (B, 4) x0, y0, x1, y1. The crop is the square of
    side scale * max(w, h) centred on the box, resized to input_size (``hihlib.data.transforms.crop_matrix``).
    Returns (coords (B, K, 2) crop pixels, zoom (B,) crop pixels per image pixel).
    """
    from ..data.transforms import apply_affine, crop_matrix

    m = crop_matrix(np.asarray(boxes, dtype=np.float64), input_size, scale=scale)  # (B, 2, 3)
    coords = apply_affine(np.asarray(landmarks, dtype=np.float64), m)
    return coords, np.sqrt(np.abs(np.linalg.det(m[:, :, :2])))


def error_vs_resolution(coords, norm, decoders: Iterable[tuple[str, str]], sizes: Iterable[int],
                        input_size: int = 256, **codec_options) -> dict[tuple[str, str], np.ndarray]:
    """Mean quantization NME (%) for each (codec, method) at each heatmap size.

    Returns {(codec, method): array of len(sizes)}. codec_options go to every codec that takes them (e.g. sigma).
    """
    sizes = list(sizes)
    table = {}
    for name, method in decoders:
        row = []
        opts = accepted_options(name, codec_options)
        for s in sizes:
            codec = get_codec(name, input_size=input_size, heatmap_size=s, **opts)
            row.append(100 * quantization_nme(coords, norm, codec, method).mean())
        table[(name, method)] = np.array(row)
    return table


#: The decoders compared throughout hihlib: (codec, decode method).
ALL_DECODERS = [("gaussian", "argmax"), ("gaussian", "quarter"), ("gaussian", "dark"), ("gaussian", "integral"),
                ("h3r", "topk"), ("hih", "official"), ("hih", "expectation")]


# -- quantization error on a dataset's annotations ------------------------------------------------

def inside_crop(coords, input_size: int) -> np.ndarray:
    """(N,) bool: faces whose landmarks all lie inside the crop, coords (N, K, 2) crop pixels.

    The crop spans [-1/2, input_size - 1/2] (pixel centres at integer coordinates); a landmark
    outside it has no heatmap cell, so no heatmap representation can encode it.
    """
    c = np.asarray(coords, dtype=np.float64)
    return ((c >= -0.5) & (c <= input_size - 0.5)).all(axis=(-1, -2))


def record_crops(records: Sequence, *, input_size: int = 256, scale: float = 1.25) -> tuple[np.ndarray, np.ndarray]:
    """The landmarks of ``records`` in the crops of their boxes (``crop_coords``), for the faces whose
    landmarks all lie inside their crop (``inside_crop``). Returns (coords (M, K, 2) crop pixels of those
    M faces, inside (N,) bool over all records)."""
    landmarks = np.stack([r.landmarks for r in records])
    boxes = np.stack([r.box for r in records])
    coords, _ = crop_coords(landmarks, boxes, input_size=input_size, scale=scale)
    inside = inside_crop(coords, input_size)
    return coords[inside], inside


def quantization_table(records: Sequence, norm: tuple[int, int], *,
                       decoders: Iterable[tuple[str, str]] | None = None, heatmap_size: int = 64,
                       input_size: int = 256, scale: float = 1.25) -> dict[str, float]:
    """Mean NME (%) caused by the representation alone on a dataset's annotations, per decoder.

    Each face's landmarks are mapped into the square crop of its box (side ``scale`` x box side,
    resized to ``input_size``), encoded on a ``heatmap_size`` grid and decoded with no network
    (``quantization_nme``). Faces with a landmark outside the crop are left out (see
    :func:`inside_crop`; count them with it). records: FaceRecords (only ``landmarks`` (K, 2) and
    ``box`` (4,) are read); norm: landmark index pair.
    Returns {"codec/method": NME %}, e.g. {"gaussian/argmax": 1.31, ...}.
    """
    decoders = list(decoders or ALL_DECODERS)
    coords, _ = record_crops(records, input_size=input_size, scale=scale)
    out = {}
    for name, method in decoders:
        nm = quantization_nme(coords, tuple(norm), name, method, input_size=input_size, heatmap_size=heatmap_size)
        out[f"{name}/{method}"] = 100 * float(nm.mean())
    return out


# -- modelled network outputs (the numbers behind the notebooks' explorers) ---------------------

def decoder_errors(coords: Tensor, decoders: Sequence[tuple[str, str]], sizes: Sequence[int], *,
                   input_size: int = 256, max_cells: int = 2**22, **codec_options) -> dict[str, np.ndarray]:
    """Round-trip error of each decoder at each heatmap size, per landmark.

    coords: (B, K, 2) input pixels; decoders: (codec name, method) pairs; sizes: heatmap sizes.
    codec_options (``sigma``, ``decimal_size``, ``decimal_sigma``, ``k``) go to the codecs that take them.
    Returns {"codec/method": (len(sizes), B*K) errors in input pixels}. Landmarks are processed in
    chunks of at most ``max_cells`` heatmap cells (16 MiB of float32 by default), so that 256x256 maps
    stay small while 64x64 ones go in one call.
    """
    coords = torch.as_tensor(coords, dtype=torch.float64)
    flat = coords.reshape(1, -1, 2)
    out = {}
    for name, method in decoders:
        opts = accepted_options(name, codec_options)
        rows = []
        for size in sizes:
            codec = get_codec(name, input_size=input_size, heatmap_size=int(size), **opts)
            chunk = max(1, max_cells // int(size) ** 2)
            rows.append(torch.cat([roundtrip_errors(c, codec, method).reshape(-1) for c in flat.split(chunk, dim=1)]))
        out[f"{name}/{method}"] = torch.stack(rows).numpy()
    return out


def published_soft_label(codec, coords: Tensor) -> Tensor:
    """The released HIH soft label: softmax over the d*d cells of the Gaussian *values* (peak 1).

    codec: a ``hih`` codec; coords (B, K, 2) input pixels -> (B, K, d, d) probabilities. Much flatter
    than the codec's normalised Gaussian: its peak holds only a few times 1/d^2 of the mass.
    """
    from ..codecs.gaussian import gaussian_1d
    from ..losses import official_soft_label

    _, f = codec.split(coords)
    d = codec.decimal_size
    g = gaussian_1d(f[..., 1], d, codec.decimal_sigma)[..., :, None] * gaussian_1d(f[..., 0], d, codec.decimal_sigma)[..., None, :]
    return official_soft_label(g)


def h3r_model_logits(codec, coords: Tensor, *, halo: float = 0.05, noise: float = 0.0, seed: int = 0) -> Tensor:
    """Logits of a modelled H3R network: log(expected target + halo * G) + noise * N(0, 1).

    The expected (bilinear) target is what training on randomized-rounding draws converges to; G is a
    Gaussian of 1 cell (peak 1) at the true position, standing for the probability a real network
    leaks onto the neighbourhood; ``noise`` (std of the logits) for its prediction error.
    codec: an ``h3r`` codec; coords (B, K, 2) input pixels -> (B, K, H, W) logits.
    """
    from ..codecs.gaussian import gaussian_maps

    coords = torch.as_tensor(coords, dtype=torch.float32)
    leak = gaussian_maps(codec.to_cells(coords), codec.heatmap_size, 1.0)
    logits = (codec.expected(coords)["heatmap"] + halo * leak + 1e-12).log()
    if noise > 0:
        logits = logits + noise * torch.randn(logits.shape, generator=torch.Generator().manual_seed(seed))
    return logits


def topk_errors(coords: Tensor, ks: Sequence[int], *, heatmap_size: int = 64, input_size: int = 256,
                halo: float = 0.05, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Mean ``topk`` decoding error (input pixels) of modelled H3R outputs (:func:`h3r_model_logits`), per k.

    coords (B, K, 2) input pixels -> (len(ks),) mean errors in pixels.
    """
    from ..codecs.h3r import topk_decode

    codec = get_codec("h3r", input_size=input_size, heatmap_size=heatmap_size)
    coords = torch.as_tensor(coords, dtype=torch.float32)
    logits = h3r_model_logits(codec, coords, halo=halo, noise=noise, seed=seed)
    return np.array([(codec.to_pixels(topk_decode(logits, int(k))) - coords).norm(dim=-1).mean().item()
                     for k in ks])


def integral_pull(maps: Tensor, radius: int = 3) -> dict[str, Tensor]:
    """Why soft-argmax (``integral``) fails on regressed heatmaps: its estimate is the centre of mass of
    the whole clipped map, and a trained map's small positive values far from the peak are spread over
    the whole map, so their centre of mass sits near the map's centre and pulls the estimate there.

    Splits each map's positive mass (``max(map, 0)``, as the integral decoder uses it) into the square
    window of half-width ``radius`` cells around its maximum and the rest, so that exactly
    ``integral = (1 - f) * window + f * outside`` with f = ``mass_outside``.

    maps (B, K, H, W) -> {"mass_outside": (B, K) fraction of the positive mass outside the window,
    "integral": (B, K, 2) the integral decoder's estimate, "window": (B, K, 2) the centre of mass of the
    window alone, "outside": (B, K, 2) the centre of mass of the rest (x = column, y = row; heatmap
    cells; a map with no mass outside the window gets its window estimate there)}.
    """
    from ..codecs.gaussian import argmax_decode

    p = maps.float().clamp_min(0)                                   # (B, K, H, W)
    h, w = p.shape[-2:]
    peak = argmax_decode(p)                                          # (B, K, 2) cells
    gx = torch.arange(w, device=p.device, dtype=p.dtype)
    gy = torch.arange(h, device=p.device, dtype=p.dtype)
    in_x = (gx - peak[..., 0:1]).abs() <= radius                     # (B, K, W)
    in_y = (gy - peak[..., 1:2]).abs() <= radius                     # (B, K, H)
    inside = in_y[..., :, None] & in_x[..., None, :]                 # (B, K, H, W)

    def centre(mass: Tensor) -> tuple[Tensor, Tensor]:               # -> (B, K, 2), (B, K)
        total = mass.sum((-2, -1))
        ux = (mass.sum(-2) * gx).sum(-1) / total.clamp_min(1e-12)
        uy = (mass.sum(-1) * gy).sum(-1) / total.clamp_min(1e-12)
        return torch.stack([ux, uy], -1), total

    window, m_in = centre(p * inside)
    outside, m_out = centre(p * ~inside)
    outside = torch.where((m_out > 0)[..., None], outside, window)
    integral, total = centre(p)
    return {"mass_outside": m_out / total.clamp_min(1e-12), "integral": integral, "window": window,
            "outside": outside}
