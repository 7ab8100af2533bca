"""DistributedDataParallel on the CPU: 2 processes (gloo), the same environment torchrun sets.

Each rank trains the tiny model of test_train.py for a few steps with its own output folder; the
ranks must end with identical weights, and only rank 0 may write files.
"""

from __future__ import annotations

import socket
import time

import torch
import torch.multiprocessing as mp

from test_train import HM, SIZE, ToyFaces, bce_loss, tiny_model, toy_cfg


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, tmp: str) -> None:
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from hihlib.codecs import get_codec
    from hihlib.training.trainer import Trainer

    torch.manual_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
    trainer = Trainer(toy_cfg(epochs=2, device="cpu"), f"{tmp}/out{rank}", model=tiny_model(),
                      codec=get_codec("h3r", input_size=SIZE, heatmap_size=HM), loss_fn=bce_loss,
                      train_set=ToyFaces(16))
    trainer.fit()
    # the test itself (not the library) saves each rank's weights for the comparison
    torch.save({k: v.clone() for k, v in trainer.model.state_dict().items()}, f"{tmp}/weights{rank}.pt")
    shards = len(trainer.sampler)
    trainer.close()
    assert trainer.steps_per_epoch == 2 and shards == 8  # 16 faces, 2 ranks, batch 4


def spawn_with_timeout(fn, args, nprocs: int, timeout: float) -> None:
    """``mp.spawn`` that gives up after ``timeout`` seconds (a rank stuck in a collective would otherwise
    hang the suite): the processes are killed and the test fails."""
    ctx = mp.spawn(fn, args=args, nprocs=nprocs, join=False)
    deadline = time.monotonic() + timeout
    while not ctx.join(timeout=max(0.1, min(5.0, deadline - time.monotonic()))):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            raise AssertionError(f"the {nprocs} processes did not finish within {timeout:.0f} s")


def test_two_cpu_processes_end_with_identical_weights_and_only_rank0_writes(tmp_path):
    spawn_with_timeout(_worker, (2, _free_port(), str(tmp_path)), nprocs=2, timeout=300)
    w0 = torch.load(tmp_path / "weights0.pt")
    w1 = torch.load(tmp_path / "weights1.pt")
    assert w0.keys() == w1.keys()
    for k in w0:
        assert torch.equal(w0[k], w1[k]), k
    assert {p.name for p in (tmp_path / "out0").iterdir()} == {"config.yaml", "last.pt", "metrics.jsonl"}
    assert not (tmp_path / "out1").exists()
    ckpt = torch.load(tmp_path / "out0" / "last.pt", weights_only=False)
    assert ckpt["world_size"] == 2 and ckpt["global_step"] == 4
    for k in w0:
        assert torch.equal(ckpt["model"][k], w0[k]), k
