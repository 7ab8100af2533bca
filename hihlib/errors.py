"""Errors that a user can act on: each names the file, the line and what was expected.

The CLI catches ``HihError`` and prints its message without a traceback, exiting non-zero.
"""

from __future__ import annotations

import os


class HihError(Exception):
    """Base class for errors reported to the user as one clear message."""


class DataError(HihError):
    """A dataset file that does not match its documented format.

    ``DataError(path, line, expected, found=None)`` renders as
    ``path:line: expected <expected>, found <found>`` (line may be None for whole-file problems).
    """

    def __init__(self, path: str | os.PathLike, line: int | None, expected: str, found: str | None = None):
        self.path = str(path)
        self.line = line
        self.expected = expected
        self.found = found
        where = self.path if line is None else f"{self.path}:{line}"
        msg = f"{where}: expected {expected}"
        if found is not None:
            msg += f", found {found}"
        super().__init__(msg)


class ConfigError(HihError):
    """A configuration value or command-line option that cannot be used."""


class ReleasedCheckpointError(HihError):
    """A released checkpoint (HIH, H3R, HRNet-facial, ImageNet backbone) that cannot be read or does not match
    the architecture (one line: file, key, shapes)."""
