"""``hih predict VIDEO``: landmarks on every frame of a video or a camera, with the face box tracked.

Per frame (``run_video``)::

    frame -> each tracked face's box (the tight box of its landmarks in the previous frame)
          -> Aligner.landmarks -> a face whose mean landmark score falls below ``lost_score`` is lost
          -> detection only on the first frame and on a frame where a face was lost (or none is tracked)
          -> optional One-Euro smoothing of each face's landmarks (off by default)
          -> one CSV row per face, the frame annotated into a video

The detector runs once instead of on every frame while the faces stay found; the crop follows the face
with the model's own landmarks. The tracking box is the landmarks' tight box, the box ``hih predict``'s
landmark-like boxes stand for (``hihlib.inference.predict.to_landmark_box``).

Smoothing (``OneEuroFilter``, Casiez et al., CHI 2012): an exponential filter whose cut-off rises with
the landmark's speed, ``f_c = min_cutoff + beta |dx/dt|`` (Hz; speed in pixels per second), so a still
face is smoothed hard and a moving one follows with little lag. With ``beta = 0`` it is an exponential
moving average with ``alpha = 1 / (1 + fps / (2 pi min_cutoff))``; on a still face whose landmarks carry
independent noise per frame, the mean frame-to-frame motion ("jitter", ``jitter``) then shrinks by
``alpha / sqrt(2 - alpha)`` in RMS (``tests/test_video.py`` measures it). Tracking uses the raw
landmarks, so smoothing never feeds back into the crops.

This module imports nothing of ``hihlib.inference.predict``: the ``Aligner`` is passed in.
"""

from __future__ import annotations

import csv
import math
import os
import time
from contextlib import ExitStack
from pathlib import Path

import numpy as np

from ..errors import HihError

#: File suffixes read as videos by ``hih predict`` (anything else is read as an image).
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp")


def is_video_source(source: str) -> bool:
    """A camera index ("0", "1", ...) or a file with a video suffix."""
    return str(source).isdigit() or Path(str(source)).suffix.lower() in VIDEO_SUFFIXES


def smoothing_factor(cutoff, dt: float):
    """The exponential filter's weight of the new sample for cut-off ``cutoff`` Hz and step ``dt`` s."""
    r = 2 * math.pi * np.asarray(cutoff, dtype=np.float64) * dt
    return r / (r + 1)


class OneEuroFilter:
    """The One-Euro filter on arrays of any shape (each element filtered on its own).

    min_cutoff: Hz, the cut-off of a still signal (lower: smoother, more lag); beta: how fast the cut-off
    rises with the speed (per pixel/s); d_cutoff: Hz, the cut-off of the speed estimate.
    ``filter(x, t)``: x at time t (s) -> the filtered x. The first sample passes unchanged."""

    def __init__(self, min_cutoff: float = 1.0, beta: float = 0.0, d_cutoff: float = 1.0):
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise HihError(f"One-Euro filter: expected min_cutoff > 0, d_cutoff > 0, beta >= 0, got {min_cutoff}, "
                           f"{d_cutoff}, {beta}")
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self.x = self.dx = self.t = None

    def __call__(self, x, t: float) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x is None or self.x.shape != x.shape:
            self.x, self.dx, self.t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = max(float(t) - self.t, 1e-6)
        a_d = smoothing_factor(self.d_cutoff, dt)
        self.dx = self.dx + a_d * ((x - self.x) / dt - self.dx)
        a = smoothing_factor(self.min_cutoff + self.beta * np.abs(self.dx), dt)
        self.x = self.x + a * (x - self.x)
        self.t = float(t)
        return self.x.copy()


def jitter(landmarks: np.ndarray) -> float:
    """Mean frame-to-frame landmark motion, pixels: landmarks (T, K, 2) of one face over T frames."""
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if len(landmarks) < 2:
        return float("nan")
    return float(np.linalg.norm(np.diff(landmarks, axis=0), axis=-1).mean())


def open_video(source: str):
    """``cv2.VideoCapture`` of a file or a camera index; HihError naming the source if it does not open."""
    import cv2

    if str(source).isdigit():
        cap = cv2.VideoCapture(int(source))
    else:
        if not Path(source).is_file():
            raise HihError(f"{source}: video not found")
        cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise HihError(f"{source}: expected a video file or camera that OpenCV can open")
    return cap


def _box_of(landmarks: np.ndarray) -> np.ndarray:
    return np.concatenate([landmarks.min(0), landmarks.max(0)])


def _inside(box: np.ndarray, width: int, height: int) -> bool:
    """Whether at least half of the box lies in the frame."""
    w = min(box[2], width) - max(box[0], 0)
    h = min(box[3], height) - max(box[1], 0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    return w > 0 and h > 0 and w * h >= 0.5 * area


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class _Track:
    def __init__(self, ident: int, box: np.ndarray, smoother: OneEuroFilter | None):
        self.id, self.box, self.smoother = ident, box, smoother
        self.raw: list[np.ndarray] = []
        self.smooth: list[np.ndarray] = []


def run_video(source: str, aligner, out: str | os.PathLike, *, boxes=None, largest: bool = False,
              smooth: bool = False, min_cutoff: float = 1.0, beta: float = 0.0, lost_score: float = 0.2,
              max_frames: int | None = None, max_side: int = 1280, quiet: bool = False) -> dict:
    """Landmarks on every frame of ``source`` (a video file or a camera index) with ``aligner``
    (``hihlib.Aligner``); writes OUT/<stem>_landmarks.csv (one row per face per frame: frame, time_s,
    face, box, mean_score, x_k, y_k for every landmark k, image pixels) and OUT/<stem>_landmarks.mp4
    (the frames annotated, longer side at most ``max_side``).

    boxes: landmark boxes of the faces in the first frame (no detection then); largest: track only the
    largest face; smooth: One-Euro smoothing (min_cutoff Hz, beta) of the written landmarks; lost_score:
    a face whose mean landmark score falls below it is dropped and the frame searched again.
    Returns a summary: frames, rows, detector runs, fps, per-face jitter raw and smoothed (px), paths.
    """
    import cv2

    from ..io import atomic_path

    cap = open_video(source)
    fps = cap.get(cv2.CAP_PROP_FPS) or 0.0
    camera = str(source).isdigit()
    if not fps or not math.isfinite(fps) or fps <= 0 or fps > 1000:
        fps = 30.0
    stem = f"camera{source}" if camera else Path(str(source)).stem
    out = Path(out)
    csv_path, video_path = out / f"{stem}_landmarks.csv", out / f"{stem}_landmarks.mp4"
    k = aligner.scheme.num_points
    header = (["frame", "time_s", "face", "box_x0", "box_y0", "box_x1", "box_y1", "mean_score"]
              + [f"{c}_{i}" for i in range(k) for c in ("x", "y")])
    tracks: list[_Track] = []
    finished: list[_Track] = []
    next_id, frames, rows, detections = 0, 0, 0, 0
    start = time.monotonic()
    writer = None

    def new_tracks(found_boxes, ident):
        made = [_Track(ident + i, b, OneEuroFilter(min_cutoff, beta) if smooth else None)
                for i, b in enumerate(np.asarray(found_boxes, dtype=np.float64).reshape(-1, 4))]
        return made, ident + len(made)

    try:
        with ExitStack() as stack:
            csv_tmp = stack.enter_context(atomic_path(csv_path))
            video_tmp = stack.enter_context(atomic_path(video_path))
            table = csv.writer(stack.enter_context(open(csv_tmp, "w", newline="")))
            table.writerow(header)
            while max_frames is None or frames < max_frames:
                try:
                    ok, frame = cap.read()
                except KeyboardInterrupt:  # a camera is stopped with Ctrl-C: keep what was written
                    break
                if not ok:
                    break
                image = np.ascontiguousarray(frame[..., ::-1])  # BGR -> RGB
                h, w = image.shape[:2]
                t = (time.monotonic() - start) if camera else frames / fps
                if frames == 0 and boxes is not None:
                    tracks, next_id = new_tracks(boxes, next_id)
                faces = aligner.landmarks(image, np.array([tr.box for tr in tracks]).reshape(-1, 4))
                keep = [i for i, tr in enumerate(tracks) if faces.scores[i].mean() >= lost_score
                        and _inside(_box_of(faces.landmarks[i]), w, h)]
                lost = len(keep) < len(tracks) or not tracks
                finished += [tr for i, tr in enumerate(tracks) if i not in keep]
                tracks = [tracks[i] for i in keep]
                pts, scores = [faces.landmarks[i] for i in keep], [faces.scores[i] for i in keep]
                if lost and not (largest and tracks):
                    found = aligner.detect(image, largest=largest)
                    detections += 1
                    fresh = [b for b in aligner.crop_boxes(found)
                             if all(_iou(b, _box_of(p)) < 0.3 for p in pts)]
                    made, next_id = new_tracks(fresh, next_id)
                    if made:
                        more = aligner.landmarks(image, np.array([tr.box for tr in made]))
                        tracks += made
                        pts += list(more.landmarks)
                        scores += list(more.scores)
                shown = []
                for tr, p, s in zip(tracks, pts, scores):
                    tr.box = _box_of(p)  # the next frame's crop box
                    tr.raw.append(p)
                    q = tr.smoother(p, t) if tr.smoother is not None else p
                    tr.smooth.append(q)
                    shown.append(q)
                    table.writerow([frames, f"{t:.4f}", tr.id, *(f"{v:.2f}" for v in tr.box), f"{s.mean():.4f}",
                                    *(f"{v:.3f}" for v in q.reshape(-1))])
                    rows += 1
                drawn = aligner.draw(image, np.array(shown).reshape(-1, k, 2), np.array([tr.box for tr in tracks]),
                                     [f"face {tr.id}" for tr in tracks], max_side=max_side)
                if writer is None:
                    writer = cv2.VideoWriter(str(video_tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (drawn.shape[1], drawn.shape[0]))
                    if not writer.isOpened():
                        raise HihError(f"{video_path}: OpenCV cannot write an mp4v video here")
                writer.write(np.ascontiguousarray(drawn[..., ::-1]))
                frames += 1
            if writer is not None:
                writer.release()
            if frames == 0:
                raise HihError(f"{source}: no frame could be read")
    finally:
        cap.release()
    finished += tracks
    per_face = {tr.id: {"frames": len(tr.raw), "jitter_raw": jitter(np.array(tr.raw)),
                        "jitter_smoothed": jitter(np.array(tr.smooth))} for tr in finished}
    summary = {"source": str(source), "frames": frames, "rows": rows, "detector_runs": detections, "fps": fps,
               "smooth": {"min_cutoff": min_cutoff, "beta": beta} if smooth else None, "faces": per_face,
               "csv": str(csv_path), "video": str(video_path)}
    if not quiet:
        for ident, f in per_face.items():
            line = f"face {ident}: {f['frames']} frames, mean frame-to-frame landmark motion {f['jitter_raw']:.3f} px"
            print(line + (f" ({f['jitter_smoothed']:.3f} px smoothed)" if smooth else ""))
        print(f"{source}: {frames} frames, {rows} face rows, detector run on {detections} frame(s); "
              f"wrote {csv_path} and {video_path.name}")
    return summary
