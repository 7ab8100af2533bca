"""Specification of hihlib.data.synthetic: deterministic procedural faces whose landmarks are exactly
where the drawn features are."""

import dataclasses
import pickle

import numpy as np
import pytest

from hihlib.data.schemes import WFLW
from hihlib.data.synthetic import (
    ATTRIBUTES, WFLW_ATTRIBUTE_PROB, SyntheticFaces, face_geometry, mirror_params, render, render_face, sample_params,
)
from hihlib.data.transforms import apply_affine, crop_matrix

MIRROR = np.asarray(WFLW.mirror)


@pytest.fixture(scope="module")
def faces500():
    return SyntheticFaces(500, seed=11)


def pupil_centroid(image, centre, radius):
    """Intensity centroid of the dark disc around ``centre``: darkness below the median of the ring
    just outside it, summed over the disc plus its anti-aliased fringe."""
    grey = image.astype(np.float64).mean(axis=2)
    yy, xx = np.mgrid[0:grey.shape[0], 0:grey.shape[1]]
    d = np.hypot(xx - centre[0], yy - centre[1])
    background = np.median(grey[(d >= radius + 1) & (d < radius + 2)])
    w = np.where(d < radius + 1, np.clip(background - grey, 0, None), 0.0)
    return np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum()


def test_face_i_of_seed_s_is_always_the_same():
    a, la, attrs_a, occ_a = render_face(5, 7)
    b, lb, attrs_b, occ_b = render_face(5, 7)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert attrs_a == attrs_b and (occ_a == occ_b).all()
    small, large = SyntheticFaces(3, seed=7), SyntheticFaces(6, seed=7)
    np.testing.assert_array_equal(small.records[2].landmarks, large.records[2].landmarks)
    assert not np.allclose(render_face(5, 8)[1], la)


def test_records_hold_the_rendered_ground_truth():
    ds = SyntheticFaces(4, seed=3, image_size=192)
    assert ds.scheme is WFLW and len(ds) == 4
    for i, rec in enumerate(ds.records):
        image, landmarks, attributes, occluded = render_face(i, 3, image_size=192)
        assert rec.scheme == "wflw" and rec.landmarks.shape == (98, 2) and rec.key == f"synthetic:3:{i}"
        np.testing.assert_array_equal(rec.load_image(), image)
        assert image.shape == (192, 192, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(rec.landmarks, landmarks)
        assert rec.attributes == attributes and (rec.occluded == occluded).all()
        # a detector-like box: jittered around the landmarks' extent, never far from it
        lo, hi = landmarks.min(0), landmarks.max(0)
        side = (hi - lo).max()
        assert np.abs(rec.box - np.concatenate([lo, hi])).max() < 0.3 * side
    # the loader survives pickling (DataLoader workers)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(ds.records[1].loader))(), ds.records[1].load_image())


def test_pupils_are_dark_discs_centred_on_landmarks_96_and_97():
    errors = []
    for i in range(10):
        p = sample_params(i, 0, image_size=512, attribute_prob=0)
        image, landmarks, _ = render(p)
        radius = face_geometry(p).pupil_px
        for k in (96, 97):
            errors.append(np.abs(pupil_centroid(image, landmarks[k], radius) - landmarks[k]).max())
    assert max(errors) < 0.1
    assert np.median(errors) < 0.03


def test_mirrored_parameters_render_the_flipped_face():
    for i in range(8):
        p = sample_params(i, 3, attribute_prob=0.5)
        image, landmarks, occluded = render(p)
        image_m, landmarks_m, occluded_m = render(mirror_params(p))
        flipped = np.stack([p.image_size - 1 - landmarks[:, 0], landmarks[:, 1]], axis=1)[MIRROR]
        np.testing.assert_allclose(landmarks_m, flipped, atol=1e-9)
        np.testing.assert_array_equal(occluded_m, occluded[MIRROR])
        diff = np.abs(image[:, ::-1].astype(int) - image_m.astype(int))
        # identical up to the anti-aliasing rasteriser's rounding at a few edge pixels
        assert diff.mean() < 0.25 and np.percentile(diff, 99) <= 2


def test_attribute_prob_zero_gives_clean_faces_and_one_gives_all_six():
    clean = SyntheticFaces(20, seed=1, attribute_prob=0)
    assert all(r.attributes == frozenset() and not r.occluded.any() for r in clean.records)
    for r in clean.records:   # clean faces are near-frontal
        assert abs(np.linalg.norm(r.landmarks[60] - r.landmarks[51]) / np.linalg.norm(r.landmarks[72] - r.landmarks[51]) - 1) < 0.6
    every = SyntheticFaces(5, seed=1, attribute_prob=1.0)
    assert all(r.attributes == frozenset(ATTRIBUTES) for r in every.records)
    with pytest.raises(ValueError, match="unknown attributes"):
        SyntheticFaces(1, attribute_prob={"hats": 1.0})


def test_attributes_follow_wflw_frequencies(faces500):
    for name, prob in WFLW_ATTRIBUTE_PROB.items():
        freq = np.mean([name in r.attributes for r in faces500.records])
        assert abs(freq - prob) < 0.06, (name, freq, prob)


def test_occluded_flags_mark_exactly_the_landmarks_under_an_object():
    checked = 0
    for i in range(12):
        p = dataclasses.replace(sample_params(i, 2, attribute_prob={"occlusion": 1.0, "blur": 0.0}), blur=None)
        with_objects, landmarks, occluded = render(p)
        without, _, _ = render(dataclasses.replace(p, occluders=[]))
        changed = np.abs(with_objects.astype(int) - without.astype(int)).max(axis=2) > 0
        ij = np.round(landmarks).astype(int)
        inside = (ij >= 0).all(1) & (ij < p.image_size).all(1)
        # a 5x5 neighbourhood fully changed / unchanged keeps edge pixels out of the comparison
        for k in np.nonzero(inside)[0]:
            x, y = ij[k]
            patch = changed[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3]
            if patch.all():
                assert occluded[k], (i, k)
                checked += 1
            elif not patch.any():
                assert not occluded[k], (i, k)
    assert checked > 20


def test_inter_ocular_distance_in_a_256_crop_matches_the_documented_range(faces500):
    landmarks = np.stack([r.landmarks for r in faces500.records])
    boxes = np.stack([r.box for r in faces500.records])
    crop = apply_affine(landmarks, crop_matrix(boxes, 256, scale=1.25))
    iod = np.linalg.norm(crop[:, 60] - crop[:, 72], axis=1)
    p5, p50, p95 = np.percentile(iod, [5, 50, 95])
    assert 115 < p50 < 135 and 95 < p5 < 115 and 130 < p95 < 150
    pose = np.array(["pose" in r.attributes for r in faces500.records])
    assert iod[pose].min() < 80 < iod[~pose].min()


def test_expressions_move_the_right_landmarks():
    p = sample_params(0, 4, attribute_prob=0)
    neutral = face_geometry(p).landmarks
    open_mouth = face_geometry(dataclasses.replace(p, expression=dict(p.expression, open=0.3))).landmarks
    gap = lambda pts: np.linalg.norm(pts[94] - pts[90])
    assert gap(open_mouth) - gap(neutral) > 0.25 * p.scale
    np.testing.assert_allclose(open_mouth[33:76], neutral[33:76])   # brows, nose and eyes stay
    squint = face_geometry(dataclasses.replace(p, expression=dict(p.expression, squint=0.5))).landmarks
    lid = lambda pts: np.linalg.norm(pts[62] - pts[66])
    assert lid(squint) < 0.6 * lid(neutral)


def fill_errors(fill, n, rng, trials=20):
    """Centroid error (px) and relative area error of ``fill`` on regular n-gons of radius 5-12 px
    at random sub-pixel positions and angles."""
    yy, xx = np.mgrid[0:40, 0:40]
    centroid, area = [], []
    for _ in range(trials):
        centre, radius = rng.uniform(20, 21, 2), rng.uniform(5, 12)
        angles = np.linspace(0, 2 * np.pi, n + 1)[:-1] + rng.uniform(0, 1)
        img = np.zeros((40, 40, 3), np.uint8)
        fill(img, centre + radius * np.stack([np.cos(angles), np.sin(angles)], 1), (255, 255, 255))
        w = img[..., 0].astype(np.float64) / 255
        centroid.append(np.abs(np.array([(w * xx).sum(), (w * yy).sum()]) / w.sum() - centre).max())
        area.append(w.sum() / (0.5 * n * radius**2 * np.sin(2 * np.pi / n)) - 1)
    return np.array(centroid), np.array(area)


def test_curves_pass_through_the_landmarks_and_features_are_filled_to_a_few_hundredths_of_a_pixel():
    from hihlib.data.synthetic import _catmull_rom, _fill, _fill_precise

    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 50, (8, 2))
    np.testing.assert_allclose(_catmull_rom(pts, 6, closed=True)[::6], pts, atol=1e-12)
    np.testing.assert_allclose(_catmull_rom(pts, 4, closed=False)[::4], pts, atol=1e-12)
    for n in (4, 6, 32):   # facial features: supersampled coverage
        centroid, area = fill_errors(_fill_precise, n, rng)
        assert centroid.max() < 0.12 and centroid.mean() < 0.04 and np.abs(area).max() < 0.02, (n, centroid.max(), area)
    centroid, area = fill_errors(_fill, 32, rng)   # large smooth shapes: OpenCV's AA fill, edges moved in
    assert centroid.max() < 0.25 and centroid.mean() < 0.1 and np.abs(area).max() < 0.05
