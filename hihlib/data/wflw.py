"""WFLW (Wu et al., CVPR 2018): 98 landmarks, 7500 train / 2500 test faces, six attribute subsets.

Read from the official archives extracted side by side::

    ROOT/WFLW_images/<event>/<name>.jpg
    ROOT/WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt
    ROOT/WFLW_annotations/list_98pt_test/list_98pt_test{,_largepose,_expression,...}.txt   (optional)

A train/test line holds 207 whitespace-separated tokens: 98 (x, y) pairs interleaved, the box
``x_min y_min x_max y_max``, six 0/1 flags (pose, expression, illumination, make-up, occlusion,
blur) and the image path relative to ``WFLW_images/``. One image can hold several faces, so a
sample is keyed by its line (``"list_98pt_rect_attr_test.txt:12"``). Landmarks that fall slightly
outside the image are kept as annotated. The coordinates are 0-based pixel positions and are used
as they are (the WFLW convention matches hihlib's).

The subset lists (197 tokens: coordinates and image path) are optional; when present they are
cross-checked against the flags (a subset line matches the test line with the same image and
landmarks within 0.01 px) and every disagreement is reported.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from .records import FaceRecord
from .datasets import DATASETS
from .schemes import WFLW as WFLW_SCHEME
from .source import FaceSource, _progress

INFO = DATASETS["wflw"]
#: Attribute names in the order of the six flags of a WFLW line (the table of ``datasets.py``).
ATTRIBUTES = INFO.attributes
#: Suffix of each attribute's subset list file (``list_98pt_test_<suffix>.txt``).
SUBSET_FILES = INFO.subset_files
EXPECTED_COUNTS = INFO.counts
EXPECTED_SUBSETS = INFO.subset_counts

NUM_POINTS = 98
LINE_TOKENS = 2 * NUM_POINTS + 4 + 6 + 1   # 207
SUBSET_TOKENS = 2 * NUM_POINTS + 1          # 197
ANNOTATIONS = "WFLW_annotations"
IMAGES = "WFLW_images"


def list_path(root, split: str) -> Path:
    return Path(root) / ANNOTATIONS / "list_98pt_rect_attr_train_test" / f"list_98pt_rect_attr_{split}.txt"


def subset_path(root, attribute: str | None) -> Path:
    """The subset list of ``attribute`` (None: the full test list ``list_98pt_test.txt``)."""
    name = "list_98pt_test.txt" if attribute is None else f"list_98pt_test_{SUBSET_FILES[attribute]}.txt"
    return Path(root) / ANNOTATIONS / "list_98pt_test" / name


def _floats(tokens: list[str], path, lineno: int, what: str) -> np.ndarray:
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError:
        bad = next(t for t in tokens if not _is_float(t))
        raise DataError(path, lineno, f"{what} as numbers", repr(bad)) from None
    if not np.all(np.isfinite(values)):
        raise DataError(path, lineno, f"finite {what}", "nan or inf")
    return values


def _is_float(t: str) -> bool:
    try:
        float(t)
        return True
    except ValueError:
        return False


def parse_line(line: str, path, lineno: int):
    """One train/test line -> (landmarks (98, 2) float64, box (4,) float64, flags (6,) bool, image path).

    Raises ``DataError(path, lineno, ...)`` for a line that does not follow the format.
    """
    tokens = line.split()
    if len(tokens) != LINE_TOKENS:
        raise DataError(path, lineno, f"{LINE_TOKENS} whitespace-separated tokens (98 x y pairs, box x_min y_min "
                        "x_max y_max, 6 attribute flags, image path)", f"{len(tokens)} tokens")
    landmarks = _floats(tokens[:2 * NUM_POINTS], path, lineno, "196 landmark coordinates").reshape(NUM_POINTS, 2)
    box = _floats(tokens[2 * NUM_POINTS:2 * NUM_POINTS + 4], path, lineno, "box x_min y_min x_max y_max")
    if not (box[2] > box[0] and box[3] > box[1]):
        raise DataError(path, lineno, "a box with x_min < x_max and y_min < y_max", " ".join(tokens[196:200]))
    flag_tokens = tokens[2 * NUM_POINTS + 4:2 * NUM_POINTS + 10]
    if any(t not in ("0", "1") for t in flag_tokens):
        raise DataError(path, lineno, "6 attribute flags, each 0 or 1 (pose expression illumination make-up "
                        "occlusion blur)", " ".join(flag_tokens))
    flags = np.array([t == "1" for t in flag_tokens])
    return landmarks, box, flags, tokens[-1]


def parse_subset_line(line: str, path, lineno: int):
    """One subset-list line -> (landmarks (98, 2), image path)."""
    tokens = line.split()
    if len(tokens) != SUBSET_TOKENS:
        raise DataError(path, lineno, f"{SUBSET_TOKENS} whitespace-separated tokens (98 x y pairs, image path)",
                        f"{len(tokens)} tokens")
    return _floats(tokens[:-1], path, lineno, "196 landmark coordinates").reshape(NUM_POINTS, 2), tokens[-1]


MATCH_TOLERANCE = 0.01  # px: subset lists repeat the test list's coordinates, maybe reformatted


class WFLW(FaceSource):
    """WFLW faces of one split.

    ``WFLW(root, split="train" | "test", subset=None, skip_bad=False)``. ``subset`` (one of
    ``ATTRIBUTES``) keeps only the faces with that attribute flag. ``records[i].attributes`` holds
    the names of the flags set on the line; ``records[i].box`` is the dataset's box; ``occluded`` is
    None (WFLW has no per-landmark occlusion). ``problems`` lists disagreements between the flags
    and the subset list files: they do not invalidate a face, so they are warned about (the flags
    are used) and ``hih data check`` reports them as errors.
    """

    name = "wflw"
    splits = INFO.splits

    def __init__(self, root, split: str = "train", *, subset: str | None = None, skip_bad: bool = False,
                 check_subsets: bool = True):
        super().__init__(root, split, WFLW_SCHEME, skip_bad=skip_bad)
        if subset is not None and subset not in ATTRIBUTES:
            raise ValueError(f"unknown WFLW subset {subset!r}; choose one of {ATTRIBUTES}")
        path = list_path(self.root, split)
        if not path.is_file():
            raise DataError(path, None, "the WFLW list file (extract WFLW_annotations.tar.gz into ROOT)", "no such file")
        self.list_file = path
        self.line_numbers: list[int] = []
        images = self.root / IMAGES
        with open(path, encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    landmarks, box, flags, image = parse_line(line, path, lineno)
                except DataError as e:
                    self._bad(e)
                    continue
                self.records.append(FaceRecord(
                    key=f"{path.name}:{lineno}", image_path=str(images / image), landmarks=landmarks, box=box,
                    attributes=frozenset(a for a, on in zip(ATTRIBUTES, flags) if on), scheme="wflw"))
                self.line_numbers.append(lineno)
        if split == "test" and check_subsets:
            self._check_subsets()
        if subset is not None:
            keep = [i for i, r in enumerate(self.records) if subset in r.attributes]
            self.records = [self.records[i] for i in keep]
            self.line_numbers = [self.line_numbers[i] for i in keep]
        self._warn_skipped()

    def _check_subsets(self) -> None:
        by_image: dict[str, list[int]] = {}
        images = self.root / IMAGES
        for i, r in enumerate(self.records):
            by_image.setdefault(Path(r.image_path).relative_to(images).as_posix(), []).append(i)
        for attribute in (None,) + ATTRIBUTES:
            path = subset_path(self.root, attribute)
            if not path.is_file():
                continue
            listed: set[int] = set()
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        landmarks, image = parse_subset_line(line, path, lineno)
                    except DataError as e:
                        self.problems.append(e)
                        continue
                    i = self._match(by_image.get(image, []), landmarks)
                    if i is None:
                        self.problems.append(DataError(path, lineno, f"a face of {self.list_file.name}",
                                                       f"{image} with landmarks that match no line there"))
                        continue
                    listed.add(i)
                    if attribute is not None and attribute not in self.records[i].attributes:
                        self.problems.append(DataError(path, lineno, f"a face whose {attribute} flag is 1 in "
                                                       f"{self.list_file.name}:{self.line_numbers[i]}", "flag 0"))
            flagged = set(range(len(self.records))) if attribute is None else {
                i for i, r in enumerate(self.records) if attribute in r.attributes}
            for i in sorted(flagged - listed):
                self.problems.append(DataError(
                    self.list_file, self.line_numbers[i], f"the face to be listed in {path.name}"
                    + ("" if attribute is None else f" (its {attribute} flag is 1)"), "not listed"))
        if self.problems:
            warnings.warn(f"WFLW({self.root}, 'test'): {len(self.problems)} disagreement(s) between the attribute "
                          f"flags and the subset lists (the flags are used); first: {self.problems[0]}", stacklevel=3)

    def _match(self, candidates: list[int], landmarks: np.ndarray) -> int | None:
        """The test face among ``candidates`` whose landmarks equal ``landmarks`` (within tolerance)."""
        best, best_err = None, MATCH_TOLERANCE
        for i in candidates:
            err = float(np.abs(self.records[i].landmarks - landmarks).max())
            if err <= best_err:
                best, best_err = i, err
        return best

    def check_images(self, progress: bool = False) -> list[DataError]:
        """Decode every image once; each unreadable one is reported at the first line naming it."""
        errors = []
        first_line = {}
        for r, lineno in zip(self.records, self.line_numbers):
            first_line.setdefault(r.image_path, (r, lineno))
        for path, (r, lineno) in _progress(list(first_line.items()), progress, f"wflw {self.split} images"):
            try:
                r.load_image()
            except DataError as e:
                rel = Path(path).relative_to(self.root / IMAGES).as_posix()
                errors.append(DataError(self.list_file, lineno, f"a readable image WFLW_images/{rel}", e.found))
        return errors

    def subset_counts(self) -> dict[str, int]:
        """Number of faces per attribute flag."""
        return {a: sum(a in r.attributes for r in self.records) for a in ATTRIBUTES}
