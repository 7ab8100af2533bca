"""A recipe trained briefly: the CPU runs of notebooks 05 and 06 (``configs/cpu_recipe.yaml`` merged onto
a dataset's GPU recipe), for a given number of steps instead of the recipe's epochs."""

from __future__ import annotations

import contextlib
import io
import os
import time
from pathlib import Path

from ..pipeline.checkpoint import prepare_run_folder
from ..pipeline.config import apply_overrides, check_config


def brief_schedule(train_faces: int, steps: int, batch_size: int) -> list[str]:
    """The overrides that train about ``steps`` steps: whole epochs of at most ``steps`` batches each,
    ``ceil(steps / per_epoch)`` of them, where an epoch of ``train_faces`` faces has ``per_epoch`` batches."""
    per_epoch = -(-train_faces // batch_size)
    epochs = -(-steps // per_epoch)
    return [f"train.epochs={epochs}", f"train.max_steps_per_epoch={min(steps, per_epoch)}"]


def train_briefly(cfg: dict, out: str | os.PathLike, *, train_faces: int, steps: int,
                  command: str | None = None) -> tuple[Path, str]:
    """Train ``cfg`` afresh in ``out`` (a previous run's files there are replaced, as ``hih train --force``) for about ``steps`` steps
    (``brief_schedule``), the trainer's log kept quiet. Prints ``command`` (the equivalent ``hih train``
    line) first when given. Returns (the last checkpoint, one line saying what was trained and how long)."""
    from .trainer import Trainer

    out = Path(out)
    batch = cfg["train"]["batch_size"]
    cfg = check_config(apply_overrides(cfg, brief_schedule(train_faces, steps, batch)), "train_briefly")
    if command:
        print(command)
    prepare_run_folder(out, resume=False, force=True)  # a previous run's files in this folder: train afresh
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        trainer = Trainer(cfg, out)
        trainer.fit()
        trainer.close()
    seconds = time.perf_counter() - t0
    expected = cfg["train"]["epochs"] * cfg["train"]["max_steps_per_epoch"]
    assert trainer.global_step == expected, (trainer.global_step, expected)
    how = (f"{cfg['model']['name']} trained on the CPU for {trainer.global_step} steps of batch {batch} "
           f"({seconds:.0f} s), not HIH_B")
    print(how)
    return out / "last.pt", how
