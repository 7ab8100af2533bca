"""Atomic file writes: a reader never sees a half-written file and a crash never destroys the old one.

Every writer here writes to a temporary file in the destination's folder, flushes it to disk, then
renames it over the destination (``os.replace`` is atomic on POSIX and Windows).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator


# the names ``atomic_path`` gives its temporary files: .<stem>.<8 random characters>.tmp<suffix>
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp(\.[^.]+)?$")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    The temporary name keeps the destination's suffix so that writers that pick a format from
    the extension (``cv2.imwrite``, ``matplotlib.savefig``) still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``atomic_path`` that a killed process left in ``folder``
    (``.<stem>.<random>.tmp<suffix>``); returns their paths. Call it only when no other process is
    writing into ``folder``."""
    removed = []
    for tmp in sorted(Path(folder).glob(".*.tmp*")):
        if tmp.is_file() and _TEMPORARY.match(tmp.name):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def write_with(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_with(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return write_with(path, lambda p: p.write_bytes(data))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` through a temporary file (checkpoints are never half-written)."""
    import torch

    return write_with(path, lambda p: torch.save(obj, p))


def torch_load(path: str | os.PathLike, *, what: str = "file", error: type[Exception] | None = None) -> Any:
    """``torch.load`` on the CPU of a file written by ``torch_save``. A missing or unreadable file raises
    ``error`` (default ``HihError``) naming it: ``<path>: <what> not found`` or ``<path>: expected a
    torch.save <what>, could not read it: <reason>``."""
    import torch

    from .errors import HihError

    error = error or HihError
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise error(f"{path}: expected a torch.save {what}, could not read it: {e}") from None


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line; a single ``write`` of a complete line, flushed and synced."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_released(path: str | os.PathLike) -> tuple[dict, dict]:
    """(state dict, the file's numeric entries such as ``best_nme`` and ``epoch``) of a ``torch.save`` file
    that holds a state dict (released checkpoints, ImageNet weights: a dict holding ``"state_dict"``, or a
    bare state dict; ``module.`` prefixes removed), loaded on the CPU. ``ReleasedCheckpointError`` naming
    the file otherwise."""
    import torch
    from torch import Tensor

    from .errors import ReleasedCheckpointError

    path = Path(path)
    if not path.is_file():
        raise ReleasedCheckpointError(f"{path}: released checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise ReleasedCheckpointError(f"{path}: expected a torch.save file, could not read it: {e}") from None
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, Tensor) for v in sd.values()):
        found = sorted(ckpt)[:6] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise ReleasedCheckpointError(f"{path}: expected a dict with a 'state_dict' of tensors, found {found}")
    if any(k.startswith("module.") for k in sd):  # saved from DataParallel: the same network
        sd = {k.removeprefix("module."): v for k, v in sd.items()}
    meta = {k: v for k, v in ckpt.items() if k in ("best_nme", "epoch") and isinstance(v, (int, float))}
    return sd, meta
