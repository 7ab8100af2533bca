"""The configuration of a training run: defaults, YAML files, dotted overrides and their validation.

A run is described by one nested dict (``DEFAULTS`` below), overridden by a YAML file and by dotted
``key=value`` pairs on the command line (``optim.lr=5e-4 data.skip_bad=true``). Values are parsed as
YAML. Every key and every value's type is checked against ``DEFAULTS`` before any work starts: an
unknown key names the nearest known one, a value of the wrong type names the option and the type it
expects, and names (model, codec, dataset, optimizer, ...) are checked against what exists.

The sections ``codec.options``, ``model.options``, ``loss`` and ``data.augment`` hold the keyword
arguments of ``get_codec``, ``models.create``, ``losses.make_loss`` and ``data.transforms.Augment``;
their keys are checked against those functions' options.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import re
from pathlib import Path
from typing import Any, Iterable, Sequence

import yaml

from ..data.datasets import DATASETS
from ..errors import ConfigError

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "data": {
        "dataset": "synth",        # synth | wflw | cofw | 300w
        "root": None,              # dataset folder (wflw, cofw, 300w)
        "cache": None,             # folder written by `hih data prepare` (wflw, cofw, 300w): train from its crops
        "train_split": "train",
        "val_split": "test",       # 300w: common | challenge | full
        "input_size": 256,
        "scale": 1.25,             # crop side = scale * box side
        "box": "dataset",          # dataset boxes, or "landmarks" (boxes from the ground truth: optimistic)
        "skip_bad": False,         # drop samples with data errors instead of refusing the dataset
        "num_train": 2000,         # synth only: number of generated faces
        "num_val": 200,
        "image_size": 256,         # synth only: rendered image side
        "cache_images": True,      # synth only: render each face once and keep it in memory
        "workers": 0,
        "augment": {               # hihlib.data.transforms.Augment options; null disables augmentation
            "rotation": 30.0,          # degrees, uniform in [-30, 30] (HIH recipe)
            "scale": [0.9, 1.1],
            "translation": 0.1171875,  # fraction of the crop side: 30 px at 256 (HIH recipe)
            "flip": 0.5,
            "blur": 0.2,
            "occlusion": 0.3,
        },
    },
    "codec": {"name": "hih", "options": {}},
    "model": {"name": "hih_b", "heatmap_size": 64, "options": {},
              "head": None},           # null: the codec's head; "hih_local" (HIH codec) is hihlib's extension
    "loss": {},                    # keyword arguments of hihlib.losses.make_loss
    "optim": {
        "name": "adam",            # adam | adamw | sgd
        "lr": 1e-3,
        "weight_decay": 0.0,
        "momentum": 0.9,           # sgd only
        "schedule": "step",        # step | cosine | none
        "milestones": [30, 50],    # epochs (step schedule)
        "gamma": 0.1,
        "warmup_steps": 0,
        "clip_grad": 5.0,          # max gradient norm; null disables clipping
    },
    "train": {
        "epochs": 60,
        "batch_size": 16,          # per process
        "max_steps_per_epoch": None,
        "eval_every": 1,           # epochs; 0 disables periodic evaluation
        "eval_batch_size": 32,
        "eval_flip": False,        # flip test in the periodic evaluation (hihlib.inference.evaluate.predict_batch)
        "checkpoint_every": 0,     # optimizer steps; 0 = only at the end of each epoch
        "device": "auto",          # auto | cpu | cuda | cuda:N
        "amp": "bf16",             # bf16 autocast on CUDA (ignored on CPU); "none" disables it
        "channels_last": True,     # CUDA only
        "compile": False,
        "progress": True,          # tqdm bars
        "log_every": 50,           # steps between metrics.jsonl lines
        "threads": None,           # torch CPU threads (None: torch's default; 1 on a CPU shared with other jobs)
    },
}

# Sections whose keys are the options of a function (checked against it, not against DEFAULTS).
FREE_SECTIONS = ("codec.options", "model.options", "loss", "data.augment")
# Options that may be null, with the type they take otherwise (the default does not show it).
NULLABLE = {"data.root": str, "data.cache": str, "data.augment": dict, "optim.clip_grad": float,
            "train.max_steps_per_epoch": int, "train.threads": int, "model.head": str}
CHOICES = {
    "data.dataset": tuple(DATASETS),   # the table of hihlib.data.datasets
    "data.box": ("dataset", "landmarks"),
    "codec.name": ("gaussian", "h3r", "hih"),
    "model.head": ("gaussian", "h3r", "hih", "hih_local", "hih_ext"),
    "optim.name": ("adam", "adamw", "sgd"),
    "optim.schedule": ("step", "cosine", "none"),
    "train.amp": ("bf16", "none"),
}
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?|mps)$")
_TYPE_NAMES = {bool: "true or false", int: "an integer", float: "a number", str: "a string",
               list: "a list, e.g. [1, 2]", dict: "a mapping, e.g. {key: value}"}


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string (it wants ``1.0e-3``); learning rates are written the short way."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"""),
    list("-+0123456789"))


def parse_yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def _leaves(tree: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> default value of every option of ``tree`` (free sections count as one option)."""
    out = {}
    for key, value in tree.items():
        name = prefix + key
        if isinstance(value, dict) and name not in FREE_SECTIONS:
            out.update(_leaves(value, name + "."))
        else:
            out[name] = value
    return out


KNOWN = _leaves(DEFAULTS)


def _free_section(key: str) -> str | None:
    return next((s for s in FREE_SECTIONS if key == s or key.startswith(s + ".")), None)


def check_option(key: str, value: Any, where: str) -> None:
    """Raise ``ConfigError`` (prefixed by ``where``) unless ``key`` is a known option and ``value`` fits it."""
    if _free_section(key) not in (None, key):
        return  # a key inside codec.options, loss, ...: checked by ``check_config``
    if key not in KNOWN:
        near = difflib.get_close_matches(key, list(KNOWN), n=1, cutoff=0.6)
        section = key.split(".")[0] + "."
        same = [k for k in KNOWN if k.startswith(section)]
        hint = (f"did you mean {near[0]}?" if near else f"the options of {section[:-1]} are {', '.join(same)}" if same
                else f"the sections are {', '.join(DEFAULTS)}")
        raise ConfigError(f"{where}: unknown option {key}; {hint}")
    default = KNOWN[key]
    if value is None and (key in NULLABLE or key in FREE_SECTIONS or default is None):
        return
    want = NULLABLE.get(key) or type(default)
    ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        nullable = " or null" if key in NULLABLE else ""
        raise ConfigError(f"{where}: {key} expects {_TYPE_NAMES[want]}{nullable}, found {value!r}")
    if key in CHOICES and value not in CHOICES[key]:
        raise ConfigError(f"{where}: {key} expects one of {', '.join(CHOICES[key])}, found {value!r}")
    if key == "train.device" and not _DEVICE.match(value):
        raise ConfigError(f"{where}: train.device expects auto, cpu, cuda or cuda:N, found {value!r}")


def check_config(cfg: dict, where: str = "config") -> dict:
    """Check every option of ``cfg`` (keys, types, names) and the free sections' keys; returns ``cfg``.

    The free sections are checked by the functions that take them, without building anything large:
    the model name and options by ``models.model_config``, the loss options by ``losses.make_loss``,
    the codec options by the codec's constructor, the augmentation options against ``Augment``'s fields.
    """
    unknown = sorted(set(cfg) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{where}: unknown section(s) {unknown}; expected some of {sorted(DEFAULTS)}")
    for key, value in _leaves(cfg).items():
        check_option(key, value, where)
    if cfg["data"].get("cache") and cfg["data"]["dataset"] == "synth":
        raise ConfigError(f"{where}: data.cache expects a cache of wflw, cofw or 300w (`hih data prepare`); "
                          f"synthetic faces are rendered in memory (data.cache_images)")
    from .. import models
    from ..codecs import get_codec
    from ..data.transforms import Augment
    from ..losses import make_loss

    m = cfg["model"]
    try:
        models.model_config(m["name"], **{"heatmap_size": m["heatmap_size"], "input_size": cfg["data"]["input_size"],
                                           **(m.get("options") or {})})
    except ConfigError as e:
        raise ConfigError(f"{where}: model: {e}") from None
    try:
        get_codec(cfg["codec"]["name"], input_size=cfg["data"]["input_size"], heatmap_size=m["heatmap_size"],
                  **(cfg["codec"].get("options") or {}))
    except (TypeError, ValueError, ConfigError) as e:
        raise ConfigError(f"{where}: codec.options: {e}") from None
    try:
        make_loss(cfg["codec"]["name"], **(cfg.get("loss") or {}))
    except ConfigError as e:
        raise ConfigError(f"{where}: loss: {e}") from None
    fields = {f.name for f in dataclasses.fields(Augment)} - {"mirror", "size"}
    bad = sorted(set(cfg["data"].get("augment") or {}) - fields)
    if bad:
        raise ConfigError(f"{where}: data.augment: unknown option(s) {bad}; expected some of {sorted(fields)}")
    return cfg


def merge(base: dict, update: dict) -> dict:
    """``base`` updated by ``update`` recursively (non-empty sections merge, other values replace)."""
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(cfg: dict, overrides: Iterable[str]) -> dict:
    """Apply dotted ``key=value`` overrides; values are parsed as YAML (``1e-3``, ``true``, ``[1,2]``).

    Each override is checked (known key, value of the option's type) as it is applied.
    """
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. optim.lr=5e-4")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = parse_yaml(raw) if raw != "" else None
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item}: expected a YAML value ({getattr(e, 'problem', e)})") from None
        check_option(key, value, f"override {item}")
        node = cfg
        parts = key.split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise ConfigError(f"override {item}: {part!r} is not a section")
            node = node[part]
        node[parts[-1]] = value
    return cfg


def load_config(path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
                overrides: Iterable[str] = ()) -> dict:
    """DEFAULTS <- YAML file(s) <- overrides, checked (``check_config``). ``path`` may be a list: each
    file is merged onto the ones before it (e.g. a dataset's recipe, then ``configs/cpu_recipe.yaml``).
    A bad YAML file raises ``ConfigError`` naming the line; a bad option names the option and what it
    expects."""
    cfg = copy.deepcopy(DEFAULTS)
    overrides = list(overrides)
    paths = [] if path is None else [path] if isinstance(path, (str, os.PathLike)) else list(path)
    for p in paths:
        cfg = merge(cfg, _read_yaml_config(Path(p)))
        for key, value in _leaves(cfg).items():
            check_option(key, value, str(p))
    cfg = apply_overrides(cfg, overrides)
    where = " + ".join(str(p) for p in paths) or "overrides"
    if paths and overrides:
        where = f"{where} with the overrides"
    return check_config(cfg, where)


def _read_yaml_config(path: Path) -> dict:
    """The sections of one YAML config file; ``ConfigError`` naming the file (and line) otherwise."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = parse_yaml(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{at}: expected valid YAML ({getattr(e, 'problem', e)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: expected a mapping of sections (data, model, codec, ...), found {type(data).__name__}")
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {unknown}; expected some of {sorted(DEFAULTS)}")
    return data
