"""The ``hih`` command.

Each sub-command lives in the module that implements it; a module registers its sub-commands by
defining ``register(subparsers)`` and is listed in ``COMMAND_MODULES``. Every handler returns an exit
code. A ``HihError`` (bad data, bad option) is printed as one line on stderr with exit code 2 and no
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import HihError

# Modules that define ``register(subparsers)``; each adds its own sub-commands.
COMMAND_MODULES = [
    "hihlib.data.commands",   # hih data check | prepare | synth
    "hihlib.train",           # hih train
    "hihlib.evaluate",        # hih eval
    "hihlib.predict",         # hih predict
    "hihlib.demo",            # hih demo
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hih", description="Sub-pixel face alignment: HIH, H3R and classic heatmap decoders.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
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
