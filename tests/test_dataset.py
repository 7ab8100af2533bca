"""FaceDataset: crop geometry in closed form, augmentation composed into one matrix, inverse mapping."""

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from hihlib.data import WFLW, FaceDataset, FaceRecord, denormalize_image, normalize_image, to_original
from hihlib.data.schemes import WFLW as SCHEME
from hihlib.data.transforms import Augment, apply_affine
from tests.formats import build_wflw_fixture

GEOMETRY_ONLY = dict(blur=0.0, occlusion=0.0, color=0.0)


def gradient_image(h=120, w=160):
    """I(x, y) = x + y/2 (uint8): bilinear resampling of a linear function is exact."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.repeat((x + 0.5 * y).astype(np.uint8)[..., None], 3, axis=2)


def blob_image(h, w, centre, sigma=3.0):
    """A Gaussian blob on black at ``centre`` (x, y), peak 255 (uint8, 3 channels)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    g = 255.0 * np.exp(-((x - centre[0]) ** 2 + (y - centre[1]) ** 2) / (2 * sigma**2))
    return np.repeat(np.round(g).astype(np.uint8)[..., None], 3, axis=2)


def record(image, landmarks=None, box=(40.0, 30.0, 120.0, 90.0), key="r:1", occluded=None):
    rng = np.random.default_rng(0)
    if landmarks is None:
        landmarks = np.stack([rng.uniform(45, 115, 98), rng.uniform(35, 85, 98)], axis=1)
    return FaceRecord(key=key, image=image, landmarks=landmarks, box=np.array(box), scheme="wflw", occluded=occluded)


def centroid(img):
    w = img.astype(np.float64)
    y, x = np.mgrid[0:w.shape[0], 0:w.shape[1]]
    return np.array([(w * x).sum() / w.sum(), (w * y).sum() / w.sum()])


def test_crop_geometry_closed_form():
    # Box 80 x 60 centred at (80, 60): the crop is the square of side 1.25 * 80 = 100 px scaled to 200.
    ds = FaceDataset([record(gradient_image())], SCHEME, input_size=200, scale=1.25)
    item = ds[0]
    k = 200 / 100.0
    expected = np.array([[k, 0, (50 - 80) * k - 0.5], [0, k, (50 - 60) * k - 0.5]])
    np.testing.assert_allclose(item["matrix"].numpy(), expected, atol=1e-12)
    # Box centre -> crop centre; box corners -> 1/10 of the side in from the edges.
    np.testing.assert_allclose(apply_affine(np.array([[80.0, 60.0], [40.0, 30.0]]), item["matrix"].numpy()),
                               [[99.5, 99.5], [19.5, 39.5]], atol=1e-12)
    np.testing.assert_allclose(item["landmarks"].numpy(), apply_affine(ds.records[0].landmarks, expected), atol=1e-4)
    assert item["image"].shape == (3, 200, 200) and item["image"].dtype == torch.float32
    assert item["landmarks"].dtype == torch.float32 and item["matrix"].dtype == torch.float64
    assert item["index"] == 0 and item["flipped"] is False and not item["occluded"].any()


def test_crop_pixels_sample_the_original_at_the_mapped_position():
    image = gradient_image()
    ds = FaceDataset([record(image)], SCHEME, input_size=96)
    item = ds[0]
    crop = denormalize_image(item["image"])[..., 0].astype(np.float64)
    v, u = np.mgrid[0:96, 0:96]
    orig = to_original(np.stack([u, v], -1).reshape(-1, 2).astype(np.float64), item["matrix"].numpy())
    expected = (orig[:, 0] + 0.5 * orig[:, 1]).reshape(96, 96)
    inside = (orig[:, 0] >= 0) & (orig[:, 0] <= 159) & (orig[:, 1] >= 0) & (orig[:, 1] <= 119)
    # uint8 rounding and OpenCV's 1/32-pixel fixed-point interpolation: within one grey level.
    assert np.abs(crop.reshape(-1)[inside] - expected.reshape(-1)[inside]).max() <= 1.0
    assert inside.mean() > 0.9


def test_landmark_box_is_the_optimistic_tight_crop():
    ds = FaceDataset([record(gradient_image())], SCHEME, input_size=128, scale=1.25, box="landmarks")
    pts = ds[0]["landmarks"].numpy().astype(np.float64)
    lo, hi = pts.min(0), pts.max(0)
    np.testing.assert_allclose((lo + hi) / 2, [63.5, 63.5], atol=1e-4)  # centred
    np.testing.assert_allclose((hi - lo).max(), 128 / 1.25, atol=1e-4)  # larger side fills 1/1.25


def test_augmented_landmarks_follow_the_matrix_and_map_back():
    ds = FaceDataset([record(gradient_image())], SCHEME, input_size=64, augment=Augment(mirror=SCHEME.mirror, size=64))
    mirror = np.array(SCHEME.mirror)
    flips = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        item = ds[0]
        flips.add(item["flipped"])
        M = item["matrix"].numpy()
        expected = apply_affine(ds.records[0].landmarks, M)
        if item["flipped"]:
            expected = expected[mirror]
        np.testing.assert_allclose(item["landmarks"].numpy(), expected, atol=1e-4)
        back = to_original(item["landmarks"].double().numpy(), M)
        orig = ds.records[0].landmarks[mirror] if item["flipped"] else ds.records[0].landmarks
        np.testing.assert_allclose(back, orig, atol=1e-3)  # float32 landmarks
    assert flips == {True, False}


def test_draws_depend_on_seed_epoch_and_index_only():
    recs = [record(gradient_image(), key=f"r:{i}") for i in range(2)]
    aug = Augment(mirror=SCHEME.mirror, size=64)
    a, b = FaceDataset(recs, SCHEME, input_size=64, augment=aug, seed=3), FaceDataset(recs, SCHEME, input_size=64, augment=aug, seed=3)
    b[0]  # consuming draws elsewhere changes nothing
    # bit-identical, not merely close (and torch.testing's first call costs seconds of imports)
    assert torch.equal(a[1]["image"], b[1]["image"]) and torch.equal(a[1]["matrix"], b[1]["matrix"])
    b.set_epoch(1)
    assert not torch.equal(a[1]["matrix"], b[1]["matrix"])
    assert not torch.equal(a[0]["matrix"], a[1]["matrix"])


def test_a_blob_at_a_landmark_lands_on_the_augmented_landmark_with_mirrored_index():
    centre = np.array([70.3, 52.7])
    pts = np.stack([np.linspace(50, 110, 98), np.linspace(40, 80, 98)], axis=1)
    pts[60] = centre
    occluded = np.zeros(98, bool)
    occluded[60] = True
    r = record(blob_image(120, 160, centre), landmarks=pts, occluded=occluded)
    aug = Augment(mirror=SCHEME.mirror, size=128, flip=1.0, **GEOMETRY_ONLY)
    item = FaceDataset([r], SCHEME, input_size=128, augment=aug)[0]
    assert item["flipped"]
    j = SCHEME.mirror[60]  # 72: the left eye corner becomes the right one
    img = denormalize_image(item["image"])[..., 0]
    np.testing.assert_allclose(centroid(img), item["landmarks"][j].numpy(), atol=0.05)
    assert item["occluded"][j] and item["occluded"].sum() == 1


def test_dataloader_batches_and_to_original_in_torch():
    ds = FaceDataset([record(gradient_image(), key=f"r:{i}") for i in range(3)], SCHEME, input_size=32)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch["image"].shape == (3, 3, 32, 32) and batch["landmarks"].shape == (3, 98, 2)
    assert batch["matrix"].shape == (3, 2, 3) and batch["index"].tolist() == [0, 1, 2]
    back = to_original(batch["landmarks"], batch["matrix"])
    assert back.dtype == torch.float64
    np.testing.assert_allclose(back.numpy(), np.stack([r.landmarks for r in ds.records]), atol=1e-3)


def test_on_the_wflw_fixture(tmp_path):
    build_wflw_fixture(tmp_path)
    wflw = WFLW(tmp_path, "train")
    ds = wflw.dataset(input_size=64)
    assert len(ds) == 3
    item = ds[2]  # landmarks outside the image stay finite and follow the crop
    np.testing.assert_allclose(to_original(item["landmarks"].double().numpy(), item["matrix"].numpy()),
                               wflw[2].landmarks, atol=1e-4)


def test_normalisation_round_trip_and_errors():
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    t = normalize_image(img)
    np.testing.assert_allclose(t[0, 0, 0].item(), (img[0, 0, 0] / 255 - 0.485) / 0.229, rtol=1e-6)
    np.testing.assert_array_equal(denormalize_image(t), img)
    with pytest.raises(ValueError, match="box must be one of"):
        FaceDataset([], SCHEME, box="detector")
    bad = FaceRecord(key="x:1", landmarks=np.zeros((68, 2)), box=np.array([0, 0, 1, 1.0]), scheme="300w")
    with pytest.raises(ValueError, match="98 points"):
        FaceDataset([bad], "wflw")


def test_protocol_labels_the_optimistic_crop(tmp_path):
    from hihlib.data import W300, open_dataset
    from tests.formats import build_300w_fixture

    r = [record(gradient_image())]
    assert FaceDataset(r, SCHEME).protocol == "dataset box, square of 1.25 x the box side"
    assert "optimistic protocol" in FaceDataset(r, SCHEME, box="landmarks").protocol
    build_300w_fixture(tmp_path)
    w300 = open_dataset("w300", tmp_path, "challenge")
    assert isinstance(w300, W300) and len(w300) == 1
    assert w300.dataset().protocol.startswith("300W landmark box")
    with pytest.raises(ValueError, match="unknown dataset"):
        open_dataset("aflw", tmp_path, "train")


def test_normalize_batch_gives_the_numbers_of_normalize_image_bit_for_bit():
    from hihlib.data import normalize_batch, normalize_image

    crops = np.random.default_rng(0).integers(0, 256, (3, 40, 48, 3), dtype=np.uint8)
    batched = normalize_batch(torch.from_numpy(crops))
    assert batched.shape == (3, 3, 40, 48) and batched.dtype == torch.float32
    assert torch.equal(batched, torch.stack([normalize_image(c) for c in crops]))
