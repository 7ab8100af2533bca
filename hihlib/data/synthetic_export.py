"""``hih data synth``: write synthetic faces in the exact on-disk formats of WFLW, COFW and 300W.

The real loaders (``hihlib.data.WFLW``, ``COFW``, ``W300``) then run unchanged on generated data,
and give back the generator's landmarks to 1e-6 px (coordinates are written with 6 decimals).

``hih data synth --format wflw|cofw|300w --out DIR --train N --test M --seed S [--image-size 256]``

* **wflw**: ``DIR/WFLW_images/<event>/<name>.jpg``, the two 207-token lists
  ``WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt`` (98 points
  0-based, the detector-like box, the six attribute flags) and the test subset lists
  ``WFLW_annotations/list_98pt_test/list_98pt_test{,_largepose,...}.txt`` (197 tokens).
* **cofw**: ``DIR/COFW_train_color.mat`` and ``DIR/COFW_test_color.mat``, MATLAB v7.3 (HDF5) files
  written by hdf5storage with ``IsTr``/``phisTr``/``bboxesTr`` (``...T`` for test): a cell array of
  RGB images, N x 87 (29 x, 29 y 1-based, 29 occlusion flags) and N x 4 ``[x, y, width, height]``
  1-based. The 29 points come from ``schemes.wflw_to_cofw``; a point is flagged occluded when it
  lies under one of the face's occluders.
* **300w**: ``.pts`` files (68 points from ``schemes.wflw_to_300w``, 1-based) beside ``.jpg`` images
  in the 300W folders. ``--train N`` faces go to afw / helen/trainset / lfpw/trainset (in the
  official proportions 337 : 2000 : 811); ``--test M`` faces to helen/testset + lfpw/testset
  (common), ceil(M / 4) harder faces (every attribute with probability 0.6) to ibug (challenge), and
  ceil(M / 2) faces to 300W/01_Indoor + 02_Outdoor (private).

Train and test faces never overlap: test face j is face ``1_000_000 + j`` of the seed (challenge and
private faces start at 2_000_000 and 3_000_000). Every file is written atomically (``hihlib.io``),
and the annotation files last, so an interrupted export is never mistaken for a complete one.
Exporting again into the same folder replaces the earlier export: its images and .pts files (named
``synthetic_s<seed>_<index>``) that the new one does not write are deleted; other files are left alone.

Last of all, ``DIR/hih_synthetic_<format>.json`` records the export (format, seed, image size, faces
per split, WFLW attribute subsets). ``hih data check`` reads it and checks the counts against it
instead of against the official ones, so an export is checked as it was written.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from ..errors import ConfigError, DataError
from ..io import atomic_path, write_json, write_text, write_with
from .datasets import DATASETS, FILE_DATASETS
from .schemes import wflw_to_300w, wflw_to_cofw
from .synthetic import ATTRIBUTES, face_box, occluded_at, render, sample_params

FORMATS = FILE_DATASETS
TEST_START, CHALLENGE_START, PRIVATE_START = 1_000_000, 2_000_000, 3_000_000
WFLW_SUBSET_FILES = DATASETS["wflw"].subset_files
W300_TRAIN = (("afw", 337), ("helen/trainset", 2000), ("lfpw/trainset", 811))
W300_COMMON = (("helen/testset", 330), ("lfpw/testset", 224))
W300_PRIVATE = (("300W/01_Indoor", 300), ("300W/02_Outdoor", 300))


def _faces(indices, seed: int, image_size: int, attribute_prob) -> Iterator[tuple[int, object, np.ndarray, np.ndarray]]:
    """(index, params, image, landmarks (98, 2)) for each face index."""
    for i in indices:
        p = sample_params(i, seed, image_size=image_size, attribute_prob=attribute_prob)
        image, landmarks, _ = render(p)
        yield i, p, image, landmarks


def _write_image(path: Path, rgb: np.ndarray, quality: int = 95) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[..., ::-1]), params):
            raise OSError(f"{path}: OpenCV could not write the image")


_OWN_FILE = re.compile(r"^synthetic_s\d+_\d{7}\.(jpg|png|pts)$")


def _remove_stale(folder: Path, keep: set[Path]) -> int:
    """Delete files of an earlier export in ``folder`` (our own naming pattern only, never a user's
    file) that this export did not write: a 300W loader reads every .pts it finds, so a smaller
    export into the same folder must not leave the previous faces behind."""
    removed = 0
    if folder.is_dir():
        for f in folder.iterdir():
            if _OWN_FILE.match(f.name) and f not in keep:
                f.unlink()
                removed += 1
    return removed


def _coords(points: np.ndarray) -> str:
    return " ".join(f"{v:.6f}" for v in np.asarray(points, dtype=np.float64).reshape(-1))


def _split_counts(total: int, parts) -> list[int]:
    """Split ``total`` faces over folders in proportion to their official sizes (largest remainder)."""
    sizes = np.array([n for _, n in parts], dtype=np.float64)
    exact = total * sizes / sizes.sum()
    counts = np.floor(exact).astype(int)
    for k in np.argsort(-(exact - counts))[: total - counts.sum()]:
        counts[k] += 1
    return counts.tolist()


# --------------------------------------------------------------------------------------------
# WFLW
# --------------------------------------------------------------------------------------------

def export_wflw(out, train: int, test: int, *, seed: int = 0, image_size: int = 256, attribute_prob=None,
                image_ext: str = ".jpg", progress: Callable[[str], None] | None = None) -> dict:
    """Write a WFLW tree; returns {"train": n, "test": m, "subsets": {attribute: count}}."""
    out = Path(out)
    annotations = out / "WFLW_annotations"
    subsets: dict[str, list[str]] = {a: [] for a in ATTRIBUTES}
    all_test: list[str] = []
    written: set[Path] = set()
    lists: dict[str, list[str]] = {}
    for split, start, n in (("train", 0, train), ("test", TEST_START, test)):
        lines = lists[split] = []
        for i, p, image, landmarks in _faces(range(start, start + n), seed, image_size, attribute_prob):
            rel = f"{(i - start) // 1000}--Synthetic_{split}/synthetic_s{seed}_{i:07d}{image_ext}"
            _write_image(out / "WFLW_images" / rel, image)
            written.add(out / "WFLW_images" / rel)
            flags = " ".join("1" if a in p.attributes else "0" for a in ATTRIBUTES)
            coords = _coords(landmarks)
            lines.append(f"{coords} {_coords(face_box(p, landmarks))} {flags} {rel}")
            if split == "test":
                all_test.append(f"{coords} {rel}")
                for a in p.attributes:
                    subsets[a].append(f"{coords} {rel}")
        if progress:
            progress(f"wflw {split}: {n} faces")
    # the lists only once every image is on disk, and the earlier export's images only after them
    for split, lines in lists.items():
        write_text(annotations / "list_98pt_rect_attr_train_test" / f"list_98pt_rect_attr_{split}.txt",
                   "".join(line + "\n" for line in lines))
    write_text(annotations / "list_98pt_test" / "list_98pt_test.txt", "".join(line + "\n" for line in all_test))
    for a, suffix in WFLW_SUBSET_FILES.items():
        write_text(annotations / "list_98pt_test" / f"list_98pt_test_{suffix}.txt",
                   "".join(line + "\n" for line in subsets[a]))
    for folder in (out / "WFLW_images").glob("*--Synthetic_*"):
        _remove_stale(folder, written)
    return {"train": train, "test": test, "subsets": {a: len(v) for a, v in subsets.items()}}


# --------------------------------------------------------------------------------------------
# COFW
# --------------------------------------------------------------------------------------------

def export_cofw(out, train: int, test: int, *, seed: int = 0, image_size: int = 256, attribute_prob=None,
                progress: Callable[[str], None] | None = None) -> dict:
    """Write ``COFW_train_color.mat`` and ``COFW_test_color.mat`` (MATLAB v7.3); returns counts and
    the number of occluded points."""
    out = Path(out)
    summary = {}
    for split, suffix, start, n in (("train", "Tr", 0, train), ("test", "T", TEST_START, test)):
        images = np.empty((n, 1), dtype=object)
        phis = np.zeros((n, 87))
        boxes = np.zeros((n, 4))
        for row, (i, p, image, landmarks) in enumerate(_faces(range(start, start + n), seed, image_size, attribute_prob)):
            pts = wflw_to_cofw(landmarks)
            images[row, 0] = image
            phis[row, :29] = pts[:, 0] + 1.0          # MATLAB is 1-based
            phis[row, 29:58] = pts[:, 1] + 1.0
            phis[row, 58:] = occluded_at(p, pts)
            x0, y0 = pts.min(0)
            x1, y1 = pts.max(0)
            boxes[row] = [x0 + 1.0, y0 + 1.0, x1 - x0, y1 - y0]
        name = f"COFW_{split}_color.mat"
        data = {f"Is{suffix}": images, f"phis{suffix}": phis, f"bboxes{suffix}": boxes}
        write_with(out / name, lambda tmp: _savemat73(tmp, data))
        summary[split] = n
        summary[f"{split}_occluded_points"] = int(phis[:, 58:].sum())
        if progress:
            progress(f"cofw {split}: {n} faces")
    return summary


def _savemat73(path: Path, data: dict) -> None:
    try:
        import hdf5storage
    except ImportError:
        raise ConfigError("--format cofw writes MATLAB v7.3 files with hdf5storage: pip install hdf5storage") from None

    # hdf5storage writes MATLAB's 512-byte header only when it creates the file, and the atomic
    # writer has already created an empty placeholder.
    path.unlink(missing_ok=True)
    hdf5storage.savemat(str(path), data, format="7.3", matlab_compatible=True, store_python_metadata=False,
                        truncate_existing=True)


# --------------------------------------------------------------------------------------------
# 300W
# --------------------------------------------------------------------------------------------

def _pts_text(points: np.ndarray) -> str:
    rows = "".join(f"{x + 1.0:.6f} {y + 1.0:.6f}\n" for x, y in points)   # .pts files are 1-based
    return f"version: 1\nn_points: {len(points)}\n{{\n{rows}}}\n"


def export_300w(out, train: int, test: int, *, seed: int = 0, image_size: int = 256, attribute_prob=None,
                progress: Callable[[str], None] | None = None) -> dict:
    """Write a 300W folder tree; returns the number of faces per split."""
    out = Path(out)
    hard = 0.6 if attribute_prob is None else attribute_prob
    plan = [("train", W300_TRAIN, 0, train, attribute_prob),
            ("common", W300_COMMON, TEST_START, test, attribute_prob),
            ("challenge", (("ibug", 135),), CHALLENGE_START, math.ceil(test / 4), hard),
            ("private", W300_PRIVATE, PRIVATE_START, math.ceil(test / 2), attribute_prob)]
    summary = {}
    for split, folders, start, n, prob in plan:
        index = start
        for (folder, _), count in zip(folders, _split_counts(n, folders)):
            (out / folder).mkdir(parents=True, exist_ok=True)  # even when empty: the loader expects every folder
            written = set()
            for i, p, image, landmarks in _faces(range(index, index + count), seed, image_size, prob):
                stem = out / folder / f"synthetic_s{seed}_{i:07d}"
                _write_image(stem.with_suffix(".jpg"), image)
                write_text(stem.with_suffix(".pts"), _pts_text(wflw_to_300w(landmarks)))
                written |= {stem.with_suffix(".jpg"), stem.with_suffix(".pts")}
            _remove_stale(out / folder, written)
            index += count
        summary[split] = n
        if progress:
            progress(f"300w {split}: {n} faces")
    summary["full"] = summary["common"] + summary["challenge"]
    return summary


EXPORTERS = {"wflw": export_wflw, "cofw": export_cofw, "300w": export_300w}


def manifest_path(root, fmt: str) -> Path:
    """Where an export in format ``fmt`` into ``root`` records itself."""
    return Path(root) / f"hih_synthetic_{fmt}.json"


def read_manifest(root, fmt: str) -> dict | None:
    """The record of a ``hih data synth`` export in ``root`` (None when ``root`` holds none):
    {"format", "seed", "image_size", "counts": {split: faces}, "subsets": {attribute: faces} (WFLW)}."""
    path = manifest_path(root, fmt)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        counts = {str(k): int(v) for k, v in record["counts"].items()}
        subsets = {str(k): int(v) for k, v in record.get("subsets", {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise DataError(path, None, "the JSON record of a hih data synth export with 'counts'", repr(e)) from None
    return {**record, "counts": counts, "subsets": subsets}


def export(fmt: str, out, train: int, test: int, **kwargs) -> dict:
    """Dispatch to ``export_wflw`` / ``export_cofw`` / ``export_300w``, then write the export's record
    (:func:`manifest_path`)."""
    if fmt not in EXPORTERS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if train < 0 or test < 0:
        raise ConfigError(f"--train and --test must be >= 0, got {train} and {test}")
    # an interrupted export must not keep the record of the one it replaces
    manifest_path(out, fmt).unlink(missing_ok=True)
    summary = EXPORTERS[fmt](out, train, test, **kwargs)
    counts = {k: v for k, v in summary.items() if isinstance(v, int) and not k.endswith("_occluded_points")}
    write_json(manifest_path(out, fmt), {
        "format": fmt, "written_by": "hih data synth", "seed": kwargs.get("seed", 0),
        "image_size": kwargs.get("image_size", 256), "counts": counts, "subsets": summary.get("subsets", {})})
    return summary


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------

def _attribute_prob(text: str | None):
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--attribute-prob {text!r}: expected a probability between 0 and 1") from None
    if not 0 <= value <= 1:
        raise ConfigError(f"--attribute-prob {text!r}: expected a probability between 0 and 1")
    return value


def cmd_synth(args) -> int:
    if args.image_size < 32:
        raise ConfigError(f"--image-size {args.image_size}: expected at least 32 pixels")
    kwargs = dict(seed=args.seed, image_size=args.image_size, attribute_prob=_attribute_prob(args.attribute_prob))
    if args.format == "wflw" and args.png:
        kwargs["image_ext"] = ".png"
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: expected a folder, found a file")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if held and not args.force:
        raise ConfigError(f"--out {out}: expected a new or empty folder, found {len(held)} entr"
                          f"{'y' if len(held) == 1 else 'ies'} ({', '.join(held[:4])}{', ...' if len(held) > 4 else ''}); "
                          "add --force to write the export over it, or choose another folder")
    summary = export(args.format, args.out, args.train, args.test, **kwargs)
    counts = ", ".join(f"{k} {v}" for k, v in summary.items() if isinstance(v, int))
    print(f"wrote synthetic faces (seed {args.seed}) in the {args.format.upper()} format to {args.out}: {counts}")
    return 0


def register_synth(subparsers) -> None:
    """Add ``synth`` to the ``hih data`` sub-commands."""
    p = subparsers.add_parser("synth", help="write synthetic faces in the WFLW, COFW or 300W format",
                              description="Render synthetic faces and write them in the exact on-disk format of "
                              "WFLW, COFW or 300W, so that the real loaders, hih data check and hih train run "
                              "on them unchanged.")
    p.add_argument("--format", required=True, choices=FORMATS, help="on-disk format to write")
    p.add_argument("--out", required=True, help="output folder (the dataset root)")
    p.add_argument("--train", type=int, default=200, help="training faces")
    p.add_argument("--test", type=int, default=100, help="test faces (300W: common, plus ceil(M/4) challenge "
                   "and ceil(M/2) private)")
    p.add_argument("--seed", type=int, default=0, help="face i of seed s is always the same face")
    p.add_argument("--image-size", type=int, default=256, help="side of the square images in pixels")
    p.add_argument("--attribute-prob", default=None,
                   help="probability of each WFLW attribute (default: their WFLW test-set frequencies)")
    p.add_argument("--png", action="store_true", help="wflw: lossless PNG images instead of JPEG (quality 95)")
    p.add_argument("--force", action="store_true",
                   help="write into an --out folder that already holds files (an earlier export is replaced)")
    p.set_defaults(func=cmd_synth)
