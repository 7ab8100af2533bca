"""300W (Sagonas et al., 2013): 68 landmarks in a folder tree of images with ``.pts`` files.

Layout (the iBUG downloads extracted into ROOT)::

    ROOT/afw/  ROOT/helen/{trainset,testset}/  ROOT/lfpw/{trainset,testset}/  ROOT/ibug/
    ROOT/300W/{01_Indoor,02_Outdoor}/          (the private test set)

Splits: ``train`` (afw + helen/trainset + lfpw/trainset, 3148), ``common`` (helen/testset +
lfpw/testset, 554), ``challenge`` (ibug, 135), ``full`` (common + challenge, 689) and ``private``
(300W indoor + outdoor, 600).

A ``.pts`` file reads ``version: 1``, ``n_points: 68``, ``{``, 68 lines ``x y``, ``}``. Its coordinates
are 1-based (MATLAB); the loader subtracts 1. 300W ships no face boxes beside the annotations,
so ``box`` is the tight box of the 68 landmarks, as HRNet and most 300W results build their crops
(the crop is then the optimistic, landmark-derived one for 300W whatever ``FaceDataset(box=...)``
says; report it so).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .records import FaceRecord, landmark_box
from .datasets import DATASETS
from .schemes import W300 as W300_SCHEME
from .source import FaceSource

SPLIT_FOLDERS = {
    "train": ("afw", "helen/trainset", "lfpw/trainset"),
    "common": ("helen/testset", "lfpw/testset"),
    "challenge": ("ibug",),
    "full": ("helen/testset", "lfpw/testset", "ibug"),
    "private": ("300W/01_Indoor", "300W/02_Outdoor"),
}
EXPECTED_COUNTS = DATASETS["300w"].counts
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".JPG", ".JPEG", ".PNG")
NUM_POINTS = 68


def read_pts(path, num_points: int | None = NUM_POINTS) -> np.ndarray:
    """Read a ``.pts`` file -> (K, 2) float64 in 0-based pixels (the file's 1-based values minus 1).

    Raises ``DataError(path, line, ...)`` naming the first line that breaks the format.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(path, None, "a readable text .pts file", f"{type(e).__name__}: {e}") from None
    # Skip blank lines but keep each line's number for the error message.
    numbered = [(i, s.strip()) for i, s in enumerate(lines, start=1) if s.strip()]
    if len(numbered) < 3:
        raise DataError(path, None, "a .pts header 'version: 1', 'n_points: N', '{'", f"{len(numbered)} non-empty lines")
    (l1, s1), (l2, s2), (l3, s3) = numbered[:3]
    if not s1.startswith("version"):
        raise DataError(path, l1, "'version: 1'", repr(s1))
    key, _, value = s2.partition(":")
    if key.strip() != "n_points" or not value.strip().isdigit():
        raise DataError(path, l2, "'n_points: N'", repr(s2))
    n = int(value)
    if num_points is not None and n != num_points:
        raise DataError(path, l2, f"n_points: {num_points}", f"n_points: {n}")
    if s3 != "{":
        raise DataError(path, l3, "'{'", repr(s3))
    body = numbered[3:3 + n]
    if len(body) < n:
        raise DataError(path, None, f"{n} point lines after '{{'", f"{len(body)}")
    points = np.empty((n, 2))
    for k, (lineno, s) in enumerate(body):
        tokens = s.split()
        try:
            if len(tokens) != 2:
                raise ValueError
            points[k] = float(tokens[0]), float(tokens[1])
        except ValueError:
            raise DataError(path, lineno, "a point 'x y' (two numbers)", repr(s)) from None
        if not np.all(np.isfinite(points[k])):
            raise DataError(path, lineno, "finite coordinates", repr(s))
    closing = numbered[3 + n] if len(numbered) > 3 + n else None
    if closing is None or closing[1] != "}":
        raise DataError(path, closing[0] if closing else None, f"'}}' after {n} points",
                        repr(closing[1]) if closing else "end of file")
    return points - 1.0


def find_image(pts_path: Path) -> Path | None:
    """The image beside a .pts file (same stem, a known image extension), or None."""
    for ext in IMAGE_EXTENSIONS:
        candidate = pts_path.with_suffix(ext)
        if candidate.is_file():
            return candidate
    return None


class W300(FaceSource):
    """300W faces of one split: ``W300(root, split="train" | "common" | "challenge" | "full" | "private")``.

    Keys are the .pts paths relative to ``root`` (``"ibug/image_003_1.pts"``); ``box`` is the tight
    landmark box (300W ships no boxes); ``attributes`` holds the subset (``"common"`` or
    ``"challenge"``) for the test splits; ``occluded`` is None.
    """

    name = "300w"
    splits = DATASETS["300w"].splits

    def __init__(self, root, split: str = "train", *, skip_bad: bool = False):
        super().__init__(root, split, W300_SCHEME, skip_bad=skip_bad)
        self.missing_folders: list[Path] = []
        for folder in SPLIT_FOLDERS[split]:
            directory = self.root / folder
            if not directory.is_dir():
                self.missing_folders.append(directory)
                continue
            subset = "challenge" if folder == "ibug" else "common" if folder.endswith("testset") else None
            for pts in sorted(directory.glob("*.pts")):
                try:
                    landmarks = read_pts(pts)
                    image = find_image(pts)
                    if image is None:
                        raise DataError(pts, None, f"an image beside it ({pts.stem}.jpg, .png, ...)", "none")
                except DataError as e:
                    self._bad(e)
                    continue
                self.records.append(FaceRecord(
                    key=pts.relative_to(self.root).as_posix(), image_path=str(image), landmarks=landmarks,
                    box=landmark_box(landmarks), scheme="300w",
                    attributes=frozenset({subset}) if subset else frozenset()))
        if len(self.missing_folders) == len(SPLIT_FOLDERS[split]):
            raise DataError(self.root, None, f"the 300W folders {', '.join(SPLIT_FOLDERS[split])} of split {split!r}",
                            "none of them")
        self._warn_skipped()
