"""The `hih` command: every sub-command is registered, and user errors exit non-zero without a traceback."""

import subprocess
import sys

from hihlib.cli import build_parser, main


def test_every_subcommand_is_registered():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"data", "train", "eval", "predict", "demo"} <= set(sub.choices)


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 1
    assert "usage: hih" in capsys.readouterr().out


def test_user_error_is_one_line_without_traceback(tmp_path):
    r = subprocess.run([sys.executable, "-m", "hihlib.cli", "data", "check", str(tmp_path / "missing"), "--dataset", "cofw"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "missing" in r.stderr and "expected" in r.stderr
