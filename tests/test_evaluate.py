"""hihlib.inference.evaluate: crop -> original mapping, predictions against independent computations,
subset / normaliser tables, and ``hih eval`` on a WFLW-format fixture."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from formats import build_wflw_fixture
from hihlib import metrics
from hihlib.cli import main
from hihlib.codecs import get_codec
from hihlib.data import FaceDataset, FaceRecord, get_scheme, to_original
from hihlib.data.synthetic import SyntheticFaces
from hihlib.data.transforms import Augment, apply_affine, invert_affine
from hihlib.inference.evaluate import (Predictions, attribute_subsets, evaluate_predictions, format_table,
                             predict_dataset)

WFLW = get_scheme("wflw")

pytestmark = pytest.mark.usefixtures("one_torch_thread")



def synth_dataset(n=6, size=64, augment=None):
    faces = SyntheticFaces(n, seed=3, image_size=96)
    return FaceDataset(faces.records, faces.scheme, input_size=size, augment=augment, seed=1)


def test_to_original_inverts_the_items_matrix_even_with_augmentation():
    ds = synth_dataset(augment=Augment(mirror=WFLW.mirror, size=64, flip=0.0))
    items = [ds[i] for i in range(len(ds))]
    crop = torch.stack([it["landmarks"] for it in items]).double()
    M = torch.stack([it["matrix"] for it in items])
    back = to_original(crop, M).numpy()
    expected = np.stack([ds.records[i].landmarks for i in range(len(ds))])
    np.testing.assert_allclose(back, expected, atol=1e-4)  # float32 crop landmarks


class Oracle(nn.Module):
    """Outputs the codec's perfect targets for the dataset's crop landmarks, batch after batch."""

    def __init__(self, codec, crop_landmarks):
        super().__init__()
        self.codec, self.crop, self.pos = codec, crop_landmarks, 0
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, images):
        batch = self.crop[self.pos:self.pos + len(images)]
        self.pos += len(images)
        return self.codec.perfect_outputs(self.codec.encode(batch))


@pytest.mark.parametrize("name", ["gaussian", "hih"])
def test_predictions_equal_roundtrip_mapped_back_by_an_independent_inverse(name):
    ds = synth_dataset()
    codec = get_codec(name, input_size=64, heatmap_size=16)
    crop = torch.stack([ds[i]["landmarks"] for i in range(len(ds))])
    preds = predict_dataset(Oracle(codec, crop), codec, ds, batch_size=4, progress=False)
    assert set(preds.pred) == set(codec.methods) and preds.indices.tolist() == list(range(len(ds)))
    for m in codec.methods:
        rt = codec.roundtrip(crop, m).double().numpy()
        expected = np.stack([apply_affine(rt[i], invert_affine(ds.crop_matrix(i))) for i in range(len(ds))])
        np.testing.assert_allclose(preds.pred[m], expected, atol=1e-6)
    np.testing.assert_array_equal(preds.gt, np.stack([r.landmarks for r in ds.records]))


def test_subset_tables_use_the_named_normalisers_and_attribute_subsets():
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (4, 29, 2))
    shift = np.array([1.0, 2.0, 3.0, 4.0])
    pred = gt + np.stack([shift, np.zeros(4)], 1)[:, None, :]  # every point of face f moved by shift[f] px in x
    scheme = get_scheme("cofw")
    records = [FaceRecord(key=str(i), landmarks=gt[i], box=[0, 0, 1, 1], scheme="cofw",
                          attributes={"occlusion"} if i % 2 else set()) for i in range(4)]
    subsets = attribute_subsets(records)
    assert {k: v.tolist() for k, v in subsets.items()} == {"full": [0, 1, 2, 3], "occlusion": [1, 3]}
    res = evaluate_predictions(Predictions({"argmax": pred}, gt, np.arange(4)), scheme, subsets,
                               norms=["inter_ocular", "inter_pupil"])["metrics"]
    for kind, (i, j) in (("inter_ocular", (8, 9)), ("inter_pupil", (16, 17))):
        d = np.linalg.norm(gt[:, i] - gt[:, j], axis=1)
        assert res[kind]["full"]["argmax"]["nme"] == pytest.approx(100 * np.mean(shift / d), rel=1e-12)
        assert res[kind]["occlusion"]["argmax"]["nme"] == pytest.approx(100 * np.mean(shift[[1, 3]] / d[[1, 3]]), rel=1e-12)
        assert res[kind]["occlusion"]["argmax"]["n"] == 2
    table = format_table(res, "four hand-made COFW faces")
    assert table.startswith("data: four hand-made COFW faces")
    assert table.count("| inter_pupil |") == 2 and table.count("| inter_ocular |") == 2


def _tiny_checkpoint(tmp_path, root, dataset="wflw"):
    from hihlib.pipeline.config import DEFAULTS, apply_overrides
    from hihlib.training.trainer import Trainer

    cfg = apply_overrides(DEFAULTS, [f"data.dataset={dataset}", f"data.root={root}", "data.input_size=64",
                                     "model.name=hg_tiny", "model.heatmap_size=16", "model.options={width: 16, depth: 2}",
                                     "codec.name=gaussian", "train.eval_every=0", "data.augment=null"])
    t = Trainer(cfg, tmp_path / "run")
    t.save()
    return t.last_path


def test_hih_eval_on_wflw_fixture_prints_every_subset_and_decoder(tmp_path, capsys):
    root = tmp_path / "WFLW"
    build_wflw_fixture(root)
    ckpt = _tiny_checkpoint(tmp_path, root)
    rc = main(["eval", "--checkpoint", str(ckpt), "--dataset", "wflw", "--root", str(root), "--out", str(tmp_path / "ev")])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"data: WFLW test split from {root}, 4 faces" in out
    report = json.loads((tmp_path / "ev" / "eval_wflw.json").read_text())
    io = report["metrics"]["inter_ocular"]
    # fixture test flags: pose+blur, expression+illumination, makeup+occlusion+blur, none
    assert {k: io[k]["dark"]["n"] for k in io} == {"full": 4, "pose": 1, "expression": 1, "illumination": 1,
                                                   "makeup": 1, "occlusion": 1, "blur": 2}
    assert set(io["full"]) == {"dark", "argmax", "quarter", "integral"}
    assert (tmp_path / "ev" / "eval_wflw_ced.png").stat().st_size > 1000


def test_hih_eval_reports_a_missing_checkpoint_without_traceback(tmp_path, capsys):
    rc = main(["eval", "--checkpoint", str(tmp_path / "nope.pt"), "--dataset", "synth"])
    err = capsys.readouterr().err
    assert rc == 2 and "nope.pt: checkpoint not found" in err and "Traceback" not in err


def test_hih_eval_cofw_reports_both_normalisers_and_300w_its_three_subsets(tmp_path, capsys):
    from formats import build_300w_fixture, build_cofw_fixture

    build_cofw_fixture(tmp_path / "COFW")
    build_300w_fixture(tmp_path / "300W", per_folder=2)
    for name, root in (("cofw", tmp_path / "COFW"), ("300w", tmp_path / "300W")):
        ckpt = _tiny_checkpoint(tmp_path / name, root, dataset=name)
        assert main(["eval", "--checkpoint", str(ckpt), "--dataset", name, "--root", str(root),
                     "--out", str(tmp_path / name / "ev")]) == 0
    cofw = json.loads((tmp_path / "cofw" / "ev" / "eval_cofw.json").read_text())["metrics"]
    assert set(cofw) == {"inter_ocular", "inter_pupil"} and cofw["inter_pupil"]["full"]["dark"]["n"] == 2
    w300 = json.loads((tmp_path / "300w" / "ev" / "eval_300w.json").read_text())["metrics"]["inter_ocular"]
    # 2 faces in each of helen/testset and lfpw/testset (common), 2 in ibug (challenge)
    assert {k: v["dark"]["n"] for k, v in w300.items()} == {"common": 4, "challenge": 2, "full": 6}
    # full is the face-weighted mean of its two parts
    assert w300["full"]["dark"]["nme"] == pytest.approx(
        (4 * w300["common"]["dark"]["nme"] + 2 * w300["challenge"]["dark"]["nme"]) / 6)


@pytest.mark.parametrize("dataset, points", [("300w", 68), ("cofw", 29)])
def test_hih_eval_of_a_98_point_model_on_a_dataset_of_other_points_is_one_line_naming_both(tmp_path, capsys,
                                                                                           dataset, points):
    from formats import build_300w_fixture, build_cofw_fixture

    from hihlib.pipeline.config import DEFAULTS, apply_overrides
    from hihlib.training.trainer import Trainer

    root = tmp_path / dataset
    (build_300w_fixture if dataset == "300w" else build_cofw_fixture)(root)
    cfg = apply_overrides(DEFAULTS, ["data.num_train=2", "data.image_size=64", "data.input_size=64",
                                     "model.name=hg_tiny", "model.heatmap_size=16",
                                     "model.options={width: 16, depth: 2}", "codec.name=gaussian",
                                     "train.eval_every=0", "data.augment=null"])
    t = Trainer(cfg, tmp_path / "run")  # synthetic WFLW-format faces: 98 points
    t.save()
    rc = main(["eval", "--checkpoint", str(t.last_path), "--dataset", dataset, "--root", str(root),
               "--out", str(tmp_path / "ev")])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.strip() == (f"hih eval: error: {t.last_path}: the model predicts 98 landmarks but --dataset {dataset} "
                           f"has {points}; evaluate it on a dataset of 98 landmarks")
    assert not (tmp_path / "ev").exists()
