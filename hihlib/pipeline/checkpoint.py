"""Checkpoints: what a training run writes, how a trained model is read back, and the run folder.

A checkpoint (``torch.save`` of a dict, written atomically) holds

* ``"model"``: the state dict; ``"model_spec"``: the architecture it belongs to (``model_spec``);
* ``"codec"``: name, input and heatmap size of the codec the targets came from;
* ``"loss"``: every option of the loss it was trained with (or ``{"custom": name}`` for a loss
  that is not a ``hihlib.losses.LandmarkLoss``);
* ``"config"``: the full run configuration, whose ``codec`` and ``loss`` sections agree with the above;
* ``"data"``: what it was trained on, ``{"dataset", "synthetic", "root", "description"}``
  (``trained_on``; ``synthetic`` is None when the caller gave the data without saying);
* the training state that exact resume needs (``hihlib.training.trainer.Trainer.state``): optimizer, scheduler,
  epoch, step, random states and data order.

``load_checkpoint`` rebuilds the model from ``model_spec`` and the codec from the configuration, so
``hih eval`` and ``hih predict`` need nothing but the file. ``prepare_run_folder`` guards a run folder and
``read_metrics`` reads its ``metrics.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from torch import nn

from ..errors import ConfigError, DataError, HihError
from ..io import remove_stale_temporaries, torch_load

#: The files a run writes into its folder.
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl", "config.yaml")


def model_spec(model: nn.Module) -> dict:
    """The architecture of a ``LandmarkModel`` or ``BackboneModel``: its config's fields and its head."""
    return {"config": dataclasses.asdict(model.config), "head": model.head,
            "decimal_size": model.decimal_size, "decimal_channels": model.decimal_channels}


def model_from_spec(spec: dict) -> nn.Module:
    """A freshly initialised ``LandmarkModel`` of the architecture ``model_spec`` describes."""
    from ..models import BackboneConfig, BackboneModel, HourglassConfig, LandmarkModel

    if "arch" in spec["config"]:  # a single-feature backbone (HRNet, MobileNetV2)
        return BackboneModel(BackboneConfig(**spec["config"]).validate(), head=spec["head"],
                             decimal_size=spec["decimal_size"] or 8, decimal_channels=spec["decimal_channels"])
    return LandmarkModel(HourglassConfig(**spec["config"]).validate(), head=spec["head"],
                         decimal_size=spec["decimal_size"] or 8, decimal_channels=spec["decimal_channels"])


def codec_spec(codec) -> dict:
    return {"name": codec.name, "input_size": codec.input_size, "heatmap_size": codec.heatmap_size}


def loss_spec(loss_fn) -> dict:
    """Every option of a ``LandmarkLoss``; the qualified name of any other loss callable."""
    from ..losses import LandmarkLoss

    if isinstance(loss_fn, LandmarkLoss):
        return dict(loss_fn.options)
    return {"custom": f"{getattr(loss_fn, '__module__', '?')}.{getattr(loss_fn, '__qualname__', type(loss_fn).__name__)}"}


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
    from .build import build_codec, build_model

    ckpt = path if isinstance(path, dict) else read_checkpoint(path)
    cfg = ckpt["config"]
    if "model_spec" in ckpt:
        model = model_from_spec(ckpt["model_spec"])
    else:  # written before checkpoints named their architecture
        model = build_model(cfg, num_landmarks=ckpt["num_landmarks"])
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, build_codec(cfg), cfg


def check_pieces(cfg: dict, model: nn.Module, codec) -> None:
    """``ConfigError`` unless the model and the codec are the ones ``cfg`` describes (same head,
    sizes), so that the checkpoint's configuration says what was trained."""
    sizes = (cfg["data"]["input_size"], cfg["model"]["heatmap_size"])
    from .build import _default_head

    head = cfg["model"].get("head") or _default_head(cfg)
    for what, got, want in (("codec", (codec.name, codec.input_size, codec.heatmap_size), (cfg["codec"]["name"], *sizes)),
                            ("model", (model.head, model.input_size, model.heatmap_size), (head, *sizes))):
        if got != want:
            raise ConfigError(f"the {what} given to the trainer is (head/codec, input size, heatmap size) = {got}, "
                              f"but the configuration says {want}")


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
