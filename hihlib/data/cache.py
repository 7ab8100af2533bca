"""A cache of loosely cropped faces, so that training does not decode full-size JPEGs every epoch.

``prepare_cache(source, out)`` crops every face of a loader (``WFLW``, ``COFW``, ``W300``) once:
the square of side ``cache_scale * max(w, h)`` (default 2.0) around the dataset box, resized to
``cache_size`` pixels (default 1.5 x the 256 input = 384). That leaves room for the 1.25 crop
plus rotation, zoom and translation augmentation, at about the resolution the network sees.

Files per split, in ``out``::

    <dataset>_<split>.json               index: fingerprint, parameters, keys, attributes, file names
    <dataset>_<split>.<build>.npy        (N, S, S, 3) uint8 crops, memory-mapped when read
    <dataset>_<split>.<build>.npz        landmarks (N, K, 2), boxes (N, 4) in crop pixels,
                                         from_original (N, 2, 3), occluded (N, K), has_occluded (N,)

Every file is written atomically and the index last; the index names the build's files, so a
crash mid-build leaves the previous cache usable. The fingerprint hashes the records (keys,
landmarks, boxes, flags), the size and modification time of every source image and annotation
file, and the crop parameters: a re-run reuses a valid cache and rebuilds a stale one.

``CachedFaces(out, dataset, split)`` reads it back as records whose ``loader`` returns the cached
crop, with landmarks and box in the crop's pixels and ``from_original`` mapping the source image
into it. NME is unchanged by the cache (it is a scale and a translation, and the normaliser is
measured in the same frame).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..io import atomic_path, write_json
from .dataset import load_record_image
from .records import FaceRecord
from .schemes import get_scheme
from .transforms import apply_affine, crop_matrix, warp_image

CACHE_VERSION = 1
DEFAULT_SCALE = 2.0
DEFAULT_SIZE = 384


def index_path(out, dataset: str, split: str) -> Path:
    return Path(out) / f"{dataset}_{split}.json"


def source_files(source) -> list[Path]:
    """The annotation files a loader read (lists, .mat, .pts)."""
    files = []
    for attr in ("list_file", "mat_file"):
        if getattr(source, attr, None) is not None:
            files.append(Path(getattr(source, attr)))
    if source.scheme.name == "300w":
        files += [source.root / r.key for r in source.records]
    return files


def fingerprint(source, params: dict) -> str:
    """sha256 over the crop parameters, the records and the stat of every source file (hex)."""
    h = hashlib.sha256()
    h.update(json.dumps({"version": CACHE_VERSION, "params": params, "n": len(source.records)}, sort_keys=True).encode())
    images = set()
    for r in source.records:
        h.update(r.key.encode())
        h.update(np.ascontiguousarray(r.landmarks).tobytes())
        h.update(np.ascontiguousarray(r.box).tobytes())
        h.update(",".join(sorted(r.attributes)).encode())
        h.update(b"-" if r.occluded is None else np.packbits(r.occluded).tobytes())
        if r.image_path is not None:
            images.add(r.image_path)
    for path in sorted(images) + [str(p) for p in source_files(source)]:
        try:
            st = os.stat(path)
            h.update(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode())
        except OSError:
            h.update(f"{path}|missing".encode())
    return h.hexdigest()


def read_index(out, dataset: str, split: str) -> dict | None:
    path = index_path(out, dataset, split)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _valid(index: dict | None, out: Path, fp: str) -> bool:
    if not index or index.get("version") != CACHE_VERSION or index.get("fingerprint") != fp:
        return False
    images, arrays = out / index["images"], out / index["arrays"]
    if not (images.is_file() and arrays.is_file()) or images.stat().st_size != index.get("images_bytes"):
        return False
    return True


def prepare_cache(source, out, *, cache_scale: float = DEFAULT_SCALE, cache_size: int = DEFAULT_SIZE,
                  force: bool = False, progress: bool = False) -> tuple[dict, bool]:
    """Cache the loose crops of ``source``'s records in ``out``.

    Returns ``(index, built)``: the index dict (see the module docstring) and whether the cache was
    (re)built (False: a valid cache was reused). Unreadable images raise ``DataError`` naming the
    image; build the loader with ``skip_bad=True`` to leave out malformed annotation lines.
    """
    out = Path(out)
    dataset, split = source.scheme.name, source.split
    params = {"cache_scale": float(cache_scale), "cache_size": int(cache_size)}
    fp = fingerprint(source, params)
    old = read_index(out, dataset, split)
    if not force and _valid(old, out, fp):
        return old, False
    n, k, s = len(source.records), source.scheme.num_points, int(cache_size)
    build = secrets.token_hex(4)
    images_name, arrays_name = f"{dataset}_{split}.{build}.npy", f"{dataset}_{split}.{build}.npz"
    landmarks = np.zeros((n, k, 2))
    boxes = np.zeros((n, 4))
    matrices = np.zeros((n, 2, 3))
    occluded = np.zeros((n, k), bool)
    has_occluded = np.zeros(n, bool)
    records = source.records
    if progress:
        from tqdm.auto import tqdm

        records = tqdm(records, desc=f"prepare {dataset} {split}", leave=False, dynamic_ncols=True)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / images_name) as tmp:
        crops = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, s, s, 3))
        for i, r in enumerate(records):
            M = crop_matrix(r.box, s, cache_scale)
            image = load_record_image(r)
            crops[i] = warp_image(image, M, s)
            matrices[i] = M if r.from_original is None else M @ np.vstack([r.from_original, [0, 0, 1]])
            landmarks[i] = apply_affine(r.landmarks, M)
            boxes[i] = apply_affine(r.box.reshape(2, 2), M).reshape(4)  # scale + shift: corners stay corners
            if r.occluded is not None:
                occluded[i], has_occluded[i] = r.occluded, True
        crops.flush()
        del crops
    with atomic_path(out / arrays_name) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, landmarks=landmarks, boxes=boxes, from_original=matrices, occluded=occluded,
                     has_occluded=has_occluded)
    index = {
        "version": CACHE_VERSION, "dataset": dataset, "split": split, "root": str(source.root),
        "fingerprint": fp, "params": params, "count": n, "num_points": k, "build": build,
        "images": images_name, "images_bytes": (out / images_name).stat().st_size, "arrays": arrays_name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "skipped": [str(e) for e in source.skipped],
        "keys": [r.key for r in source.records],
        "image_paths": [r.image_path for r in source.records],
        "attributes": [sorted(r.attributes) for r in source.records],
    }
    write_json(index_path(out, dataset, split), index)
    for stale in out.glob(f"{dataset}_{split}.*.np[yz]"):  # files of earlier builds
        if stale.name not in (images_name, arrays_name):
            stale.unlink(missing_ok=True)
    return index, True


class _CachedImage:
    """Crop ``index`` of a cache .npy as a read-only (S, S, 3) view; picklable, memory-maps the
    file once per process."""

    _maps: dict = {}

    def __init__(self, path: str, index: int):
        self.path, self.index = path, index

    def __call__(self) -> np.ndarray:
        key = (self.path, os.getpid())
        m = self._maps.get(key)
        if m is None:
            m = self._maps[key] = np.load(self.path, mmap_mode="r")
        # A read-only view of the mapped file (no copy): the crop is only ever read and warped.
        return np.asarray(m[self.index])


class CachedFaces:
    """The records of a prepared cache: ``CachedFaces(out, dataset, split)``.

    ``records`` (FaceRecord in the cached crop's pixels, ``from_original`` set), ``scheme``,
    ``index`` (the JSON index), ``dataset(**kw)`` -> ``FaceDataset``.
    """

    def __init__(self, out, dataset: str, split: str):
        self.out = Path(out)
        self.scheme = get_scheme(dataset)
        self.split = split
        path = index_path(self.out, self.scheme.name, split)
        if self.scheme.name == "300w" and split == "full" and not path.is_file():
            # 300W full = common + challenge, prepared separately
            parts = [CachedFaces(out, "300w", s) for s in ("common", "challenge")]
            self.index = {"parts": [p.index for p in parts]}
            self.root = parts[0].root
            self.records = parts[0].records + parts[1].records
            self.skipped = parts[0].skipped + parts[1].skipped
            return
        index = read_index(self.out, self.scheme.name, split)
        if index is None:
            raise DataError(path, None, f"a cache index (run `hih data prepare ROOT --dataset {self.scheme.name} --out {out}`)",
                            "no readable index")
        if index.get("version") != CACHE_VERSION:
            raise DataError(path, None, f"cache version {CACHE_VERSION}", f"version {index.get('version')}")
        images, arrays = self.out / index["images"], self.out / index["arrays"]
        for p in (images, arrays):
            if not p.is_file():
                raise DataError(p, None, f"the cache file named by {path.name}", "no such file")
        self.index = index
        self.root = Path(index["root"])
        with np.load(arrays) as a:
            landmarks, boxes, matrices = a["landmarks"], a["boxes"], a["from_original"]
            occluded, has_occluded = a["occluded"], a["has_occluded"]
        self.records = [
            FaceRecord(key=key, loader=_CachedImage(str(images), i), landmarks=landmarks[i], box=boxes[i],
                       scheme=self.scheme.name, attributes=frozenset(attrs),
                       occluded=occluded[i] if has_occluded[i] else None, from_original=matrices[i])
            for i, (key, attrs) in enumerate(zip(index["keys"], index["attributes"]))
        ]
        self.skipped = list(index.get("skipped", []))

    def __len__(self) -> int:
        return len(self.records)

    def dataset(self, **kwargs):
        from .dataset import FaceDataset

        return FaceDataset(self.records, self.scheme, **kwargs)
