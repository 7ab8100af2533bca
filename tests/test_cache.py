"""The crop cache: records in the cached frame give the same crops, landmarks and NME frame."""

import json

import numpy as np
import pytest

from hihlib.data import COFW, WFLW, FaceDataset, to_original
from hihlib.data.cache import CachedFaces, index_path, prepare_cache
from hihlib.data.transforms import apply_affine, compose_affine, invert_affine
from hihlib.errors import DataError
from tests.formats import build_cofw_fixture, build_wflw_fixture, write_image


def smooth_image(h, w):
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([128 + 100 * np.sin(x / 9.0), 128 + 100 * np.cos(y / 7.0), (x + y) % 256], -1).astype(np.uint8)


@pytest.fixture
def wflw(tmp_path):
    faces = build_wflw_fixture(tmp_path / "WFLW")
    # smooth images so that two interpolations differ from one by little
    write_image(tmp_path / "WFLW/WFLW_images/0--Parade/two_faces.jpg", smooth_image(120, 160))
    return WFLW(tmp_path / "WFLW", "train"), faces


def test_cached_records_are_the_loose_crop_of_the_originals(wflw, tmp_path):
    src, _ = wflw
    index, built = prepare_cache(src, tmp_path / "c", cache_scale=2.0, cache_size=96)
    assert built and index["count"] == 3 and index["keys"] == [r.key for r in src.records]
    cached = CachedFaces(tmp_path / "c", "wflw", "train")
    for r, c in zip(src.records, cached.records):
        # side 2 * max(w, h) around the box centre -> 96 px: the box centre is the crop centre
        np.testing.assert_allclose((c.box[:2] + c.box[2:]) / 2, [47.5, 47.5], atol=1e-9)
        np.testing.assert_allclose(max(c.box[2] - c.box[0], c.box[3] - c.box[1]), 48.0, atol=1e-9)
        np.testing.assert_allclose(c.landmarks, apply_affine(r.landmarks, c.from_original), atol=1e-9)
        np.testing.assert_allclose(apply_affine(c.landmarks, invert_affine(c.from_original)), r.landmarks, atol=1e-9)
        assert c.key == r.key and c.attributes == r.attributes and c.image_path is None
        assert c.load_image().shape == (96, 96, 3)


def test_face_dataset_from_the_cache_matches_the_original(wflw, tmp_path):
    src, _ = wflw
    prepare_cache(src, tmp_path / "c", cache_size=256)
    cached = CachedFaces(tmp_path / "c", "wflw", "train")
    a, b = FaceDataset(src.records, "wflw", input_size=64), cached.dataset(input_size=64)
    for i in range(2):  # the smooth image
        ia, ib = a[i], b[i]
        # Same crop: the cache matrix composed with from_original is the direct matrix.
        np.testing.assert_allclose(compose_affine(ib["matrix"].numpy(), cached.records[i].from_original),
                                   ia["matrix"].numpy(), atol=1e-9)
        np.testing.assert_allclose(ib["landmarks"].numpy(), ia["landmarks"].numpy(), atol=1e-4)
        # Two interpolations (cache at 4x the crop's resolution, then the crop) vs one.
        diff = (ib["image"] - ia["image"]).abs().mean().item() * 0.226 * 255  # back to grey levels
        assert diff < 2.0
        # Predictions mapped back land in the record's frame: same NME as against the originals.
        back = to_original(ib["landmarks"].double().numpy(), ib["matrix"].numpy())
        np.testing.assert_allclose(back, cached.records[i].landmarks, atol=1e-4)


def test_cofw_cache_keeps_occlusion_and_in_memory_images(tmp_path):
    data = build_cofw_fixture(tmp_path / "cofw")
    src = COFW(tmp_path / "cofw", "test")
    prepare_cache(src, tmp_path / "c", cache_size=48)
    cached = CachedFaces(tmp_path / "c", "cofw", "test")
    for i, r in enumerate(cached.records):
        np.testing.assert_array_equal(r.occluded, data["test"]["occluded"][i])
    # Greyscale source stays grey in the cache.
    img = cached.records[0].load_image()
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()


def test_parameter_change_rebuilds_and_reuse_keeps_files(wflw, tmp_path):
    src, _ = wflw
    i1, built1 = prepare_cache(src, tmp_path / "c", cache_size=32)
    i2, built2 = prepare_cache(src, tmp_path / "c", cache_size=32)
    assert built1 and not built2 and i1["build"] == i2["build"]
    i3, built3 = prepare_cache(src, tmp_path / "c", cache_size=40)
    assert built3 and i3["build"] != i1["build"]
    assert not (tmp_path / "c" / i1["images"]).exists()
    # A truncated image file invalidates the cache.
    (tmp_path / "c" / i3["images"]).write_bytes(b"\x93NUMPY")
    assert prepare_cache(src, tmp_path / "c", cache_size=40)[1]


def test_unreadable_image_aborts_and_keeps_the_previous_cache(wflw, tmp_path):
    src, _ = wflw
    old, _ = prepare_cache(src, tmp_path / "c", cache_size=32)
    (tmp_path / "WFLW/WFLW_images/1--Handshaking/edge.jpg").write_bytes(b"broken")
    with pytest.raises(DataError, match=r"edge.jpg: expected .*\(the image of list_98pt_rect_attr_train.txt:3\)"):
        prepare_cache(src, tmp_path / "c", cache_size=32)
    assert json.loads(index_path(tmp_path / "c", "wflw", "train").read_text())["build"] == old["build"]
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted(
        [old["images"], old["arrays"], "wflw_train.json"])
    assert len(CachedFaces(tmp_path / "c", "wflw", "train")) == 3


def test_missing_cache_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="hih data prepare"):
        CachedFaces(tmp_path, "wflw", "test")


def test_hih_train_from_the_cache_sees_the_same_crops_as_from_the_original_files(wflw, tmp_path, capsys):
    from pathlib import Path

    import torch

    from hihlib.pipeline.build import build_dataset, open_split
    from hihlib.cli import main
    from hihlib.pipeline.config import load_config

    src, _ = wflw
    prepare_cache(src, tmp_path / "c", cache_size=256)
    opts = ["data.dataset=wflw", f"data.root={src.root}", "data.input_size=64", "model.heatmap_size=16"]
    sets = []
    for extra in ([], [f"data.cache={tmp_path / 'c'}"]):
        cfg = load_config(None, opts + extra)
        records, scheme, desc = open_split(cfg, "train")
        sets.append((build_dataset(cfg, records, scheme, train=True), records, desc))
    (a, originals, _), (b, cached, desc) = sets
    assert desc == f"WFLW train split from the cache {tmp_path / 'c'} (of {src.root}), 3 faces"
    for epoch in (0, 1):
        a.set_epoch(epoch)
        b.set_epoch(epoch)
        for i in range(3):
            ia, ib = a[i], b[i]
            # the same augmentation draw, the same crop of the original image
            assert ia["flipped"] == ib["flipped"]
            np.testing.assert_allclose(compose_affine(ib["matrix"].numpy(), cached[i].from_original),
                                       ia["matrix"].numpy(), atol=1e-9)
            np.testing.assert_allclose(ib["landmarks"].numpy(), ia["landmarks"].numpy(), atol=1e-4)
            if i < 2:  # the smooth image: two interpolations differ from one by little (uint8 training crops)
                assert ia["image"].dtype == ib["image"].dtype == torch.uint8
                assert (ib["image"].float() - ia["image"].float()).abs().mean().item() < 2.0
    config = Path(__file__).resolve().parent.parent / "configs" / "wflw_hih_b.yaml"
    rc = main(["train", "--config", str(config), "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "c"),
               f"data.root={src.root}", "train.eval_every=0", "data.input_size=64", "model.name=hg_tiny",
               "model.heatmap_size=16", "model.options={width: 16, depth: 2}", "train.epochs=1",
               "train.batch_size=2", "train.progress=false"])
    assert rc == 0
    assert f"data: WFLW train split from the cache {tmp_path / 'c'}" in capsys.readouterr().out
