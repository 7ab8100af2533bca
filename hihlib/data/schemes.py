"""Landmark schemes: WFLW (98 points), COFW (29) and 300W (68) in one place.

A scheme says how many points a face has, which point becomes which after a horizontal flip
(``mirror``), which pairs of points normalise the NME, and how points join into curves for drawing.
"Left" and "right" are as seen in the image throughout (WFLW point 60, the outer corner of the left
eye in the image, is the subject's right eye).

The conversions ``wflw_to_300w`` and ``wflw_to_cofw`` are linear maps written as explicit tables
below: each target point is one WFLW point or the average/interpolation of a few.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class LandmarkScheme:
    """A landmark topology.

    mirror : index i becomes ``mirror[i]`` after a horizontal flip, i.e. flipped landmarks are
        ``flip_x(points)[mirror]`` (the permutation is an involution).
    normalisers : name -> (i, j); the NME normaliser is ``|p_i - p_j|``.
    groups : name -> (indices, closed) for drawing; ``closed`` joins the last point to the first.
    """

    name: str
    num_points: int
    mirror: tuple[int, ...]
    normalisers: dict[str, tuple[int, int]]
    default_norm: str
    groups: dict[str, tuple[tuple[int, ...], bool]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if sorted(self.mirror) != list(range(self.num_points)):
            raise ValueError(f"{self.name}: mirror must be a permutation of 0..{self.num_points - 1}")
        if self.default_norm not in self.normalisers:
            raise ValueError(f"{self.name}: default_norm {self.default_norm!r} not in {list(self.normalisers)}")

    def normaliser(self, kind: str | None = None) -> tuple[int, int]:
        """The (i, j) pair of normaliser ``kind`` (default: ``default_norm``)."""
        kind = kind or self.default_norm
        if kind not in self.normalisers:
            raise ValueError(f"scheme {self.name!r} has no normaliser {kind!r}; choose one of {sorted(self.normalisers)}")
        return self.normalisers[kind]


def _r(a: int, b: int) -> tuple[int, ...]:
    """Inclusive range a..b, descending when b < a (the notation of docs/REFERENCE.md)."""
    return tuple(range(a, b + 1)) if b >= a else tuple(range(a, b - 1, -1))


WFLW = LandmarkScheme(
    name="wflw",
    num_points=98,
    mirror=(
        _r(32, 0)
        + (46, 45, 44, 43, 42, 50, 49, 48, 47)
        + (37, 36, 35, 34, 33, 41, 40, 39, 38)
        + (51, 52, 53, 54)
        + (59, 58, 57, 56, 55)
        + (72, 71, 70, 69, 68, 75, 74, 73)
        + (64, 63, 62, 61, 60, 67, 66, 65)
        + (82, 81, 80, 79, 78, 77, 76)
        + (87, 86, 85, 84, 83)
        + (92, 91, 90, 89, 88)
        + (95, 94, 93)
        + (97, 96)
    ),
    normalisers={"inter_ocular": (60, 72), "inter_pupil": (96, 97)},
    default_norm="inter_ocular",
    groups={
        "contour": (_r(0, 32), False),
        "left_brow": (_r(33, 41), True),
        "right_brow": (_r(42, 50), True),
        "nose_bridge": (_r(51, 54), False),
        "nose_bottom": (_r(55, 59), False),
        "left_eye": (_r(60, 67), True),
        "right_eye": (_r(68, 75), True),
        "outer_lip": (_r(76, 87), True),
        "inner_lip": (_r(88, 95), True),
        "left_pupil": ((96,), False),
        "right_pupil": ((97,), False),
    },
)

COFW = LandmarkScheme(
    name="cofw",
    num_points=29,
    mirror=(1, 0, 3, 2, 6, 7, 4, 5, 9, 8, 11, 10, 14, 15, 12, 13, 17, 16, 19, 18, 20, 21, 23, 22, 24, 25, 26, 27, 28),
    # HRNet, PIPNet and HIH report inter-ocular (outer eye corners); ADNet and STAR inter-pupil.
    normalisers={"inter_ocular": (8, 9), "inter_pupil": (16, 17)},
    default_norm="inter_ocular",
    groups={
        "left_brow": ((0, 4, 2, 5), True),      # outer end, top, inner end, bottom
        "right_brow": ((1, 6, 3, 7), True),
        "left_eye": ((8, 12, 10, 13), True),    # outer corner, upper lid, inner corner, lower lid
        "right_eye": ((9, 14, 11, 15), True),
        "left_pupil": ((16,), False),
        "right_pupil": ((17,), False),
        "nose": ((18, 20, 19, 21), True),       # left side, tip, right side, bottom
        "outer_lip": ((22, 24, 23, 27), True),  # corners, upper lip top, lower lip bottom
        "inner_lip": ((22, 25, 23, 26), True),
        "chin": ((28,), False),
    },
)

W300 = LandmarkScheme(
    name="300w",
    num_points=68,
    mirror=(
        _r(16, 0)
        + _r(26, 17)
        + (27, 28, 29, 30)
        + _r(35, 31)
        + (45, 44, 43, 42, 47, 46)
        + (39, 38, 37, 36, 41, 40)
        + _r(54, 48)
        + _r(59, 55)
        + _r(64, 60)
        + (67, 66, 65)
    ),
    normalisers={"inter_ocular": (36, 45)},
    default_norm="inter_ocular",
    groups={
        "jaw": (_r(0, 16), False),
        "left_brow": (_r(17, 21), False),
        "right_brow": (_r(22, 26), False),
        "nose_bridge": (_r(27, 30), False),
        "nose_bottom": (_r(31, 35), False),
        "left_eye": (_r(36, 41), True),
        "right_eye": (_r(42, 47), True),
        "outer_lip": (_r(48, 59), True),
        "inner_lip": (_r(60, 67), True),
    },
)

SCHEMES: dict[str, LandmarkScheme] = {s.name: s for s in (WFLW, COFW, W300)}


def get_scheme(name: str) -> LandmarkScheme:
    """The scheme ``"wflw"`` | ``"cofw"`` | ``"300w"`` (``"w300"`` is accepted too)."""
    key = name.lower()
    key = "300w" if key == "w300" else key
    if key not in SCHEMES:
        raise ValueError(f"unknown landmark scheme {name!r}; choose one of {sorted(SCHEMES)}")
    return SCHEMES[key]


# --- WFLW 98 -> 300W 68 ---------------------------------------------------------------------------
# Each row: (300W index, ((WFLW index, weight), ...)). Weights sum to 1.
# * jaw: every second contour point (WFLW's contour has 33 points at twice 300W's density);
# * brows: the two ends are WFLW's brow corners; the three middle points average WFLW's upper
#   (34-36 / 43-45) and lower (39-41 / 47-49) brow edges, since 300W annotates the brow's mid-line;
# * nose: WFLW 51-59 are 300W 27-35 one to one;
# * eyes: 300W has 2 points per lid at 1/3 and 2/3 of the lid, WFLW has 3 at 1/4, 1/2, 3/4: the
#   300W points are linear interpolations, e.g. 1/3 = 2/3 * (1/4) + 1/3 * (1/2);
# * mouth: WFLW 76-95 are 300W 48-67 one to one.
_W300_FROM_WFLW: list[tuple[int, tuple[tuple[int, float], ...]]] = (
    [(i, ((2 * i, 1.0),)) for i in range(17)]
    + [
        (17, ((33, 1.0),)),
        (18, ((34, 0.5), (41, 0.5))),
        (19, ((35, 0.5), (40, 0.5))),
        (20, ((36, 0.5), (39, 0.5))),
        (21, ((37, 0.5), (38, 0.5))),
        (22, ((42, 0.5), (50, 0.5))),
        (23, ((43, 0.5), (49, 0.5))),
        (24, ((44, 0.5), (48, 0.5))),
        (25, ((45, 0.5), (47, 0.5))),
        (26, ((46, 1.0),)),
    ]
    + [(27 + k, ((51 + k, 1.0),)) for k in range(9)]
    + [
        # left eye: 36 outer corner, 37/38 upper lid, 39 inner corner, 40/41 lower lid (inner -> outer)
        (36, ((60, 1.0),)),
        (37, ((61, 2 / 3), (62, 1 / 3))),
        (38, ((62, 1 / 3), (63, 2 / 3))),
        (39, ((64, 1.0),)),
        (40, ((65, 2 / 3), (66, 1 / 3))),
        (41, ((66, 1 / 3), (67, 2 / 3))),
        # right eye: 42 inner corner, 43/44 upper lid, 45 outer corner, 46/47 lower lid (outer -> inner)
        (42, ((68, 1.0),)),
        (43, ((69, 2 / 3), (70, 1 / 3))),
        (44, ((70, 1 / 3), (71, 2 / 3))),
        (45, ((72, 1.0),)),
        (46, ((73, 2 / 3), (74, 1 / 3))),
        (47, ((74, 1 / 3), (75, 2 / 3))),
    ]
    + [(48 + k, ((76 + k, 1.0),)) for k in range(20)]
)

# --- WFLW 98 -> COFW 29 ---------------------------------------------------------------------------
# The WFLW point(s) closest in definition to each COFW point (docs/REFERENCE.md section 2). Of each COFW
# left/right pair, the first index is taken to be the image-left point, like WFLW's and 300W's
# (unverified against the official files; flip-equivariance holds either way, see the tests).
# COFW's "nose top" is read as the nose tip and "nose bottom" as the subnasale.
_COFW_FROM_WFLW: list[tuple[int, tuple[tuple[int, float], ...]]] = [
    (0, ((33, 1.0),)),                 # left brow outer end   <- WFLW left brow outer corner
    (1, ((46, 1.0),)),                 # right brow outer end  <- WFLW right brow outer corner
    (2, ((37, 1.0),)),                 # left brow inner end   <- WFLW left brow inner corner
    (3, ((42, 1.0),)),                 # right brow inner end  <- WFLW right brow inner corner
    (4, ((35, 1.0),)),                 # left brow top         <- middle of the upper edge 33-37
    (5, ((39, 0.5), (40, 0.5))),       # left brow bottom      <- middle of the lower edge 38-41
    (6, ((44, 1.0),)),                 # right brow top        <- middle of the upper edge 42-46
    (7, ((48, 0.5), (49, 0.5))),       # right brow bottom     <- middle of the lower edge 47-50
    (8, ((60, 1.0),)),                 # left eye outer corner
    (9, ((72, 1.0),)),                 # right eye outer corner
    (10, ((64, 1.0),)),                # left eye inner corner
    (11, ((68, 1.0),)),                # right eye inner corner
    (12, ((62, 1.0),)),                # left upper lid        <- middle of 61-63
    (13, ((66, 1.0),)),                # left lower lid        <- middle of 65-67
    (14, ((70, 1.0),)),                # right upper lid       <- middle of 69-71
    (15, ((74, 1.0),)),                # right lower lid       <- middle of 73-75
    (16, ((96, 1.0),)),                # left pupil
    (17, ((97, 1.0),)),                # right pupil
    (18, ((55, 1.0),)),                # nose left side        <- left end of the nose bottom
    (19, ((59, 1.0),)),                # nose right side       <- right end of the nose bottom
    (20, ((54, 1.0),)),                # nose top (tip)        <- lowest point of the nose bridge
    (21, ((57, 1.0),)),                # nose bottom           <- middle of the nose bottom
    (22, ((76, 1.0),)),                # mouth left corner
    (23, ((82, 1.0),)),                # mouth right corner
    (24, ((79, 1.0),)),                # upper lip top         <- top middle of the outer lip
    (25, ((90, 1.0),)),                # upper lip bottom      <- top middle of the inner lip
    (26, ((94, 1.0),)),                # lower lip top         <- bottom middle of the inner lip
    (27, ((85, 1.0),)),                # lower lip bottom      <- bottom middle of the outer lip
    (28, ((16, 1.0),)),                # chin                  <- middle of the contour
]


def _matrix(table: list[tuple[int, tuple[tuple[int, float], ...]]], rows: int, cols: int) -> np.ndarray:
    m = np.zeros((rows, cols))
    for i, terms in table:
        for j, w in terms:
            m[i, j] = w
    assert sorted(i for i, _ in table) == list(range(rows)) and np.allclose(m.sum(1), 1.0)
    m.setflags(write=False)
    return m


#: (68, 98) weights: ``pts68 = WFLW_TO_300W @ pts98``.
WFLW_TO_300W = _matrix(_W300_FROM_WFLW, 68, 98)
#: (29, 98) weights: ``pts29 = WFLW_TO_COFW @ pts98``.
WFLW_TO_COFW = _matrix(_COFW_FROM_WFLW, 29, 98)


def _convert(matrix: np.ndarray, pts, name: str):
    if pts.shape[-2:] != (matrix.shape[1], 2):
        raise ValueError(f"{name} expects points of shape (..., {matrix.shape[1]}, 2), got {tuple(pts.shape)}")
    if isinstance(pts, np.ndarray):
        return np.einsum("kj,...jc->...kc", matrix, pts)
    import torch

    m = torch.tensor(np.array(matrix), dtype=pts.dtype, device=pts.device)
    return torch.einsum("kj,...jc->...kc", m, pts)


def wflw_to_300w(pts):
    """WFLW 98 points (..., 98, 2) -> 300W 68 points (..., 68, 2); numpy array or torch tensor."""
    return _convert(WFLW_TO_300W, pts, "wflw_to_300w")


def wflw_to_cofw(pts):
    """WFLW 98 points (..., 98, 2) -> COFW 29 points (..., 29, 2); numpy array or torch tensor."""
    return _convert(WFLW_TO_COFW, pts, "wflw_to_cofw")


def convert(pts, source: str, target: str):
    """Convert points from scheme ``source`` to ``target`` (identity, wflw->300w or wflw->cofw)."""
    s, t = get_scheme(source).name, get_scheme(target).name
    if s == t:
        return pts
    if s == "wflw" and t == "300w":
        return wflw_to_300w(pts)
    if s == "wflw" and t == "cofw":
        return wflw_to_cofw(pts)
    raise ValueError(f"no conversion from {source!r} to {target!r} (only wflw -> 300w and wflw -> cofw)")
