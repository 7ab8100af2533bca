"""Processes and random states of a training run.

``setup_distributed`` joins the process group that ``torchrun`` describes; ``ResumableSampler`` gives
each rank its shard of an epoch and can start the epoch part-way; ``rng_state``/``set_rng_state``
capture and restore every random state the training loop consumes (``hihlib.training.trainer`` saves them in
each checkpoint for exact resume).
"""

from __future__ import annotations

import dataclasses
import os
import random

import numpy as np
import torch
from torch.utils.data import DistributedSampler


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


def bind_cuda_device(device: torch.device) -> None:
    """Make ``device`` the current CUDA device when it names one (``cuda:N``, as ``resolve_device`` gives under
    torchrun). A bare ``cuda`` (one process) keeps the current device: ``torch.cuda.set_device`` refuses a device
    without an index on some torch versions (2.11: "Expected a torch.device with a specified index")."""
    if device.type == "cuda" and device.index is not None:
        torch.cuda.set_device(device)


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
