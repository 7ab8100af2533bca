"""WFLW loader on a fixture tree written at test time in the official format."""

from pathlib import Path

import numpy as np
import pytest

from hihlib.data.wflw import ATTRIBUTES, WFLW, parse_line, subset_path
from hihlib.errors import DataError, HihError
from tests.formats import build_wflw_fixture, wflw_line, wflw_subset_line, write_wflw


@pytest.fixture
def tree(tmp_path):
    faces = build_wflw_fixture(tmp_path)
    return tmp_path, faces


def test_records_match_the_written_lines(tree):
    root, faces = tree
    for split in ("train", "test"):
        ds = WFLW(root, split)
        assert len(ds) == len(faces[split])
        for i, (r, f) in enumerate(zip(ds.records, faces[split])):
            np.testing.assert_allclose(r.landmarks, f["landmarks"], atol=5e-7)  # 6 decimals written
            np.testing.assert_allclose(r.box, f["box"], atol=5e-7)
            assert r.attributes == {a for a, on in zip(ATTRIBUTES, f["flags"]) if on}
            assert r.key == f"list_98pt_rect_attr_{split}.txt:{i + 1}"
            assert Path(r.image_path) == root / "WFLW_images" / f["image"]
            assert r.scheme == "wflw" and r.occluded is None and r.landmarks.shape == (98, 2)


def test_two_faces_on_one_image_are_two_samples(tree):
    root, _ = tree
    ds = WFLW(root, "train")
    assert ds[0].image_path == ds[1].image_path and ds[0].key != ds[1].key
    assert not np.allclose(ds[0].landmarks, ds[1].landmarks)
    assert ds[0].load_image().shape == (120, 160, 3)


def test_landmarks_outside_the_image_are_kept(tree):
    root, _ = tree
    r = WFLW(root, "train")[2]
    h, w = r.load_image().shape[:2]
    np.testing.assert_allclose(r.landmarks[0], (-3.25, 40.5))
    np.testing.assert_allclose(r.landmarks[32], (104.75, 99.125))
    assert r.landmarks[0, 0] < -0.5 and r.landmarks[32, 0] > w - 0.5


def test_subset_filter_and_counts(tree):
    root, faces = tree
    ds = WFLW(root, "test")
    assert ds.subset_counts() == {a: int(sum(f["flags"][k] for f in faces["test"])) for k, a in enumerate(ATTRIBUTES)}
    blur = WFLW(root, "test", subset="blur")
    assert [r.key for r in blur] == ["list_98pt_rect_attr_test.txt:1", "list_98pt_rect_attr_test.txt:3"]
    with pytest.raises(ValueError, match="unknown WFLW subset"):
        WFLW(root, "test", subset="largepose")


def test_malformed_line_raises_with_file_line_and_expectation(tmp_path):
    faces = build_wflw_fixture(tmp_path)
    bad = wflw_line(faces["train"][0]["landmarks"], faces["train"][0]["box"], [0] * 6, "x.jpg").split()
    bad = " ".join(bad[:100])  # a truncated line
    write_wflw(tmp_path, faces["train"], faces["test"], extra_lines={"train": [(1, bad)]})
    with pytest.raises(DataError) as e:
        WFLW(tmp_path, "train")
    assert e.value.line == 2 and e.value.path.endswith("list_98pt_rect_attr_train.txt")
    assert "207 whitespace-separated tokens" in str(e.value) and "found 100 tokens" in str(e.value)
    with pytest.warns(UserWarning, match="skipped 1 bad sample"):
        ds = WFLW(tmp_path, "train", skip_bad=True)
    assert len(ds) == 3 and len(ds.skipped) == 1 and ds.skipped[0].line == 2
    # Line numbers stay those of the file: the face after the bad line is line 3.
    assert ds[1].key == "list_98pt_rect_attr_train.txt:3"


@pytest.mark.parametrize("mutate,expected", [
    (lambda t: t[:196] + ["10", "10", "5", "20"] + t[200:], "x_min < x_max"),
    (lambda t: t[:200] + ["2"] + t[201:], "each 0 or 1"),
    (lambda t: ["abc"] + t[1:], "'abc'"),
    (lambda t: ["nan"] + t[1:], "finite"),
])
def test_parse_line_rejects_bad_fields(mutate, expected):
    tokens = wflw_line(np.zeros((98, 2)), (0, 0, 10, 10), [0] * 6, "a/b.jpg").split()
    assert parse_line(" ".join(tokens), "f.txt", 7)[3] == "a/b.jpg"
    with pytest.raises(DataError, match=expected) as e:
        parse_line(" ".join(mutate(tokens)), "f.txt", 7)
    assert str(e.value).startswith("f.txt:7: expected")


def test_subset_list_disagreeing_with_flags_is_reported(tree):
    root, faces = tree
    path = subset_path(root, "blur")  # blur flags: test faces 1 and 3 (lines 1 and 3)
    lines = path.read_text().splitlines()
    path.write_text(lines[1] + "\n")  # face 1 left out
    with pytest.warns(UserWarning, match="1 disagreement"):
        ds = WFLW(root, "test")
    assert len(ds) == 4 and "blur" in ds[0].attributes  # the flags are used
    (p,) = ds.problems
    assert (p.line, p.found) == (1, "not listed") and "to be listed in list_98pt_test_blur.txt" in str(p)
    # A listed face whose flag is 0, and a line that matches no face (landmarks moved by 0.1 px).
    f3 = faces["test"][3]
    extra = [wflw_subset_line(f3["landmarks"], f3["image"]), wflw_subset_line(f3["landmarks"] + 0.1, f3["image"])]
    path.write_text("\n".join(lines + extra) + "\n")
    with pytest.warns(UserWarning, match="2 disagreement"):
        ds = WFLW(root, "test")
    assert [(p.line, p.found) for p in ds.problems] == [
        (3, "flag 0"), (4, f"{f3['image']} with landmarks that match no line there")]
    # Reformatted coordinates (3 decimals) still match.
    path.write_text("".join(wflw_subset_line(np.round(f["landmarks"], 3), f["image"]) + "\n"
                            for f in (faces["test"][0], faces["test"][2])))
    assert WFLW(root, "test").problems == []


def test_missing_list_names_the_file(tmp_path):
    with pytest.raises(DataError, match="list_98pt_rect_attr_train.txt"):
        WFLW(tmp_path, "train")
    with pytest.raises(HihError, match="split .val.: expected one of train, test"):
        WFLW(tmp_path, "val")


def test_unreadable_image_is_found_by_check_images(tree):
    root, _ = tree
    (root / "WFLW_images/2--Demonstration/test_2.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    ds = WFLW(root, "test")
    errors = ds.check_images()
    assert len(errors) == 1 and errors[0].path.endswith("list_98pt_rect_attr_test.txt") and errors[0].line == 3
    assert "a readable image WFLW_images/2--Demonstration/test_2.jpg" in str(errors[0])
    with pytest.raises(DataError, match="test_2.jpg"):
        ds[2].load_image()


def test_undecodable_bytes_are_a_data_error_not_a_crash(tree):
    root, faces = tree
    path = root / "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_train.txt"
    path.write_bytes(path.read_bytes() + b"\xff\xfe 1 2 3\r\n")
    with pytest.raises(DataError, match=r"train.txt:4: expected 207"):
        WFLW(root, "train")
