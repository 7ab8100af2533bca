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
from typing import Iterable

import numpy as np
import torch
from torch import Tensor

from .codecs import accepted_options, get_codec
from .metrics import nme

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
    from .data.transforms import apply_affine, crop_matrix

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
