"""Face records and landmark schemes: mirror permutations, normalisers, 98 -> 68 / 29 conversions."""

import numpy as np
import pytest
import torch

from hihlib.data.records import FaceRecord, as_rgb, landmark_box, read_image
from hihlib.data.schemes import (
    COFW,
    W300,
    WFLW,
    WFLW_TO_300W,
    WFLW_TO_COFW,
    convert,
    get_scheme,
    wflw_to_300w,
    wflw_to_cofw,
)
from hihlib.errors import DataError

SCHEMES = [WFLW, COFW, W300]


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_mirror_is_an_involution(scheme):
    mirror = np.array(scheme.mirror)
    assert len(mirror) == scheme.num_points
    np.testing.assert_array_equal(mirror[mirror], np.arange(scheme.num_points))


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_mirror_maps_left_groups_to_right_groups_and_centre_groups_to_themselves(scheme):
    mirror = np.array(scheme.mirror)
    for name, (idx, _closed) in scheme.groups.items():
        image = set(mirror[list(idx)].tolist())
        if name.startswith("left_"):
            assert image == set(scheme.groups["right_" + name[5:]][0]), name
        elif name.startswith("right_"):
            assert image == set(scheme.groups["left_" + name[6:]][0]), name
        else:
            assert image == set(idx), name


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_groups_cover_every_point_once(scheme):
    idx = sorted(i for g, _ in scheme.groups.values() for i in g)
    if scheme is COFW:  # the mouth corners start both lip curves
        idx = sorted(set(idx))
    assert idx == list(range(scheme.num_points))


@pytest.mark.parametrize("scheme", SCHEMES, ids=lambda s: s.name)
def test_normaliser_pairs_are_mirror_pairs(scheme):
    # Inter-ocular and inter-pupil distances are symmetric: a flip swaps the two points.
    for i, j in scheme.normalisers.values():
        assert scheme.mirror[i] == j and scheme.mirror[j] == i


def test_published_normaliser_indices():
    assert WFLW.normaliser() == (60, 72) and WFLW.normaliser("inter_pupil") == (96, 97)
    assert COFW.normaliser("inter_ocular") == (8, 9) and COFW.normaliser("inter_pupil") == (16, 17)
    assert W300.normaliser() == (36, 45)
    with pytest.raises(ValueError, match="inter_ocular"):
        W300.normaliser("bogus")


def test_get_scheme_names():
    assert get_scheme("WFLW") is WFLW and get_scheme("300w") is W300 and get_scheme("w300") is W300
    with pytest.raises(ValueError, match="unknown landmark scheme"):
        get_scheme("aflw")


def test_wflw_mirror_matches_reference_samples():
    # Spot checks against docs/REFERENCE.md: contour reversed, eye corners 60 <-> 72, pupils swap.
    m = WFLW.mirror
    assert (m[0], m[16], m[32]) == (32, 16, 0)
    assert (m[33], m[46], m[38], m[50]) == (46, 33, 50, 38)
    assert (m[60], m[64], m[68], m[72]) == (72, 68, 64, 60)
    assert (m[76], m[82], m[79], m[85]) == (82, 76, 79, 85)
    assert (m[96], m[97], m[51], m[57]) == (97, 96, 51, 57)


def _flip(pts, mirror, width=100.0):
    # Horizontal flip in the pixel-centre convention: x -> (W - 1) - x, then relabel.
    out = pts.copy()
    out[..., 0] = width - 1 - out[..., 0]
    return out[..., list(mirror), :]


@pytest.mark.parametrize("convert_fn,target", [(wflw_to_300w, W300), (wflw_to_cofw, COFW)])
def test_conversion_commutes_with_flipping(convert_fn, target):
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 100, size=(3, 98, 2))
    np.testing.assert_allclose(convert_fn(_flip(pts, WFLW.mirror)), _flip(convert_fn(pts), target.mirror), atol=1e-12)


def test_wflw_to_300w_table():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 100, size=(98, 2))
    q = wflw_to_300w(p)
    assert q.shape == (68, 2)
    np.testing.assert_allclose(q[:17], p[0:33:2])              # jaw: every second contour point
    np.testing.assert_allclose(q[8], p[16])                    # chin
    np.testing.assert_allclose(q[17], p[33])                   # brow outer corners
    np.testing.assert_allclose(q[26], p[46])
    np.testing.assert_allclose(q[19], (p[35] + p[40]) / 2)     # brow middle: upper/lower average
    np.testing.assert_allclose(q[27:36], p[51:60])             # nose one to one
    np.testing.assert_allclose(q[36], p[60])                   # eye corners
    np.testing.assert_allclose(q[39], p[64])
    np.testing.assert_allclose(q[42], p[68])
    np.testing.assert_allclose(q[45], p[72])
    np.testing.assert_allclose(q[37], (2 * p[61] + p[62]) / 3)  # lids at 1/3 and 2/3
    np.testing.assert_allclose(q[38], (p[62] + 2 * p[63]) / 3)
    np.testing.assert_allclose(q[48:68], p[76:96])             # mouth one to one
    # The 300W inter-ocular distance is WFLW's: the same eye corners.
    np.testing.assert_allclose(np.linalg.norm(q[36] - q[45]), np.linalg.norm(p[60] - p[72]))


def test_lid_interpolation_is_exact_on_a_straight_lid():
    # WFLW lid points at 1/4, 1/2, 3/4 of a straight lid -> 300W points at exactly 1/3, 2/3.
    p = np.zeros((98, 2))
    t = {60: 0, 61: 0.25, 62: 0.5, 63: 0.75, 64: 1.0}
    for i, ti in t.items():
        p[i] = (10 + 30 * ti, 50.0)
    q = wflw_to_300w(p)
    np.testing.assert_allclose(q[37], (20.0, 50.0))
    np.testing.assert_allclose(q[38], (30.0, 50.0))


def test_wflw_to_cofw_table():
    p = np.random.default_rng(2).uniform(0, 100, size=(98, 2))
    q = wflw_to_cofw(p)
    assert q.shape == (29, 2)
    for c, w in [(8, 60), (9, 72), (10, 64), (11, 68), (16, 96), (17, 97), (22, 76), (23, 82), (28, 16)]:
        np.testing.assert_allclose(q[c], p[w])
    np.testing.assert_allclose(q[5], (p[39] + p[40]) / 2)
    # The COFW inter-ocular and inter-pupil pairs are WFLW's.
    assert np.isclose(np.linalg.norm(q[8] - q[9]), np.linalg.norm(p[60] - p[72]))
    assert np.isclose(np.linalg.norm(q[16] - q[17]), np.linalg.norm(p[96] - p[97]))


def test_conversion_tables_are_affine_and_accept_torch_batches():
    assert np.allclose(WFLW_TO_300W.sum(1), 1) and np.allclose(WFLW_TO_COFW.sum(1), 1)
    p = torch.rand(2, 5, 98, 2, dtype=torch.float64)
    out = wflw_to_300w(p)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 5, 68, 2)
    np.testing.assert_allclose(out.numpy(), wflw_to_300w(p.numpy()), atol=1e-12)
    # Affine maps commute with translation.
    np.testing.assert_allclose(wflw_to_cofw(p.numpy() + 3.0), wflw_to_cofw(p.numpy()) + 3.0, atol=1e-12)
    assert convert(p, "wflw", "wflw") is p
    with pytest.raises(ValueError, match=r"\(\.\.\., 98, 2\)"):
        wflw_to_cofw(np.zeros((68, 2)))
    with pytest.raises(ValueError, match="no conversion"):
        convert(np.zeros((68, 2)), "300w", "wflw")


def test_face_record_normalises_types():
    r = FaceRecord(key="a:1", landmarks=[[1, 2], [3, 4]], box=[0, 0, 5, 5], scheme="wflw",
                   attributes={"pose"}, occluded=[0, 1], image=np.zeros((4, 6), np.uint8))
    assert r.landmarks.dtype == np.float64 and r.box.dtype == np.float64
    assert r.attributes == frozenset({"pose"}) and r.occluded.tolist() == [False, True]
    img = r.load_image()
    assert img.shape == (4, 6, 3) and img.dtype == np.uint8
    with pytest.raises(ValueError, match="occluded"):
        FaceRecord(key="b", landmarks=np.zeros((3, 2)), box=np.zeros(4), scheme="cofw", occluded=[True])
    with pytest.raises(ValueError, match="scheme"):
        FaceRecord(key="c", landmarks=np.zeros((3, 2)), box=np.zeros(4), scheme="aflw")


def test_load_image_prefers_memory_then_loader_then_file(tmp_path):
    import cv2

    rgb = np.zeros((3, 4, 3), np.uint8)
    rgb[..., 0] = 200  # red
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    r = FaceRecord(key="k", landmarks=np.zeros((1, 2)), box=np.zeros(4), scheme="wflw", image_path=str(path))
    np.testing.assert_array_equal(r.load_image(), rgb)
    r2 = FaceRecord(key="k", landmarks=np.zeros((1, 2)), box=np.zeros(4), scheme="wflw", loader=lambda: rgb[..., 0])
    assert r2.load_image().shape == (3, 4, 3) and (r2.load_image() == 200).all()


def test_unreadable_image_names_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="broken.jpg"):
        read_image(str(bad))
    with pytest.raises(DataError, match="missing.jpg"):
        read_image(str(tmp_path / "missing.jpg"))


def test_as_rgb_and_landmark_box():
    assert as_rgb(np.zeros((2, 2, 4), np.uint8)).shape == (2, 2, 3)
    with pytest.raises(ValueError):
        as_rgb(np.zeros((2, 2), np.float32))
    pts = np.array([[[1.0, 5.0], [3.0, -2.0]]])
    np.testing.assert_array_equal(landmark_box(pts), [[1.0, -2.0, 3.0, 5.0]])
