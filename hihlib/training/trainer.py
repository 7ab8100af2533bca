"""Training: the ``Trainer`` (the loop, exact resume, DistributedDataParallel) and ``hih train``.

The loop is written out in ``Trainer.fit`` so that a reader can follow one step from images to
the optimizer::

    batch -> codec.encode(landmarks) -> model(images, landmarks) -> loss(outputs, targets) -> backward -> step

The configuration (``hihlib.pipeline.config``) describes the run; ``hihlib.pipeline.build`` turns it into the data,
codec, model, loss, optimizer and schedule; ``hihlib.pipeline.checkpoint`` says what a checkpoint holds and
reads a trained model back; ``hihlib.training.distributed`` holds the process set-up and the random states.

Exact resume
------------
``Trainer.state`` writes and ``Trainer.restore`` reads back everything the loop consumes: the model,
optimizer and scheduler states, the epoch and the step inside it, every random state (Python, NumPy,
torch CPU and CUDA, and the generator that draws H3R's randomized-rounding targets) and the data
order. The order of an epoch is a pure function of the seed and the epoch (a ``DistributedSampler``
seeded with ``seed + epoch``; the loader's worker seeds come from a generator seeded the same way),
so a resumed run skips the samples already seen and goes on exactly. On a CPU, 2 epochs straight
and 1 epoch + resume + 1 epoch give bit-identical weights (tests/test_train.py).

Distributed
-----------
Launched by ``torchrun`` (``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` set), the trainer joins a process
group (NCCL on CUDA, gloo on CPU), wraps the model in ``DistributedDataParallel`` and gives each
rank its shard of every epoch. ``train.batch_size`` is per process. Only rank 0 evaluates and writes
files.
"""

from __future__ import annotations

import copy
import math
import os
import time
from pathlib import Path

import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader, Dataset, default_collate

from ..pipeline.build import (build_optimizer, build_pieces, build_scheduler, build_split, codec_spec, loss_spec,
                              model_spec, resolve_device)
from ..pipeline.checkpoint import checkpoint_dict, codec_record, prepare_run_folder, read_checkpoint
from ..pipeline.config import load_config
from ..data.dataset import normalize_batch
from .distributed import (ResumableSampler, bind_cuda_device, rng_state, seed_everything, set_rng_state,
                          setup_distributed)
from ..errors import HihError
from ..inference.evaluate import predict_dataset, summarise
from ..io import append_jsonl, torch_save, write_text

__all__ = ["Trainer", "register", "train"]


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
    or a test can train its own module with the same loop. A given model is a ``LandmarkModel`` and a
    given codec must match ``cfg`` (head, input and heatmap size); a given ``train_set`` has a
    ``scheme`` and items as ``FaceDataset``'s, and its ``set_epoch(epoch)``, when it has one, is
    called before every epoch. ``val_set`` may be None (no evaluation). ``data_origin``: what the given
    ``train_set`` is (``{"dataset", "synthetic", "root"}``, see ``build.data_origin``; unknown by default),
    recorded in the checkpoint.
    Files written to ``out_dir`` (rank 0 only): ``last.pt`` and ``best.pt`` checkpoints
    (``hihlib.pipeline.checkpoint``), ``metrics.jsonl`` (one JSON object per line: ``{"kind": "train"|"epoch"|
    "eval", ...}``; a run that does not resume starts a new file) and ``config.yaml``.
    """

    def __init__(self, cfg: dict, out_dir: str | os.PathLike, *, resume: bool = False,
                 model: nn.Module | None = None, codec=None, loss_fn=None,
                 train_set: Dataset | None = None, val_set: Dataset | None = None,
                 data_description: str | None = None, val_description: str | None = None,
                 data_origin: dict | None = None):
        self.cfg = copy.deepcopy(cfg)
        self.out = Path(out_dir)
        t, d = self.cfg["train"], self.cfg["data"]
        # processes, device, random state
        self.device = resolve_device(t["device"])
        if t.get("threads"):
            torch.set_num_threads(int(t["threads"]))
        self.dist = setup_distributed(self.device)
        bind_cuda_device(self.device)
        seed_everything(self.cfg["seed"])

        # data, codec, model, loss (built in that order): the configuration records exactly what is trained
        pieces = build_pieces(self.cfg, d["train_split"], train=True, data=train_set, codec=codec, model=model,
                              loss=loss_fn, description=data_description or "data given by the caller")
        self.data_origin = dict(data_origin if data_origin is not None else  # what the checkpoint says it was trained on
                                pieces.origin or {"dataset": None, "synthetic": None, "root": None})
        self.val_description = val_description or "validation data given by the caller"
        if train_set is None and val_set is None and t["eval_every"]:
            val_set, self.val_description = build_split(self.cfg, d["val_split"], train=False)
        self.train_set, self.val_set, self.codec, self.loss_fn = pieces.data, val_set, pieces.codec, pieces.loss
        self.data_description = pieces.description
        if "custom" not in loss_spec(self.loss_fn):
            self.cfg["loss"] = loss_spec(self.loss_fn)

        self.model = pieces.model.to(self.device)
        self.cuda = self.device.type == "cuda"
        if self.cuda and t.get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)
        self.amp = self.cuda and str(t.get("amp", "none")).lower() == "bf16"

        # optimisation
        self.sampler = ResumableSampler(self.train_set, num_replicas=self.dist.world_size, rank=self.dist.rank,
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

        self.epoch, self.step_in_epoch, self.global_step = 0, 0, 0
        self.best = math.inf
        if resume:
            self.restore(read_checkpoint(self.last_path) if self.last_path.is_file() else None)

        self.net = self._wrapped()

    def _wrapped(self) -> nn.Module:
        """The model as the loop calls it: under DistributedDataParallel when distributed, compiled
        when ``train.compile``."""
        net = self.model
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            # static_graph: the graph is the same at every step, which lets DDP skip parameters that
            # never receive a gradient (e.g. the last stack's remap convolutions) without the
            # per-step graph traversal of find_unused_parameters=True
            net = DistributedDataParallel(self.model, device_ids=[self.device.index] if self.cuda else None,
                                          static_graph=True)
        return torch.compile(net) if self.cfg["train"].get("compile") else net

    # -- files ---------------------------------------------------------------------------------
    @property
    def last_path(self) -> Path:
        return self.out / "last.pt"

    def log(self, record: dict) -> None:
        if self.dist.is_main:
            append_jsonl(self.out / "metrics.jsonl", record)

    # -- exact resume: what is saved, and how it is read back --------------------------------------
    def state(self) -> dict:
        """The checkpoint: the trained pieces (``hihlib.pipeline.checkpoint``) and the state of the loop."""
        return checkpoint_dict(unwrap(self.model), self.codec, self.loss_fn, self.cfg,
                               data={**self.data_origin, "description": self.data_description},  # checkpoint.trained_on
                               state=self.loop_state())

    def loop_state(self) -> dict:
        """The state of the loop that exact resume needs (beside the weights)."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,                  # epochs completed
            "step_in_epoch": self.step_in_epoch,  # optimizer steps done inside the current epoch
            "global_step": self.global_step,
            "rng": rng_state(self.target_gen),
            # the sampler's order is a function of (config seed, epoch); on resume ``loader`` skips the
            # step_in_epoch batches already seen
            "best": self.best,
            "world_size": self.dist.world_size,
        }

    def restore(self, ckpt: dict | None) -> None:
        """Continue from ``state()``: weights, optimizer, schedule, position and random states."""
        if ckpt is None:
            raise HihError(f"{self.last_path}: no checkpoint to resume from (run without --resume first)")
        mismatch = self._resume_mismatch(ckpt)
        if mismatch is None:
            try:
                unwrap(self.model).load_state_dict(ckpt["model"])
            except RuntimeError as e:
                mismatch = f"its weights do not fit this run's model ({str(e).splitlines()[-1].strip()})"
        if mismatch is not None:
            raise HihError(f"{self.last_path}: cannot resume: {mismatch}; resume with the checkpoint's settings, "
                           f"or start a new run (--force, or another --out)")
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

    def _resume_mismatch(self, ckpt: dict) -> str | None:
        """Why ``ckpt`` cannot continue in this run (None if it can): the landmark count, architecture or
        codec differ; names the settings of the data, model, codec and loss sections that differ."""
        from ..pipeline.config import _leaves

        model = unwrap(self.model)
        saved, now = _leaves(ckpt.get("config") or {}), _leaves(self.cfg)
        differ = [f"{k} ({saved.get(k)!r} in the checkpoint, {now.get(k)!r} now)" for k in sorted(set(saved) | set(now))
                  if k.split(".")[0] in ("data", "model", "codec", "loss") and saved.get(k) != now.get(k)]
        what = []
        if ckpt.get("num_landmarks", model.num_landmarks) != model.num_landmarks:
            what.append(f"the checkpoint's model predicts {ckpt['num_landmarks']} landmarks, this run's data has "
                        f"{model.num_landmarks}")
        elif "model_spec" in ckpt and ckpt["model_spec"] != model_spec(model):
            what.append("the checkpoint's architecture differs from this run's")
        elif "codec" in ckpt and codec_record(ckpt) != self._codec_spec():
            what.append(f"the checkpoint's codec is {codec_record(ckpt)}, this run's {self._codec_spec()}")
        if not what:
            return None
        return "; ".join(what) + ("; settings that differ: " + ", ".join(differ) if differ else "")

    def _codec_spec(self) -> dict:
        return codec_spec(self.codec, self.cfg["codec"].get("options"))

    def save(self, path: Path | None = None) -> None:
        if self.dist.is_main:
            torch_save(self.state(), path or self.last_path)

    def loader(self) -> DataLoader:
        """The batches of the current epoch, from the first sample not yet trained on."""
        t, d = self.cfg["train"], self.cfg["data"]
        self.sampler.set_epoch(self.epoch)
        self.sampler.start = self.step_in_epoch * t["batch_size"]
        if hasattr(self.train_set, "set_epoch"):
            self.train_set.set_epoch(self.epoch)
        # the loader draws its workers' base seed from this generator, not from the global RNG,
        # so starting an epoch part-way consumes the same random numbers as starting it at step 0
        seeds = torch.Generator().manual_seed(self.cfg["seed"] * 100_003 + self.epoch)
        return DataLoader(_Reported(self.train_set), batch_size=t["batch_size"], sampler=self.sampler,
                          num_workers=int(d.get("workers") or 0), pin_memory=self.cuda, drop_last=False,
                          persistent_workers=False, generator=seeds, collate_fn=_collate)

    # -- one step ------------------------------------------------------------------------------
    def train_step(self, batch: dict) -> tuple[torch.Tensor, dict]:
        """Forward, loss, backward, clip, step. Returns the loss (a tensor, not yet synchronised)."""
        images = batch["image"].to(self.device, non_blocking=True)
        if images.dtype == torch.uint8:  # (B, S, S, 3) crops of FaceDataset(normalize=False)
            images = normalize_batch(images)
            images = images if self.cuda else images.contiguous()
        if self.cuda and self.cfg["train"].get("channels_last"):
            images = images.contiguous(memory_format=torch.channels_last)
        coords = batch["landmarks"].to(self.device, non_blocking=True).float()
        targets = self.codec.encode(coords, generator=self.target_gen)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
            # landmarks: a head that reads the ground truth in training (hih_local's cells) takes them
            outputs = self.net(images, landmarks=coords)
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
    def fit(self) -> dict:
        """Train until ``train.epochs``; returns the last evaluation (or {})."""
        t = self.cfg["train"]
        if self.dist.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if self.epoch == 0 and self.step_in_epoch == 0:  # a new run: a new log
                (self.out / "metrics.jsonl").unlink(missing_ok=True)
            write_text(self.out / "config.yaml", yaml.safe_dump(self.cfg, sort_keys=False))
            print(f"data: {self.data_description}")
        last_eval: dict = {}
        every = int(t.get("checkpoint_every") or 0)
        while self.epoch < t["epochs"]:
            self.model.train()
            bar = _progress(total=self.steps_per_epoch, initial=self.step_in_epoch,
                            desc=f"epoch {self.epoch + 1}/{t['epochs']}",
                            enabled=bool(t.get("progress")) and self.dist.is_main)
            running, n_running, t0 = 0.0, 0, time.perf_counter()
            try:
                for batch in self.loader():
                    if self.step_in_epoch >= self.steps_per_epoch:
                        break
                    if "error" in batch:  # a data error, raised in a loader worker
                        raise HihError(batch["error"])
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
            finally:
                bar.close()  # before any message, so that an error is not printed on the bar's line
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
                score = last_eval.get(self.codec.default_method, {}).get("nme", math.inf)
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
            preds = predict_dataset(unwrap(self.model), self.codec, self.val_set,
                                    batch_size=self.cfg["train"]["eval_batch_size"], device=self.device,
                                    amp=self.amp, progress=False, flip=bool(self.cfg["train"].get("eval_flip")))
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


class _Reported(Dataset):
    """The training set as the loader sees it: a ``HihError`` raised for an item (a missing or
    undecodable image) becomes the item ``{"error": message}``. Raised inside a loader worker, the
    error itself would reach the main process as a ``RuntimeError`` holding the worker's traceback."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        try:
            return self.dataset[index]
        except HihError as e:
            return {"error": str(e)}


def _collate(items: list) -> dict:
    """``default_collate``, or ``{"error": message}`` when an item is a reported error."""
    errors = [item["error"] for item in items if "error" in item]
    return {"error": errors[0]} if errors else default_collate(items)


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
# CLI: hih train
# ----------------------------------------------------------------------------------------------

def register(sub) -> None:
    p = sub.add_parser("train", help="train a model from a YAML config",
                       description="Train a model. Overrides are dotted key=value pairs, e.g. optim.lr=5e-4; "
                                   "every key and value is checked before any work starts.")
    p.add_argument("--config", required=True, help="YAML file (see configs/)")
    p.add_argument("--out", required=True,
                   help="output folder: checkpoints, metrics.jsonl, config.yaml (must be new or empty "
                        "unless --resume or --force)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/last.pt exactly where it stopped")
    p.add_argument("--force", action="store_true",
                   help="replace the run already in OUT (its checkpoints and metrics are deleted)")
    p.add_argument("--cache", default=None, metavar="FOLDER",
                   help="train from the crops that `hih data prepare` wrote to FOLDER (same as data.cache=FOLDER)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="configuration overrides, values parsed as YAML (e.g. optim.lr=5e-4 data.workers=4)")
    p.set_defaults(func=_cli)


def _cli(args) -> int:
    overrides = list(args.overrides) + ([f"data.cache={args.cache}"] if args.cache else [])
    cfg = load_config(args.config, overrides)
    prepare_run_folder(args.out, resume=args.resume, force=args.force)
    trainer = train(cfg, args.out, resume=args.resume)
    if trainer.dist.is_main:
        print(f"checkpoint: {trainer.last_path}")
    return 0
