"""300W loader: .pts parsing (1-based -> 0-based), splits, errors."""

import numpy as np
import pytest

from hihlib.data.w300 import EXPECTED_COUNTS, SPLIT_FOLDERS, W300, read_pts
from hihlib.errors import DataError
from tests.formats import build_300w_fixture, pts_text, write_pts


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("w300")
    return root, build_300w_fixture(root, per_folder=2)


def test_read_pts_subtracts_one(tmp_path):
    pts = np.random.default_rng(0).uniform(0, 50, (68, 2))
    path = write_pts(tmp_path / "a.pts", pts)
    assert path.read_text().splitlines()[3] == f"{pts[0, 0] + 1:.6f} {pts[0, 1] + 1:.6f}"
    np.testing.assert_allclose(read_pts(path), pts, atol=5e-7)


@pytest.mark.parametrize("split", list(SPLIT_FOLDERS))
def test_splits_collect_their_folders(tree, split):
    root, data = tree
    ds = W300(root, split)
    assert len(ds) == 2 * len(SPLIT_FOLDERS[split])
    expected = [pts for folder in SPLIT_FOLDERS[split] for _, pts in data[folder]]
    got = {r.key: r for r in ds}
    keys = [f"{folder}/{stem}.pts" for folder in SPLIT_FOLDERS[split] for stem, _ in data[folder]]
    assert sorted(got) == sorted(keys)
    for key, pts in zip(keys, expected):
        np.testing.assert_allclose(got[key].landmarks, pts, atol=5e-7)
        # No boxes ship with 300W: the tight landmark box.
        np.testing.assert_allclose(got[key].box, [*pts.min(0), *pts.max(0)], atol=5e-7)
        assert got[key].image_path.endswith(".png") and got[key].scheme == "300w"


def test_full_is_common_plus_challenge_with_subset_attributes(tree):
    root, _ = tree
    full = W300(root, "full")
    assert {r.key for r in full} == {r.key for r in W300(root, "common")} | {r.key for r in W300(root, "challenge")}
    assert sum("challenge" in r.attributes for r in full) == 2 and sum("common" in r.attributes for r in full) == 4
    assert sum(EXPECTED_COUNTS[s] for s in ("common", "challenge")) == EXPECTED_COUNTS["full"]


@pytest.mark.parametrize("edit,line,expected", [
    (lambda s: s.replace("n_points:  68", "n_points:  67"), 2, "n_points: 68"),
    (lambda s: s.replace("{", "["), 3, "'{'"),
    (lambda s: "\n".join(["foo bar" if i == 4 else t for i, t in enumerate(s.splitlines())]), 5, "a point 'x y'"),
    (lambda s: s.replace("}", ""), None, "'}' after 68 points"),
    (lambda s: "\n".join(s.splitlines()[:40]), None, "68 point lines"),
])
def test_malformed_pts_names_file_and_line(tmp_path, edit, line, expected):
    path = tmp_path / "bad.pts"
    path.write_text(edit(pts_text(np.ones((68, 2)))))
    with pytest.raises(DataError) as e:
        read_pts(path)
    assert e.value.line == line and expected in str(e.value) and e.value.path == str(path)


def test_bad_and_imageless_samples_skip_with_count(tmp_path):
    build_300w_fixture(tmp_path, per_folder=2)
    (tmp_path / "ibug/image_001.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n")
    (tmp_path / "ibug/image_000.png").unlink()
    with pytest.raises(DataError, match="image_000.pts: expected an image beside it"):
        W300(tmp_path, "challenge")
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = W300(tmp_path, "challenge", skip_bad=True)
    assert len(ds) == 0 and len(ds.skipped) == 2


def test_missing_tree_is_an_error(tmp_path):
    with pytest.raises(DataError, match="afw, helen/trainset, lfpw/trainset"):
        W300(tmp_path, "train")
