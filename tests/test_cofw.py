"""COFW loader on genuine MATLAB v7.3 files (hdf5storage) and on older v5 files (scipy)."""

import pickle

import h5py
import numpy as np
import pytest

from hihlib.data.cofw import COFW
from hihlib.errors import DataError
from tests.formats import build_cofw_fixture, write_cofw

hdf5storage = pytest.importorskip("hdf5storage")  # optional test dependency (pyproject [test])


@pytest.fixture(scope="module")
def v73(tmp_path_factory):
    root = tmp_path_factory.mktemp("cofw73")
    return root, build_cofw_fixture(root)


def test_fixture_is_a_real_v73_file_that_scipy_refuses(v73):
    import scipy.io

    root, _ = v73
    path = root / "COFW_train_color.mat"
    assert open(path, "rb").read(19) == b"MATLAB 7.3 MAT-file"
    assert h5py.is_hdf5(path)
    with h5py.File(path, "r") as f:
        assert f["IsTr"].dtype == h5py.ref_dtype and f["phisTr"].shape == (87, 3)  # transposed
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(str(path))


@pytest.mark.parametrize("split", ["train", "test"])
def test_v73_records_are_0_based_with_occlusion_and_boxes(v73, split):
    root, data = v73
    ds = COFW(root, split)
    d = data[split]
    assert len(ds) == len(d["images"])
    for i, r in enumerate(ds.records):
        np.testing.assert_allclose(r.landmarks, d["landmarks"][i], atol=1e-12)  # 1-based file, 0-based record
        np.testing.assert_array_equal(r.occluded, d["occluded"][i])
        np.testing.assert_allclose(r.box, d["boxes"][i], atol=1e-12)
        assert r.attributes == ({"occlusion"} if d["occluded"][i].any() else set())
        assert r.scheme == "cofw" and r.key.endswith(f".mat:{i + 1}")


def test_v73_images_are_untransposed_and_greyscale_is_expanded(v73):
    root, data = v73
    ds = COFW(root, "train")
    grey = data["train"]["images"][0]
    assert grey.ndim == 2
    img = ds[0].load_image()
    assert img.shape == grey.shape + (3,)
    for c in range(3):
        np.testing.assert_array_equal(img[..., c], grey)
    colour = data["train"]["images"][1]
    assert colour.shape[0] != colour.shape[1]  # a transposition would show
    np.testing.assert_array_equal(ds[1].load_image(), colour)


def test_image_loader_is_picklable_for_dataloader_workers(v73):
    root, data = v73
    loader = pickle.loads(pickle.dumps(COFW(root, "test")[1].loader))
    np.testing.assert_array_equal(loader(), data["test"]["images"][1])


def test_root_may_be_the_mat_file_itself(v73):
    root, _ = v73
    assert len(COFW(root / "COFW_test_color.mat", "test")) == 2


def test_old_v5_files_go_through_scipy(tmp_path):
    data = build_cofw_fixture(tmp_path, version="5")
    assert not h5py.is_hdf5(tmp_path / "COFW_train_color.mat")
    ds = COFW(tmp_path, "train")
    np.testing.assert_allclose(ds[2].landmarks, data["train"]["landmarks"][2], atol=1e-12)
    np.testing.assert_array_equal(ds[0].load_image()[..., 1], data["train"]["images"][0])
    np.testing.assert_array_equal(ds[1].load_image(), data["train"]["images"][1])


def test_bad_samples_name_the_file_and_sample(tmp_path):
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 255, (40, 50, 3), dtype=np.uint8) for _ in range(3)]
    landmarks = rng.uniform(5, 35, (3, 29, 2))
    landmarks[1, 4, 0] = np.nan
    occluded = np.zeros((3, 29), bool)
    boxes = np.array([[1, 1, 30, 30]] * 3, float)
    write_cofw(tmp_path / "COFW_test_color.mat", "test", images, landmarks, occluded, boxes)
    with pytest.raises(DataError, match=r"COFW_test_color.mat:2: expected finite coordinates in phisT"):
        COFW(tmp_path, "test")
    with pytest.warns(UserWarning, match="skipped 1"):
        ds = COFW(tmp_path, "test", skip_bad=True)
    assert [r.key for r in ds] == ["COFW_test_color.mat:1", "COFW_test_color.mat:3"]


def test_wrong_shapes_and_missing_variables(tmp_path):
    path = tmp_path / "COFW_train_color.mat"
    hdf5storage.savemat(str(path), {"phisTr": np.zeros((2, 87))}, format="7.3", matlab_compatible=True)
    with pytest.raises(DataError, match="a variable IsTr"):
        COFW(tmp_path, "train")
    cell = np.empty((2, 1), dtype=object)
    cell[0, 0] = cell[1, 0] = np.zeros((4, 4), np.uint8)
    hdf5storage.savemat(str(path), {"IsTr": cell, "phisTr": np.zeros((2, 58)), "bboxesTr": np.ones((2, 4))},
                        format="7.3", matlab_compatible=True)
    with pytest.raises(DataError, match=r"phisTr of shape \(2, 87\).*found shape \(2, 58\)"):
        COFW(tmp_path, "train")
    with pytest.raises(DataError, match="COFW_test_color.mat.*no such file"):
        COFW(tmp_path, "test")


def test_a_rewritten_file_is_read_afresh(tmp_path):
    first = build_cofw_fixture(tmp_path, seed=1)
    assert np.array_equal(COFW(tmp_path, "test")[1].load_image(), first["test"]["images"][1])
    second = build_cofw_fixture(tmp_path, seed=2)  # same path, new content
    np.testing.assert_array_equal(COFW(tmp_path, "test")[1].load_image(), second["test"]["images"][1])


def test_damaged_hdf5_file_is_a_data_error(tmp_path):
    path = tmp_path / "COFW_test_color.mat"
    build_cofw_fixture(tmp_path)
    path.write_bytes(path.read_bytes()[:4096])  # truncated download
    with pytest.raises(DataError, match="COFW_test_color.mat: expected a"):
        COFW(tmp_path, "test")
