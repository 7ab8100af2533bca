"""Specification of hihlib.data.transforms: crops, warps and augmentation keep images and landmarks
aligned to a twentieth of a pixel, in the pixel-centre convention of hihlib.codecs.base."""

import math

import numpy as np
import pytest

from hihlib.data.transforms import (
    Augment, apply_affine, compose_affine, crop_matrix, flip_matrix, invert_affine, mirror_landmarks, warp_image,
)

WFLW_MIRROR = (list(range(32, -1, -1)) + [46, 45, 44, 43, 42, 50, 49, 48, 47, 37, 36, 35, 34, 33, 41, 40, 39, 38]
               + [51, 52, 53, 54, 59, 58, 57, 56, 55, 72, 71, 70, 69, 68, 75, 74, 73, 64, 63, 62, 61, 60, 67, 66, 65]
               + [82, 81, 80, 79, 78, 77, 76, 87, 86, 85, 84, 83, 92, 91, 90, 89, 88, 95, 94, 93, 97, 96])


def draw_dots(points, size, sigma=2.5):
    """A float32 image per point: an analytic Gaussian blob centred exactly on it. (K, size, size)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    d2 = (xx[None] - points[:, 0, None, None]) ** 2 + (yy[None] - points[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma**2)).astype(np.float32)


def centroids(images):
    """Intensity centroid (x, y) of each image in (K, H, W)."""
    h, w = images.shape[1:]
    total = images.sum(axis=(1, 2))
    x = (images * np.arange(w)[None, None, :]).sum(axis=(1, 2)) / total
    y = (images * np.arange(h)[None, :, None]).sum(axis=(1, 2)) / total
    return np.stack([x, y], axis=1)


def warp_dots(points, M, size_in, size_out, sigma=2.5):
    dots = draw_dots(points, size_in, sigma)
    # channels-last so that one warp moves every dot at once
    warped = warp_image(np.ascontiguousarray(dots.transpose(1, 2, 0)), M, size_out)
    return centroids(warped.transpose(2, 0, 1))


def test_crop_matrix_maps_the_square_crop_edges_onto_the_output_edges():
    box = np.array([10.0, 20.0, 110.0, 60.0])  # 100 x 40, centre (60, 40)
    M = crop_matrix(box, 256, scale=1.25)
    side = 125.0
    corners = np.array([[60 - side / 2, 40 - side / 2], [60 + side / 2, 40 + side / 2]])
    np.testing.assert_allclose(apply_affine(corners, M), [[-0.5, -0.5], [255.5, 255.5]], atol=1e-12)
    np.testing.assert_allclose(apply_affine(np.array([[60.0, 40.0]]), M), [[127.5, 127.5]], atol=1e-12)


def test_crop_matrix_is_vectorised_over_boxes():
    boxes = np.array([[0, 0, 50, 80], [5, 5, 15, 10.0]])
    np.testing.assert_allclose(crop_matrix(boxes, 64), np.stack([crop_matrix(b, 64) for b in boxes]))


def test_invert_and_compose_are_exact():
    rng = np.random.default_rng(0)
    M = np.concatenate([rng.normal(size=(5, 2, 2)) + 2 * np.eye(2), rng.normal(size=(5, 2, 1)) * 10], axis=-1)
    ident = np.broadcast_to(np.array([[1.0, 0, 0], [0, 1, 0]]), (5, 2, 3))
    np.testing.assert_allclose(compose_affine(M, invert_affine(M)), ident, atol=1e-12)
    pts = rng.normal(size=(5, 7, 2)) * 50
    np.testing.assert_allclose(apply_affine(apply_affine(pts, M), invert_affine(M)), pts, atol=1e-9)
    A, B = M[0], M[1]
    np.testing.assert_allclose(apply_affine(pts[0], compose_affine(A, B)), apply_affine(apply_affine(pts[0], B), A),
                               atol=1e-9)


@pytest.mark.parametrize("box,out", [((30.3, 41.7, 130.9, 121.2), 96), ((0.0, 0.0, 63.0, 63.0), 128)])
def test_dots_land_on_the_cropped_landmarks(box, out):
    rng = np.random.default_rng(1)
    pts = rng.uniform(45, 115, size=(6, 2)) if box[0] > 0 else rng.uniform(15, 50, size=(6, 2))
    M = crop_matrix(np.array(box), out)
    # the blob keeps the same width in output pixels, so that interpolation cannot bias it
    sigma = 2.5 / M[0, 0]
    got = warp_dots(pts, M, 160, out, sigma=sigma)
    assert np.abs(got - apply_affine(pts, M)).max() < 0.05


def test_flip_matrix_mirrors_about_the_image_centre():
    img = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.testing.assert_array_equal(warp_image(img, flip_matrix(4), (4, 3)), img[:, ::-1])
    np.testing.assert_allclose(apply_affine(np.array([[0.0, 1.0], [1.5, 2.0]]), flip_matrix(4)), [[3, 1], [1.5, 2]])


def test_mirror_landmarks_permutes_the_points():
    pts = np.arange(98 * 2, dtype=float).reshape(98, 2)
    np.testing.assert_array_equal(mirror_landmarks(pts, WFLW_MIRROR)[60], pts[72])
    np.testing.assert_array_equal(mirror_landmarks(mirror_landmarks(pts, WFLW_MIRROR), WFLW_MIRROR), pts)


# --------------------------------------------------------------------------------------------
# Augmentation
# --------------------------------------------------------------------------------------------

PAIRS = (1, 0, 3, 2, 5, 4, 6, 7)   # a toy mirror permutation for 8 points


def test_augmented_dots_land_on_the_augmented_landmarks():
    rng = np.random.default_rng(2)
    aug = Augment(rotation=30, scale=(0.8, 1.2), translation=0.1, flip=0.5, mirror=PAIRS, blur=0, occlusion=0, color=0,
                  size=96)
    pts = rng.uniform(50, 110, size=(8, 2))
    M_crop = crop_matrix(np.array([40.0, 45.0, 120.0, 115.0]), 96)
    flips = 0
    for _ in range(6):
        M_aug, flipped = aug.sample_matrix(rng)
        flips += flipped
        M = compose_affine(M_aug, M_crop)
        got = warp_dots(pts, M, 160, 96, sigma=2.5 / abs(np.linalg.det(M[:, :2])) ** 0.5)
        want = apply_affine(pts, M)
        assert np.abs(got - want).max() < 0.05
        if flipped:   # relabelled: landmark i of the flipped face is the dot of original point PAIRS[i]
            assert np.abs(got[list(PAIRS)] - mirror_landmarks(want, PAIRS)).max() < 0.05
    assert 0 < flips < 6


def test_augment_call_warps_once_and_relabels_flipped_landmarks():
    rng = np.random.default_rng(5)
    pts = rng.uniform(30, 90, size=(8, 2))
    dots = np.ascontiguousarray((draw_dots(pts, 128) * 255).astype(np.uint8).transpose(1, 2, 0))
    aug = Augment(rotation=20, translation=0.05, flip=1.0, mirror=PAIRS, blur=0, occlusion=0, color=0, size=128)
    out, landmarks, M, flipped = aug(dots, pts, np.random.default_rng(0))
    assert flipped and out.shape == (128, 128, 8) and out.dtype == np.uint8
    # channel i holds original point i, which after the flip is labelled PAIRS[i]
    got = centroids(out.transpose(2, 0, 1).astype(np.float64))
    np.testing.assert_allclose(landmarks, apply_affine(pts, M)[list(PAIRS)])
    assert np.abs(got[list(PAIRS)] - landmarks).max() < 0.1   # uint8 quantisation of the dots


def test_flipping_twice_is_the_identity():
    aug = Augment(rotation=0, scale=None, translation=0, flip=1.0, mirror=WFLW_MIRROR, size=64)
    M, flipped = aug.sample_matrix(np.random.default_rng(0))
    assert flipped
    np.testing.assert_allclose(compose_affine(M, M), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(warp_image(warp_image(image, M, 64), M, 64), image)
    pts = np.random.default_rng(2).uniform(0, 63, (98, 2))
    twice = mirror_landmarks(apply_affine(mirror_landmarks(apply_affine(pts, M), WFLW_MIRROR), M), WFLW_MIRROR)
    np.testing.assert_allclose(twice, pts, atol=1e-12)


def test_flipping_a_synthetic_face_equals_rendering_its_mirror():
    from hihlib.data.synthetic import mirror_params, render, sample_params

    aug = Augment(rotation=0, scale=None, translation=0, flip=1.0, mirror=WFLW_MIRROR, blur=0, occlusion=0, color=0,
                  size=160)
    for i in range(4):
        p = sample_params(i, 9, image_size=160)
        image, landmarks, _ = render(p)
        flipped_image, flipped_landmarks, _, flipped = aug(image, landmarks, np.random.default_rng(i))
        mirror_image, mirror_landmarks_, _ = render(mirror_params(p))
        assert flipped
        np.testing.assert_allclose(flipped_landmarks, mirror_landmarks_, atol=1e-9)
        diff = np.abs(flipped_image.astype(int) - mirror_image.astype(int))
        assert diff.mean() < 0.25 and np.percentile(diff, 99) <= 2


def test_sample_matrix_stays_within_the_configured_ranges():
    aug = Augment(rotation=15, scale=(0.9, 1.1), translation=0.1, flip=0.0, size=200)
    rng = np.random.default_rng(3)
    centre = np.array([[99.5, 99.5]])
    for _ in range(200):
        M, flipped = aug.sample_matrix(rng)
        zoom = np.sqrt(np.linalg.det(M[:, :2]))
        angle = np.degrees(np.arctan2(M[1, 0], M[0, 0]))
        shift = apply_affine(centre, M) - centre
        assert not flipped and 0.9 <= zoom <= 1.1 and abs(angle) <= 15 and np.abs(shift).max() <= 20 + 1e-9


def test_photometric_changes_colours_only_and_is_reproducible():
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    keep = image.copy()
    off = Augment(flip=0, blur=0, occlusion=0, color=0)
    np.testing.assert_array_equal(off.photometric(image, np.random.default_rng(0)), image)
    box = Augment(flip=0, blur=0, occlusion=1.0, occlusion_size=(0.25, 0.25), color=0)
    out = box.photometric(image, np.random.default_rng(1))
    changed = (out != image).any(axis=2)
    assert 0.8 * 16 * 16 <= changed.sum() <= 16 * 16   # one 16 x 16 box of a single colour
    ys, xs = np.nonzero(changed)
    assert len(np.unique(out[ys, xs], axis=0)) == 1
    jitter = Augment(flip=0, blur=1.0, occlusion=0, color=0.3)
    a, b = jitter.photometric(image, np.random.default_rng(7)), jitter.photometric(image, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    assert a.shape == image.shape and a.dtype == np.uint8 and not np.array_equal(a, image)
    np.testing.assert_array_equal(image, keep)   # the input is never modified


def test_flip_without_a_mirror_permutation_is_refused_and_a_scheme_name_gives_it():
    with pytest.raises(ValueError, match="mirror permutation"):
        Augment(flip=0.5)
    assert Augment(mirror="wflw").mirror == tuple(WFLW_MIRROR)
    from hihlib.data.schemes import COFW

    assert Augment(mirror=COFW).mirror == COFW.mirror


def test_affine_helpers_accept_torch_tensors_and_match_numpy():
    import torch

    rng = np.random.default_rng(4)
    M = crop_matrix(np.array([10.0, 12.0, 90.0, 100.0]), 64)
    pts = rng.uniform(0, 100, (3, 98, 2))
    out = apply_affine(torch.from_numpy(pts).float(), torch.from_numpy(M))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), apply_affine(pts, M), atol=1e-4)
    Mt = torch.from_numpy(M)
    np.testing.assert_allclose(invert_affine(Mt).numpy(), invert_affine(M), atol=1e-12)
    np.testing.assert_allclose(compose_affine(Mt, invert_affine(Mt)).numpy(), [[1, 0, 0], [0, 1, 0]], atol=1e-12)
    back = apply_affine(apply_affine(torch.from_numpy(pts), Mt), invert_affine(Mt))   # float64 round trip
    np.testing.assert_allclose(back.numpy(), pts, atol=1e-10)


def test_colour_jitter_follows_its_formula_and_blur_keeps_dots_in_place():
    c = 0.3
    image = np.full((32, 32, 3), 100, np.uint8)
    out = Augment(flip=0, blur=0, occlusion=0, color=c).photometric(image, np.random.default_rng(7))
    rng = np.random.default_rng(7)   # the same draws, in the documented order
    gain = rng.uniform(1 - c, 1 + c) * rng.uniform(1 - c, 1 + c, 3)
    contrast = rng.uniform(1 - c, 1 + c)
    want = np.clip(np.floor(contrast * (100 * gain - 100) + 100 + 0.5), 0, 255)
    np.testing.assert_array_equal(out[5, 7], want)
    assert (out == out[0, 0]).all()
    pts = np.array([[20.3, 30.6], [40.8, 12.1]])
    dots = np.ascontiguousarray((draw_dots(pts, 64) * 255).astype(np.uint8).transpose(1, 2, 0))
    dots = np.concatenate([dots, np.zeros((64, 64, 1), np.uint8)], axis=2)   # photometric takes 3 channels
    blurred = Augment(flip=0, blur=1.0, blur_sigma=(2.0, 2.0), occlusion=0, color=0).photometric(dots, np.random.default_rng(0))
    assert blurred[..., :2].max() < dots[..., :2].max()   # it did blur
    got = centroids(blurred[..., :2].transpose(2, 0, 1).astype(np.float64))
    assert np.abs(got - centroids(dots[..., :2].transpose(2, 0, 1).astype(np.float64))).max() < 0.02
