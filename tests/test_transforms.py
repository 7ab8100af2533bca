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
