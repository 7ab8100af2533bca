"""COFW (Burgos-Artizzu et al., ICCV 2013): 29 landmarks with occlusion flags, 1345 train / 507 test.

Read from the official colour files ``ROOT/COFW_train_color.mat`` and ``ROOT/COFW_test_color.mat``.
They are MATLAB v7.3 files (HDF5), which ``scipy.io.loadmat`` refuses, so they are read with h5py;
older v5 files (e.g. the greyscale ``COFW_train.mat``) go through scipy instead.

Variables (``Tr`` suffix for train, ``T`` for test):

* ``IsTr``: N cell array of uint8 images, (H, W, 3) RGB or (H, W) greyscale. Through h5py it is an
  array of object references, and every array comes out transposed (MATLAB is column-major).
* ``phisTr``: N x 87 (h5py: 87 x N): x of the 29 points, then y, then occlusion flags (1 = occluded).
  MATLAB 1-based pixel coordinates: the loader subtracts 1.
* ``bboxesTr``: N x 4 ``[x, y, width, height]``, 1-based; becomes ``x0 = x - 1, x1 = x0 + width``.

Samples are numbered from 1 in errors and keys (``"COFW_test_color.mat:7"`` is the 7th face), as
MATLAB numbers them. Images are read on demand, so that loading the
records is fast; the file is opened per read, so no handle outlives a call.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .records import FaceRecord
from .datasets import DATASETS
from .schemes import COFW as COFW_SCHEME
from .source import FaceSource

EXPECTED_COUNTS = DATASETS["cofw"].counts
FILES = {"train": "COFW_train_color.mat", "test": "COFW_test_color.mat"}
SUFFIX = {"train": "Tr", "test": "T"}
NUM_POINTS = 29


def mat_path(root, split: str) -> Path:
    """The .mat file of ``split``; ``root`` may be the folder or the file itself."""
    root = Path(root)
    return root if root.is_file() else root / FILES[split]


class _H5Images:
    """Reads image ``i`` of a v7.3 cell array on demand; picklable (holds only the path).

    The file is opened for each read (about 0.5 ms): a handle kept open would stop anyone from
    rewriting the file in the same process (HDF5 refuses to open an open file for writing) and
    would have to be reopened in every forked DataLoader worker. Train from the crop cache
    (``hih data prepare``) when this matters.
    """

    def __init__(self, path: str, var: str, index: int):
        self.path, self.var, self.index = path, var, index

    def __call__(self) -> np.ndarray:
        import h5py

        try:
            f = h5py.File(self.path, "r")
        except OSError as e:
            raise DataError(self.path, None, "a readable MATLAB v7.3 (HDF5) file", str(e)) from None
        with f:
            return _read_h5_image(f, self.var, self.index, self.path)


def _read_h5_image(f, var: str, index: int, path) -> np.ndarray:
    refs = f[var]
    ref = refs[np.unravel_index(index, refs.shape)]
    try:
        data = f[ref][()]
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(path, index + 1, f"{var}{{{index + 1}}} to reference an image", f"{type(e).__name__}: {e}") from None
    image = np.asarray(data).T  # MATLAB column-major -> (H, W[, 3])
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise DataError(path, index + 1, f"{var}{{{index + 1}}} to be a uint8 (H, W) or (H, W, 3) image",
                        f"{image.dtype} array of shape {image.shape}")
    return np.ascontiguousarray(image)


def _read_v73(path: Path, split: str):
    import h5py

    s = SUFFIX[split]
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise DataError(path, None, "a readable MATLAB v7.3 (HDF5) file", str(e)) from None
    with f:
        for var in (f"Is{s}", f"phis{s}", f"bboxes{s}"):
            if var not in f:
                raise DataError(path, None, f"a variable {var} (COFW {split} file)", f"variables {sorted(k for k in f if not k.startswith('#'))}")
        refs = f[f"Is{s}"]
        if refs.dtype != h5py.ref_dtype and refs.dtype.kind != "O":
            raise DataError(path, None, f"Is{s} to be a cell array of images", f"{refs.dtype} array")
        n = int(np.prod(refs.shape))
        phis = np.asarray(f[f"phis{s}"][()], dtype=np.float64).T
        boxes = np.asarray(f[f"bboxes{s}"][()], dtype=np.float64).T
    return n, phis, boxes, None


def _read_v5(path: Path, split: str):
    import scipy.io

    s = SUFFIX[split]
    try:
        m = scipy.io.loadmat(str(path))
    except Exception as e:  # scipy raises several types for damaged files
        raise DataError(path, None, "a MATLAB .mat file (v7.3 HDF5 or older)", f"{type(e).__name__}: {e}") from None
    for var in (f"Is{s}", f"phis{s}", f"bboxes{s}"):
        if var not in m:
            raise DataError(path, None, f"a variable {var} (COFW {split} file)", f"variables {sorted(k for k in m if not k.startswith('__'))}")
    images = [np.asarray(im) for im in m[f"Is{s}"].reshape(-1)]
    return len(images), np.asarray(m[f"phis{s}"], np.float64), np.asarray(m[f"bboxes{s}"], np.float64), images


class COFW(FaceSource):
    """COFW faces of one split: ``COFW(root, split="train" | "test", skip_bad=False)``.

    ``records[i].occluded`` holds the 29 occlusion flags; ``attributes`` is ``{"occlusion"}`` when
    any point is occluded. Normalise the NME with ``scheme.normaliser("inter_ocular")`` (points 8,
    9; HRNet, PIPNet, HIH) or ``"inter_pupil"`` (16, 17; ADNet, STAR) and say which.
    """

    name = "cofw"
    splits = DATASETS["cofw"].splits

    def __init__(self, root, split: str = "train", *, skip_bad: bool = False):
        super().__init__(root, split, COFW_SCHEME, skip_bad=skip_bad)
        import h5py

        path = mat_path(self.root, split)
        if not path.is_file():
            raise DataError(path, None, f"the COFW {split} file {FILES[split]}", "no such file")
        self.mat_file = path
        hdf5 = h5py.is_hdf5(path)
        n, phis, boxes, images = (_read_v73 if hdf5 else _read_v5)(path, split)
        s = SUFFIX[split]
        if phis.shape != (n, 3 * NUM_POINTS):
            raise DataError(path, None, f"phis{s} of shape ({n}, 87) for {n} images (29 x, 29 y, 29 occlusion flags)",
                            f"shape {phis.shape}")
        if boxes.shape != (n, 4):
            raise DataError(path, None, f"bboxes{s} of shape ({n}, 4) as [x, y, width, height]", f"shape {boxes.shape}")
        for i in range(n):
            landmarks = np.stack([phis[i, :NUM_POINTS], phis[i, NUM_POINTS:2 * NUM_POINTS]], axis=1) - 1.0
            flags = phis[i, 2 * NUM_POINTS:]
            x, y, w, h = boxes[i]
            if not np.all(np.isfinite(phis[i])):
                self._bad(DataError(path, i + 1, f"finite coordinates in phis{s}", "nan or inf"))
                continue
            if not np.all((flags == 0) | (flags == 1)):
                self._bad(DataError(path, i + 1, f"occlusion flags 0 or 1 in phis{s} columns 59-87", str(np.unique(flags))))
                continue
            if not (np.all(np.isfinite(boxes[i])) and w > 0 and h > 0):
                self._bad(DataError(path, i + 1, f"bboxes{s} [x, y, width, height] with positive width and height",
                                    str(boxes[i].tolist())))
                continue
            image, loader = None, None
            if images is None:
                loader = _H5Images(str(path), f"Is{s}", i)
            else:
                image = images[i]
                if image.dtype != np.uint8 or image.ndim not in (2, 3):
                    self._bad(DataError(path, i + 1, f"Is{s}{{{i + 1}}} to be a uint8 image", f"{image.dtype} {image.shape}"))
                    continue
            occluded = flags.astype(bool)
            self.records.append(FaceRecord(
                key=f"{path.name}:{i + 1}", image_path=None, image=image, loader=loader, landmarks=landmarks,
                box=np.array([x - 1.0, y - 1.0, x - 1.0 + w, y - 1.0 + h]), scheme="cofw", occluded=occluded,
                attributes=frozenset({"occlusion"}) if occluded.any() else frozenset()))
        self._warn_skipped()
