"""`hih data check` and `hih data prepare` on fixture trees in the official formats."""

import numpy as np
import pytest

from hihlib.cli import main
from tests.formats import build_300w_fixture, build_cofw_fixture, build_wflw_fixture, wflw_line, write_wflw


@pytest.fixture
def wflw_tree(tmp_path):
    faces = build_wflw_fixture(tmp_path / "WFLW")
    return tmp_path / "WFLW", faces


def test_check_reports_official_counts_as_errors_or_warnings(wflw_tree, capsys):
    root, _ = wflw_tree
    assert main(["data", "check", str(root), "--dataset", "wflw"]) == 2
    err = capsys.readouterr().err
    assert "list_98pt_rect_attr_train.txt: expected 7500 faces in the train split (the official count), found 3" in err
    assert "expected 2500 faces in the test split" in err
    assert "expected 326 test faces with the pose flag (the official count), found 1" in err
    assert "Traceback" not in err
    assert main(["data", "check", str(root), "--dataset", "wflw", "--allow-counts"]) == 0
    cap = capsys.readouterr()
    lines = cap.err.splitlines()
    assert len(lines) == 8 and all(line.startswith("warning: ") for line in lines)  # 2 splits + 6 subsets
    assert "OK (8 warning(s))" in cap.out


def test_check_lists_malformed_lines_and_unreadable_images(wflw_tree, capsys):
    root, faces = wflw_tree
    bad = " ".join(wflw_line(faces["train"][0]["landmarks"], faces["train"][0]["box"], [0] * 6, "a.jpg").split()[:-1])
    write_wflw(root, faces["train"], faces["test"], extra_lines={"train": [(2, bad)]})
    (root / "WFLW_images/1--Handshaking/edge.jpg").write_bytes(b"garbage")
    (root / "WFLW_annotations/list_98pt_test/list_98pt_test_makeup.txt").write_text("")  # test face 3 has make-up
    assert main(["data", "check", str(root), "--dataset", "wflw", "--allow-counts"]) == 2
    out = capsys.readouterr()
    assert "list_98pt_rect_attr_train.txt:3: expected 207 whitespace-separated tokens" in out.err
    assert "found 206 tokens" in out.err
    # The unreadable image is reported at the line that names it (line 4 after the inserted bad line).
    assert "list_98pt_rect_attr_train.txt:4: expected a readable image WFLW_images/1--Handshaking/edge.jpg" in out.err
    assert ("list_98pt_rect_attr_test.txt:3: expected the face to be listed in list_98pt_test_makeup.txt "
            "(its makeup flag is 1), found not listed") in out.err
    assert "hih data: error: 3 problem(s)" in out.err
    assert "wflw train: 3 faces read, 1 malformed, 1 unreadable image(s)" in out.out


def test_check_cofw_and_300w(tmp_path, capsys):
    build_cofw_fixture(tmp_path / "cofw")
    build_300w_fixture(tmp_path / "300w")
    assert main(["data", "check", str(tmp_path / "cofw"), "--dataset", "cofw", "--allow-counts"]) == 0
    assert main(["data", "check", str(tmp_path / "300w"), "--dataset", "300w", "--allow-counts"]) == 0
    out = capsys.readouterr().out
    assert "cofw train: 3 faces read" in out and "300w private: 2 faces read" in out
    assert main(["data", "check", str(tmp_path / "300w"), "--dataset", "300w"]) == 2
    assert "expected 3148 faces in the train split (the official count), found 3" in capsys.readouterr().err


def test_missing_files_are_reported_without_traceback(tmp_path, capsys):
    # tests/test_cli.py runs the same command as a separate process (exit status of `hih`).
    assert main(["data", "check", str(tmp_path), "--dataset", "cofw"]) == 2
    err = capsys.readouterr().err
    assert "COFW_train_color.mat: expected the COFW train file COFW_train_color.mat, found no such file" in err
    assert "Traceback" not in err


def test_prepare_builds_then_reuses_then_rebuilds_when_stale(wflw_tree, tmp_path, capsys):
    root, faces = wflw_tree
    cache = tmp_path / "cache"
    args = ["data", "prepare", str(root), "--dataset", "wflw", "--out", str(cache), "--cache-size", "64"]
    assert main(args) == 0
    assert capsys.readouterr().out.count("built") == 2
    first = sorted(p.name for p in cache.iterdir())
    assert len(first) == 6  # per split: index, images, arrays
    assert main(args) == 0
    assert capsys.readouterr().out.count("reused (up to date)") == 2
    assert sorted(p.name for p in cache.iterdir()) == first
    # Editing an annotation makes the train cache stale: rebuilt, old build files removed.
    train_list = root / "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_train.txt"
    lines = train_list.read_text().splitlines()
    f = faces["train"][1]
    lines[1] = wflw_line(f["landmarks"] + 0.5, f["box"], f["flags"], f["image"])
    train_list.write_text("\n".join(lines) + "\n")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "wflw train: 3 faces, built" in out and "wflw test: 4 faces, reused" in out
    now = sorted(p.name for p in cache.iterdir())
    assert len(now) == 6 and now != first
    assert not [p for p in cache.iterdir() if ".tmp" in p.name]


def test_prepare_fails_cleanly_on_a_malformed_line_unless_skip_bad(wflw_tree, tmp_path, capsys):
    root, faces = wflw_tree
    write_wflw(root, faces["train"], faces["test"], extra_lines={"train": [(0, "1 2 3")]})
    cache = tmp_path / "cache"
    args = ["data", "prepare", str(root), "--dataset", "wflw", "--out", str(cache), "--cache-size", "32", "--split", "train"]
    assert main(args) == 2
    assert "list_98pt_rect_attr_train.txt:1: expected 207" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="skipped 1"):
        assert main(args + ["--skip-bad"]) == 0
    assert "skipped 1 bad sample(s) (--skip-bad)" in capsys.readouterr().out
    from hihlib.data.cache import CachedFaces

    cached = CachedFaces(cache, "wflw", "train")
    assert len(cached) == 3 and len(cached.skipped) == 1
    np.testing.assert_equal(cached.records[0].load_image().shape, (32, 32, 3))


def test_check_passes_on_the_export_hih_data_synth_just_wrote(tmp_path, capsys):
    for fmt in ("wflw", "cofw", "300w"):
        root = tmp_path / fmt
        assert main(["data", "synth", "--format", fmt, "--out", str(root), "--train", "3", "--test", "2",
                     "--image-size", "64"]) == 0
        assert main(["data", "check", str(root), "--dataset", fmt]) == 0
        out = capsys.readouterr().out
        assert f"{fmt} at {root}: a synthetic export by hih data synth (seed 0); counts checked against " \
               f"hih_synthetic_{fmt}.json" in out
        assert out.rstrip().endswith(f"{fmt} at {root}: OK")


def test_check_of_an_export_compares_counts_with_its_record_not_the_official_ones(tmp_path, capsys):
    root = tmp_path / "wflw"
    assert main(["data", "synth", "--format", "wflw", "--out", str(root), "--train", "3", "--test", "2",
                 "--image-size", "64"]) == 0
    train_list = root / "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_train.txt"
    train_list.write_text("".join(train_list.read_text().splitlines(keepends=True)[:2]))  # a face lost
    capsys.readouterr()
    assert main(["data", "check", str(root), "--dataset", "wflw"]) == 2
    err = capsys.readouterr().err
    assert (f"{train_list}: expected 3 faces in the train split (written by hih data synth, "
            "hih_synthetic_wflw.json), found 2") in err
    assert err.splitlines()[-1] == f"hih data: error: 1 problem(s) in wflw at {root}"


def test_count_errors_tell_about_allow_counts(wflw_tree, capsys):
    root, _ = wflw_tree
    assert main(["data", "check", str(root), "--dataset", "wflw", "--no-images"]) == 2
    last = capsys.readouterr().err.splitlines()[-1]
    assert last == (f"hih data: error: 8 problem(s) in wflw at {root}; 8 of them are face counts that differ from "
                    "the official ones: --allow-counts reports those as warnings (for a subset or an export)")
