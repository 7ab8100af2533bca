"""``FaceDataset``: face records -> network-ready crops with landmarks in crop pixels.

The crop (``hihlib.data.transforms.crop_matrix``) is the square of side ``scale * max(w, h)``
centred on the face box, resized to ``input_size``. The default ``scale=1.25`` is the crop of
H3R/HRNet-style WFLW pipelines. Which box:

* ``box="dataset"``: the box shipped with the dataset (WFLW's and COFW's boxes). This is the
  protocol to compare against published numbers.
* ``box="landmarks"``: the tight box of the ground-truth landmarks. This is the **optimistic
  protocol**: the crop already knows where the face is (H3R reports 3.81 instead of 3.95 NME on
  WFLW with it); label results obtained with it. 300W ships no boxes, so its records' dataset
  box is already the landmark box.

Augmentation (``hihlib.data.transforms.Augment``) is composed with the crop into one affine matrix
per sample, so the image is interpolated once and the landmarks follow the same matrix. Random
draws depend only on ``(seed, epoch, index)``: a sample is the same whatever the worker or order,
and ``set_epoch`` gives a fresh draw each epoch.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .records import FaceRecord, landmark_box
from .schemes import LandmarkScheme, get_scheme
from .transforms import apply_affine, crop_matrix, invert_affine, mirror_landmarks, warp_image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BOXES = ("dataset", "landmarks")
# (v / 255 - mean) / std == v * _SCALE + _SHIFT, per channel
_SCALE = [1.0 / (255.0 * s) for s in IMAGENET_STD]
_SHIFT = [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]


def normalize_image(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB -> (3, H, W) float32, ImageNet mean/std normalised."""
    import cv2

    # Planar, in place, one channel at a time: 3-4x faster than a permuted torch copy on one core,
    # which matters because data loading must keep up with the GPU.
    h, w = image.shape[:2]
    out = np.empty((3, h, w), np.float32)
    for c, channel in enumerate(cv2.split(np.ascontiguousarray(image))):
        out[c] = channel
        out[c] *= _SCALE[c]
        out[c] += _SHIFT[c]
    return torch.from_numpy(out)


def normalize_batch(images: torch.Tensor) -> torch.Tensor:
    """(B, H, W, 3) uint8 RGB crops (``FaceDataset(normalize=False)``) -> (B, 3, H, W) float32, ImageNet
    mean/std normalised on their device: the same numbers as ``normalize_image``, one batched pass.
    The result keeps the input's channel-last memory layout (``torch.channels_last``)."""
    scale = torch.tensor(_SCALE, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    shift = torch.tensor(_SHIFT, dtype=torch.float32, device=images.device).view(1, 3, 1, 1)
    return images.permute(0, 3, 1, 2).float().mul_(scale).add_(shift)


def denormalize_image(image: torch.Tensor) -> np.ndarray:
    """Inverse of ``normalize_image``: (3, H, W) or (B, 3, H, W) float -> (..., H, W, 3) uint8 RGB."""
    mean = torch.tensor(IMAGENET_MEAN, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=image.device).view(3, 1, 1)
    x = (image.detach().float() * std + mean).clamp(0, 1).mul(255).round().to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()


def to_original(points, matrix):
    """Map crop pixels back through an item's ``matrix`` (its inverse), vectorised.

    points (..., K, 2) crop pixels; matrix (..., 2, 3) record frame -> crop. Returns (..., K, 2) in
    the record's frame (the original image for every loader; see ``FaceRecord.from_original`` for
    cached crops). Accepts numpy arrays or torch tensors (computed in float64 on their device).
    """
    if isinstance(points, torch.Tensor):
        m = torch.as_tensor(matrix, device=points.device).to(torch.float64)
        A, t = m[..., :2], m[..., 2]
        return torch.linalg.solve(A, (points.to(torch.float64) - t[..., None, :]).mT).mT
    return apply_affine(points, invert_affine(matrix))


def load_record_image(record: FaceRecord) -> np.ndarray:
    """``record.load_image()``; a ``DataError`` names the image and the annotation (file:line) listing it."""
    try:
        return record.load_image()
    except DataError as e:
        raise DataError(e.path, e.line, f"{e.expected} (the image of {record.key})", e.found) from None


class FaceDataset(Dataset):
    """A torch Dataset of face crops.

    ``FaceDataset(records, scheme, input_size=256, scale=1.25, box="dataset", augment=None, seed=0,
    normalize=True)``

    Item ``i`` is a dict:

    * ``"image"``: (3, S, S) float32, ImageNet-normalised RGB crop (S = ``input_size``); with
      ``normalize=False`` the (S, S, 3) uint8 crop itself, for ``normalize_batch`` on the training
      device (a quarter of the bytes to move, and the loader workers' cheapest item);
    * ``"landmarks"``: (K, 2) float32 crop pixels (pixel-centre convention, ``hihlib.codecs.base``);
      after a random flip they are relabelled with the augmentation's mirror permutation (the scheme's);
    * ``"matrix"``: (2, 3) float64 affine from the record's pixels (the original image's) to crop
      pixels, augmentation included; ``to_original(pred, matrix)`` maps predictions back;
    * ``"occluded"``: (K,) bool (all False when the dataset has no flags), mirrored with the landmarks;
    * ``"index"``: int, the position in ``records``;
    * ``"flipped"``: bool, whether a random flip was applied (then crop point j is record point
      ``scheme.mirror[j]``).
    """

    def __init__(self, records: Sequence[FaceRecord], scheme: LandmarkScheme | str, *, input_size: int = 256,
                 scale: float = 1.25, box: str = "dataset", augment=None, seed: int = 0, normalize: bool = True):
        if box not in BOXES:
            raise ValueError(f"box must be one of {BOXES}, got {box!r}")
        self.records = list(records)
        self.scheme = get_scheme(scheme) if isinstance(scheme, str) else scheme
        bad = [r.key for r in self.records if r.num_points != self.scheme.num_points]
        if bad:
            raise ValueError(f"{len(bad)} record(s) do not have the {self.scheme.num_points} points of scheme "
                             f"{self.scheme.name!r}, e.g. {bad[0]}")
        self.input_size = int(input_size)
        self.scale = float(scale)
        self.box = box
        self.augment = augment
        self.seed = int(seed)
        self.normalize = bool(normalize)
        self.epoch = 0
        # every record's un-augmented crop matrix at once (one vectorised call, not one per item)
        boxes = np.stack([self.crop_box(r) for r in self.records]) if self.records else np.zeros((0, 4))
        self._crops = crop_matrix(boxes, self.input_size, self.scale) if len(boxes) else np.zeros((0, 2, 3))

    @property
    def protocol(self) -> str:
        """How the crops were built, to print beside every result obtained with them."""
        side = f"square of {self.scale:g} x the box side"
        if self.box == "landmarks":
            return f"ground-truth landmark box, {side} (optimistic protocol: not comparable to detector boxes)"
        if self.scheme.name == "300w":
            return f"300W landmark box (no boxes ship with 300W), {side}"
        return f"dataset box, {side}"

    def set_epoch(self, epoch: int) -> None:
        """Use the augmentation draws of ``epoch`` (call once per epoch, before iterating)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def crop_box(self, record: FaceRecord) -> np.ndarray:
        """The box (4,) the crop is built from, following ``box``."""
        return landmark_box(record.landmarks) if self.box == "landmarks" else record.box

    def crop_matrix(self, index: int) -> np.ndarray:
        """The un-augmented (2, 3) matrix record frame -> crop of record ``index``."""
        return self._crops[index].copy()

    def __getitem__(self, index: int) -> dict:
        index = int(index)
        record = self.records[index]
        image = load_record_image(record)
        M = self.crop_matrix(index)
        if self.augment is None:
            crop, landmarks, flipped = warp_image(image, M, self.input_size), apply_affine(record.landmarks, M), False
        else:  # draws that depend only on (seed, epoch, index)
            rng = np.random.default_rng((self.seed, self.epoch, index))
            crop, landmarks, M, flipped = self.augment(image, record.landmarks, rng, M, size=self.input_size)
        occluded = record.occluded if record.occluded is not None else np.zeros(record.num_points, bool)
        if flipped:
            occluded = mirror_landmarks(occluded, self.augment.mirror, axis=-1)
        return {
            "image": normalize_image(crop) if self.normalize else torch.from_numpy(crop),
            "landmarks": torch.from_numpy(landmarks.astype(np.float32)),
            "matrix": torch.from_numpy(M),
            "occluded": torch.from_numpy(np.ascontiguousarray(occluded)),
            "index": index,
            "flipped": flipped,
        }

    def __repr__(self) -> str:
        return (f"FaceDataset({len(self)} faces, scheme={self.scheme.name!r}, input_size={self.input_size}, "
                f"scale={self.scale}, box={self.box!r}, augment={'on' if self.augment else 'off'})")
