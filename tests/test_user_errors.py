"""Issue 19, items 2 and 3: the bad inputs a new user met that gave a traceback, the top-level usage or a
vague message now get one line naming what was expected (exit 2); a checkpoint records what it was
trained on, ``hih predict`` warns when that was synthetic and ``hih eval`` names a synthetic export.

Tiny sizes throughout (hg_tiny of width 16, 4 faces of 64 px): the file runs in well under a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cli_run import hih

ROOT = Path(__file__).resolve().parent.parent
SYNTH = str(ROOT / "configs" / "synth_hih.yaml")
TINY = ["data.num_train=4", "data.num_val=4", "data.image_size=64", "data.input_size=64", "model.name=hg_tiny",
        "model.heatmap_size=16", "model.options={width: 16, depth: 2}", "train.epochs=1", "train.batch_size=2",
        "train.progress=false", "train.eval_every=0", "data.workers=0"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def error_line(err: str, command: str) -> str:
    """The one ``hih COMMAND: error: ...`` line of stderr (warnings and progress bars aside)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")
             and "it/s]" not in line and "s/it]" not in line]
    assert len(lines) == 1, err
    assert lines[0].startswith(f"hih {command}: error: "), lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """A 4 + 4 face WFLW-format export and a COFW-format one (29 landmarks)."""
    from hihlib.data.synthetic_export import export

    root = tmp_path_factory.mktemp("exports")
    export("wflw", root / "wflw", 4, 4, image_size=64)
    export("cofw", root / "cofw", 4, 4, image_size=64)
    return root


# ----------------------------------------------------------------------------------------------
# Item 2: one line, exit 2, no traceback


def test_unknown_split_of_hih_data_check_is_one_line_in_a_fresh_interpreter(exports):
    r = subprocess.run([sys.executable, "-m", "hihlib.cli", "data", "check", str(exports / "wflw"), "--dataset", "wflw",
                        "--split", "tset"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == ["hih data: error: split 'tset': expected one of train, test (WFLW)"]


def test_resume_with_another_landmark_count_names_the_setting_that_differs(tmp_path, exports, capsys):
    run = tmp_path / "run"
    assert hih(capsys, "train", "--config", SYNTH, "--out", run, *TINY)[0] == 0
    code, _, err = hih(capsys, "train", "--config", SYNTH, "--out", run, "--resume", *TINY, "train.epochs=2",
                       "data.dataset=cofw", f"data.root={exports / 'cofw'}")
    assert code == 2
    line = error_line(err, "train")
    assert "cannot resume: the checkpoint's model predicts 98 landmarks, this run's data has 29" in line
    assert "data.dataset ('synth' in the checkpoint, 'cofw' now)" in line
    # another heatmap size: the architecture differs, and the setting is named
    code, _, err = hih(capsys, "train", "--config", SYNTH, "--out", run, "--resume", *TINY, "model.heatmap_size=32")
    assert code == 2
    assert "model.heatmap_size (16 in the checkpoint, 32 now)" in error_line(err, "train")


def test_resume_from_the_command_line_continues_exactly(tmp_path, capsys):
    """``hih train --resume`` (the CLI, not the Trainer API): 1 epoch + resume to 2 epochs gives the
    weights of 2 epochs straight, bit for bit; the overrides may follow --resume. A constant learning
    rate: the cosine schedule's length is the number of epochs, which the resumed run changes."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    flat = ["optim.schedule=none", "optim.warmup_steps=0"]
    assert hih(capsys, "train", "--config", SYNTH, "--out", straight, *TINY, *flat, "train.epochs=2")[0] == 0
    assert hih(capsys, "train", "--config", SYNTH, "--out", resumed, *TINY, *flat)[0] == 0
    half = torch.load(resumed / "last.pt", weights_only=False)
    assert (half["epoch"], half["global_step"]) == (1, 2)
    code, out, err = hih(capsys, "train", "--config", SYNTH, "--out", resumed, *TINY[:3], "--resume", *TINY[3:],
                         *flat, "train.epochs=2")
    assert code == 0, err
    assert f"resumed from {resumed / 'last.pt'}: epoch 1, step 0 of the epoch" in out
    a = torch.load(straight / "last.pt", weights_only=False)
    b = torch.load(resumed / "last.pt", weights_only=False)
    assert a["global_step"] == b["global_step"] == 4
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_a_bad_flag_of_a_sub_command_gets_that_sub_commands_usage_and_a_suggestion(capsys):
    code, _, err = hih(capsys, "demo", "--quik")
    assert code == 2
    assert err.startswith("usage: hih demo ")
    assert err.strip().splitlines()[-1] == "hih demo: error: unrecognized arguments: --quik (did you mean --quick?)"
    code, _, err = hih(capsys, "data", "check", "somewhere", "--dataset", "wflw", "--no-imags")
    assert code == 2 and err.startswith("usage: hih data check ")
    assert "did you mean --no-images?" in err


def test_overrides_may_come_before_and_after_the_options():
    from hihlib.cli import build_parser, parse

    args = parse(build_parser("train"), ["train", "--config", "c.yaml", "optim.lr=1", "--out", "o", "--resume",
                                         "train.epochs=3"])
    assert args.overrides == ["optim.lr=1", "train.epochs=3"] and args.resume


def test_a_misspelt_codec_option_says_did_you_mean(tmp_path, capsys):
    from hihlib.codecs import get_codec
    from hihlib.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown option sigmma of the hih codec; did you mean sigma"):
        get_codec("hih", input_size=64, heatmap_size=16, sigmma=1.0)
    code, _, err = hih(capsys, "train", "--config", SYNTH, "--out", tmp_path, "codec.options.sigmma=2")
    assert code == 2 and "did you mean sigma?" in error_line(err, "train")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_errors_name_the_flag_the_user_wrote(tmp_path, capsys):
    for argv in (["eval", "--checkpoint", tmp_path / "x.pt", "--dataset", "synth"],
                 ["demo", "--quick", "--out", tmp_path, "--work-dir", tmp_path / "work"]):
        code, _, err = hih(capsys, *argv, "--device", "cuda")
        line = error_line(err, argv[0])
        assert code == 2 and "--device cuda: no CUDA device is available" in line and "train.device" not in line
    code, _, err = hih(capsys, "eval", "--checkpoint", tmp_path / "x.pt", "--dataset", "synth", "--device", "gpu")
    assert code == 2 and error_line(err, "eval").endswith("--device gpu: expected auto, cpu, cuda or cuda:N")


def test_an_empty_image_file_is_called_empty(tmp_path):
    from hihlib.data.records import read_image
    from hihlib.errors import DataError

    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jpg: expected an image that OpenCV can decode .*, found an empty file"):
        read_image(str(tmp_path / "empty.jpg"))


def test_hih_demo_refuses_zero_threads(tmp_path, capsys):
    code, _, err = hih(capsys, "demo", "--quick", "--threads", "0", "--out", tmp_path / "out",
                       "--work-dir", tmp_path / "work")
    assert code == 2 and error_line(err, "demo") == "hih demo: error: --threads: expected a positive integer"
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


def test_hih_data_synth_keeps_an_existing_export_unless_forced(tmp_path, capsys):
    out = tmp_path / "export"
    argv = ["data", "synth", "--format", "wflw", "--out", out, "--train", "2", "--test", "1", "--image-size", "64"]
    assert hih(capsys, *argv)[0] == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, _, err = hih(capsys, *argv, "--seed", "3")
    assert code == 2
    assert "expected a new or empty folder, found 3 entries" in error_line(err, "data")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert hih(capsys, *argv, "--seed", "3", "--force")[0] == 0
    assert json.loads((out / "hih_synthetic_wflw.json").read_text())["seed"] == 3


def test_one_thread_is_singular(monkeypatch):
    from hihlib.studies.benchmarking import machine_description
    from hihlib.studies.claims import readme_block

    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert "(1 thread)" in machine_description("cpu")
    results = json.loads((ROOT / "figures" / "demo_results.json").read_text())
    results["torch_threads"] = [1, 1]
    assert "(1 torch thread, " in readme_block(results, "x")
    results["torch_threads"] = [2, 2]
    assert "(2 torch threads, " in readme_block(results, "x")


# ----------------------------------------------------------------------------------------------
# Item 3: what a checkpoint was trained on


def _train(capsys, out, *extra):
    code, _, err = hih(capsys, "train", "--config", SYNTH, "--out", out, *TINY, *extra)
    assert code == 0, err


def test_checkpoint_records_its_data_and_predict_warns_when_it_was_synthetic(tmp_path, exports, capsys):
    from hihlib.pipeline.checkpoint import read_checkpoint, trained_on
    from formats import noise_image, write_image

    image = write_image(tmp_path / "photo.png", noise_image(np.random.default_rng(0), 96, 96))
    real = tmp_path / "real_wflw"          # the same files without the export's record: a "download"
    import shutil

    shutil.copytree(exports / "wflw", real)
    (real / "hih_synthetic_wflw.json").unlink()
    runs = {"synth": [], "export": ["data.dataset=wflw", f"data.root={exports / 'wflw'}"],
            "real": ["data.dataset=wflw", f"data.root={real}"]}
    for name, extra in runs.items():
        _train(capsys, tmp_path / name, *extra)
        origin = trained_on(read_checkpoint(tmp_path / name / "last.pt"))
        assert origin["synthetic"] is (name != "real"), (name, origin)
        assert origin["dataset"] == ("synth" if name == "synth" else "wflw")
        code, out, err = hih(capsys, "predict", image, "--checkpoint", tmp_path / name / "last.pt",
                             "--out", tmp_path / "pred", "--box", 10, 10, 80, 80)
        assert code == 0, err
        warnings = [line for line in err.splitlines() if line.startswith("warning:")]
        if name == "real":
            assert warnings == []
        else:
            assert len(warnings) == 1 and "was trained on synthetic faces" in warnings[0]
            assert "README, 'Released weights'" in warnings[0]
        report = json.loads((tmp_path / "pred" / "photo_landmarks.json").read_text())
        assert report["trained_on"]["synthetic"] is (name != "real")


def test_an_old_checkpoint_without_the_record_is_synthetic_when_its_config_says_synth(tmp_path, capsys):
    from hihlib.pipeline.checkpoint import trained_on

    _train(capsys, tmp_path)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=False)
    assert ckpt["data"]["synthetic"] is True
    del ckpt["data"]
    assert trained_on(ckpt)["synthetic"] is True
    ckpt["config"]["data"]["dataset"] = "wflw"
    assert trained_on(ckpt)["synthetic"] is None


def test_hih_eval_names_a_synthetic_export_as_such(tmp_path, exports, capsys):
    _train(capsys, tmp_path / "run")
    code, out, err = hih(capsys, "eval", "--checkpoint", tmp_path / "run" / "last.pt", "--dataset", "wflw",
                         "--root", exports / "wflw", "--out", tmp_path / "eval")
    assert code == 0, err
    assert f"data: synthetic WFLW-format export (hih data synth, seed 0; NOT WFLW) test split from {exports / 'wflw'}" in out
    assert "WFLW test split" not in out
    report = json.loads((tmp_path / "eval" / "eval_wflw.json").read_text())
    assert report["data"].startswith("synthetic WFLW-format export") and report["trained_on"]["synthetic"] is True
