"""H3R's evaluation crops (baoshengyu/H3R, ``FacialLandmarkDetector.resized_crop``): ``H3RCropDataset``.

For a box (x1, y1, x2, y2) (P1: the tight box of the ground-truth landmarks, ``box="landmarks"``; P2: the
dataset's box, ``box="dataset"``) the released pipeline

1. takes the square of side ``side = scale x max(x2 - x1 + 1, y2 - y1 + 1)`` (scale 1.25) whose corner is
   ``(x1 + x2 - side + 1) / 2``, ``(y1 + y2 - side + 1) / 2`` (float32, as released);
2. cuts it with PIL's ``Image.crop`` (which rounds the four coordinates to integers; outside the image is
   black) and resizes it to S x S with PIL's bilinear filter (antialiased when shrinking), then ``ToTensor``
   and the ImageNet normalisation;
3. maps a predicted point back with ``x_img = x * side / S + corner`` (the float box, not the rounded one).

This differs from hihlib's own crop (``FaceDataset``: an affine warp of the square of side
``scale x max(w, h)`` centred on the box, pixel centres mapped exactly): the released rule crops a rounded
box and resizes it, so the crop is up to half a pixel off the float box, and its inverse treats the
decoded coordinate as a position in the resized crop's pixel grid. ``hih eval --protocol h3r`` uses this
dataset so that the released weights are evaluated as they were published; the item's ``matrix`` is
the affine whose inverse is step 3, so ``to_original`` gives the released image coordinates (in float64
where the released code computes in float32). The image is decoded by hihlib's reader (OpenCV), the released
code decodes it with PIL: two JPEG decoders may differ by a grey level on some pixels, nothing more.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .dataset import FaceDataset, load_record_image, normalize_image
from .records import FaceRecord
from .transforms import apply_affine


def h3r_rects(boxes: np.ndarray, scale: float = 1.25) -> np.ndarray:
    """(N, 4) boxes x1, y1, x2, y2 -> (N, 4) crop squares x0, y0, x0 + side, y0 + side, float32 as released."""
    b = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
    wh = (b[:, 2:] - b[:, :2] + 1).max(1)[0] * scale
    xy = (b[:, :2] + b[:, 2:] - wh.unsqueeze(1) + 1) / 2.0
    return torch.cat([xy, xy + wh.unsqueeze(1)], 1).numpy()


class H3RCropDataset(FaceDataset):
    """``FaceDataset`` with H3R's crops (module docstring); no augmentation. Items as ``FaceDataset``'s."""

    def __init__(self, records: Sequence[FaceRecord], scheme, *, input_size: int = 256, scale: float = 1.25,
                 box: str = "landmarks"):
        super().__init__(records, scheme, input_size=input_size, scale=scale, box=box, augment=None)
        boxes = np.stack([self.crop_box(r) for r in self.records]) if self.records else np.zeros((0, 4))
        self.rects = h3r_rects(boxes, self.scale)                      # (N, 4) float32
        side = (self.rects[:, 2] - self.rects[:, 0]).astype(np.float64)
        a = self.input_size / side
        x0, y0 = self.rects[:, 0].astype(np.float64), self.rects[:, 1].astype(np.float64)
        zero = np.zeros_like(a)
        # record pixels -> crop: x_crop = a (x - x0); its inverse is the released x = x_crop / a + x0
        self._crops = np.stack([np.stack([a, zero, -a * x0], -1), np.stack([zero, a, -a * y0], -1)], 1)

    @property
    def protocol(self) -> str:
        which = "P1, the ground-truth landmark box" if self.box == "landmarks" else "P2, the dataset box"
        return (f"H3R's crop ({which}; square of {self.scale:g} x max(w + 1, h + 1), PIL crop of the rounded box "
                f"resized to {self.input_size})")

    def __getitem__(self, index: int) -> dict:
        from PIL import Image

        index = int(index)
        record = self.records[index]
        image = Image.fromarray(load_record_image(record))
        crop = image.crop(self.rects[index].tolist()).resize((self.input_size, self.input_size), Image.BILINEAR)
        M = self.crop_matrix(index)
        occluded = record.occluded if record.occluded is not None else np.zeros(record.num_points, bool)
        return {"image": normalize_image(np.asarray(crop.convert("RGB"))),
                "landmarks": torch.from_numpy(apply_affine(record.landmarks, M).astype(np.float32)),
                "matrix": torch.from_numpy(M), "occluded": torch.from_numpy(np.ascontiguousarray(occluded)),
                "index": index, "flipped": False}
