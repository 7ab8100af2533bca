"""Procedural faces in the WFLW 98-point topology with exact sub-pixel ground truth.

The default dataset for demos, tests and CPU experiments: no download, any size, and the one place
where the landmarks are *exactly* where the drawn features are.

How a face is made
------------------
1. ``sample_params(index, seed)`` draws everything random for face ``index`` from a numpy Generator
   seeded with ``(seed, index)``, so face i of seed s is always the same face:
   identity (face width, jaw shape, eye size and spacing, brow, nose, mouth, per-point 3D jitter),
   expression, head pose, position and scale in the image, colours, lighting, occluders, blur and
   background. ``mirror_params`` gives the parameters of the horizontally mirrored face.
2. ``face_geometry(params)`` builds a 3D template of the 98 WFLW points (groups of docs/REFERENCE.md
   section 2: contour 0-32, brows 33-50, nose 51-59, eyes 60-75, lips 76-95, pupils 96/97) plus a
   forehead arc, hairline and neck, rotates it by yaw/pitch/roll about the head centre and projects
   it with a mild perspective (camera 6 face-units away) into the image.
3. ``render(params)`` draws the projected geometry: background (smooth colour noise, gratings,
   clutter), neck, face, hair, brows, eyes, nose, lips, occluders; then lighting and blur. Curves
   are Catmull-Rom splines *through* the landmarks.

   * Facial features (brows, eyes, lips, mouth, nostrils) are filled 4x supersampled at 1/16-pixel
     precision and box-filtered: their area and centroid are within ~0.03 px of the true shape's.
   * Large shapes (face, hair, neck, objects) use OpenCV's anti-aliased fill (~0.1 px), after
     moving every edge inward by the 0.7 px that rasteriser adds.
   * Irises and pupils have analytic pixel coverage ``clip(r - d + 0.5, 0, 1)`` (``d`` the distance
     from the pixel centre to the landmark), symmetric about the landmark: the pupil's intensity
     centroid is the landmark to ~0.01 px.

   ``render(mirror_params(p))`` equals the horizontal flip of ``render(p)`` up to rasteriser
   rounding (mean difference < 0.1 grey level), with exactly the mirrored landmarks.

Coordinates follow ``hihlib.codecs.base``: pixel centres at integer coordinates, 0-based.

Attributes (WFLW's six), recorded in ``attributes`` when applied
----------------------------------------------------------------
* ``pose``: |yaw| 30-70 deg, or |pitch| 20-35 deg, or |roll| 25-50 deg (otherwise yaw ~ N(0, 8),
  pitch ~ N(0, 5), roll ~ N(0, 6) deg, clipped to 20 / 12 / 15).
* ``expression``: one or more of open mouth, smile, raised brows, squint.
* ``illumination``: strong directional shading and under/over-exposure with a gamma change.
* ``makeup``: vivid lip colour, eye shadow, eyeliner.
* ``occlusion``: one or two objects (sunglasses, mask, hand, hat band, a box) over the face; a
  landmark is ``occluded`` when it lies inside an occluder.
* ``blur``: Gaussian (sigma 1.5-3.5 px) or motion blur (7-17 px, direction -90..90 deg), both
  scaled with the image size.

By default each attribute is applied with its frequency in the WFLW test set (pose 0.13,
expression 0.126, illumination 0.279, make-up 0.082, occlusion 0.294, blur 0.309);
``attribute_prob=0`` gives clean faces.

Face size
---------
The inter-ocular distance (outer eye corners 60-72) of a face in the generated image is uniform in
[45, 100] px for a 256 image before pose (scaled with ``image_size``; 5th-95th percentiles after pose
about 50-104 px). In the standard crop (square of 1.25 x the side of the detector-like box, resized to
256) it is set by the face's proportions and pose, as in WFLW: for the default attribute mix the
median is about 125 px (5th-95th percentiles 105-140 px; frontal faces 111-140, large-pose faces
down to 50), which matches the ~120 px implied by HIH's WFLW quantization error (1.53 px of
rounding error = 1.29% NME). ``tests/test_synthetic.py`` checks these numbers.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .datasets import DATASETS
from .records import FaceRecord
from .schemes import WFLW

__all__ = ["SyntheticFaces", "FaceParams", "sample_params", "mirror_params", "face_geometry", "render",
           "render_face", "annotate", "occluded_at", "face_box", "ATTRIBUTES", "WFLW_ATTRIBUTE_PROB"]

ATTRIBUTES = DATASETS["synth"].attributes
# Fraction of WFLW test faces carrying each attribute (subset sizes / 2500, docs/REFERENCE.md).
WFLW_ATTRIBUTE_PROB = {a: n / DATASETS["wflw"].counts["test"] for a, n in DATASETS["wflw"].subset_counts.items()}

MIRROR = np.asarray(WFLW.mirror)
_SHIFT = 4                      # cv2 fixed-point bits: coordinates in 1/16 px
_ONE = 1 << _SHIFT
_CAMERA = 6.0                   # camera distance in face units (mild perspective)
_PIVOT = np.array([0.0, 0.45, -0.35])   # head rotation centre in template units
_IRIS, _PUPIL = 0.09, 0.04      # radii in face units (inter-ocular distance is ~1.4 units)

SKIN = np.array([(241, 208, 184), (226, 184, 154), (200, 150, 114), (165, 116, 84), (125, 85, 58), (92, 62, 42)], float)
HAIR = np.array([(28, 24, 20), (86, 58, 34), (196, 164, 108), (138, 62, 30), (160, 158, 156)], float)
IRIS = np.array([(92, 58, 32), (76, 116, 164), (84, 124, 74), (126, 94, 54), (70, 48, 30)], float)
LIPSTICK = np.array([(196, 28, 48), (150, 22, 84), (222, 84, 124), (120, 30, 42), (232, 70, 60)], float)
SHADOW = np.array([(120, 64, 140), (62, 84, 152), (150, 104, 64), (46, 44, 48), (40, 120, 110)], float)
PUPIL = np.array([14.0, 12.0, 12.0])


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

@dataclass
class FaceParams:
    """Everything random about one face. Lengths are in face units (the template's half face width
    is 1) unless they say px; angles in degrees; colours RGB 0-255."""

    image_size: int
    identity: dict            # symmetric shape parameters (see _sample_identity)
    jitter: np.ndarray        # (98, 3) per-point 3D offsets, the only asymmetric part of a face
    gaze: np.ndarray          # (2,) pupil offset as a fraction of the eye width / height
    expression: dict          # open, smile, raise, squint (0 = neutral)
    pose: np.ndarray          # (3,) yaw, pitch, roll in degrees
    centre: np.ndarray        # (2,) image position (px) of the head pivot
    scale: float              # px per face unit
    colours: dict             # skin, hair, brow, iris, sclera, lip, shadow (or None), liner
    light: dict               # k (shading strength), direction (2,), gain, gamma
    occluders: list           # dicts: shape, anchor (i, j), offset (2,), size (2,), angle, colour
    blur: tuple | None        # ("gaussian", sigma_px) | ("motion", length_px, angle_deg) | None
    grid: np.ndarray          # (g, g, 3) uint8 low-resolution background, upsampled to the image
    clutter: list             # dicts: shape, centre (2,) px, size (2,) px, angle, colour
    box_jitter: np.ndarray    # (4,) dx, dy (fractions of the side), log-scales of width and height
    attributes: frozenset = field(default_factory=frozenset)
    texture: dict | None = None   # background grating: k (2,) rad/px about the image centre, phase, amplitude (3,)


def _resolve_prob(attribute_prob) -> dict:
    if attribute_prob is None:
        return dict(WFLW_ATTRIBUTE_PROB)
    if isinstance(attribute_prob, (int, float)):
        return {a: float(attribute_prob) for a in ATTRIBUTES}
    unknown = set(attribute_prob) - set(ATTRIBUTES)
    if unknown:
        raise ValueError(f"unknown attributes {sorted(unknown)}; expected some of {ATTRIBUTES}")
    return {**WFLW_ATTRIBUTE_PROB, **{k: float(v) for k, v in attribute_prob.items()}}


def _rng(index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index)])


def sample_params(index: int, seed: int = 0, *, image_size: int = 256, attribute_prob=None) -> FaceParams:
    """The parameters of face ``index`` of ``seed`` (deterministic).

    attribute_prob: None (WFLW frequencies), a float for every attribute, or a dict
    attribute -> probability (others keep the WFLW frequency).
    """
    prob = _resolve_prob(attribute_prob)
    rng = _rng(index, seed)
    u = rng.uniform
    W = int(image_size)
    px = W / 256.0
    # Draw every attribute decision first so that the sequence of draws is fixed.
    attrs = frozenset(a for a in ATTRIBUTES if rng.random() < prob[a])

    identity = dict(
        face_w=u(0.92, 1.08), chin_y=u(1.30, 1.50), jaw_n=u(2.0, 3.2), contour_top=u(-0.2, 0.0),
        eye_y=u(-0.03, 0.03), eye_outer=u(0.54, 0.62), eye_w=u(0.32, 0.39), eye_open=u(0.9, 1.15), tilt=u(-0.01, 0.03),
        brow_y=u(-0.33, -0.25), brow_arch=u(0.03, 0.08), brow_thick=u(0.05, 0.09), brow_inner=u(0.08, 0.14),
        brow_len=u(0.52, 0.62), nose_tip=u(0.50, 0.60), nose_w=u(0.14, 0.20), mouth_y=u(0.86, 0.98),
        mouth_w=u(0.34, 0.46), lip_up=u(0.05, 0.08), lip_lo=u(0.06, 0.10), forehead=u(0.95, 1.15),
        hairline=u(0.65, 0.85),
    )
    jitter = rng.normal(0, 0.008, (98, 3))
    gaze = np.array([u(-0.08, 0.08), u(-0.05, 0.05)])

    expression = dict(open=u(0, 0.02) if rng.random() < 0.3 else 0.0, smile=u(0, 0.2), raise_=0.0, squint=0.0)
    if "expression" in attrs:
        kinds = rng.random(4) < 0.4
        if not kinds.any():
            kinds[rng.integers(4)] = True
        expression["open"] = u(0.12, 0.35) if kinds[0] else expression["open"]
        expression["smile"] = u(0.5, 1.0) if kinds[1] else expression["smile"]
        expression["raise_"] = u(0.06, 0.12) if kinds[2] else 0.0
        expression["squint"] = u(0.35, 0.6) if kinds[3] else 0.0

    pose = np.array([np.clip(rng.normal(0, 8), -20, 20), np.clip(rng.normal(0, 5), -12, 12),
                     np.clip(rng.normal(0, 6), -15, 15)])
    if "pose" in attrs:
        which = rng.integers(3)
        sign = rng.choice([-1.0, 1.0])
        pose[which] = sign * (u(30, 70), u(20, 35), u(25, 50))[which]

    iod = u(45, 100) * px
    scale = iod / (2 * identity["eye_outer"])
    centre = np.array([u(0.42, 0.58), u(0.47, 0.58)]) * W

    skin = np.clip(SKIN[rng.integers(len(SKIN))] + rng.normal(0, 6, 3), 0, 255)
    hair = np.clip(HAIR[rng.integers(len(HAIR))] + rng.normal(0, 6, 3), 0, 255)
    colours = dict(skin=skin, hair=hair, brow=hair * 0.8 + skin * 0.05,
                   iris=np.clip(IRIS[rng.integers(len(IRIS))] + rng.normal(0, 6, 3), 40, 255),
                   sclera=np.clip(np.array([236.0, 232, 224]) + rng.normal(0, 4, 3), 0, 255),
                   lip=np.clip(skin * np.array([0.86, 0.62, 0.62]) + rng.normal(0, 5, 3), 0, 255),
                   shadow=None, liner=1.0)
    if "makeup" in attrs:
        colours["lip"] = np.clip(LIPSTICK[rng.integers(len(LIPSTICK))] + rng.normal(0, 8, 3), 0, 255)
        colours["shadow"] = np.clip(SHADOW[rng.integers(len(SHADOW))] + rng.normal(0, 8, 3), 0, 255)
        colours["liner"] = u(2.0, 3.0)

    theta = u(0, 2 * np.pi)
    light = dict(k=u(0, 0.15), direction=np.array([math.cos(theta), math.sin(theta)]), gain=u(0.9, 1.1), gamma=1.0)
    if "illumination" in attrs:
        light.update(k=u(0.5, 0.9), gain=u(0.35, 0.6) if rng.random() < 0.5 else u(1.35, 1.8), gamma=u(0.7, 1.4))

    occluders = []
    if "occlusion" in attrs:
        for kind in rng.choice(["sunglasses", "mask", "hand", "hat", "box"], size=1 + int(rng.random() < 0.3), replace=False):
            occluders.extend(_sample_occluder(str(kind), rng, skin))

    blur = None
    if "blur" in attrs:
        blur = (("gaussian", u(1.5, 3.5) * px) if rng.random() < 0.5
                else ("motion", u(7, 17) * px, u(-90, 90)))

    g = int(rng.integers(2, 10))
    grid = rng.integers(0, 256, (g, g, 3))
    grid = (0.6 * grid + 0.4 * grid.mean(axis=2, keepdims=True)).astype(np.uint8)   # less garish
    clutter = [dict(shape=str(rng.choice(["ellipse", "rect"])), centre=rng.uniform(0, W, 2),
                    size=rng.uniform(0.05, 0.3, 2) * W, angle=u(0, 180), colour=rng.uniform(0, 255, 3))
               for _ in range(int(rng.integers(0, 5)))]
    box_jitter = np.array([rng.normal(0, 0.03), rng.normal(0, 0.03), rng.normal(0, 0.05), rng.normal(0, 0.05)])
    texture = None
    if rng.random() < 0.5:   # stripes, weaves or fine patterns behind the person
        freq, orient = min(u(0.05, 0.8) / px, 1.0), u(0, np.pi)   # periods of 6+ px: no aliasing
        texture = dict(k=freq * np.array([math.cos(orient), math.sin(orient)]), phase=u(0, 2 * np.pi),
                       amplitude=rng.uniform(5, 35, 3))
    return FaceParams(texture=texture, image_size=W, identity=identity, jitter=jitter, gaze=gaze, expression=expression, pose=pose,
                      centre=centre, scale=scale, colours=colours, light=light, occluders=occluders, blur=blur,
                      grid=grid, clutter=clutter, box_jitter=box_jitter, attributes=attrs)


def _sample_occluder(kind: str, rng: np.random.Generator, skin) -> list[dict]:
    """Occluders are anchored to the midpoint of two landmarks; offsets and sizes are in face units
    in the face's own frame, so they follow pose and mirror with the face."""
    u = rng.uniform
    colour = rng.uniform(0, 255, 3)
    if kind == "sunglasses":
        dark = np.array([22.0, 22, 28]) + u(0, 30)
        return [dict(shape="ellipse", anchor=(96, 96), offset=np.zeros(2), size=np.array([u(0.26, 0.32), u(0.16, 0.22)]), angle=0.0, colour=dark),
                dict(shape="ellipse", anchor=(97, 97), offset=np.zeros(2), size=np.array([u(0.26, 0.32), u(0.16, 0.22)]), angle=0.0, colour=dark),
                dict(shape="rect", anchor=(64, 68), offset=np.array([0.0, -0.03]), size=np.array([0.16, 0.025]), angle=0.0, colour=dark)]
    if kind == "mask":
        return [dict(shape="rect", anchor=(54, 16), offset=np.array([0.0, u(-0.05, 0.1)]),
                     size=np.array([u(0.75, 0.95), u(0.55, 0.7)]), angle=0.0, colour=np.array([200.0, 214, 232]) - u(0, 60))]
    if kind == "hand":
        anchor = int(rng.choice([8, 24, 16, 54, 96, 97, 79]))
        return [dict(shape="ellipse", anchor=(anchor, anchor), offset=rng.uniform(-0.2, 0.2, 2),
                     size=np.array([u(0.25, 0.4), u(0.35, 0.55)]), angle=u(-60, 60),
                     colour=np.clip(skin * u(0.8, 1.1), 0, 255))]
    if kind == "hat":
        return [dict(shape="rect", anchor=(35, 44), offset=np.array([0.0, u(-0.15, 0.0)]),
                     size=np.array([u(1.1, 1.4), u(0.12, 0.25)]), angle=u(-10, 10), colour=colour)]
    anchor = int(rng.integers(0, 98))
    return [dict(shape=str(rng.choice(["rect", "ellipse"])), anchor=(anchor, anchor), offset=rng.uniform(-0.2, 0.2, 2),
                 size=rng.uniform(0.15, 0.4, 2), angle=u(-90, 90), colour=colour)]


def mirror_params(p: FaceParams) -> FaceParams:
    """Parameters of the mirror image: rendering them equals flipping the rendered face
    horizontally, and their landmarks are the flipped landmarks relabelled by WFLW's mirror."""
    S = np.array([-1.0, 1.0, 1.0])
    W = p.image_size
    occluders = [dict(o, anchor=(int(MIRROR[o["anchor"][1]]), int(MIRROR[o["anchor"][0]])),
                      offset=o["offset"] * (-1, 1), angle=-o["angle"]) for o in p.occluders]
    clutter = [dict(c, centre=np.array([W - 1 - c["centre"][0], c["centre"][1]]), angle=-c["angle"]) for c in p.clutter]
    blur = p.blur
    if blur is not None and blur[0] == "motion":
        blur = ("motion", blur[1], -blur[2])
    return dataclasses.replace(
        p, jitter=(p.jitter * S)[MIRROR], gaze=p.gaze * (-1, 1), pose=p.pose * (-1, 1, -1),
        centre=np.array([W - 1 - p.centre[0], p.centre[1]]),
        light=dict(p.light, direction=p.light["direction"] * (-1, 1)), occluders=occluders, blur=blur,
        grid=np.ascontiguousarray(p.grid[:, ::-1]), clutter=clutter, box_jitter=p.box_jitter * (-1, 1, 1, 1),
        texture=None if p.texture is None else dict(p.texture, k=p.texture["k"] * (-1, 1)))


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------

def _template(ident: dict, expr: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The 3D face in template units (x right, y down, z toward the camera), symmetric about x=0.

    Returns (landmarks (98, 3), forehead arc (F, 3) from the left temple over the head to the
    right, hairline arc (F, 3), neck (4, 3)).
    """
    P = np.zeros((98, 3))
    a, top, b, n = ident["face_w"], ident["contour_top"], ident["chin_y"] - ident["contour_top"], ident["jaw_n"]
    opened, smile, raise_, squint = expr["open"], expr["smile"], expr["raise_"], expr["squint"]

    # Contour, left half 0..16 at equal arc length along a superellipse (16 = chin).
    th = np.linspace(0, np.pi / 2, 200)
    c, s = np.cos(th), np.sin(th)
    curve = np.stack([-a * c ** (2 / n), top + b * s ** (2 / n)], 1)
    arc = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(curve, axis=0), axis=1))])
    t = np.interp(np.linspace(0, arc[-1], 17), arc, th)
    ct, st = np.cos(t), np.sin(t)
    P[0:17, 0] = -a * ct ** (2 / n)
    P[0:17, 1] = top + b * st ** (2 / n) + 0.9 * opened * st ** 4   # the jaw drops with the mouth
    P[0:17, 2] = 0.1 - 0.55 * ct

    # Left brow: 33 outer .. 37 inner along the top, 38..41 back along the bottom.
    xi, xo = -ident["brow_inner"], -(ident["brow_inner"] + ident["brow_len"])
    tt = np.array([0, 0.25, 0.5, 0.75, 1.0, 0.85, 0.6, 0.4, 0.2])
    ytop = ident["brow_y"] - ident["brow_arch"] * np.sin(np.pi * (0.1 + 0.8 * tt)) - raise_ * (0.8 + 0.2 * tt)
    thick = ident["brow_thick"] * (0.55 + 0.45 * tt)
    P[33:42, 0] = xo + tt * (xi - xo)
    P[33:42, 1] = ytop + np.where(np.arange(9) >= 5, thick, 0.0)
    P[33:42, 2] = 0.12 + 0.1 * tt

    # Nose bridge 51..54 (top to tip) and bottom 55..57 (left ala to the middle).
    tip = ident["nose_tip"]
    P[51:55, 1] = np.linspace(ident["eye_y"] + 0.06, tip, 4)
    P[51:55, 2] = np.linspace(0.18, 0.55, 4)
    nw = ident["nose_w"]
    P[55:58] = [[-nw, tip + 0.06, 0.28], [-0.5 * nw, tip + 0.09, 0.35], [0.0, tip + 0.10, 0.42]]

    # Left eye: 60 outer corner, 61-63 upper lid, 64 inner corner, 65-67 lower lid back to the outer.
    eo, ew = ident["eye_outer"], ident["eye_w"]
    y_out, y_in = ident["eye_y"] - ident["tilt"], ident["eye_y"]
    te = np.array([0, 0.25, 0.5, 0.75, 1.0, 0.75, 0.5, 0.25])
    opening = ident["eye_open"] * (1 - squint) * (1 - 0.15 * smile)
    lid = np.sin(np.pi * te) ** 0.9 * np.where(np.arange(8) <= 4, -0.11, 0.08) * opening
    P[60:68, 0] = -eo + te * ew
    P[60:68, 1] = y_out + te * (y_in - y_out) + lid
    P[60:68, 2] = 0.05 * te + 0.12 + 0.05 * np.sin(np.pi * te)
    P[96] = [-eo + 0.5 * ew, y_out + 0.5 * (y_in - y_out), 0.2]

    # Lips: 76 left corner, 77-79 upper outer to the middle, 85-87 lower outer (85 middle),
    # 88 left inner corner, 89-90 upper inner, 94-95 lower inner.
    my, mw, lu, ll = ident["mouth_y"], ident["mouth_w"] / 2, ident["lip_up"], ident["lip_lo"]
    cx, cy = -mw - 0.05 * smile, my - 0.08 * smile     # smiling pulls the corners out and up
    P[76] = [cx, cy, 0.2]
    P[77] = [-mw * 2 / 3, my - lu * 0.8 - 0.03 * smile, 0.3]
    P[78] = [-mw / 3, my - lu * 1.05, 0.34]
    P[79] = [0.0, my - lu * 0.85, 0.36]
    P[87] = [-mw * 2 / 3, my + ll * 0.8 + opened - 0.03 * smile, 0.3]
    P[86] = [-mw / 3, my + ll * 1.0 + opened, 0.33]
    P[85] = [0.0, my + ll * 1.05 + opened, 0.34]
    P[88] = [cx + 0.04, cy, 0.22]
    P[89] = [-mw / 2, my - 0.01 - 0.02 * smile, 0.3]
    P[90] = [0.0, my - 0.008, 0.32]
    P[95] = [-mw / 2, my + 0.01 + opened - 0.02 * smile, 0.3]
    P[94] = [0.0, my + 0.012 + opened, 0.32]

    # The right half is the mirror image of the left (centre points already have x = 0).
    P[16, 0] = 0.0
    left_idx = np.nonzero(P[:, 0] < 0)[0]
    P[MIRROR[left_idx]] = P[left_idx] * (-1, 1, 1)
    P[96:98, 0] += ident.get("gaze_x", 0.0) * ew   # both eyes look the same way

    phi = np.linspace(0, np.pi, 25)
    forehead = np.stack([-a * np.cos(phi), top - ident["forehead"] * np.sin(phi), 0.1 - 0.55 * np.abs(np.cos(phi))], 1)
    hair = np.stack([-1.08 * a * np.cos(phi), top + 0.25 - (ident["forehead"] + 0.35) * np.sin(phi),
                     0.1 - 0.55 * np.abs(np.cos(phi))], 1)
    hairline = np.stack([-a * np.cos(phi), top - ident["hairline"] * np.sin(phi) ** 0.7, 0.1 - 0.55 * np.abs(np.cos(phi))], 1)
    hair = np.concatenate([hair, hairline[::-1]])
    neck_y = top + 0.6 * b
    neck = np.array([[-0.55 * a, neck_y, -0.3], [0.55 * a, neck_y, -0.3], [0.6 * a, neck_y + 3, -0.3], [-0.6 * a, neck_y + 3, -0.3]])
    return P, forehead, hair, neck


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    y, p, r = np.radians([yaw, pitch, roll])
    Ry = np.array([[math.cos(y), 0, math.sin(y)], [0, 1, 0], [-math.sin(y), 0, math.cos(y)]])
    Rx = np.array([[1, 0, 0], [0, math.cos(p), -math.sin(p)], [0, math.sin(p), math.cos(p)]])
    Rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


@dataclass
class FaceGeometry:
    """Projected geometry of one face, image pixels. landmarks (98, 2); forehead (F, 2), hair
    (H, 2), neck (4, 2) polygons; pixel radii of iris and pupil; ``up`` (2,) unit vector pointing
    to the top of the head in the image; ``angle`` of the eye line in degrees."""

    landmarks: np.ndarray
    forehead: np.ndarray
    hair: np.ndarray
    neck: np.ndarray
    iris_px: float
    pupil_px: float
    up: np.ndarray
    angle: float
    scale: float


def face_geometry(p: FaceParams) -> FaceGeometry:
    """Project the posed 3D template into the image (vectorised over all points)."""
    ident = dict(p.identity, gaze_x=p.gaze[0])
    P, forehead, hair, neck = _template(ident, p.expression)
    P = P + p.jitter
    eye_h = 0.19 * ident["eye_open"]
    P[96, 1] += p.gaze[1] * eye_h
    P[97, 1] += p.gaze[1] * eye_h
    pts = np.concatenate([P, forehead, hair, neck])
    R = _rotation(*p.pose)
    Q = (pts - _PIVOT) @ R.T
    f = _CAMERA / (_CAMERA - Q[:, 2:3])          # perspective: nearer points are larger
    xy = p.centre + p.scale * f[:, :] * Q[:, :2]
    nF, nH = len(forehead), len(hair)
    up = R[:2, :2] @ np.array([0.0, -1.0])
    up = up / (np.linalg.norm(up) + 1e-12)
    lm = xy[:98]
    eye_vec = lm[72] - lm[60]
    return FaceGeometry(landmarks=lm, forehead=xy[98:98 + nF], hair=xy[98 + nF:98 + nF + nH], neck=xy[98 + nF + nH:],
                        iris_px=_IRIS * p.scale * float(f[96, 0]), pupil_px=_PUPIL * p.scale * float(f[96, 0]),
                        up=up, angle=math.degrees(math.atan2(eye_vec[1], eye_vec[0])), scale=p.scale)


def _occluder_polygons(p: FaceParams, g: FaceGeometry) -> list[tuple[np.ndarray, np.ndarray]]:
    """(polygon (N, 2) px, colour) for each occluder, placed in the face's rotated frame."""
    out = []
    a = math.radians(g.angle)
    Rf = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    for o in p.occluders:
        i, j = o["anchor"]
        c = 0.5 * (g.landmarks[i] + g.landmarks[j]) + g.scale * (Rf @ o["offset"])
        poly = _shape_polygon(o["shape"], c, g.scale * o["size"], g.angle + o["angle"])
        out.append((poly, o["colour"]))
    return out


def _shape_polygon(shape: str, centre, half_size, angle_deg: float) -> np.ndarray:
    """Ellipse (32 vertices) or rectangle with semi-axes ``half_size`` rotated by ``angle_deg``."""
    if shape == "ellipse":
        t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        local = np.stack([np.cos(t), np.sin(t)], 1)
    else:
        local = np.array([[-1.0, -1], [1, -1], [1, 1], [-1, 1]])
    a = math.radians(angle_deg)
    R = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return np.asarray(centre) + (local * half_size) @ R.T


def points_in_polygon(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Even-odd test of points (K, 2) against a polygon (N, 2), vectorised -> (K,) bool."""
    x, y = points[:, 0:1], points[:, 1:2]
    x1, y1 = poly[None, :, 0], poly[None, :, 1]
    x2, y2 = np.roll(poly[:, 0], -1)[None], np.roll(poly[:, 1], -1)[None]
    crosses = (y1 > y) != (y2 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
    return (crosses & (x < x_at)).sum(axis=1) % 2 == 1


def face_box(p: FaceParams, landmarks: np.ndarray) -> np.ndarray:
    """A detector-like box: the landmarks' extent, shifted and rescaled by the face's jitter."""
    lo, hi = landmarks.min(0), landmarks.max(0)
    c, size = (lo + hi) / 2, hi - lo
    side = size.max()
    c = c + p.box_jitter[:2] * side
    size = size * np.exp(p.box_jitter[2:])
    return np.concatenate([c - size / 2, c + size / 2])


def occluded_at(p: FaceParams, points: np.ndarray, geometry: FaceGeometry | None = None) -> np.ndarray:
    """Whether each of ``points`` (K, 2) image px lies under one of the face's occluders -> (K,) bool.
    Used for the 98 landmarks and for points derived from them (COFW's 29)."""
    g = geometry if geometry is not None else face_geometry(p)
    points = np.asarray(points, dtype=np.float64)
    occluded = np.zeros(len(points), bool)
    for poly, _ in _occluder_polygons(p, g):
        occluded |= points_in_polygon(points, poly)
    return occluded


def annotate(p: FaceParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(landmarks (98, 2), occluded (98,) bool, box (4,)) without rendering the image."""
    g = face_geometry(p)
    return g.landmarks, occluded_at(p, g.landmarks, g), face_box(p, g.landmarks)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _cr_weights(n: int) -> np.ndarray:
    """Catmull-Rom weights of p0..p3 at t = 0, 1/n, ..., (n-1)/n: (n, 4)."""
    t = np.linspace(0, 1, n, endpoint=False)[:, None]
    return 0.5 * np.concatenate([-t + 2 * t**2 - t**3, 2 - 5 * t**2 + 3 * t**3, t + 4 * t**2 - 3 * t**3, -t**2 + t**3], axis=1)


def _catmull_rom(P: np.ndarray, n: int, closed: bool) -> np.ndarray:
    """A uniform Catmull-Rom spline through points (N, 2), ``n`` samples per segment."""
    if closed:
        ext = np.concatenate([P[-1:], P, P[:2]])
    else:
        ext = np.concatenate([2 * P[:1] - P[1:2], P, 2 * P[-1:] - P[-2:-1]])
    segs = len(P) if closed else len(P) - 1
    idx = np.arange(segs)[:, None] + np.arange(4)[None, :]          # (segs, 4) control points
    curve = np.einsum("tk,skc->stc", _cr_weights(n), ext[idx]).reshape(-1, 2)
    return curve if closed else np.concatenate([curve, P[-1:]])


def _fixed(poly: np.ndarray) -> np.ndarray:
    return np.round(poly * _ONE).astype(np.int32)


# OpenCV fills every pixel whose centre a polygon touches and then draws its anti-aliased outline
# on top, so a filled polygon comes out about 0.7 px larger on every side than the true shape
# (measured: a 20 px wide band covers 21.4 px). Moving each edge inward by that much first puts the
# 50% coverage contour on the true edge (tests/test_synthetic.py checks area and centroid).
_AA_GROWTH = 0.7


def _shrink(poly: np.ndarray, d: float = _AA_GROWTH) -> np.ndarray:
    """Offset a closed polygon (N, 2) inward by ``d`` px (mitred vertices, miter at most 2 d)."""
    nxt = np.concatenate([poly[1:], poly[:1]])
    edge = nxt - poly
    normal = edge[:, ::-1] * (1.0, -1.0) / np.maximum(np.sqrt((edge**2).sum(1)), 1e-9)[:, None]
    area2 = (poly[:, 0] * nxt[:, 1] - nxt[:, 0] * poly[:, 1]).sum()
    if area2 < 0:   # make the normals point outward whatever the winding
        normal = -normal
    prev = np.concatenate([normal[-1:], normal[:-1]])
    miter = (prev + normal) / np.maximum(1 + (prev * normal).sum(1), 0.5)[:, None]
    return poly - d * miter


def _fill(img, poly, colour):
    """Large shapes (face, hair, neck, occluders, clutter): OpenCV's anti-aliased fill, whose
    coverage is right to about 0.1 px on smooth outlines."""
    cv2.fillPoly(img, [_fixed(_shrink(poly))], tuple(float(c) for c in colour), cv2.LINE_AA, _SHIFT)


_SUPERSAMPLE = 4


def _roi(poly: np.ndarray, shape) -> tuple[int, int, int, int] | None:
    """Pixel bounds (x0, y0, x1, y1) around a polygon, clipped to the image; None when outside.
    Symmetric under a horizontal flip, so mirrored faces get mirrored regions."""
    H, W = shape[:2]
    x0, y0 = np.floor(poly.min(0)).astype(int) - 1
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
    return None if x1 <= x0 or y1 <= y0 else (int(x0), int(y0), int(x1), int(y1))


def _coverage(poly: np.ndarray, roi) -> np.ndarray:
    """Fraction of each pixel of ``roi`` inside ``poly``: (h, w) float32 in [0, 1].

    Drawn 4x supersampled and box-filtered (INTER_AREA), which puts a facial feature's area and
    centroid within ~0.03 px of the true shape's (OpenCV's AA alone errs by up to ~0.3 px)."""
    x0, y0, x1, y1 = roi
    s = _SUPERSAMPLE
    big = np.zeros(((y1 - y0) * s, (x1 - x0) * s), np.uint8)
    fine = (poly - (x0, y0) + 0.5) * s - 0.5    # the same pixel-centre convention on the fine grid
    cv2.fillPoly(big, [_fixed(_shrink(fine))], 255, cv2.LINE_AA, _SHIFT)
    return cv2.resize(big, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255)


def _fill_precise(img, poly, colour):
    """Facial features (brows, lips, mouth, nostrils): supersampled coverage, blended in."""
    roi = _roi(poly, img.shape)
    if roi is None:
        return
    x0, y0, x1, y1 = roi
    m = _coverage(poly, roi)[..., None]
    patch = img[y0:y1, x0:x1].astype(np.float32)
    patch += (np.asarray(colour, np.float32) - patch) * m
    img[y0:y1, x0:x1] = (patch + 0.5).astype(np.uint8)


def _line(img, poly, colour, thickness, closed=False):
    cv2.polylines(img, [_fixed(poly)], closed, tuple(float(c) for c in colour), max(1, int(round(thickness))), cv2.LINE_AA, _SHIFT)


def _draw_eye(img, outline, pupil_xy, iris_r, pupil_r, sclera, iris):
    """Sclera, then iris and pupil discs with analytic coverage, clipped to the eye outline."""
    roi = _roi(outline, img.shape)
    if roi is None:
        return
    x0, y0, x1, y1 = roi
    m = _coverage(outline, roi)[..., None]
    yy, xx = np.mgrid[y0:y1, x0:x1]
    d = np.hypot(xx - pupil_xy[0], yy - pupil_xy[1])
    cov_i = np.clip(iris_r - d + 0.5, 0, 1)[..., None]
    cov_p = np.clip(pupil_r - d + 0.5, 0, 1)[..., None]
    eye = sclera + cov_i * (iris - sclera) + cov_p * (PUPIL - iris)
    roi_px = img[y0:y1, x0:x1]
    roi_px[:] = np.clip(roi_px * (1 - m) + eye * m + 0.5, 0, 255).astype(np.uint8)


def render(p: FaceParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw the face. Returns (image (S, S, 3) uint8 RGB, landmarks (98, 2) px, occluded (98,) bool)."""
    W = p.image_size
    g = face_geometry(p)
    L = g.landmarks
    col = p.colours
    img = cv2.resize(p.grid, (W, W), interpolation=cv2.INTER_LINEAR)
    if p.texture is not None:
        # cos(kx x + ky y + phase) about the image centre, as two outer products (separable)
        t = p.texture
        r = np.arange(W, dtype=np.float64) - (W - 1) / 2
        ax, ay = t["k"][0] * r + t["phase"], t["k"][1] * r
        grating = (np.outer(np.cos(ay), np.cos(ax)) - np.outer(np.sin(ay), np.sin(ax))).astype(np.float32)
        img = cv2.add(img, cv2.merge([grating * np.float32(a) for a in t["amplitude"]]), dtype=cv2.CV_8U)
    for c in p.clutter:
        _fill(img, _shape_polygon(c["shape"], c["centre"], c["size"] / 2, c["angle"]), c["colour"])

    skin = col["skin"]
    _fill(img, g.neck, skin * 0.82)
    _fill(img, g.hair[: len(g.hair) // 2], col["hair"] * 0.85)   # the back of the head
    face = np.concatenate([_catmull_rom(L[0:33], 4, closed=False), g.forehead[::-1][1:-1]])
    _fill(img, face, skin)
    _fill(img, g.hair, col["hair"])   # hair over the forehead, down to the hairline
    thin = max(1.0, g.scale / 60)

    for lo, hi in ((33, 42), (42, 51)):
        _fill_precise(img, _catmull_rom(L[lo:hi], 4, closed=True), col["brow"])

    for eye, pupil in ((np.arange(60, 68), 96), (np.arange(68, 76), 97)):
        outline = _catmull_rom(L[eye], 6, closed=True)
        upper = outline[: len(outline) // 2 + 1]
        if col["shadow"] is not None:
            lifted = upper + g.up * 0.12 * g.scale
            _fill_precise(img, np.concatenate([upper, lifted[::-1]]), col["shadow"])
        _draw_eye(img, outline, L[pupil], g.iris_px, g.pupil_px, col["sclera"], col["iris"])
        _line(img, upper, skin * 0.35, thin * col["liner"])

    nose = _catmull_rom(L[55:60], 4, closed=False)
    _line(img, nose, skin * 0.6, thin)
    _line(img, _catmull_rom(L[51:55], 4, closed=False), skin * 0.85, thin)
    for k in (56, 58):
        c = L[k] + g.up * 0.02 * g.scale
        _fill_precise(img, _shape_polygon("ellipse", c, np.array([0.03, 0.014]) * g.scale, g.angle), skin * 0.4)

    _fill_precise(img, _catmull_rom(L[76:88], 4, closed=True), col["lip"])
    inner = _catmull_rom(L[88:96], 4, closed=True)
    _fill_precise(img, inner, (70, 24, 28))
    gap = np.linalg.norm(L[94] - L[90])
    if gap > 0.06 * g.scale:
        teeth_top = inner[: len(inner) // 2 + 1]
        _fill_precise(img, np.concatenate([teeth_top, teeth_top[::-1] - g.up * 0.35 * gap]), (232, 228, 218))

    occluded = np.zeros(98, bool)
    for poly, colour in _occluder_polygons(p, g):
        _fill(img, poly, colour)
        occluded |= points_in_polygon(L, poly)

    light = p.light
    # a linear ramp along the light direction (one face size changes it by k), times an exposure gain
    xs = (np.arange(W, dtype=np.float32) - np.float32(p.centre[0])) * np.float32(light["direction"][0])
    ys = (np.arange(W, dtype=np.float32) - np.float32(p.centre[1])) * np.float32(light["direction"][1])
    ramp = np.add.outer(ys, xs)
    ramp *= np.float32(light["gain"] * light["k"] / (1.6 * g.scale))
    ramp += np.float32(light["gain"])
    np.clip(ramp, 0.1 * light["gain"], 3 * light["gain"], out=ramp)
    img = cv2.multiply(img, cv2.merge([ramp, ramp, ramp]), dtype=cv2.CV_8U)
    if light["gamma"] != 1:
        lut = np.clip(255 * (np.arange(256) / 255) ** light["gamma"] + 0.5, 0, 255).astype(np.uint8)
        img = cv2.LUT(img, lut)

    if p.blur is not None:
        if p.blur[0] == "gaussian":
            img = cv2.GaussianBlur(img, (0, 0), p.blur[1])
        else:
            img = _motion_blur(img, p.blur[1], p.blur[2])
    return img, L, occluded


def _motion_blur(img: np.ndarray, length: float, angle_deg: float) -> np.ndarray:
    """Blur along a line of ``length`` px at ``angle_deg``: rotate the direction onto the x axis,
    apply a 1-D box of that length (fractional end taps), rotate back. About 20x faster than a
    2-D filter with the line kernel, and mirroring the angle mirrors the result."""
    H, W = img.shape[:2]
    R = cv2.getRotationMatrix2D(((W - 1) / 2, (H - 1) / 2), angle_deg, 1.0)
    rot = cv2.warpAffine(img, R, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    r = int(math.ceil(length / 2))
    taps = np.clip(length / 2 - np.abs(np.arange(-r, r + 1)) + 0.5, 0, 1).astype(np.float32)
    rot = cv2.sepFilter2D(rot, -1, taps / taps.sum(), np.ones(1, np.float32), borderType=cv2.BORDER_REFLECT101)
    return cv2.warpAffine(rot, R, (W, H), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT101)


def render_face(index: int, seed: int = 0, *, image_size: int = 256, attribute_prob=None):
    """Face ``index`` of ``seed``: (image (S, S, 3) uint8 RGB, landmarks (98, 2) float64 px,
    attributes frozenset, occluded (98,) bool)."""
    p = sample_params(index, seed, image_size=image_size, attribute_prob=attribute_prob)
    image, landmarks, occluded = render(p)
    return image, landmarks, p.attributes, occluded


def _render_image(index: int, seed: int, image_size: int, attribute_prob) -> np.ndarray:
    return render(sample_params(index, seed, image_size=image_size, attribute_prob=attribute_prob))[0]


# --------------------------------------------------------------------------------------------
# Dataset
# --------------------------------------------------------------------------------------------

class SyntheticFaces:
    """``n`` procedural faces of ``seed`` as WFLW-scheme records.

    ``records[i]`` holds the exact landmarks, a detector-like box, attributes and per-landmark
    occlusion flags; its ``loader`` renders the image on demand (a picklable callable, so DataLoader
    workers can use it). Face i is the same for every ``n``.
    """

    def __init__(self, n: int, seed: int = 0, image_size: int = 256, attribute_prob=None, *, start: int = 0):
        self.n, self.seed, self.image_size, self.start = int(n), int(seed), int(image_size), int(start)
        self.attribute_prob = _resolve_prob(attribute_prob)
        self.scheme = WFLW
        self.records = [self._record(i) for i in range(self.start, self.start + self.n)]

    def _record(self, i: int) -> FaceRecord:
        p = sample_params(i, self.seed, image_size=self.image_size, attribute_prob=self.attribute_prob)
        landmarks, occluded, box = annotate(p)
        return FaceRecord(key=f"synthetic:{self.seed}:{i}", landmarks=landmarks, box=box, scheme="wflw",
                          loader=functools.partial(_render_image, i, self.seed, self.image_size, self.attribute_prob),
                          attributes=p.attributes, occluded=occluded)

    def __len__(self) -> int:
        return self.n

    def __repr__(self) -> str:
        return f"SyntheticFaces(n={self.n}, seed={self.seed}, image_size={self.image_size})"
