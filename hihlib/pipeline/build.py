"""The pieces of a run, built from a configuration (``hihlib.pipeline.config``): device, data, codec, model,
loss, optimizer and learning-rate schedule. ``hih train``, ``hih eval`` and the notebooks all build
through these functions, so a piece is described by the configuration in one way only.

One path from the configuration to the pieces and back:

* ``build_pieces(cfg, split)``: the data of a split, the codec, the model and the loss, checked
  against each other (``check_pieces``); the trainer, the demo and ``load_checkpoint`` (hence
  evaluation and prediction) build through it.
* the inverses, what a checkpoint records of each piece: ``model_spec`` (and ``model_from_spec``),
  ``codec_spec``, ``loss_spec``.

Data of one split comes from ``open_split``: the synthetic generator, a ``hih data prepare`` cache
(``data.cache``) or the dataset's own files (``hihlib.data.open_dataset``).
"""

from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from ..errors import ConfigError, DataError


def resolve_device(spec: str, option: str = "train.device") -> torch.device:
    """``auto`` -> cuda when available, else cpu; under ``torchrun``, ``cuda`` -> this rank's GPU.
    ``option``: how the user gave ``spec`` (``--device`` on the command line), named by the error."""
    from .config import _DEVICE

    shown = f"{option} {spec}" if option.startswith("-") else f"{option}={spec!r}"
    if not _DEVICE.match(str(spec)):
        raise ConfigError(f"{shown}: expected auto, cpu, cuda or cuda:N")
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{shown}: no CUDA device is available (expected auto or cpu on this machine)")
    if spec == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        spec = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return torch.device(spec)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------

def open_split(cfg: dict, split: str) -> tuple[list, object, str]:
    """(records, landmark scheme, one-line description) of one split of the configured data.

    ``data.dataset=synth``: generated faces (the validation split from another seed, so it never
    repeats a training face). Otherwise the dataset's files under ``data.root``, or the crops of a
    ``hih data prepare`` cache when ``data.cache`` names its folder. Every image file the annotations
    list is checked to exist before anything is decoded (``data.skip_bad`` leaves those faces out).
    """
    d = cfg["data"]
    name = d["dataset"]
    if name == "synth":
        from ..data.synthetic import SyntheticFaces

        train = split == d["train_split"]
        n = d["num_train"] if train else d["num_val"]
        seed = cfg["seed"] if train else cfg["seed"] + 10_000
        faces = SyntheticFaces(n, seed=seed, image_size=d["image_size"])
        records = list(faces.records)
        if d.get("cache_images", True):
            records = cache_records(records)
        return records, faces.scheme, f"synthetic WFLW-format faces, {n} images, seed {seed}"
    if d.get("cache"):
        from ..data.cache import CachedFaces

        cached = CachedFaces(d["cache"], name, split)
        desc = (f"{_dataset_label(name, cached.root)} {split} split from the cache {d['cache']} (of {cached.root}), "
                f"{len(cached.records)} faces")
        return cached.records, cached.scheme, desc
    if d.get("root") is None:
        raise ConfigError(f"data.root is required for dataset {name!r} (the folder holding the {name.upper()} files)")
    from ..data import open_dataset

    skip_bad = bool(d.get("skip_bad"))
    source = open_dataset(name, d["root"], split, skip_bad=skip_bad)
    missing = source.missing_images()
    if missing and not skip_bad:
        more = f" (and {len(missing) - 1} more; data.skip_bad=true leaves them out)" if len(missing) > 1 else ""
        raise DataError(missing[0].path, None, missing[0].expected + more, missing[0].found)
    source.drop(missing)
    desc = f"{_dataset_label(name, d['root'])} {split} split from {d['root']}, {len(source.records)} faces"
    if source.skipped:
        desc += f" ({len(source.skipped)} bad samples skipped)"
        print(f"data: skipped {len(source.skipped)} bad samples in the {name.upper()} {split} split (data.skip_bad=true)")
    return source.records, source.scheme, desc


def _synthetic_export(name: str, root) -> dict | None:
    """The record of the ``hih data synth`` export at ``root`` (as ``hih data check`` recognises it), else None."""
    from ..data.synthetic_export import read_manifest

    return read_manifest(root, name) if root is not None and name != "synth" else None


def _dataset_label(name: str, root) -> str:
    """``WFLW``, or ``synthetic WFLW-format export (hih data synth, seed 0; NOT WFLW)`` for an export."""
    record = _synthetic_export(name, root)
    if record is None:
        return name.upper()
    return f"synthetic {name.upper()}-format export (hih data synth, seed {record.get('seed')}; NOT {name.upper()})"


def data_origin(cfg: dict) -> dict:
    """What a configured run trains on, as its checkpoint records it: ``{"dataset": name, "synthetic":
    bool, "root": folder or None}``. Synthetic: ``data.dataset=synth``, or a folder (or the folder a
    ``data.cache`` was prepared from) that holds the record of a ``hih data synth`` export."""
    d = cfg["data"]
    name = d["dataset"]
    if name == "synth":
        return {"dataset": "synth", "synthetic": True, "root": None}
    root = d.get("root")
    if d.get("cache"):
        from ..data.cache import read_index
        from ..data.schemes import get_scheme

        index = read_index(Path(d["cache"]), get_scheme(name).name, d["train_split"]) or {}
        root = index.get("root", root)
    return {"dataset": name, "synthetic": _synthetic_export(name, root) is not None,
            "root": None if root is None else str(root)}


def cache_records(records: list) -> list:
    """Render every lazily loaded record once (synthetic faces) and keep the pixels in memory."""
    return [dataclasses.replace(r, image=r.load_image(), loader=None) if r.image is None and r.loader is not None
            else r for r in records]


def build_augment(cfg: dict, scheme):
    """``data.augment`` as an ``Augment`` for crops of ``data.input_size`` (None: no augmentation)."""
    opts = cfg["data"].get("augment")
    if not opts:
        return None
    from ..data.transforms import Augment

    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}
    try:
        return Augment(mirror=tuple(scheme.mirror), size=cfg["data"]["input_size"], **opts)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"data.augment: {e}") from None


def build_dataset(cfg: dict, records: list, scheme, *, train: bool):
    """A ``FaceDataset`` of ``records``: for training, augmented uint8 crops (the trainer normalises
    each batch on its device); for evaluation, plain normalised crops."""
    from ..data import FaceDataset

    d = cfg["data"]
    return FaceDataset(records, scheme, input_size=d["input_size"], scale=d["scale"], box=d["box"],
                       augment=build_augment(cfg, scheme) if train else None, seed=cfg["seed"], normalize=not train)


# ----------------------------------------------------------------------------------------------
# Codec, model, loss
# ----------------------------------------------------------------------------------------------

def build_codec(cfg: dict):
    """The codec for the model's heatmap size and the crop size (``codec_from_spec`` of the configured spec)."""
    return codec_from_spec({"name": cfg["codec"]["name"], "input_size": cfg["data"]["input_size"],
                            "heatmap_size": cfg["model"]["heatmap_size"], "options": cfg["codec"].get("options")})


def build_model(cfg: dict, num_landmarks: int) -> nn.Module:
    """``models.create(model.name)`` with the codec's head, the crop size and ``model.options``."""
    from .. import models

    m = cfg["model"]
    opts = {"input_size": cfg["data"]["input_size"], **(m.get("options") or {})}
    return models.create(m["name"], num_landmarks=num_landmarks, heatmap_size=m["heatmap_size"],
                         head=m.get("head") or _default_head(cfg), **opts)


def _default_head(cfg: dict) -> str:
    """The codec's head; "hih_ext" for the HIH codec where the released head cannot be built (heads.default_head)."""
    from ..models.heads import default_head

    return default_head(cfg["codec"]["name"], cfg["model"]["heatmap_size"],
                        (cfg["model"].get("options") or {}).get("decimal_size", 8))


def build_loss(cfg: dict):
    """The codec's loss with the ``loss`` options (``loss_from_spec``: ``losses.make_loss``; defaults:
    ``losses.LossOptions``)."""
    return loss_from_spec(cfg["codec"]["name"], cfg.get("loss") or {})


class Pieces(NamedTuple):
    """What ``build_pieces`` returns."""

    data: Any          # a FaceDataset of the split (None when no split was asked for)
    codec: Any
    model: nn.Module
    loss: Any          # loss(outputs, targets) -> (total, parts); None with with_loss=False
    description: str | None  # one line on the data (None without data)
    origin: dict | None      # what the data is, as a checkpoint records it (``data_origin``; None: data given)


def build_pieces(cfg: dict, split: str | None = None, *, train: bool | None = None, num_landmarks: int | None = None,
                 data=None, codec=None, model: nn.Module | None = None, loss=None,
                 description: str | None = None, with_loss: bool = True) -> Pieces:
    """The data of ``split`` (None: no data), the codec, the model and the loss that ``cfg`` describes,
    built in that order. A piece given is kept; the model and the codec, given or built, must be the
    ones ``cfg`` describes (``check_pieces``). ``train``: augmented uint8 crops (default: ``split`` is
    ``data.train_split``). The model predicts ``num_landmarks`` landmarks (default: the data's scheme's).
    ``with_loss=False``: no loss (``loss`` None), for a model that is only read back to predict."""
    origin = None
    if data is None and split is not None:
        data, description = build_split(cfg, split, train=split == cfg["data"]["train_split"] if train is None else train)
        origin = data_origin(cfg)
    codec = codec if codec is not None else build_codec(cfg)
    if model is None:
        if num_landmarks is None and data is None:
            raise ValueError("build_pieces: give a split, the data or num_landmarks to size the model")
        model = build_model(cfg, num_landmarks=num_landmarks if num_landmarks is not None else data.scheme.num_points)
    check_pieces(cfg, model, codec)
    if loss is None and with_loss:
        loss = build_loss(cfg)
    return Pieces(data, codec, model, loss, description, origin)


def build_split(cfg: dict, split: str, *, train: bool) -> tuple[Any, str]:
    """(``FaceDataset`` of one split, one-line description): ``open_split`` then ``build_dataset``."""
    records, scheme, description = open_split(cfg, split)
    return build_dataset(cfg, records, scheme, train=train), description


def check_pieces(cfg: dict, model: nn.Module, codec) -> None:
    """``ConfigError`` unless the model and the codec are the ones ``cfg`` describes (same head,
    sizes), so that the checkpoint's configuration says what was trained."""
    sizes = (cfg["data"]["input_size"], cfg["model"]["heatmap_size"])
    head = cfg["model"].get("head") or _default_head(cfg)
    for what, got, want in (("codec", (codec.name, codec.input_size, codec.heatmap_size), (cfg["codec"]["name"], *sizes)),
                            ("model", (model.head, model.input_size, model.heatmap_size), (head, *sizes))):
        if got != want:
            raise ConfigError(f"the {what} is (head/codec, input size, heatmap size) = {got}, "
                              f"but the configuration says {want}")


# ----------------------------------------------------------------------------------------------
# The inverses: what a checkpoint records of each piece
# ----------------------------------------------------------------------------------------------

def model_spec(model: nn.Module) -> dict:
    """The architecture of a ``LandmarkModel`` or ``BackboneModel``: its config's fields and its head."""
    return {"config": dataclasses.asdict(model.config), "head": model.head,
            "decimal_size": model.decimal_size, "decimal_channels": model.decimal_channels}


def model_from_spec(spec: dict) -> nn.Module:
    """A freshly initialised model of the architecture ``model_spec`` describes."""
    from ..models import BackboneConfig, BackboneModel, HourglassConfig, LandmarkModel

    if "arch" in spec["config"]:  # a single-feature backbone (HRNet, MobileNetV2)
        return BackboneModel(BackboneConfig(**spec["config"]).validate(), head=spec["head"],
                             decimal_size=spec["decimal_size"] or 8, decimal_channels=spec["decimal_channels"])
    return LandmarkModel(HourglassConfig(**spec["config"]).validate(), head=spec["head"],
                         decimal_size=spec["decimal_size"] or 8, decimal_channels=spec["decimal_channels"])


def codec_spec(codec, options: dict | None = None) -> dict:
    """A codec as a checkpoint records it: ``{"name", "input_size", "heatmap_size", "options"}``;
    ``options``: the keyword options it was built with (``codec.options`` of the configuration)."""
    return {"name": codec.name, "input_size": codec.input_size, "heatmap_size": codec.heatmap_size,
            "options": dict(options or {})}


def codec_from_spec(spec: dict):
    """The codec ``codec_spec`` describes (``get_codec``)."""
    from ..codecs import get_codec

    return get_codec(spec["name"], input_size=spec["input_size"], heatmap_size=spec["heatmap_size"],
                     **(spec.get("options") or {}))


def loss_spec(loss_fn) -> dict:
    """Every option of a ``LandmarkLoss``; the qualified name of any other loss callable."""
    from ..losses import LandmarkLoss

    if isinstance(loss_fn, LandmarkLoss):
        return dict(loss_fn.options)
    return {"custom": f"{getattr(loss_fn, '__module__', '?')}.{getattr(loss_fn, '__qualname__', type(loss_fn).__name__)}"}


def loss_from_spec(codec_name: str, spec: dict):
    """The loss ``loss_spec`` describes (``losses.make_loss``); ``ConfigError`` for a custom loss."""
    from ..losses import make_loss

    if "custom" in spec:
        raise ConfigError(f"the loss {spec['custom']} is not a hihlib loss: it cannot be rebuilt from its record")
    return make_loss(codec_name, **spec)


# ----------------------------------------------------------------------------------------------
# Optimizer and schedule
# ----------------------------------------------------------------------------------------------

def build_optimizer(cfg: dict, model: nn.Module) -> torch.optim.Optimizer:
    o = cfg["optim"]
    params = [p for p in model.parameters() if p.requires_grad]
    name = o["name"].lower()
    if name == "adam":
        return torch.optim.Adam(params, lr=o["lr"], weight_decay=o["weight_decay"])
    if name == "adamw":
        return torch.optim.AdamW(params, lr=o["lr"], weight_decay=o["weight_decay"])
    if name == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weight_decay"])
    raise ConfigError(f"optim.name={o['name']!r}: expected adam, adamw or sgd")


def build_scheduler(cfg: dict, optimizer, steps_per_epoch: int):
    """A per-step LR schedule: linear warmup, then steps at ``milestones`` epochs or a cosine decay."""
    o, epochs = cfg["optim"], cfg["train"]["epochs"]
    warmup = int(o.get("warmup_steps") or 0)
    total = max(1, epochs * steps_per_epoch)
    kind = (o.get("schedule") or "none").lower()
    milestones = [int(m) * steps_per_epoch for m in (o.get("milestones") or [])]
    gamma = float(o.get("gamma", 0.1))
    if kind not in ("step", "cosine", "none"):
        raise ConfigError(f"optim.schedule={kind!r}: expected step, cosine or none")

    def factor(step: int) -> float:
        f = min(1.0, (step + 1) / warmup) if warmup else 1.0
        if kind == "step":
            f *= gamma ** sum(step >= m for m in milestones)
        elif kind == "cosine":
            f *= 0.5 * (1 + math.cos(math.pi * min(step, total) / total))
        return f

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
