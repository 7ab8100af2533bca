"""hihlib.training.trainer: configuration, exact resume (straight vs resumed, end of epoch and mid-epoch),
NaN handling, the LR schedule and the ``hih train`` command.

The loop tests train a tiny hourglass (input 32, heatmap 16, 5 landmarks) on ``ToyFaces``: images
with a bright blob at each landmark plus noise drawn from torch's global RNG, so a resume that did
not restore the RNG states would give different weights.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from hihlib.codecs import get_codec
from hihlib.data.records import FaceRecord
from hihlib.data.schemes import LandmarkScheme
from hihlib.errors import ConfigError, HihError
from hihlib.pipeline.config import DEFAULTS, apply_overrides, load_config
from hihlib.training.trainer import Trainer, train

K, SIZE, HM = 5, 32, 16

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOY_SCHEME = LandmarkScheme(name="toy", num_points=K, mirror=(1, 0, 2, 4, 3),
                            normalisers={"inter_ocular": (0, 1)}, default_norm="inter_ocular")


class ToyFaces(Dataset):
    """n images (3, 32, 32) with a Gaussian blob at each of 5 landmarks; items as FaceDataset's."""

    scheme = TOY_SCHEME

    def __init__(self, n: int = 24, seed: int = 0, noise: float = 0.1):
        g = torch.Generator().manual_seed(seed)
        self.coords = torch.rand(n, K, 2, generator=g) * (SIZE - 8) + 4
        yy, xx = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
        d2 = (xx[None, None] - self.coords[..., 0, None, None]) ** 2 + (yy[None, None] - self.coords[..., 1, None, None]) ** 2
        blobs = torch.exp(-d2 / 4.0).sum(1)  # (n, S, S)
        self.images = torch.stack([blobs, blobs.flip(-1), torch.zeros_like(blobs)], 1)
        self.noise = noise
        self.records = [FaceRecord(key=f"toy:{i}", landmarks=self.coords[i].double().numpy(),
                                   box=np.array([0, 0, SIZE - 1, SIZE - 1.0]), scheme="wflw") for i in range(n)]

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        image = self.images[i] + self.noise * torch.randn(3, SIZE, SIZE)  # global RNG, on purpose
        return {"image": image, "landmarks": self.coords[i], "matrix": torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=torch.float64),
                "occluded": torch.zeros(K, dtype=torch.bool), "index": i}


def tiny_model(head="h3r"):
    from hihlib import models

    return models.create("hg_tiny", num_landmarks=K, head=head, heatmap_size=HM, input_size=SIZE, width=16, depth=2)


def bce_loss(outputs, targets):
    """Stand-in loss for H3R's binary targets (the real losses are tested in test_losses.py)."""
    logits = outputs["heatmaps"]
    target = targets["heatmap"][:, None].expand_as(logits)
    loss = F.binary_cross_entropy_with_logits(logits, target, pos_weight=torch.tensor(20.0))
    return loss, {"bce": loss.detach()}


def toy_cfg(**train_opts):
    cfg = apply_overrides(DEFAULTS, [f"data.input_size={SIZE}", f"model.heatmap_size={HM}", "codec.name=h3r",
                                     "optim.lr=3e-3", "optim.milestones=[1]", "optim.gamma=0.5",
                                     "train.batch_size=4", "train.eval_every=0", "train.progress=false",
                                     "train.log_every=2"])
    cfg["train"].update(train_opts)
    return cfg


def run(cfg, out, resume=False, dataset=None, loss_fn=bce_loss):
    torch.manual_seed(123)  # a model built from fresh init; resume overwrites it
    return train(cfg, out, resume=resume, model=tiny_model(), codec=get_codec("h3r", input_size=SIZE, heatmap_size=HM),
                 loss_fn=loss_fn, train_set=dataset or ToyFaces())


def assert_same_weights(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        # on the CPU: where train.device=auto picked CUDA, a checkpoint loads onto the CPU (the GPU suite run)
        assert torch.equal(a[k].cpu(), b[k].cpu()), f"tensor {k} differs"


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


# ----------------------------------------------------------------------------------------------

def test_config_file_and_dotted_overrides_are_parsed_as_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: hg_tiny\noptim:\n  lr: 0.002\n")
    cfg = load_config(path, ["optim.lr=5e-4", "data.skip_bad=true", "optim.milestones=[3, 4]", "loss.decimal_weight=0.1"])
    assert cfg["model"]["name"] == "hg_tiny" and cfg["model"]["heatmap_size"] == 64  # defaults kept
    assert cfg["optim"]["lr"] == 5e-4 and cfg["data"]["skip_bad"] is True
    assert cfg["optim"]["milestones"] == [3, 4] and cfg["loss"] == {"decimal_weight": 0.1}


def test_bad_config_names_file_and_line(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  name: hg_tiny\n  width: [1, 2\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml:\d+: expected valid YAML"):
        load_config(path)
    (tmp_path / "s.yaml").write_text("modle:\n  name: x\n")
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(tmp_path / "s.yaml")
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(None, ["optim.lr"])


def test_step_schedule_multiplies_lr_by_gamma_at_each_milestone_epoch(tmp_path):
    cfg = toy_cfg(epochs=3)
    cfg["optim"].update(milestones=[1, 2], gamma=0.1, lr=1e-3)
    t = Trainer(cfg, tmp_path, model=tiny_model(), codec=get_codec("h3r", input_size=SIZE, heatmap_size=HM),
                loss_fn=bce_loss, train_set=ToyFaces(8))
    lrs = []
    for _ in range(3 * t.steps_per_epoch):
        lrs.append(t.scheduler.get_last_lr()[0])
        t.optimizer.step()
        t.scheduler.step()
    n = t.steps_per_epoch
    np.testing.assert_allclose(lrs, [1e-3] * n + [1e-4] * n + [1e-5] * n, rtol=1e-12)


def test_two_epochs_straight_equal_one_epoch_resume_one_epoch(tmp_path):
    straight = run(toy_cfg(epochs=2), tmp_path / "a")
    run(toy_cfg(epochs=1), tmp_path / "b")
    resumed = run(toy_cfg(epochs=2), tmp_path / "b", resume=True)
    assert_same_weights(straight.model.state_dict(), resumed.model.state_dict())
    assert_same_weights(load(tmp_path / "a" / "last.pt")["optimizer"]["state"][0],
                        load(tmp_path / "b" / "last.pt")["optimizer"]["state"][0])
    # training did change the weights, and both runs logged their epochs
    assert not torch.equal(straight.model.state_dict()["backbone.stacks.0.predict.weight"].cpu(),
                           tiny_model().state_dict()["backbone.stacks.0.predict.weight"])
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert sum('"kind": "epoch"' in line for line in lines) == 2


class Killed(Exception):
    pass


class KilledAfter(ToyFaces):
    """Dies (like a killed process) when the ``limit``-th item is fetched."""

    def __init__(self, limit):
        super().__init__()
        self.limit, self.fetched = limit, 0

    def __getitem__(self, i):
        self.fetched += 1
        if self.fetched > self.limit:
            raise Killed
        return super().__getitem__(i)


def test_killed_mid_epoch_resumes_from_last_step_checkpoint_exactly(tmp_path):
    # 24 faces, batch 4: 6 steps per epoch; checkpoints every 2 steps; killed while fetching step 10's batch
    straight = run(toy_cfg(epochs=2), tmp_path / "a")
    with pytest.raises(Killed):
        run(toy_cfg(epochs=2, checkpoint_every=2), tmp_path / "b", dataset=KilledAfter(9 * 4 + 1))
    ckpt = load(tmp_path / "b" / "last.pt")
    assert (ckpt["epoch"], ckpt["step_in_epoch"], ckpt["global_step"]) == (1, 2, 8)  # lost 1 step of work
    resumed = run(toy_cfg(epochs=2, checkpoint_every=2), tmp_path / "b", resume=True)
    assert_same_weights(straight.model.state_dict(), resumed.model.state_dict())


def test_nan_loss_stops_with_clear_message_and_keeps_last_good_checkpoint(tmp_path):
    calls = {"n": 0}

    def poisoned(outputs, targets):
        calls["n"] += 1
        loss, parts = bce_loss(outputs, targets)
        return (loss * math.nan if calls["n"] == 9 else loss), parts

    with pytest.raises(HihError, match=r"loss became nan at epoch 2, step 3.*last good checkpoint is kept at .*last\.pt"):
        run(toy_cfg(epochs=2), tmp_path, loss_fn=poisoned)
    ckpt = load(tmp_path / "last.pt")
    assert (ckpt["epoch"], ckpt["step_in_epoch"]) == (1, 0)
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_checkpoint_holds_everything_needed_to_resume(tmp_path):
    run(toy_cfg(epochs=1), tmp_path)
    ckpt = load(tmp_path / "last.pt")
    assert {"model", "optimizer", "scheduler", "epoch", "step_in_epoch", "rng", "config"} <= set(ckpt)
    assert {"python", "numpy", "torch", "targets"} <= set(ckpt["rng"])
    assert (ckpt["config"]["seed"], ckpt["epoch"], ckpt["step_in_epoch"]) == (0, 1, 0)   # the data order's position
    assert not list(tmp_path.glob(".*tmp*"))  # atomic writes leave no temporary files


# ----------------------------------------------------------------------------------------------
# Configs and the command line

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
POINTS = {"wflw": 98, "synth": 98, "cofw": 29, "300w": 68}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_config_builds_its_model_codec_and_loss(path):
    from hihlib.pipeline.build import build_codec, build_loss, build_model

    cfg = load_config(path)
    codec, loss = build_codec(cfg), build_loss(cfg)
    with torch.device("meta"):
        model = build_model(cfg, POINTS[cfg["data"]["dataset"]])
    assert model.heatmap_size == codec.heatmap_size == cfg["model"]["heatmap_size"]
    assert model.input_size == codec.input_size == cfg["data"]["input_size"]
    assert model.head == codec.name == cfg["codec"]["name"]
    if cfg["model"]["name"] == "hih_b":  # the published recipe
        assert (cfg["train"]["batch_size"], cfg["train"]["epochs"], cfg["optim"]["milestones"]) == (16, 60, [30, 50])


TINY = ["data.input_size=64", "model.name=hg_tiny", "model.heatmap_size=16", "model.options={width: 16, depth: 2}",
        "train.epochs=1", "train.batch_size=2", "train.progress=false", "data.workers=0"]


@pytest.mark.parametrize("schedule, warmup", [("cosine", 0), ("cosine", 5), ("none", 4), ("step", 3)])
def test_learning_rate_follows_the_closed_form_of_warmup_and_cosine(tmp_path, schedule, warmup):
    """lr(t) = lr0 * w(t) * s(t) at optimizer step t (0-based, the step's own rate): linear warm-up
    w(t) = min(1, (t + 1) / W), then the cosine s(t) = (1 + cos(pi t / T)) / 2 over all T = epochs x
    steps-per-epoch steps (or 1, or gamma^(epochs passed) at milestone epochs). Values at the landmarks
    of the curve are written out: lr0 / W at the first step, exactly lr0 / 2 half-way, 0 after the last."""
    cfg = toy_cfg(epochs=3)
    cfg["optim"].update(schedule=schedule, warmup_steps=warmup, lr=2e-3, milestones=[2], gamma=0.5)
    t = Trainer(cfg, tmp_path, model=tiny_model(), codec=get_codec("h3r", input_size=SIZE, heatmap_size=HM),
                loss_fn=bce_loss, train_set=ToyFaces(16))
    n = t.steps_per_epoch
    total = 3 * n
    assert (n, total) == (4, 12)   # 16 faces, batch 4
    lrs = []
    for _ in range(total + 1):
        lrs.append(t.scheduler.get_last_lr()[0])
        t.optimizer.step()
        t.scheduler.step()
    lr0 = 2e-3
    warm = [min(1.0, (s + 1) / warmup) if warmup else 1.0 for s in range(total + 1)]
    if schedule == "cosine":
        shape = [(1 + math.cos(math.pi * s / total)) / 2 for s in range(total + 1)]
    elif schedule == "step":
        shape = [0.5 if s >= 2 * n else 1.0 for s in range(total + 1)]
    else:
        shape = [1.0] * (total + 1)
    np.testing.assert_allclose(lrs, [lr0 * w * f for w, f in zip(warm, shape)], rtol=1e-12, atol=1e-18)
    if warmup:
        assert lrs[0] == pytest.approx(lr0 / warmup * shape[0], rel=1e-12)
        assert lrs[warmup - 1] == pytest.approx(lr0 * shape[warmup - 1], rel=1e-12)   # warm-up done
    if schedule == "cosine":
        assert lrs[total // 2] == pytest.approx(lr0 / 2, rel=1e-12)     # cos(pi / 2) = 0, past the warm-up
        assert lrs[total] == pytest.approx(0.0, abs=1e-18)
        assert lrs[1] < lrs[0] if not warmup else lrs[warmup] < lrs[warmup - 1]   # decays from the start


def test_hih_train_refuses_bad_data_unless_told_to_skip(tmp_path, capsys):
    from formats import build_wflw_fixture, write_wflw

    from hihlib.cli import main

    root = tmp_path / "WFLW"
    faces = build_wflw_fixture(root)
    write_wflw(root, faces["train"], faces["test"], extra_lines={"train": [(1, "1.0 2.0 not-a-wflw-line")]})
    args = ["train", "--config", str(ROOT / "configs" / "wflw_hih_b.yaml"), "--out", str(tmp_path / "run"),
            f"data.root={root}", "train.eval_every=0", *TINY]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "list_98pt_rect_attr_train.txt:2: expected" in err and "Traceback" not in err
    assert main(args + ["data.skip_bad=true"]) == 0
    out = capsys.readouterr().out
    assert "skipped 1 bad samples in the WFLW train split" in out
    assert load(tmp_path / "run" / "last.pt")["global_step"] == 2  # 3 good faces, batch 2


def test_hih_train_synthetic_config_end_to_end_with_evaluation(tmp_path, capsys):
    from hihlib.cli import main

    rc = main(["train", "--config", str(ROOT / "configs" / "synth_hih.yaml"), "--out", str(tmp_path),
               "data.num_train=4", "data.num_val=4", "data.image_size=64", *TINY])
    assert rc == 0
    out = capsys.readouterr().out
    assert "data: synthetic WFLW-format faces, 4 images, seed 0" in out
    evals = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if '"eval"' in line]
    assert len(evals) == 1 and evals[0]["data"] == "synthetic WFLW-format faces, 4 images, seed 10000"
    assert {"expectation", "official", "local_mean", "softmax_mean"} <= set(evals[0])
    assert (tmp_path / "best.pt").is_file() and (tmp_path / "config.yaml").is_file()


# ----------------------------------------------------------------------------------------------
# User errors through the command line: one line naming the file, line or option, exit 2, no traceback

SYNTH_TINY = ["data.num_train=4", "data.num_val=4", "data.image_size=64", "train.eval_every=0", *TINY]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_hih_train_missing_image_names_image_and_annotation_line_before_any_step(tmp_path, capsys, workers):
    from formats import build_wflw_fixture

    from hihlib.cli import main

    root = tmp_path / "WFLW"
    build_wflw_fixture(root)
    (root / "WFLW_images" / "1--Handshaking" / "edge.jpg").unlink()  # the image of train line 3
    rc = main(["train", "--config", str(ROOT / "configs" / "wflw_hih_b.yaml"), "--out", str(tmp_path / "run"),
               f"data.root={root}", "train.eval_every=0", *TINY, f"data.workers={workers}"])
    line = one_line_error(capsys)
    assert rc == 2
    assert line == (f"hih train: error: {root / 'WFLW_images' / '1--Handshaking' / 'edge.jpg'}: expected an image "
                    f"file (the image of list_98pt_rect_attr_train.txt:3), found no such file")
    assert not (tmp_path / "run" / "last.pt").exists()


def test_hih_train_undecodable_image_in_a_loader_worker_is_one_line_naming_the_annotation(tmp_path, capsys):
    from formats import build_wflw_fixture

    from hihlib.cli import main

    root = tmp_path / "WFLW"
    build_wflw_fixture(root)
    bad = root / "WFLW_images" / "1--Handshaking" / "edge.jpg"
    bad.write_bytes(b"not a jpeg")
    rc = main(["train", "--config", str(ROOT / "configs" / "wflw_hih_b.yaml"), "--out", str(tmp_path / "run"),
               f"data.root={root}", "train.eval_every=0", *TINY, "data.workers=2", "train.batch_size=3"])
    line = one_line_error(capsys)
    assert rc == 2
    assert line == (f"hih train: error: {bad}: expected an image that OpenCV can decode (jpg, png, ppm, ...) "
                    f"(the image of list_98pt_rect_attr_train.txt:3), found 10 undecodable bytes")


@pytest.mark.parametrize("override, message", [
    ("optim.lr=abc", "override optim.lr=abc: optim.lr expects a number, found 'abc'"),
    ("train.epoch=3", "override train.epoch=3: unknown option train.epoch; did you mean train.epochs?"),
    ("data.workers=1.5", "override data.workers=1.5: data.workers expects an integer, found 1.5"),
    ("codec.name=hhi", "override codec.name=hhi: codec.name expects one of gaussian, h3r, hih, found 'hhi'"),
])
def test_hih_train_bad_override_is_one_line_naming_the_option_and_what_it_expects(tmp_path, capsys, override, message):
    from hihlib.cli import main

    rc = main(["train", "--config", str(ROOT / "configs" / "synth_hih.yaml"), "--out", str(tmp_path / "run"),
               *SYNTH_TINY, override])
    assert rc == 2 and one_line_error(capsys) == f"hih train: error: {message}"
    assert not (tmp_path / "run").exists()


def test_hih_train_unknown_model_is_refused_before_any_face_is_rendered(tmp_path, capsys, monkeypatch):
    from hihlib.cli import main
    from hihlib.data import synthetic

    def no_rendering(*args, **kwargs):
        raise AssertionError("faces rendered before the configuration was checked")

    monkeypatch.setattr(synthetic, "SyntheticFaces", no_rendering)
    rc = main(["train", "--config", str(ROOT / "configs" / "synth_hih.yaml"), "--out", str(tmp_path / "run"),
               *SYNTH_TINY, "model.name=hih_xx"])
    line = one_line_error(capsys)
    assert rc == 2 and "unknown model 'hih_xx'" in line and "hih_b" in line


def test_hih_train_refuses_a_folder_holding_a_run_and_force_replaces_it(tmp_path, capsys):
    from hihlib.cli import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"a finished model")
    (out / "metrics.jsonl").write_text('{"kind": "epoch", "epoch": 60}\n')
    (out / ".last.k2j4h5g6.tmp.pt").write_bytes(b"")  # left by a checkpoint write that was killed
    args = ["train", "--config", str(ROOT / "configs" / "synth_hih.yaml"), "--out", str(out), *SYNTH_TINY]
    assert main(args) == 2
    line = one_line_error(capsys)
    assert line.startswith(f"hih train: error: --out {out}: expected a new or empty folder, found 2 file(s)")
    assert "--resume" in line and "--force" in line
    assert (out / "last.pt").read_bytes() == b"a finished model"  # nothing lost
    assert main(args + ["--force"]) == 0
    assert not (out / ".last.k2j4h5g6.tmp.pt").exists()
    epochs = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"epoch"' in x]
    assert [e["epoch"] for e in epochs if e["kind"] == "epoch"] == [1]  # the new run's log only
    assert load(out / "last.pt")["global_step"] == 2


def test_checkpoint_records_the_loss_codec_and_model_it_was_trained_with(tmp_path):
    from hihlib.pipeline.checkpoint import load_checkpoint
    from hihlib.losses import make_loss

    cfg = toy_cfg(epochs=1)
    cfg["codec"]["name"] = "hih"
    cfg["loss"] = {"decimal_weight": 0.5}  # the trainer is given another loss: the checkpoint says which
    model = tiny_model("hih_ext")   # heatmap 16 -> decimal 8: the released head is not buildable there
    t = train(cfg, tmp_path, model=model, codec=get_codec("hih", input_size=SIZE, heatmap_size=HM),
              loss_fn=make_loss("hih", decimal_weight=0.25), train_set=ToyFaces(8))
    ckpt = load(tmp_path / "last.pt")
    assert ckpt["loss"]["decimal_weight"] == 0.25 == ckpt["config"]["loss"]["decimal_weight"]
    assert ckpt["codec"] == {"name": "hih", "input_size": SIZE, "heatmap_size": HM, "options": {}}
    assert ckpt["model_spec"]["config"]["width"] == 16 and ckpt["model_spec"]["config"]["depth"] == 2
    back, codec, saved = load_checkpoint(tmp_path / "last.pt")
    assert back.num_landmarks == K and codec.name == "hih" and saved["loss"]["decimal_weight"] == 0.25
    assert_same_weights(back.state_dict(), t.model.state_dict())


def test_every_argument_of_hih_train_and_hih_eval_has_help():
    import argparse

    from hihlib.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in ("train", "eval"):
        for action in sub.choices[name]._actions:
            assert isinstance(action, argparse._HelpAction) or action.help, \
                f"hih {name}: {'/'.join(action.option_strings) or action.dest} has no help text"


@pytest.mark.parametrize("text, message", [
    ("optim:\n  lr: abc\n", r"c\.yaml: optim\.lr expects a number, found 'abc'$"),
    ("train:\n  epoch: 3\n", r"c\.yaml: unknown option train\.epoch; did you mean train\.epochs\?$"),
    ("loss: {decimal_wieght: 0.1}\n", r"loss: unknown loss option\(s\) \['decimal_wieght'\]"),
    ("data:\n  augment: {rotate: 10}\n", r"data\.augment: unknown option\(s\) \['rotate'\]"),
])
def test_config_file_values_are_checked_against_the_known_options_and_types(tmp_path, text, message):
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(tmp_path / "c.yaml")


def test_config_accepts_integers_as_numbers_and_null_where_an_option_allows_it():
    # integers are numbers, null switches an option off where the option allows it
    cfg = load_config(None, ["optim.lr=1", "optim.clip_grad=null", "data.augment=null", "train.threads=2"])
    assert (cfg["optim"]["lr"], cfg["optim"]["clip_grad"], cfg["data"]["augment"], cfg["train"]["threads"]) == (1, None, None, 2)


@pytest.mark.parametrize("head", ["gaussian", "h3r", "hih_ext", "hih_local"])
def test_a_checkpoints_model_spec_rebuilds_the_same_architecture_for_every_head(head):
    from hihlib import models
    from hihlib.pipeline.build import model_from_spec, model_spec

    model = models.create("hg_tiny", num_landmarks=K, head=head, heatmap_size=HM, input_size=SIZE, width=16, depth=2)
    back = model_from_spec(model_spec(model))
    assert back.state_dict().keys() == model.state_dict().keys()
    assert all(back.state_dict()[k].shape == v.shape for k, v in model.state_dict().items())
    assert (back.head, back.num_landmarks, back.heatmap_size, back.input_size) == (head, K, HM, SIZE)


def test_training_on_uint8_crops_normalised_per_batch_equals_training_on_normalised_items(tmp_path):
    from hihlib import models
    from hihlib.data import FaceDataset
    from hihlib.data.synthetic import SyntheticFaces
    from hihlib.data.transforms import Augment

    faces = SyntheticFaces(8, seed=1, image_size=64)
    weights = []
    for normalize in (True, False):
        data = FaceDataset(faces.records, faces.scheme, input_size=SIZE, augment=Augment(mirror=faces.scheme.mirror, size=SIZE),
                           normalize=normalize)
        assert data[0]["image"].dtype == (torch.float32 if normalize else torch.uint8)
        torch.manual_seed(0)
        model = models.create("hg_tiny", num_landmarks=98, head="h3r", heatmap_size=HM, input_size=SIZE, width=16, depth=2)
        t = train(toy_cfg(epochs=1), tmp_path / str(normalize), model=model,
                  codec=get_codec("h3r", input_size=SIZE, heatmap_size=HM), loss_fn=bce_loss, train_set=data)
        weights.append(t.model.state_dict())
    assert_same_weights(*weights)
