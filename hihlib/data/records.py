"""One face in one image: the record every dataset loader produces and every consumer reads.

All datasets share one convention (``hihlib.codecs.base``): landmarks are (x, y) in pixels of the
*original* image, 0-based, with the centre of pixel (row i, column j) at (x=j, y=i). COFW and 300W
files are 1-based (MATLAB); their loaders subtract 1 so that every record reads the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import DataError

SCHEME_NAMES = ("wflw", "cofw", "300w")


@dataclass(kw_only=True, eq=False)
class FaceRecord:
    """One annotated face.

    Attributes
    ----------
    key : unique name of the sample, ``"<list file>:<line>"`` for line-based datasets (an image can
        hold several faces, so the image path is not a key).
    image_path : path of the image on disk, or None for in-memory / generated images.
    image : (H, W, 3) uint8 RGB image held in memory, or None.
    loader : callable returning the (H, W, 3) uint8 RGB image on demand (generated data), or None.
    landmarks : (K, 2) float64, original-image pixels, 0-based, pixel-centre convention. Points may
        lie outside the image (WFLW has some); they are kept as annotated.
    box : (4,) float64 face box ``x0, y0, x1, y1`` in the same pixels.
    attributes : names such as ``"pose"``, ``"occlusion"``; empty when the dataset has none.
    occluded : (K,) bool per-landmark occlusion flags, or None when unknown.
    scheme : landmark scheme name, ``"wflw"`` | ``"cofw"`` | ``"300w"``.
    from_original : (2, 3) float64 affine matrix from the original image's pixels to this record's
        pixels, or None when the record *is* in the original frame. Cached face crops
        (``hihlib.data.cache``) set it: their landmarks, box and image live in the cached crop, and
        ``invert_affine(from_original)`` maps them back to the source image.
    """

    key: str
    landmarks: np.ndarray
    box: np.ndarray
    scheme: str
    image_path: str | None = None
    image: np.ndarray | None = None
    loader: Callable[[], np.ndarray] | None = None
    attributes: frozenset[str] = field(default_factory=frozenset)
    occluded: np.ndarray | None = None
    from_original: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.landmarks = np.asarray(self.landmarks, dtype=np.float64)
        if self.landmarks.ndim != 2 or self.landmarks.shape[1] != 2:
            raise ValueError(f"{self.key}: landmarks must have shape (K, 2), got {self.landmarks.shape}")
        self.box = np.asarray(self.box, dtype=np.float64).reshape(-1)
        if self.box.shape != (4,):
            raise ValueError(f"{self.key}: box must hold 4 numbers x0, y0, x1, y1, got {self.box.shape}")
        self.attributes = frozenset(self.attributes)
        if self.occluded is not None:
            self.occluded = np.asarray(self.occluded, dtype=bool).reshape(-1)
            if self.occluded.shape != (len(self.landmarks),):
                raise ValueError(f"{self.key}: occluded must have shape ({len(self.landmarks)},), got {self.occluded.shape}")
        if self.scheme not in SCHEME_NAMES:
            raise ValueError(f"{self.key}: unknown scheme {self.scheme!r}; expected one of {SCHEME_NAMES}")
        if self.image_path is not None:
            self.image_path = str(self.image_path)
        if self.from_original is not None:
            self.from_original = np.asarray(self.from_original, dtype=np.float64)
            if self.from_original.shape != (2, 3):
                raise ValueError(f"{self.key}: from_original must be a (2, 3) affine matrix, got {self.from_original.shape}")

    @property
    def num_points(self) -> int:
        return len(self.landmarks)

    def load_image(self) -> np.ndarray:
        """The image as (H, W, 3) uint8 RGB; greyscale is expanded to 3 equal channels.

        Raises ``DataError`` naming the file when it cannot be decoded.
        """
        if self.image is not None:
            return as_rgb(self.image)
        if self.loader is not None:
            return as_rgb(self.loader())
        if self.image_path is None:
            raise DataError(self.key, None, "an image (image, loader or image_path)", "none")
        return read_image(self.image_path)


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W) or (H, W, 1|3|4) -> (H, W, 3) uint8 RGB (alpha dropped, grey repeated)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got {image.shape}")
    if image.shape[2] == 1:
        return np.repeat(image, 3, axis=2)
    if image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    return image


def read_image(path: str) -> np.ndarray:
    """Decode an image file to (H, W, 3) uint8 RGB; a ``DataError`` names the file if it cannot."""
    import cv2

    data = None
    try:
        # np.fromfile + imdecode (not imread) so that non-ASCII paths work on every platform.
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise DataError(path, None, "a readable image file", f"{type(e).__name__}: {e.strerror or e}") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise DataError(path, None, "an image that OpenCV can decode (jpg, png, ppm, ...)",
                        f"{data.size} undecodable bytes" if data.size else "an empty file (0 bytes)")
    if image.dtype == np.uint16:  # 16-bit PNG/TIFF: keep the most significant byte
        image = (image >> 8).astype(np.uint8)
    if image.ndim == 3 and image.shape[2] >= 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB if image.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    return as_rgb(image)


def landmark_box(landmarks: np.ndarray) -> np.ndarray:
    """Tight box (x0, y0, x1, y1) of landmarks (..., K, 2) -> (..., 4): the optimistic-protocol box."""
    pts = np.asarray(landmarks, dtype=np.float64)
    return np.concatenate([pts.min(axis=-2), pts.max(axis=-2)], axis=-1)
