"""The `hih` command: every sub-command is registered, and user errors exit non-zero without a traceback."""

import argparse
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
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert "missing" in r.stderr and "expected" in r.stderr


def test_top_level_help_and_version_do_not_import_torch():
    # A fresh interpreter: `hih --help` lists the commands from cli.COMMAND_MODULES without importing them.
    code = ("import sys\nfrom hihlib.cli import main\n"
            "for argv in (['--help'], ['--version']):\n"
            "    try:\n        main(argv)\n    except SystemExit as e:\n        assert e.code == 0, e.code\n"
            "print('torch imported:', 'torch' in sys.modules)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "torch imported: False"
    assert "usage: hih [-h] [--version] COMMAND ..." in r.stdout
    assert "hih (hihlib) 0.1.0" in r.stdout
    for name in ("data", "train", "eval", "predict", "demo"):
        assert f"\n    {name} " in r.stdout


def test_the_one_line_help_in_cli_is_the_help_each_module_registers():
    from hihlib.cli import COMMAND_MODULES

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    registered = {c.dest: c.help for c in sub._choices_actions}
    assert {name: text for name, _, text in COMMAND_MODULES} == registered


def _all_parsers(parser, prefix="hih"):
    yield prefix, parser
    for action in parser._actions:
        if action.dest in ("command", "data_command") and action.choices:
            for name, child in action.choices.items():
                yield from _all_parsers(child, f"{prefix} {name}")


def test_every_argument_of_data_predict_and_demo_has_help_and_defaults_are_shown():
    for name, parser in _all_parsers(build_parser()):
        if not name.startswith(("hih data", "hih predict", "hih demo")):
            continue
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue  # its choices are listed with their own help
            assert action.help, f"{name}: {'/'.join(action.option_strings) or action.dest} has no help text"
        text = parser.format_help()
        assert "``" not in text and ":func:" not in text, f"{name}: docstring markup in its help"
    synth = dict(_all_parsers(build_parser()))["hih data synth"].format_help()
    assert "training faces (default: 200)" in synth

