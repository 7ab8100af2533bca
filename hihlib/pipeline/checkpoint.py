"""Checkpoints: what a training run writes, how a trained model is read back, and the run folder.

A checkpoint (``torch.save`` of a dict, written atomically) holds

* ``"model"``: the state dict; ``"model_spec"``: the architecture it belongs to (``model_spec``);
* ``"codec"``: name, input and heatmap size and options of the codec the targets came from
  (``build.codec_spec``; files written before it recorded the options: ``codec_record`` fills them in
  from the configuration);
* ``"loss"``: every option of the loss it was trained with (or ``{"custom": name}`` for a loss
  that is not a ``hihlib.losses.LandmarkLoss``);
* ``"config"``: the full run configuration, whose ``codec`` and ``loss`` sections agree with the above;
* ``"data"``: what it was trained on, ``{"dataset", "synthetic", "root", "description"}``
  (``trained_on``; ``synthetic`` is None when the caller gave the data without saying);
* the training state that exact resume needs (``hihlib.training.trainer.Trainer.state``): optimizer, scheduler,
  epoch, step, random states and data order.

One writer, ``checkpoint_dict``, composes every checkpoint: the trainer's and the released-weight
converters' (``hihlib.inference.released_hih``, ``released_h3r``), so they have one shape; every one is
written atomically by ``hihlib.io.torch_save``.
``load_checkpoint`` rebuilds the model from ``model_spec`` and the codec from the configuration, so
``hih eval`` and ``hih predict`` need nothing but the file. ``prepare_run_folder`` guards a run folder and
``read_metrics`` reads its ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, DataError, HihError
from ..io import remove_stale_temporaries, torch_load
from .build import build_pieces, codec_spec, loss_spec, model_from_spec, model_spec

#: The files a run writes into its folder.
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "config.yaml")


def checkpoint_dict(model: nn.Module, codec, loss, config: dict, *, data: dict | None = None,
                    state: dict | None = None, **extra) -> dict:
    """The dict of a hihlib checkpoint: ``model`` (a plain module, not a DDP wrapper) with its
    architecture, the ``codec`` (``codec_spec``, with the configuration's ``codec.options``), the
    ``loss`` (a loss callable, recorded by ``loss_spec``; None: no loss, recorded as ``{}``), the run
    ``config``, what it was trained on (``data``: ``{"dataset", "synthetic", "root", "description"}``,
    see ``trained_on``; None: not recorded), the training ``state`` (the trainer's loop state; None:
    ``epoch`` and ``global_step`` 0) and ``extra`` entries (e.g. a converter's ``released``)."""
    ckpt = {"model": model.state_dict(), "model_spec": model_spec(model),
            "codec": codec_spec(codec, (config.get("codec") or {}).get("options")),
            "loss": {} if loss is None else loss_spec(loss), "config": config,
            "num_landmarks": model.num_landmarks}
    if data is not None:
        ckpt["data"] = data
    ckpt.update(state if state is not None else {"epoch": 0, "global_step": 0})
    ckpt.update(extra)
    return ckpt


def codec_record(ckpt: dict) -> dict | None:
    """A checkpoint's ``"codec"`` entry in today's shape (``codec_spec``): files written before the
    entry held the codec's options get the options of their configuration. None if there is none."""
    entry = ckpt.get("codec")
    if entry is None:
        return None
    if "options" not in entry:
        entry = {**entry, "options": dict(((ckpt.get("config") or {}).get("codec") or {}).get("options") or {})}
    return entry


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The dict a ``Trainer`` saved; ``HihError`` naming the file if it is missing or not a checkpoint."""
    ckpt = torch_load(path, what="checkpoint")
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        found = sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise HihError(f"{path}: expected a hihlib checkpoint with 'model' and 'config', found keys {found}")
    return ckpt


def trained_on(ckpt: dict) -> dict:
    """What a checkpoint was trained on: ``{"dataset", "synthetic" (True, False or None: unknown), "root",
    "description"}``. Checkpoints written before they recorded it: synthetic when ``data.dataset=synth``."""
    data = ckpt.get("data")
    if isinstance(data, dict):
        return {"dataset": None, "synthetic": None, "root": None, "description": None, **data}
    dataset = (ckpt.get("config") or {}).get("data", {}).get("dataset")
    return {"dataset": dataset, "synthetic": True if dataset == "synth" else None, "root": None, "description": None}


def load_checkpoint(path: str | os.PathLike | dict, device: str | torch.device = "cpu"):
    """(model in eval mode, codec, config) from a checkpoint written by ``Trainer`` (its path, or the
    dict ``read_checkpoint`` returned)."""
    ckpt = path if isinstance(path, dict) else read_checkpoint(path)
    cfg = ckpt["config"]
    # written before checkpoints named their architecture: the model the configuration describes
    model = model_from_spec(ckpt["model_spec"]) if "model_spec" in ckpt else None
    pieces = build_pieces(cfg, num_landmarks=ckpt.get("num_landmarks"), model=model, with_loss=False)
    pieces.model.load_state_dict(ckpt["model"])
    pieces.model.to(device).eval()
    return pieces.model, pieces.codec, cfg


def prepare_run_folder(out: str | os.PathLike, *, resume: bool, force: bool) -> Path:
    """Check the run folder before any work: a folder that already holds files is refused unless the
    run resumes it (``--resume``) or replaces it (``--force``: the earlier run's files are removed).
    Temporary files left by a checkpoint write that was killed are removed either way."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: expected a folder, found a file")
    removed = remove_stale_temporaries(out) if out.is_dir() else []
    for path in removed:
        print(f"removed {path} (a temporary file left by an interrupted write)")
    if resume or not out.is_dir():
        return out
    held = sorted(p.name for p in out.iterdir())
    if held and not force:
        raise ConfigError(f"--out {out}: expected a new or empty folder, found {len(held)} file(s) "
                          f"({', '.join(held[:4])}{', ...' if len(held) > 4 else ''}); "
                          f"add --resume to continue that run, --force to replace it, or choose another folder")
    if force:
        for name in RUN_FILES:
            (out / name).unlink(missing_ok=True)
    return out


def read_metrics(path: str | os.PathLike) -> dict[str, dict[str, list]]:
    """A trainer's ``metrics.jsonl`` as columns: kind -> key -> list of values, in file order.

    kinds are the records' ``"kind"`` ("train", "epoch", "eval"); e.g. ``m["train"]["loss"]`` is the
    logged training loss at the steps ``m["train"]["step"]``, and ``m["eval"]["expectation"]`` the list
    of ``{"nme", "fr", "auc", "n"}`` dicts of that decode method. A line that is not JSON raises
    ``DataError`` naming the file and the line.
    """
    path = Path(path)
    out: dict[str, dict[str, list]] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(path, lineno, "one JSON object per line", f"{line.strip()[:40]!r} ({e.msg})") from None
            cols = out.setdefault(record.get("kind", "train"), {})
            n = len(next(iter(cols.values()))) if cols else 0
            for key, value in record.items():
                if key != "kind":
                    cols.setdefault(key, [None] * n).append(value)
            for key, values in cols.items():  # keys missing from this record stay aligned
                if len(values) == n:
                    values.append(None)
    return out
