"""Training: configuration, the loop, checkpoints, exact resume and DistributedDataParallel.

The loop is written out in ``Trainer.fit`` so that a reader can follow one step from images to
the optimizer::

    batch -> codec.encode(landmarks) -> model(images) -> loss(outputs, targets) -> backward -> step

Configuration
-------------
A run is described by one nested dict (``DEFAULTS`` below, overridden by a YAML file and by dotted
``key=value`` pairs on the command line, e.g. ``optim.lr=5e-4 data.skip_bad=true``). The full
configuration is stored in every checkpoint, so ``hih eval`` and ``hih predict`` rebuild the model
and its codec from the checkpoint alone.

Exact resume
------------
A checkpoint holds the model, optimizer and scheduler states, the epoch and the position inside the
epoch, and every random state the loop consumes: Python, NumPy, torch (CPU and CUDA), the generator
that draws H3R's randomized-rounding targets, and the data order (a ``DistributedSampler`` seeded
with ``seed + epoch``, so the order of an epoch is a pure function of the seed and the epoch; a
resumed run skips the samples already seen). On a CPU, 2 epochs straight and 1 epoch + resume +
1 epoch give bit-identical weights (tests/test_train.py).

Distributed
-----------
Launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set), the trainer joins a process
group (NCCL on CUDA, gloo on CPU), wraps the model in ``DistributedDataParallel`` and gives each
rank its shard of every epoch. ``train.batch_size`` is per process. Only rank 0 evaluates and writes
files.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import math
import os
import random
import re
import time
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .errors import ConfigError, HihError
from .io import append_jsonl, torch_save, write_text

# ----------------------------------------------------------------------------------------------
# Configuration
# ----------------------------------------------------------------------------------------------

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "data": {
        "dataset": "synth",        # synth | wflw | cofw | 300w
        "root": None,              # dataset folder (wflw, cofw, 300w)
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
    "model": {"name": "hih_b", "heatmap_size": 64, "options": {}},
    "loss": {},                    # keyword arguments of hihlib.losses.build_loss
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


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-3`` as a string (it wants ``1.0e-3``); learning rates are written the short way."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"""),
    list("-+0123456789"))


def _yaml(text: str):
    return yaml.load(text, Loader=_Loader)


def _merge(base: dict, update: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and out[key]:
            out[key] = _merge(out[key], value, f"{where}{key}.")
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(cfg: dict, overrides: Iterable[str]) -> dict:
    """Apply dotted ``key=value`` overrides; values are parsed as YAML (``1e-3``, ``true``, ``[1,2]``)."""
    cfg = copy.deepcopy(cfg)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. optim.lr=5e-4")
        key, raw = item.split("=", 1)
        value = _yaml(raw) if raw != "" else None
        node = cfg
        parts = key.strip().split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            if not isinstance(node[part], dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = node[part]
        node[parts[-1]] = value
    return cfg


def load_config(path: str | os.PathLike | None = None, overrides: Iterable[str] = ()) -> dict:
    """DEFAULTS <- YAML file <- overrides. A bad YAML file raises ``ConfigError`` naming the line."""
    cfg = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            data = _yaml(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise ConfigError(f"{where}: expected valid YAML ({getattr(e, 'problem', e)})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}:1: expected a mapping of sections (data, model, codec, ...), found {type(data).__name__}")
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise ConfigError(f"{path}: unknown section(s) {unknown}; expected some of {sorted(DEFAULTS)}")
        cfg = _merge(cfg, data)
    return apply_overrides(cfg, overrides)


# ----------------------------------------------------------------------------------------------
# Building the pieces from a configuration
# ----------------------------------------------------------------------------------------------

def build_codec(cfg: dict):
    """The codec for the model's heatmap size and the crop size."""
    from .codecs import get_codec

    return get_codec(cfg["codec"]["name"], input_size=cfg["data"]["input_size"],
                     heatmap_size=cfg["model"]["heatmap_size"], **(cfg["codec"].get("options") or {}))


def build_model(cfg: dict, num_landmarks: int) -> nn.Module:
    from . import models

    m = cfg["model"]
    opts = dict(m.get("options") or {})
    if "input_size" in inspect.signature(models.create).parameters or _accepts_kwargs(models.create):
        opts.setdefault("input_size", cfg["data"]["input_size"])
    return models.create(m["name"], num_landmarks=num_landmarks, heatmap_size=m["heatmap_size"],
                         head=cfg["codec"]["name"], **opts)


def _accepts_kwargs(fn) -> bool:
    return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())


def build_loss(cfg: dict):
    from .losses import build_loss as _build

    return _build(cfg["codec"]["name"], **(cfg.get("loss") or {}))


def _augment(cfg: dict, scheme):
    opts = cfg["data"].get("augment")
    if not opts:
        return None
    from .data.transforms import Augment

    opts = {k: tuple(v) if isinstance(v, list) else v for k, v in opts.items()}
    opts.setdefault("size", cfg["data"]["input_size"])
    try:
        return Augment(mirror=tuple(scheme.mirror), **opts)
    except TypeError as e:
        raise ConfigError(f"data.augment: {e}") from None


def load_records(cfg: dict, split: str) -> tuple[list, Any, str]:
    """Records, landmark scheme and a one-line description of the data of one split."""
    d = cfg["data"]
    name = d["dataset"]
    if name == "synth":
        from .data.synthetic import SyntheticFaces

        # the validation faces come from another seed so they never repeat training faces
        train = split == d["train_split"]
        n = d["num_train"] if train else d["num_val"]
        seed = cfg["seed"] if train else cfg["seed"] + 10_000
        faces = SyntheticFaces(n, seed=seed, image_size=d["image_size"])
        records = list(faces.records)
        if d.get("cache_images", True):
            records = cache_records(records)
        return records, faces.scheme, f"synthetic WFLW-format faces, {n} images, seed {seed}"
    if d.get("root") is None:
        raise ConfigError(f"data.root is required for dataset {name!r} (the folder holding the {name.upper()} files)")
    from . import data

    cls = {"wflw": "WFLW", "cofw": "COFW", "300w": "W300"}.get(name)
    if cls is None:
        raise ConfigError(f"data.dataset={name!r}: expected one of synth, wflw, cofw, 300w")
    ds = _open_dataset(getattr(data, cls), d["root"], split, bool(d.get("skip_bad")))
    desc = f"{name.upper()} {split} split from {d['root']}, {len(ds.records)} faces"
    skipped = getattr(ds, "skipped", None)
    if skipped:
        n_skipped = len(skipped) if hasattr(skipped, "__len__") else int(skipped)
        desc += f" ({n_skipped} bad samples skipped)"
        print(f"data: skipped {n_skipped} bad samples in the {name.upper()} {split} split (data.skip_bad=true)")
    return list(ds.records), ds.scheme, desc


def _open_dataset(cls, root, split, skip_bad):
    if "skip_bad" in inspect.signature(cls).parameters:
        return cls(root, split=split, skip_bad=skip_bad)
    return cls(root, split=split)


def cache_records(records: list) -> list:
    """Render every lazily loaded record once (synthetic faces) and keep the pixels in memory."""
    out = []
    for r in records:
        if getattr(r, "image", None) is None and getattr(r, "loader", None) is not None:
            r = dataclasses.replace(r, image=r.load_image(), loader=None)
        out.append(r)
    return out


def build_dataset(cfg: dict, records: list, scheme, *, train: bool) -> Dataset:
    from .data import FaceDataset

    d = cfg["data"]
    return FaceDataset(records, scheme, input_size=d["input_size"], scale=d["scale"], box=d["box"],
                       augment=_augment(cfg, scheme) if train else None, seed=cfg["seed"])


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


# ----------------------------------------------------------------------------------------------
# Distributed helpers
# ----------------------------------------------------------------------------------------------

@dataclasses.dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup_distributed(device: torch.device) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment (if any)."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    here = False
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        here = True
    return DistInfo(rank, world, local, here)


def resolve_device(spec: str) -> torch.device:
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={spec!r} but no CUDA device is available")
    if spec == "cuda" and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        spec = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    return torch.device(spec)


class ResumableSampler(DistributedSampler):
    """``DistributedSampler`` whose epoch can start part-way: the first ``start`` samples of this
    rank's shard are skipped (they were trained on before the checkpoint)."""

    def __init__(self, dataset, *, num_replicas: int, rank: int, seed: int, shuffle: bool = True):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed, drop_last=False)
        self.start = 0

    def __iter__(self):
        indices = list(super().__iter__())
        return iter(indices[self.start:])

    def __len__(self) -> int:
        return self.num_samples - self.start


# ----------------------------------------------------------------------------------------------
# Random states
# ----------------------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(target_generator: torch.Generator | None) -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if target_generator is not None:
        state["targets"] = target_generator.get_state()
    return state


def set_rng_state(state: dict, target_generator: torch.Generator | None) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])
    if target_generator is not None and "targets" in state:
        target_generator.set_state(state["targets"].cpu())


# ----------------------------------------------------------------------------------------------
# The trainer
# ----------------------------------------------------------------------------------------------

def unwrap(model: nn.Module) -> nn.Module:
    """The plain module under DDP and torch.compile wrappers (whose state_dict keys are clean)."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


class Trainer:
    """One training run. ``Trainer(cfg, out_dir).fit()``.

    The pieces (model, codec, loss, datasets) are built from ``cfg`` unless given, so a notebook
    or a test can train its own module with the same loop. ``val_set`` may be None (no evaluation).
    Files written to ``out_dir`` (rank 0 only): ``last.pt`` and ``best.pt`` checkpoints,
    ``metrics.jsonl`` (one JSON object per line: ``{"kind": "train"|"eval", ...}``) and
    ``config.yaml``.
    """

    def __init__(self, cfg: dict, out_dir: str | os.PathLike, *, resume: bool = False,
                 model: nn.Module | None = None, codec=None, loss_fn=None,
                 train_set: Dataset | None = None, val_set: Dataset | None = None,
                 data_description: str | None = None):
        self.cfg = copy.deepcopy(cfg)
        self.out = Path(out_dir)
        t = self.cfg["train"]
        self.device = resolve_device(t["device"])
        if t.get("threads"):
            torch.set_num_threads(int(t["threads"]))
        self.dist = setup_distributed(self.device)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        seed_everything(self.cfg["seed"])

        if train_set is None:
            records, scheme, desc = load_records(self.cfg, self.cfg["data"]["train_split"])
            train_set = build_dataset(self.cfg, records, scheme, train=True)
            data_description = desc
            if val_set is None and t["eval_every"]:
                vrec, vscheme, vdesc = load_records(self.cfg, self.cfg["data"]["val_split"])
                val_set = build_dataset(self.cfg, vrec, vscheme, train=False)
                self.val_description = vdesc
        self.train_set, self.val_set = train_set, val_set
        self.data_description = data_description or "data given by the caller"
        if not hasattr(self, "val_description"):
            self.val_description = "validation data given by the caller"
        self.codec = codec if codec is not None else build_codec(self.cfg)
        if model is None:
            model = build_model(self.cfg, num_landmarks=_num_landmarks(train_set))
        self.loss_fn = loss_fn if loss_fn is not None else build_loss(self.cfg)

        self.model = model.to(self.device)
        self.cuda = self.device.type == "cuda"
        if self.cuda and t.get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.amp = self.cuda and str(t.get("amp", "none")).lower() == "bf16"

        self.sampler = ResumableSampler(train_set, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                        seed=self.cfg["seed"])
        self.steps_per_epoch = math.ceil(self.sampler.num_samples / t["batch_size"])
        if t.get("max_steps_per_epoch"):
            self.steps_per_epoch = min(self.steps_per_epoch, int(t["max_steps_per_epoch"]))
        self.optimizer = build_optimizer(self.cfg, self.model)
        self.scheduler = build_scheduler(self.cfg, self.optimizer, self.steps_per_epoch)
        # H3R draws a new randomized rounding of every target at every step (from its own generator,
        # so the draws are part of the checkpointed state)
        self.target_gen = torch.Generator(device=self.device)
        self.target_gen.manual_seed(self.cfg["seed"] + 1)
        self._encode_takes_generator = "generator" in inspect.signature(self.codec.encode).parameters

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best = math.inf
        if resume:
            self._resume()

        self.net = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            # static_graph: the graph is the same at every step, which lets DDP skip parameters that
            # never receive a gradient (e.g. the last stack's remap convolutions) without the
            # per-step graph traversal of find_unused_parameters=True
            self.net = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.cuda else None,
                                               static_graph=True)
        if t.get("compile"):
            self.net = torch.compile(self.net)

    # -- files ---------------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"

    def log(self, record: dict) -> None:
        if self.dist.is_main:
            append_jsonl(self.out / "metrics.jsonl", record)

    def state(self) -> dict:
        return {
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,                  # epochs completed
            "step_in_epoch": self.step_in_epoch,  # optimizer steps done inside the current epoch
            "global_step": self.global_step,
            "rng": rng_state(self.target_gen),
            "data_order": {"seed": self.cfg["seed"], "epoch": self.epoch,
                           "samples_seen": self.step_in_epoch * self.cfg["train"]["batch_size"]},
            "best": self.best,
            "config": self.cfg,
            "num_landmarks": _num_landmarks(self.train_set),
            "world_size": self.dist.world_size,
        }

    def save(self, path: Path | None = None) -> None:
        if self.dist.is_main:
            torch_save(self.state(), path or self.last_path)

    def _resume(self) -> None:
        if not self.last_path.is_file():
            raise HihError(f"{self.last_path}: no checkpoint to resume from (run without --resume first)")
        ckpt = torch.load(self.last_path, map_location="cpu", weights_only=False)
        unwrap(self.model).load_state_dict(ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.epoch, self.step_in_epoch = ckpt["epoch"], ckpt["step_in_epoch"]
        self.global_step, self.best = ckpt["global_step"], ckpt.get("best", math.inf)
        set_rng_state(ckpt["rng"], self.target_gen)
        if ckpt.get("world_size", 1) != self.dist.world_size and self.step_in_epoch and self.dist.is_main:
            # the shards of a part-done epoch depend on the number of processes
            print(f"warning: {self.last_path} was written by {ckpt.get('world_size', 1)} process(es), resuming "
                  f"with {self.dist.world_size}: the rest of epoch {self.epoch + 1} sees a different order")
        if self.dist.is_main:
            print(f"resumed from {self.last_path}: epoch {self.epoch}, step {self.step_in_epoch} of the epoch")

    # -- one step ------------------------------------------------------------------------------
    def encode(self, coords: torch.Tensor) -> dict[str, torch.Tensor]:
        if self._encode_takes_generator:
            return self.codec.encode(coords, generator=self.target_gen)
        return self.codec.encode(coords)

    def train_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Forward, loss, backward, clip, step. Returns the loss (a tensor, not yet synchronised)."""
        images = batch["image"].to(self.device, non_blocking=True)
        if self.cuda and self.cfg["train"].get("channels_last"):
            images = images.contiguous(memory_format=torch.channels_last)
        coords = batch["landmarks"].to(self.device, non_blocking=True).float()
        targets = self.encode(coords)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            outputs = self.net(images)
        # the loss in fp32: bf16 logits lose the small differences soft labels care about
        outputs = {k: v.float() for k, v in outputs.items()}
        loss, parts = self.loss_fn(outputs, targets)
        ok = torch.isfinite(loss.detach()).float()
        if self.dist.enabled:
            # every rank must agree to stop, or a rank waiting in all-reduce would hang
            import torch.distributed as dist

            dist.all_reduce(ok, op=dist.ReduceOp.MIN)
        if ok.item() < 1:
            raise HihError(
                f"training stopped: the loss became {loss.item()} at epoch {self.epoch + 1}, step "
                f"{self.step_in_epoch + 1}; the last good checkpoint is kept at {self.last_path} "
                f"(lower optim.lr or set optim.clip_grad, then resume with --resume)")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip = self.cfg["optim"].get("clip_grad")
        if clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), float(clip))
        self.optimizer.step()
        self.scheduler.step()
        return loss.detach(), {k: float(v) for k, v in parts.items()}

    # -- the loop ------------------------------------------------------------------------------
    def loader(self) -> DataLoader:
        t, d = self.cfg["train"], self.cfg["data"]
        self.sampler.set_epoch(self.epoch)
        self.sampler.start = self.step_in_epoch * t["batch_size"]
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        workers = int(d.get("workers") or 0)
        # the loader draws its workers' base seed from this generator, not from the global RNG,
        # so starting an epoch part-way consumes the same random numbers as starting it at step 0
        seeds = torch.Generator().manual_seed(self.cfg["seed"] * 100_003 + self.epoch)
        return DataLoader(self.train_set, batch_size=t["batch_size"], sampler=self.sampler,
                          num_workers=workers, pin_memory=self.cuda, drop_last=False,
                          persistent_workers=False, generator=seeds)

    def fit(self) -> dict:
        """Train until ``train.epochs``; returns the last evaluation (or {})."""
        t = self.cfg["train"]
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_text(self.out / "config.yaml", yaml.safe_dump(self.cfg, sort_keys=False))
            print(f"data: {self.data_description}")
        last_eval: dict = {}
        every = int(t.get("checkpoint_every") or 0)
        while self.epoch < t["epochs"]:
            self.model.train()
            loader = self.loader()
            bar = _progress(total=self.steps_per_epoch, initial=self.step_in_epoch,
                            desc=f"epoch {self.epoch + 1}/{t['epochs']}",
                            enabled=bool(t.get("progress")) and self.dist.is_main)
            running, n_running, t0 = 0.0, 0, time.perf_counter()
            for batch in loader:
                if self.step_in_epoch >= self.steps_per_epoch:
                    break
                loss, parts = self.train_step(batch)
                self.step_in_epoch += 1
                self.global_step += 1
                running += loss.item()
                n_running += 1
                bar.update(1)
                bar.set_postfix(loss=f"{loss.item():.4g}")
                if self.global_step % int(t.get("log_every") or 50) == 0:
                    self.log({"kind": "train", "epoch": self.epoch + 1, "step": self.global_step,
                              "loss": running / n_running, "lr": self.scheduler.get_last_lr()[0], **parts})
                if every and self.global_step % every == 0 and self.step_in_epoch < self.steps_per_epoch:
                    self.save()
            bar.close()
            self._sync_buffers()
            self.epoch += 1
            self.step_in_epoch = 0
            self.log({"kind": "epoch", "epoch": self.epoch, "step": self.global_step,
                      "loss": running / max(n_running, 1), "seconds": time.perf_counter() - t0,
                      "lr": self.scheduler.get_last_lr()[0]})
            is_best = False
            if self.val_set is not None and t.get("eval_every") and (
                    self.epoch % int(t["eval_every"]) == 0 or self.epoch == t["epochs"]):
                last_eval = self.evaluate()
                score = last_eval.get(self.codec.methods[0], {}).get("nme", math.inf)
                if score < self.best:
                    self.best, is_best = score, True
            self.save()
            if is_best:
                self.save(self.out / "best.pt")
        if self.dist.enabled:
            import torch.distributed as dist

            dist.barrier()
        return last_eval

    def _sync_buffers(self) -> None:
        """DDP keeps each rank's last BN running statistics; give every rank rank 0's (the saved ones)."""
        if self.dist.enabled:
            import torch.distributed as dist

            for buf in self.model.buffers():
                dist.broadcast(buf, src=0)

    def evaluate(self) -> dict:
        """NME / FR@0.1 / AUC@0.1 on the validation set for every decode method (rank 0)."""
        result: dict = {}
        if self.dist.is_main:
            from .evaluate import predict_dataset, summarise

            preds = predict_dataset(unwrap(self.model), self.codec, self.val_set,
                                    batch_size=self.cfg["train"]["eval_batch_size"], device=self.device,
                                    amp=self.amp, progress=False)
            result = summarise(preds, self.val_set)
            self.log({"kind": "eval", "epoch": self.epoch, "step": self.global_step,
                      "data": self.val_description, **{m: r for m, r in result.items()}})
            line = ", ".join(f"{m} {r['nme']:.3f}" for m, r in result.items())
            print(f"epoch {self.epoch}: NME % ({self.val_description}): {line}")
        if self.dist.enabled:
            import torch.distributed as dist

            dist.barrier()
        return result

    def close(self) -> None:
        if self.dist.initialised_here:
            import torch.distributed as dist

            dist.destroy_process_group()


def _num_landmarks(dataset) -> int:
    scheme = getattr(dataset, "scheme", None)
    if scheme is not None:
        return int(scheme.num_points)
    return int(dataset[0]["landmarks"].shape[0])


class _NoBar:
    def update(self, n=1): ...
    def set_postfix(self, **kw): ...
    def close(self): ...


def _progress(*, total: int, initial: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, leave=False, dynamic_ncols=True)


def train(cfg: dict, out_dir: str | os.PathLike, *, resume: bool = False, **pieces) -> Trainer:
    """Build a ``Trainer`` and run it to the end; returns the trainer (its model is trained)."""
    trainer = Trainer(cfg, out_dir, resume=resume, **pieces)
    try:
        trainer.fit()
    finally:
        trainer.close()
    return trainer


# ----------------------------------------------------------------------------------------------
# Loading a trained model
# ----------------------------------------------------------------------------------------------

def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"):
    """(model in eval mode, codec, config) from a checkpoint written by ``Trainer``."""
    path = Path(path)
    if not path.is_file():
        raise HihError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # a truncated or foreign file
        raise HihError(f"{path}: expected a hihlib checkpoint (torch.save file), could not read it: {e}") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise HihError(f"{path}: expected a hihlib checkpoint with 'model' and 'config', found keys {sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__}")
    cfg = ckpt["config"]
    model = build_model(cfg, num_landmarks=ckpt["num_landmarks"])
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, build_codec(cfg), cfg


# ----------------------------------------------------------------------------------------------
# CLI: hih train
# ----------------------------------------------------------------------------------------------

def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train a model. Overrides are dotted key=value pairs, e.g. optim.lr=5e-4.")
    p.add_argument("--config", required=True, help="YAML file (see configs/)")
    p.add_argument("--out", required=True, help="output folder: checkpoints, metrics.jsonl, config.yaml")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt exactly where it stopped")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    cfg = load_config(args.config, args.overrides)
    trainer = train(cfg, args.out, resume=args.resume)
    if trainer.dist.is_main:
        print(f"checkpoint: {trainer.last_path}")
    return 0
