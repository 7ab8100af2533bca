"""Geometry and augmentation: square face crops, affine warps, flips and photometric noise.

Every geometric change is a 2x3 affine matrix ``M`` acting on (x, y) pixel coordinates in the
convention of ``hihlib.codecs.base`` (pixel centres at integer coordinates, an image of width W
spans x in [-0.5, W - 0.5]). That is also OpenCV's convention for ``warpAffine``, so an image
warped by ``warp_image(image, M, S)`` and its landmarks mapped by ``apply_affine(points, M)`` stay
aligned with no half-pixel correction. Crop and augmentation compose into one matrix per sample
(``compose_affine``), so the image is interpolated exactly once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

__all__ = [
    "crop_matrix", "warp_image", "apply_affine", "invert_affine", "compose_affine",
    "flip_matrix", "mirror_landmarks", "Augment",
]


# --------------------------------------------------------------------------------------------
# Geometry core
# --------------------------------------------------------------------------------------------

def crop_matrix(box, out_size: int, scale: float = 1.25) -> np.ndarray:
    """Affine matrix from original-image pixels to the pixels of a square crop.

    The crop is the square of side ``scale * max(w, h)`` centred on the box centre, resized to
    ``out_size`` x ``out_size``. Its extent [-0.5, out_size - 0.5] (pixel edges) maps onto
    [c - L/2, c + L/2] in the original image, so ``x_crop = (x - c + L/2) * out_size / L - 0.5``.

    box: (..., 4) x0, y0, x1, y1 in original pixels. Returns (..., 2, 3) float64.
    """
    box = np.asarray(box, dtype=np.float64)
    if box.shape[-1] != 4:
        raise ValueError(f"box must have shape (..., 4) as x0, y0, x1, y1, got {box.shape}")
    cx = 0.5 * (box[..., 0] + box[..., 2])
    cy = 0.5 * (box[..., 1] + box[..., 3])
    side = scale * np.maximum(box[..., 2] - box[..., 0], box[..., 3] - box[..., 1])
    if np.any(side <= 0):
        raise ValueError(f"box must have positive width or height, got {box.tolist()}")
    k = out_size / side
    M = np.zeros(box.shape[:-1] + (2, 3))
    M[..., 0, 0] = k
    M[..., 1, 1] = k
    M[..., 0, 2] = (side / 2 - cx) * k - 0.5
    M[..., 1, 2] = (side / 2 - cy) * k - 0.5
    return M


def _is_tensor(x) -> bool:
    return type(x).__module__.startswith("torch")


def apply_affine(points, M):
    """Map points through an affine matrix.

    points: (..., K, 2) (x, y) pixels; M: (2, 3) or (..., 2, 3) broadcasting over the leading
    dimensions. numpy in -> float64 numpy out; a torch tensor in (points or M, any device) -> a
    tensor in the points' floating dtype on their device.
    """
    if _is_tensor(points) or _is_tensor(M):
        import torch

        pts = torch.as_tensor(points)
        pts = pts if pts.is_floating_point() else pts.double()
        M = torch.as_tensor(M, device=pts.device, dtype=pts.dtype)
        return pts @ M[..., :2].transpose(-1, -2) + M[..., None, :, 2]
    points = np.asarray(points, dtype=np.float64)
    M = np.asarray(M, dtype=np.float64)
    return points @ np.swapaxes(M[..., :2], -1, -2) + M[..., None, :, 2]


def invert_affine(M):
    """Inverse of an affine matrix (..., 2, 3) -> (..., 2, 3): crop pixels back to the original.
    numpy or torch (same type, dtype and device out)."""
    if _is_tensor(M):
        import torch

        A = torch.linalg.inv(M[..., :2])
        return torch.cat([A, -(A @ M[..., :, 2:])], dim=-1)
    M = np.asarray(M, dtype=np.float64)
    A = np.linalg.inv(M[..., :2])
    t = -(A @ M[..., :, 2:])
    return np.concatenate([A, t], axis=-1)


def compose_affine(A, B):
    """The matrix of "apply B, then A": (..., 2, 3) x (..., 2, 3) -> (..., 2, 3); numpy or torch."""
    if _is_tensor(A) or _is_tensor(B):
        import torch

        ref = A if _is_tensor(A) else B
        A = torch.as_tensor(A, device=ref.device, dtype=ref.dtype)
        B = torch.as_tensor(B, device=ref.device, dtype=ref.dtype)
        return torch.cat([A[..., :2] @ B[..., :2], A[..., :2] @ B[..., :, 2:] + A[..., :, 2:]], dim=-1)
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    lin = A[..., :2] @ B[..., :2]
    t = A[..., :2] @ B[..., :, 2:] + A[..., :, 2:]
    return np.concatenate([lin, t], axis=-1)


def warp_image(image: np.ndarray, M, out_size: int | tuple[int, int], *,
               interpolation: int = cv2.INTER_LINEAR, border_value=0) -> np.ndarray:
    """Resample ``image`` (H, W[, C], uint8 or float32) so that output pixel p shows input pixel
    ``invert_affine(M)(p)``; one bilinear interpolation, constant border.

    out_size: S for a square output or (width, height). Returns (S, S[, C]) of the input dtype.
    """
    size = (int(out_size), int(out_size)) if np.isscalar(out_size) else (int(out_size[0]), int(out_size[1]))
    M = np.asarray(M, dtype=np.float64)
    if M.shape != (2, 3):
        raise ValueError(f"M must be a (2, 3) affine matrix, got shape {M.shape}")
    if np.isscalar(border_value):
        border_value = (float(border_value),) * 4
    return cv2.warpAffine(image, M, size, flags=interpolation, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=border_value)


def flip_matrix(width: float) -> np.ndarray:
    """Horizontal flip of an image of ``width`` pixels: x -> (width - 1) - x (pixel centres)."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def mirror_landmarks(values, mirror: Sequence[int], axis: int = -2) -> np.ndarray:
    """Relabel per-landmark values after a horizontal flip: entry i of the flipped face is entry
    ``mirror[i]`` of the original (the permutations are involutions, so the direction does not
    matter). values: (..., K, 2) points already mapped through the flip (``axis=-2``), or (..., K)
    per-landmark flags such as occlusion (``axis=-1``); returns the same shape."""
    return np.take(np.asarray(values), np.asarray(mirror), axis=axis)


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------

_GREYS = np.arange(256, dtype=np.float32)[:, None]   # (256, 1): the input values of a lookup table


@dataclass
class Augment:
    """Random augmentation of a square crop of side ``size``.

    Geometry (``sample_matrix``), composed into one matrix about the crop centre, applied as
    "flip, then rotate and scale, then translate":

    * ``rotation``: angle uniform in [-rotation, rotation] degrees.
    * ``scale``: zoom factor uniform in (lo, hi) (1.1 makes the face 10% larger).
    * ``translation``: shift uniform in [-t, t] x crop side per axis; the default 30/256 is the
      official HIH recipe's +-30 px at 256.
    * ``flip``: probability of a horizontal flip; the caller relabels landmarks with ``mirror``
      (the scheme's mirror permutation, or the scheme / its name: ``mirror="wflw"``) when
      ``flipped`` is True.

    Photometry (``photometric``), on the warped uint8 image:

    * ``blur``: probability of a Gaussian blur with sigma uniform in ``blur_sigma`` pixels.
    * ``occlusion``: probability of a random box (side ``occlusion_size`` x crop side) filled with a
      random colour.
    * ``color``: strength of colour jitter (brightness, contrast and per-channel gain each drawn
      in [1 - color, 1 + color]); 0 disables it.
    """

    rotation: float = 30.0
    scale: tuple[float, float] = (0.9, 1.1)
    translation: float = 30.0 / 256.0
    flip: float = 0.5
    blur: float = 0.2
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    occlusion: float = 0.3
    occlusion_size: tuple[float, float] = (0.1, 0.4)
    color: float = 0.2
    mirror: Sequence[int] | None = None
    size: int = 256

    def __post_init__(self):
        if isinstance(self.mirror, str) or hasattr(self.mirror, "mirror"):   # a scheme or its name
            from .schemes import get_scheme

            self.mirror = (get_scheme(self.mirror) if isinstance(self.mirror, str) else self.mirror).mirror
        if self.flip > 0 and self.mirror is None:
            raise ValueError("flip > 0 needs the scheme's mirror permutation (Augment(mirror=scheme.mirror) or mirror='wflw')")
        if self.mirror is not None:
            self.mirror = tuple(int(i) for i in self.mirror)

    # -- geometry ----------------------------------------------------------------------------
    def sample_matrix(self, rng: np.random.Generator, size: int | None = None) -> tuple[np.ndarray, bool]:
        """Draw one geometric augmentation: (M_aug (2, 3) crop pixels -> crop pixels, flipped)."""
        size = self.size if size is None else size
        c = (size - 1) / 2.0  # the crop centre in pixel-centre coordinates
        angle = math.radians(rng.uniform(-self.rotation, self.rotation)) if self.rotation else 0.0
        zoom = rng.uniform(*self.scale) if self.scale else 1.0
        tx, ty = (rng.uniform(-self.translation, self.translation, 2) * size) if self.translation else (0.0, 0.0)
        flipped = bool(self.flip) and rng.random() < self.flip
        cos, sin = zoom * math.cos(angle), zoom * math.sin(angle)
        # rotation + zoom about the centre, then translation
        M = np.array([[cos, -sin, c - cos * c + sin * c + tx],
                      [sin, cos, c - sin * c - cos * c + ty]])
        if flipped:
            M = compose_affine(M, flip_matrix(size))
        return M, flipped

    # -- photometry --------------------------------------------------------------------------
    def photometric(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Colour jitter, blur and an occluding box on an (H, W, 3) uint8 image; returns a new
        uint8 image (the input is not modified). Geometry is untouched: landmarks stay valid."""
        out = image
        if self.color:
            c = self.color
            gain = rng.uniform(1 - c, 1 + c) * rng.uniform(1 - c, 1 + c, 3)  # brightness x channel gain
            contrast = rng.uniform(1 - c, 1 + c)
            # contrast pivots on the mean grey; a 1/16 sample is enough (its exact integer sum: the
            # same number as numpy's mean, without a float64 copy of the sample)
            sample = out[::4, ::4]
            mean = int(sample.sum(dtype=np.int64)) / sample.size
            # one lookup table per channel: v -> contrast * (gain * v - mean) + mean
            lut = np.clip(contrast * (_GREYS * gain[None, :] - mean) + mean + 0.5, 0, 255).astype(np.uint8)
            out = cv2.LUT(out, lut.reshape(256, 1, 3))
        if self.blur and rng.random() < self.blur:
            sigma = rng.uniform(*self.blur_sigma)
            out = cv2.GaussianBlur(out, (0, 0), sigma)
        if self.occlusion and rng.random() < self.occlusion:
            h, w = out.shape[:2]
            bw, bh = (rng.uniform(*self.occlusion_size, 2) * (w, h)).astype(int)
            x0 = int(rng.integers(0, max(w - bw, 1)))
            y0 = int(rng.integers(0, max(h - bh, 1)))
            if out is image:
                out = image.copy()
            out[y0:y0 + bh, x0:x0 + bw] = rng.integers(0, 256, 3, dtype=np.uint8)
        return out if out is not image else image.copy()

    # -- everything at once --------------------------------------------------------------------
    def __call__(self, image: np.ndarray, landmarks, rng: np.random.Generator, M_crop=None, *,
                 size: int | None = None):
        """Crop (optional) + augment one sample with a single interpolation: the one place where a
        training sample's geometry, photometry and flip relabelling happen (``FaceDataset`` calls it).

        image: (H, W, 3) uint8; landmarks (K, 2) original pixels; M_crop: (2, 3) original -> crop
        (identity when the image already is the crop); size: crop side (default ``self.size``).
        Returns (image (size, size, 3) uint8, landmarks (K, 2) crop pixels relabelled after a flip,
        M (2, 3) original -> crop, flipped).
        """
        size = self.size if size is None else size
        M_aug, flipped = self.sample_matrix(rng, size)
        M = M_aug if M_crop is None else compose_affine(M_aug, M_crop)
        out = self.photometric(warp_image(image, M, size), rng)
        points = apply_affine(landmarks, M)
        if flipped:
            points = mirror_landmarks(points, self.mirror)
        return out, points, M, flipped
