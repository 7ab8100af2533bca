"""The ``hih`` command.

Each sub-command lives in the module that implements it; a module registers its sub-command by
defining ``register(subparsers)`` and is listed, with the command's name and one-line help, in
``COMMAND_MODULES``. Only the chosen command's module is imported: the modules import torch (2-4 s),
and ``hih --help`` must answer at once. ``tests/test_cli.py`` checks that the one-line help written
here is the help each module registers.

Every handler returns an exit code. A ``HihError`` (bad data, bad option) is printed as one line on
stderr with exit code 2 and no traceback. Every sub-command's help shows the options' defaults.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys

from . import __version__
from .errors import HihError

# (command, module that defines ``register(subparsers)`` for it, one-line help shown by ``hih --help``)
COMMAND_MODULES = [
    ("data", "hihlib.data.commands", "check, prepare or synthesise face datasets"),
    ("train", "hihlib.training.trainer", "train a model from a YAML config"),
    ("eval", "hihlib.inference.evaluate", "evaluate a checkpoint: NME, FR@0.1, AUC@0.1 per subset and decoder"),
    ("predict", "hihlib.inference.predict", "detect faces in an image and predict their landmarks"),
    ("demo", "hihlib.studies.demo", "train Gaussian, H3R and HIH models on synthetic faces and compare decoders"),
    ("export", "hihlib.inference.export", "export a checkpoint to ONNX with its decoder inside"),
    ("convert", "hihlib.inference.convert", "convert released HIH, H3R or HRNet-facial weights into a hihlib checkpoint (for hih eval / predict)"),
]

_RST = re.compile(r"``([^`]+)``|:\w+:`~?([^`]+)`")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default unless it says nothing (None, False) or the help already names it,
    and prints docstring markup (````code````, ``:func:`x```) as plain text."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default in (None, False, argparse.SUPPRESS) or "default" in text:
            return text
        return super()._get_help_string(action)

    def _format_text(self, text):
        return super()._format_text(_RST.sub(lambda m: m.group(1) or m.group(2), text))

    def _expand_help(self, action):
        return _RST.sub(lambda m: m.group(1) or m.group(2), super()._expand_help(action))


class HihArgumentParser(argparse.ArgumentParser):
    """Every parser of ``hih`` (sub-commands and their own sub-commands inherit the class) formats its
    help with :class:`HelpFormatter`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def chosen_command(argv: list[str]) -> str | None:
    """The sub-command named in ``argv``: the first word that is not an option (``hih`` itself takes
    no option with a value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(command: str | None = "*") -> HihArgumentParser:
    """The ``hih`` parser. ``command``: the sub-command whose module is imported to register its
    arguments; the others get a placeholder with their one-line help. ``"*"`` imports them all."""
    parser = HihArgumentParser(prog="hih", description="Sub-pixel face alignment: HIH, H3R and classic heatmap "
                               "decoders. Run 'hih COMMAND --help' for a command's options.")
    parser.add_argument("--version", action="version", version=f"hih (hihlib) {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in COMMAND_MODULES:
        if command == "*" or command == name:
            importlib.import_module(module).register(sub)
        else:
            sub.add_parser(name, help=help_text, add_help=False)
    return parser


def chosen_parser(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The deepest sub-command parser that ``args`` went through (``hih data check`` -> its parser)."""
    while True:
        action = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        name = getattr(args, action.dest, None) if action else None
        if name is None or name not in action.choices:
            return parser
        parser = action.choices[name]


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args`` whose errors come from the sub-command that has them: an unknown option of
    ``hih demo`` is reported with ``hih demo``'s usage (argparse leaves unknown options of a sub-command
    to the top-level parser). Words left over after the options of a sub-command that takes ``key=value``
    overrides (``hih train ... --resume optim.lr=1e-4``) are overrides too."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        sub = chosen_parser(parser, args)
        if isinstance(getattr(args, "overrides", None), list) and not any(e.startswith("-") for e in extras):
            args.overrides += extras
        else:
            options = [o for a in sub._actions for o in a.option_strings]
            near = [m[0] for e in extras if e.startswith("--")
                    for m in [difflib.get_close_matches(e.split("=")[0], options, n=1, cutoff=0.6)] if m]
            sub.error(f"unrecognized arguments: {' '.join(extras)}" + (f" (did you mean {', '.join(near)}?)" if near else ""))
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(chosen_command(argv))
    args = parse(parser, argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except HihError as e:
        print(f"hih {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hih {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
