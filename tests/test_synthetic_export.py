"""Specification of ``hih data synth``: synthetic faces written in the WFLW, COFW and 300W formats load
back through the real loaders with the generator's landmarks to 1e-4 px."""

import re

import h5py
import numpy as np
import pytest

from hihlib.cli import main as hih
from hihlib.data import COFW, W300, WFLW, wflw_to_300w, wflw_to_cofw
from hihlib.data.synthetic import annotate, occluded_at, render, sample_params
from hihlib.data.synthetic_export import CHALLENGE_START, TEST_START, export_300w

SEED = 4


def face_index(path) -> int:
    return int(re.search(r"_(\d{7})\.\w+$", str(path)).group(1))


@pytest.fixture(scope="module")
def wflw_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("wflw")
    assert hih(["data", "synth", "--format", "wflw", "--out", str(root), "--train", "4", "--test", "6",
                "--seed", str(SEED), "--attribute-prob", "0.5"]) == 0
    return root


def test_wflw_export_loads_back_with_the_generator_landmarks(wflw_root):
    for split, start, n in (("train", 0, 4), ("test", TEST_START, 6)):
        ds = WFLW(wflw_root, split)
        assert len(ds.records) == n and not ds.problems
        for k, rec in enumerate(ds.records):
            i = face_index(rec.image_path)
            assert i == start + k
            p = sample_params(i, SEED, attribute_prob=0.5)
            landmarks, _, box = annotate(p)
            assert np.abs(rec.landmarks - landmarks).max() < 1e-4
            assert np.abs(rec.box - box).max() < 1e-4
            assert rec.attributes == p.attributes
            # JPEG quality 95: close to the rendered image, not equal
            assert np.abs(rec.load_image().astype(int) - render(p)[0].astype(int)).mean() < 3


def test_wflw_subset_lists_agree_with_the_flags(wflw_root):
    lines = (wflw_root / "WFLW_annotations/list_98pt_test/list_98pt_test.txt").read_text().splitlines()
    assert len(lines) == 6 and all(len(line.split()) == 197 for line in lines)
    main = (wflw_root / "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_test.txt").read_text()
    assert all(len(line.split()) == 207 for line in main.splitlines())
    ds = WFLW(wflw_root, "test")
    counts = ds.subset_counts()
    for attribute, suffix in (("pose", "largepose"), ("blur", "blur"), ("makeup", "makeup")):
        subset = (wflw_root / f"WFLW_annotations/list_98pt_test/list_98pt_test_{suffix}.txt").read_text().splitlines()
        assert len(subset) == counts[attribute] == sum(attribute in r.attributes for r in ds.records)
    assert sum(counts.values()) > 0
    # the data checker accepts the export (only the official counts differ)
    assert hih(["data", "check", str(wflw_root), "--dataset", "wflw", "--allow-counts"]) == 0


def test_cofw_export_is_matlab_v73_with_29_points_1_based_and_occlusion_flags(tmp_path):
    assert hih(["data", "synth", "--format", "cofw", "--out", str(tmp_path), "--train", "3", "--test", "4",
                "--seed", str(SEED), "--attribute-prob", "1"]) == 0
    path = tmp_path / "COFW_test_color.mat"
    assert path.read_bytes()[:10] == b"MATLAB 7.3" and h5py.is_hdf5(path)
    with h5py.File(path, "r") as f:
        assert f["phisT"].shape == (87, 4) and f["bboxesT"].shape == (4, 4)
    occluded_points = 0
    for split, start, n in (("train", 0, 3), ("test", TEST_START, 4)):
        ds = COFW(tmp_path, split)
        assert len(ds.records) == n
        for k, rec in enumerate(ds.records):
            p = sample_params(start + k, SEED, attribute_prob=1.0)
            image, landmarks, _ = render(p)
            cofw = wflw_to_cofw(landmarks)
            assert np.abs(rec.landmarks - cofw).max() < 1e-4
            np.testing.assert_array_equal(rec.occluded, occluded_at(p, cofw))
            np.testing.assert_array_equal(rec.load_image(), image)   # lossless inside the .mat
            np.testing.assert_allclose(rec.box, np.concatenate([cofw.min(0), cofw.max(0)]), atol=1e-9)
            occluded_points += rec.occluded.sum()
    assert occluded_points > 0   # every face has an occluder with attribute_prob=1


def test_300w_export_fills_every_split_with_1_based_pts(tmp_path):
    summary = export_300w(tmp_path, 5, 4, seed=SEED)
    assert summary == {"train": 5, "common": 4, "challenge": 1, "private": 2, "full": 5}
    for split, n in summary.items():
        ds = W300(tmp_path, split)
        assert len(ds.records) == n
        for rec in ds.records:
            i = face_index(rec.image_path)
            prob = 0.6 if CHALLENGE_START <= i < CHALLENGE_START + 1_000_000 else None
            landmarks = annotate(sample_params(i, SEED, attribute_prob=prob))[0]
            assert np.abs(rec.landmarks - wflw_to_300w(landmarks)).max() < 1e-4
    rec = W300(tmp_path, "challenge").records[0]
    first = rec.image_path.replace(".jpg", ".pts")
    x, y = map(float, open(first).read().splitlines()[3].split())
    np.testing.assert_allclose([x, y], rec.landmarks[0] + 1, atol=1e-6)   # the file is 1-based


def test_bad_options_exit_2_without_a_traceback(tmp_path, capsys):
    assert hih(["data", "synth", "--format", "wflw", "--out", str(tmp_path), "--attribute-prob", "high"]) == 2
    err = capsys.readouterr().err
    assert "--attribute-prob 'high'" in err and "Traceback" not in err
    assert hih(["data", "synth", "--format", "cofw", "--out", str(tmp_path), "--train", "-1"]) == 2
    assert "--train and --test must be >= 0" in capsys.readouterr().err


def test_a_smaller_export_into_the_same_folder_replaces_the_earlier_one(tmp_path):
    export_300w(tmp_path, 6, 4, seed=1)
    mine = tmp_path / "ibug" / "my_own_photo.pts"
    mine.write_text("not ours")
    assert export_300w(tmp_path, 3, 2, seed=2)["common"] == 2
    assert len(W300(tmp_path, "train").records) == 3 and len(W300(tmp_path, "common", skip_bad=True).records) == 2
    assert not list(tmp_path.glob("*/*/synthetic_s1_*")) and not list(tmp_path.glob("*/synthetic_s1_*"))
    assert mine.read_text() == "not ours"   # only the exporter's own files are removed
