"""Writers of tiny dataset trees in the exact on-disk formats of WFLW, COFW and 300W.

Tests build their fixtures at test time with these (nothing binary is committed). Every writer
takes landmarks in hihlib's convention (0-based pixel centres) and writes them the way the
official files do (WFLW 0-based, COFW and 300W 1-based).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")
WFLW_SUBSET_FILES = {"pose": "largepose", "expression": "expression", "illumination": "illumination",
                     "makeup": "makeup", "occlusion": "occlusion", "blur": "blur"}


def write_image(path, rgb: np.ndarray) -> Path:
    """Write an (H, W, 3) RGB or (H, W) grey uint8 image (format from the extension)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = rgb[..., ::-1] if rgb.ndim == 3 else rgb
    assert cv2.imwrite(str(path), np.ascontiguousarray(bgr)), path
    return path


def noise_image(rng: np.random.Generator, height: int, width: int, grey: bool = False) -> np.ndarray:
    shape = (height, width) if grey else (height, width, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def face_points(rng: np.random.Generator, n: int, box) -> np.ndarray:
    """n random points inside box (x0, y0, x1, y1): (n, 2) float64."""
    x0, y0, x1, y1 = box
    return np.stack([rng.uniform(x0, x1, n), rng.uniform(y0, y1, n)], axis=1)


# --- WFLW -------------------------------------------------------------------------------------

def wflw_line(landmarks, box, flags, image: str) -> str:
    """One 207-token line: 98 interleaved x y, box x_min y_min x_max y_max, 6 flags, image path."""
    landmarks = np.asarray(landmarks, dtype=np.float64).reshape(98, 2)
    coords = " ".join(f"{v:.6f}" for v in landmarks.reshape(-1))
    box_s = " ".join(f"{v:.6f}" for v in np.asarray(box, dtype=np.float64))
    flag_s = " ".join(str(int(bool(f))) for f in flags)
    return f"{coords} {box_s} {flag_s} {image}"


def wflw_subset_line(landmarks, image: str) -> str:
    """One 197-token subset-list line: 98 interleaved x y, image path."""
    coords = " ".join(f"{v:.6f}" for v in np.asarray(landmarks, dtype=np.float64).reshape(-1))
    return f"{coords} {image}"


def write_wflw(root, train: list[dict], test: list[dict], *, subsets: bool = True, extra_lines: dict | None = None) -> Path:
    """Write the WFLW annotation tree under ``root``.

    train/test: faces as dicts with ``landmarks`` (98, 2), ``box`` (4,), ``flags`` (6,) and ``image``
    (path relative to WFLW_images/). ``subsets`` writes list_98pt_test.txt and the six subset lists
    from the test flags. ``extra_lines``: {"train"|"test": [(position, raw line)]} inserted as given
    (for malformed-line fixtures). Images are written by the caller.
    """
    root = Path(root)
    ann = root / "WFLW_annotations"
    for split, faces in (("train", train), ("test", test)):
        lines = [wflw_line(f["landmarks"], f["box"], f["flags"], f["image"]) for f in faces]
        for pos, raw in (extra_lines or {}).get(split, []):
            lines.insert(pos, raw)
        path = ann / "list_98pt_rect_attr_train_test" / f"list_98pt_rect_attr_{split}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n")
    if subsets:
        sub = ann / "list_98pt_test"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / "list_98pt_test.txt").write_text("".join(wflw_subset_line(f["landmarks"], f["image"]) + "\n" for f in test))
        for a, name in enumerate(WFLW_ATTRIBUTES):
            chosen = [f for f in test if f["flags"][a]]
            (sub / f"list_98pt_test_{WFLW_SUBSET_FILES[name]}.txt").write_text(
                "".join(wflw_subset_line(f["landmarks"], f["image"]) + "\n" for f in chosen))
    (root / "WFLW_images").mkdir(parents=True, exist_ok=True)
    return root


def build_wflw_fixture(root, seed: int = 0) -> dict:
    """A small WFLW tree: 3 train faces (two on one image, one with landmarks outside the image),
    4 test faces with assorted flags, real JPEG images. Returns {"train": faces, "test": faces}."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    images = root / "WFLW_images"
    write_image(images / "0--Parade/two_faces.jpg", noise_image(rng, 120, 160))
    write_image(images / "1--Handshaking/edge.jpg", noise_image(rng, 100, 100))
    for i in range(4):
        write_image(images / f"2--Demonstration/test_{i}.jpg", noise_image(rng, 90, 110))

    def face(image, box, flags, outside=False):
        pts = face_points(rng, 98, box)
        if outside:  # WFLW keeps points annotated beyond the image border
            pts[0] = (-3.25, 40.5)
            pts[32] = (104.75, 99.125)
        return {"landmarks": pts, "box": np.asarray(box, float), "flags": np.asarray(flags, bool), "image": image}

    train = [
        face("0--Parade/two_faces.jpg", (10, 20, 60, 80), [0, 0, 0, 0, 0, 0]),
        face("0--Parade/two_faces.jpg", (90, 15, 150, 90), [1, 0, 0, 0, 1, 0]),
        face("1--Handshaking/edge.jpg", (5, 10, 95, 95), [0, 1, 0, 0, 0, 0], outside=True),
    ]
    flags = [[1, 0, 0, 0, 0, 1], [0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1], [0, 0, 0, 0, 0, 0]]
    test = [face(f"2--Demonstration/test_{i}.jpg", (20, 15, 80, 85), flags[i]) for i in range(4)]
    write_wflw(root, train, test)
    return {"train": train, "test": test}


# --- COFW -------------------------------------------------------------------------------------

def cofw_arrays(landmarks, occluded, boxes):
    """0-based landmarks (N, 29, 2), occluded (N, 29), boxes (N, 4) x0 y0 x1 y1 ->
    MATLAB phis (N, 87) 1-based and bboxes (N, 4) [x, y, w, h] 1-based."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    phis = np.concatenate([landmarks[..., 0] + 1, landmarks[..., 1] + 1, np.asarray(occluded, np.float64)], axis=1)
    bboxes = np.stack([boxes[:, 0] + 1, boxes[:, 1] + 1, boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], axis=1)
    return phis, bboxes


def _cell(images) -> np.ndarray:
    cell = np.empty((len(images), 1), dtype=object)
    for i, im in enumerate(images):
        cell[i, 0] = np.asarray(im, dtype=np.uint8)
    return cell


def write_cofw(path, split: str, images, landmarks, occluded, boxes, *, version: str = "7.3") -> Path:
    """Write a COFW .mat file: ``version="7.3"`` (HDF5, as the official colour files, through
    hdf5storage) or ``"5"`` (scipy.io.savemat, as older COFW files)."""
    s = {"train": "Tr", "test": "T"}[split]
    phis, bboxes = cofw_arrays(landmarks, occluded, boxes)
    data = {f"Is{s}": _cell(images), f"phis{s}": phis, f"bboxes{s}": bboxes}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if version == "7.3":
        import hdf5storage

        hdf5storage.savemat(str(path), data, format="7.3", matlab_compatible=True)
    else:
        import scipy.io

        scipy.io.savemat(str(path), data)
    return path


def build_cofw_fixture(root, seed: int = 0, n_train: int = 3, n_test: int = 2, version: str = "7.3") -> dict:
    """COFW_train_color.mat / COFW_test_color.mat with colour images and one greyscale image per
    split (the first). Returns {split: dict(images, landmarks, occluded, boxes)} in 0-based pixels."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        sizes = [(int(rng.integers(60, 90)), int(rng.integers(70, 100))) for _ in range(n)]
        images = [noise_image(rng, h, w, grey=(i == 0)) for i, (h, w) in enumerate(sizes)]
        boxes = np.array([[5.0, 6.0, w - 10.0, h - 8.0] for h, w in sizes])
        landmarks = np.stack([face_points(rng, 29, b) for b in boxes])
        occluded = rng.random((n, 29)) < 0.3
        name = {"train": "COFW_train_color.mat", "test": "COFW_test_color.mat"}[split]
        write_cofw(Path(root) / name, split, images, landmarks, occluded, boxes, version=version)
        out[split] = {"images": images, "landmarks": landmarks, "occluded": occluded, "boxes": boxes}
    return out


# --- 300W -------------------------------------------------------------------------------------

def pts_text(landmarks) -> str:
    """The .pts text of 0-based landmarks (K, 2): written 1-based."""
    pts = np.asarray(landmarks, dtype=np.float64) + 1.0
    body = "".join(f"{x:.6f} {y:.6f}\n" for x, y in pts)
    return f"version: 1\nn_points:  {len(pts)}\n{{\n{body}}}\n"


def write_pts(path, landmarks) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(pts_text(landmarks))
    return path


W300_FOLDERS = ("afw", "helen/trainset", "lfpw/trainset", "helen/testset", "lfpw/testset", "ibug",
                "300W/01_Indoor", "300W/02_Outdoor")


def build_300w_fixture(root, seed: int = 0, per_folder: int = 1) -> dict:
    """``per_folder`` faces in each 300W folder (png images, .pts beside). Returns {folder: [(stem, landmarks)]}."""
    rng = np.random.default_rng(seed)
    out = {}
    for folder in W300_FOLDERS:
        out[folder] = []
        for i in range(per_folder):
            stem = f"image_{i:03d}"
            write_image(Path(root) / folder / f"{stem}.png", noise_image(rng, 64, 72))
            pts = face_points(rng, 68, (8, 6, 60, 58))
            write_pts(Path(root) / folder / f"{stem}.pts", pts)
            out[folder].append((stem, pts))
    return out
