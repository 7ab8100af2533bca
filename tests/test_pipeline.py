"""hihlib.pipeline: one path from a configuration to the pieces (``build.build_pieces``) and back (the
inverses ``model_spec`` / ``codec_spec`` / ``loss_spec``), and one checkpoint writer
(``checkpoint.checkpoint_dict``) shared by the trainer and the released-weight converters.

Tiny models only (an 8-channel hourglass on 32 px crops; the released layout at 64 px crops).
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
from pathlib import Path

import pytest
import torch

from hihlib.codecs import get_codec
from hihlib.errors import ConfigError
from hihlib.losses import LossOptions, make_loss
from hihlib.pipeline.build import (build_pieces, check_pieces, codec_from_spec, codec_spec, loss_from_spec, loss_spec,
                                   model_from_spec, model_spec)
from hihlib.pipeline.checkpoint import checkpoint_dict, codec_record, load_checkpoint
from hihlib.pipeline.config import DEFAULTS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ROOT = Path(__file__).resolve().parents[1]


def tiny_cfg(codec="hih", **codec_options) -> dict:
    cfg = copy.deepcopy(DEFAULTS)
    cfg["data"].update(input_size=32, augment=None)
    cfg["codec"] = {"name": codec, "options": codec_options}
    cfg["model"].update(name="hg_tiny", heatmap_size=16, options={"width": 8, "depth": 2})
    cfg["train"].update(device="cpu", eval_every=0, progress=False)
    return cfg


# -- config -> pieces -> config ------------------------------------------------------------------

@pytest.mark.parametrize("codec,options", [("hih", {"sigma": 1.0}), ("h3r", {}), ("gaussian", {"sigma": 2.0})])
def test_pieces_built_from_a_config_give_back_the_config_they_came_from(codec, options):
    cfg = tiny_cfg(codec, **options)
    cfg["loss"] = {"decimal_weight": 0.5}
    pieces = build_pieces(cfg, num_landmarks=7)
    assert pieces.data is None and pieces.description is None
    # model: spec -> piece -> spec
    spec = model_spec(pieces.model)
    assert spec["head"] == {"hih": "hih_ext", "h3r": "h3r", "gaussian": "gaussian"}[codec]  # 16 -> 8: hih_ext
    assert spec["config"]["num_landmarks"] == 7
    assert spec["config"]["input_size"] == 32 and spec["config"]["heatmap_size"] == 16
    assert model_spec(model_from_spec(spec)) == spec
    # codec: the configuration's section, and back
    entry = codec_spec(pieces.codec, cfg["codec"]["options"])
    assert entry == {"name": codec, "input_size": 32, "heatmap_size": 16, "options": options}
    assert codec_spec(codec_from_spec(entry), entry["options"]) == entry
    # loss: every option (the given one, LossOptions' defaults for the rest), and back
    record = loss_spec(pieces.loss)
    assert record == {**dataclasses.asdict(LossOptions()), "decimal_weight": 0.5}
    assert loss_spec(loss_from_spec(codec, record)) == record


def test_build_pieces_keeps_given_pieces_and_refuses_ones_the_config_does_not_describe():
    cfg = tiny_cfg("h3r")
    codec = get_codec("h3r", input_size=32, heatmap_size=16)
    pieces = build_pieces(cfg, num_landmarks=5, codec=codec, with_loss=False)
    assert pieces.codec is codec and pieces.loss is None
    with pytest.raises(ConfigError, match=r"the codec is .* = \('gaussian', 32, 16\).*\('h3r', 32, 16\)"):
        build_pieces(cfg, num_landmarks=5, codec=get_codec("gaussian", input_size=32, heatmap_size=16))
    with pytest.raises(ConfigError, match=r"the model is .* = \('h3r', 32, 8\)"):
        check_pieces(cfg, build_pieces({**cfg, "model": {**cfg["model"], "heatmap_size": 8}}, num_landmarks=5).model,
                     codec)
    with pytest.raises(ValueError, match="num_landmarks"):
        build_pieces(cfg)


def test_build_pieces_with_a_split_builds_the_data_and_sizes_the_model_from_its_scheme():
    cfg = tiny_cfg("gaussian")
    cfg["data"].update(num_train=3, num_val=2, image_size=48)
    pieces = build_pieces(cfg, "test")
    assert len(pieces.data) == 2 and "2 images, seed 10000" in pieces.description
    assert pieces.origin == {"dataset": "synth", "synthetic": True, "root": None}
    assert pieces.model.num_landmarks == pieces.data.scheme.num_points == 98
    item = pieces.data[0]
    assert item["image"].dtype == torch.float32  # the validation split: normalised crops, not uint8


def test_loss_defaults_are_written_once_in_loss_options():
    assert not [p for p in inspect.signature(make_loss).parameters.values() if p.default is not inspect.Parameter.empty]
    assert make_loss("hih").options == dataclasses.asdict(LossOptions())
    assert make_loss("hih").decimal_weight == LossOptions().decimal_weight
    with pytest.raises(ConfigError, match=r"unknown loss option\(s\) \['decimal_wieght'\]"):
        make_loss("hih", decimal_wieght=1.0)


# -- one checkpoint writer -----------------------------------------------------------------------

def _trainer_checkpoint(tmp_path) -> dict:
    from hihlib.training.trainer import Trainer
    from test_train import ToyFaces

    cfg = tiny_cfg("hih")
    cfg["model"]["heatmap_size"] = 16
    torch.manual_seed(0)
    return Trainer(cfg, tmp_path / "run", train_set=ToyFaces(4)).state()


def _converted_checkpoint(tmp_path) -> dict:
    from hihlib.inference.released_hih import convert_released, released_state_dict
    from hihlib.models import create

    model = create("hih_b", num_stacks=1, width=8, depth=2, input_size=64, heatmap_size=16, decimal_size=4,
                   official_unused_shortcut=True, align_corners=True)
    torch.save({"state_dict": released_state_dict(model), "epoch": 1}, tmp_path / "r.pth")
    return torch.load(convert_released(tmp_path / "r.pth", tmp_path / "hih.pt", input_size=64), weights_only=False)


def test_a_converted_checkpoint_and_a_trained_one_have_one_shape(tmp_path):
    trained, converted = _trainer_checkpoint(tmp_path), _converted_checkpoint(tmp_path)
    assert trained["codec"] == {"name": "hih", "input_size": 32, "heatmap_size": 16, "options": {}}
    assert converted["codec"] == {"name": "hih", "input_size": 64, "heatmap_size": 16,
                                  "options": {"frame": "released_hih", "sigma": 1.5, "decimal_size": 4,
                                              "decimal_sigma": 1.0}}
    # the pieces' entries: the same keys, the codec's options those of the configuration
    common = {"model", "model_spec", "codec", "loss", "config", "num_landmarks", "epoch", "global_step"}
    assert common <= set(trained) and common <= set(converted)
    assert set(converted) - common == {"released"}
    for ckpt in (trained, converted):
        assert ckpt["codec"]["options"] == ckpt["config"]["codec"]["options"]
        assert codec_spec(codec_from_spec(ckpt["codec"]), ckpt["codec"]["options"]) == ckpt["codec"]
        model, codec, _ = load_checkpoint(ckpt)
        assert model_spec(model) == ckpt["model_spec"] and codec_spec(codec, ckpt["codec"]["options"]) == ckpt["codec"]
    assert converted["loss"] == {} and trained["loss"] == dataclasses.asdict(LossOptions())


def test_checkpoint_dict_records_the_pieces_it_is_given():
    cfg = tiny_cfg("gaussian", sigma=2.0)
    pieces = build_pieces(cfg, num_landmarks=3)
    ckpt = checkpoint_dict(pieces.model, pieces.codec, pieces.loss, cfg, data={"dataset": "synth"},
                           state={"epoch": 2, "global_step": 9}, note="x")
    assert ckpt["codec"] == {"name": "gaussian", "input_size": 32, "heatmap_size": 16, "options": {"sigma": 2.0}}
    assert (ckpt["epoch"], ckpt["global_step"], ckpt["note"], ckpt["data"]) == (2, 9, "x", {"dataset": "synth"})
    assert ckpt["num_landmarks"] == 3 and ckpt["loss"] == loss_spec(pieces.loss)
    assert "data" not in checkpoint_dict(pieces.model, pieces.codec, None, cfg)


def test_a_checkpoint_written_before_the_codec_entry_held_options_is_still_read(tmp_path):
    """Files written by the trainer before the one writer: "codec" without "options"."""
    cfg = tiny_cfg("hih", sigma=1.0)
    pieces = build_pieces(cfg, num_landmarks=3)
    old = checkpoint_dict(pieces.model, pieces.codec, pieces.loss, cfg)
    del old["codec"]["options"]
    assert codec_record(old) == {"name": "hih", "input_size": 32, "heatmap_size": 16, "options": {"sigma": 1.0}}
    assert codec_record({"config": cfg}) is None
    model, codec, _ = load_checkpoint(old)
    assert codec_spec(codec, {"sigma": 1.0}) == codec_record(old) and codec.sigma == 1.0
    assert all(torch.equal(a, old["model"][k]) for k, a in model.state_dict().items())


def test_a_trainer_resumes_from_a_checkpoint_whose_codec_entry_has_no_options(tmp_path):
    from hihlib.training.trainer import Trainer
    from test_train import ToyFaces

    cfg = tiny_cfg("hih")
    cfg["train"].update(epochs=1, batch_size=2, max_steps_per_epoch=1)
    torch.manual_seed(0)
    t = Trainer(cfg, tmp_path, train_set=ToyFaces(4))
    t.fit()
    ckpt = torch.load(t.last_path, weights_only=False)
    del ckpt["codec"]["options"]
    torch.save(ckpt, t.last_path)
    resumed = Trainer(cfg, tmp_path, train_set=ToyFaces(4), resume=True)
    assert resumed.epoch == 1 and resumed.global_step == 1


# -- no re-exports from the trainer ------------------------------------------------------------

def test_the_trainer_module_exports_only_what_it_defines_and_nobody_imports_anything_else_from_it():
    import hihlib.training.trainer as trainer

    assert all(getattr(trainer, name).__module__ == trainer.__name__ for name in trainer.__all__)
    files = [*ROOT.glob("hihlib/**/*.py"), *ROOT.glob("tests/*.py"), *ROOT.glob("notebooks/*.py"),
             *ROOT.glob("benchmarks/*.py"), *ROOT.glob("tools/*.py")]
    through = []
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("training.trainer"):
                through += [f"{path.relative_to(ROOT)}: {a.name}" for a in node.names
                            if a.name not in trainer.__all__ and not a.name.startswith("_")]
    assert not through, f"names imported through hihlib.training.trainer: {through}"
