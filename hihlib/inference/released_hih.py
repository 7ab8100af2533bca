"""The released HIH weights (Lan et al., starhiking/HeatmapInHeatmap) as a hihlib model and checkpoint.

The authors released WFLW weights (4.08 NME) with evaluation code only. Their file is a ``torch.save``
of ``{"state_dict", "best_nme", "optimizer", "epoch"}``; the state dict has plain keys (no
``module.``), BatchNorm buffers included. Every released tensor has exactly one counterpart of the same
shape in a hihlib ``LandmarkModel(head="hih")`` built with ``official_unused_shortcut=True`` (the released
residual block always builds its 1x1 shortcut); the names differ as follows (``released_key_pairs``)::

    released                              hihlib
    pre_conv.0 / .1 / .3 / .4             backbone.stem.conv / res1 / res2 / res3
    hg{i}.res{n}_1 / _2 / _3              backbone.stacks.{i}.hourglass(.inner x (depth - n)).skip / down / up
    hg{i}.res_center                      backbone.stacks.{i}.hourglass(.inner x (depth - 1)).inner
    hg{i}_res1 / _lin1 / _conv_pred       backbone.stacks.{i}.residual / feature / predict
    hg{i}_conv1 / _conv2                  backbone.stacks.{i}.remap_feature / remap_heatmaps
    offset_head.conv1                     decimal.reduce
    offset_head.down_ops.{k}.conv1/conv2  decimal.down.{k}.body.0 / body.1
    offset_head.down_ops.{k}.downsample.0 decimal.down.{k}.shortcut
    offset_head.head.0 / .1               decimal.out.0 / out.1
    inside units: .conv / .bn             .0 / .1 (conv-BN-ReLU)
                  conv1/conv2/conv3       body.0/1/2 (residual)
                  skip_layer              shortcut

The released hourglass up-samples with ``align_corners=True``: the model is built with
``HourglassConfig(align_corners=True)``. Its decoder reads the maps in its own frame (decimal offset from
the cell's corner, ``hihlib.codecs.hih``), so the converted checkpoint's codec has
``frame="released_hih"``; its preprocessing (RGB, [0, 1], ImageNet mean/std) is hihlib's own
(``hihlib.data.dataset.normalize_image``), recorded in the checkpoint and checked on conversion.
The released test images were cropped beforehand ("PFLD practice"); hihlib crops the original images with
its own protocol (``--box``, ``--scale``), so NMEs can differ by that protocol (REFERENCE: ~0.15 NME).

``load_released_hih(path)`` gives the model; ``convert_released(path, out)`` (``hih convert --released
PATH --out CKPT``) writes a hihlib checkpoint that ``hih eval`` and ``hih predict`` read like any other;
``released_state_dict(model)`` goes the other way (tests and notebook 05 use it to write a file in the
released format).
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import HihError, ReleasedCheckpointError
from ..io import read_released
from ..models.heads import DecimalHead, DownBlock, LandmarkModel
from ..models.hourglass import ConvBNReLU, Hourglass, HourglassConfig, Residual

#: The released pipeline's preprocessing: PIL ``convert("RGB")``, ``ToTensor`` ([0, 1]), ImageNet normalisation.
RELEASED_PREPROCESSING = {"color": "RGB", "range": [0.0, 1.0], "mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225]}


# ----------------------------------------------------------------------------------------------
# The key mapping
# ----------------------------------------------------------------------------------------------

def _unit_keys(module: nn.Module, ours: str, theirs: str) -> list[tuple[str, str]]:
    """(hihlib key, released key) for every tensor of one building block."""
    if isinstance(module, ConvBNReLU):
        return [(f"{ours}.{k}", f"{theirs}.{'conv' if k.startswith('0.') else 'bn'}.{k.split('.', 1)[1]}")
                for k in module.state_dict()]
    if isinstance(module, nn.Conv2d):
        return [(f"{ours}.{k}", f"{theirs}.{k}") for k in module.state_dict()]
    if isinstance(module, Residual):
        pairs = [p for i, name in enumerate(("conv1", "conv2", "conv3"))
                 for p in _unit_keys(module.body[i], f"{ours}.body.{i}", f"{theirs}.{name}")]
        if module.shortcut is not None:
            pairs += _unit_keys(module.shortcut, f"{ours}.shortcut", f"{theirs}.skip_layer")
        return pairs
    if isinstance(module, DownBlock):
        return (_unit_keys(module.body[0], f"{ours}.body.0", f"{theirs}.conv1")
                + _unit_keys(module.body[1], f"{ours}.body.1", f"{theirs}.conv2")
                + _unit_keys(module.shortcut, f"{ours}.shortcut", f"{theirs}.downsample.0"))
    raise TypeError(f"no released counterpart for {type(module).__name__} at {ours}")


def _hourglass_keys(hg: Hourglass, ours: str, theirs: str, level: int) -> list[tuple[str, str]]:
    pairs = _unit_keys(hg.skip, f"{ours}.skip", f"{theirs}.res{level}_1")
    pairs += _unit_keys(hg.down, f"{ours}.down", f"{theirs}.res{level}_2")
    if isinstance(hg.inner, Hourglass):
        pairs += _hourglass_keys(hg.inner, f"{ours}.inner", theirs, level - 1)
    else:
        pairs += _unit_keys(hg.inner, f"{ours}.inner", f"{theirs}.res_center")
    return pairs + _unit_keys(hg.up, f"{ours}.up", f"{theirs}.res{level}_3")


def released_key_pairs(model: LandmarkModel) -> list[tuple[str, str]]:
    """(hihlib state-dict key, released state-dict key) for every tensor of ``model``, in hihlib's order.

    ``model`` must be a HIH model with ``official_unused_shortcut=True`` (the released layout)."""
    if model.head != "hih" or not model.config.official_unused_shortcut:
        raise ValueError("the released layout is a HIH model built with official_unused_shortcut=True")
    b = model.backbone
    pairs = []
    for ours, theirs in (("stem.conv", "pre_conv.0"), ("stem.res1", "pre_conv.1"), ("stem.res2", "pre_conv.3"),
                         ("stem.res3", "pre_conv.4")):
        pairs += _unit_keys(b.get_submodule(ours), f"backbone.{ours}", theirs)
    for i, stack in enumerate(b.stacks):
        o = f"backbone.stacks.{i}"
        pairs += _hourglass_keys(stack.hourglass, f"{o}.hourglass", f"hg{i}", model.config.depth)
        for ours, theirs in (("residual", "res1"), ("feature", "lin1"), ("predict", "conv_pred"),
                             ("remap_feature", "conv1"), ("remap_heatmaps", "conv2")):
            pairs += _unit_keys(getattr(stack, ours), f"{o}.{ours}", f"hg{i}_{theirs}")
    head: DecimalHead = model.decimal
    pairs += _unit_keys(head.reduce, "decimal.reduce", "offset_head.conv1")
    for k, block in enumerate(head.down):
        pairs += _unit_keys(block, f"decimal.down.{k}", f"offset_head.down_ops.{k}")
    pairs += _unit_keys(head.out[0], "decimal.out.0", "offset_head.head.0")
    pairs += _unit_keys(head.out[1], "decimal.out.1", "offset_head.head.1")
    return pairs


# ----------------------------------------------------------------------------------------------
# Reading the released file
# ----------------------------------------------------------------------------------------------

def read_released_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """The state dict of a released checkpoint (a dict holding ``"state_dict"``, or a bare state dict),
    loaded on the CPU. ``ReleasedCheckpointError`` naming the file otherwise."""
    return read_released(path)[0]


def released_config(sd: dict[str, Tensor], *, input_size: int = 256, where: str = "released checkpoint"
                    ) -> tuple[HourglassConfig, dict]:
    """The hihlib architecture of a released state dict: (HourglassConfig, head options
    {"decimal_size", "decimal_channels"}), read off its key names and shapes."""
    def need(key: str) -> Tensor:
        if key not in sd:
            raise ReleasedCheckpointError(f"{where}: expected key {key!r}, missing (is this a released HIH model?)")
        return sd[key]

    stacks = sum(1 for k in sd if re.fullmatch(r"hg\d+_conv_pred\.weight", k))
    levels = [int(m.group(1)) for k in sd if (m := re.fullmatch(r"hg0\.res(\d+)_1\.conv1\.conv\.weight", k))]
    if not stacks or not levels:
        raise ReleasedCheckpointError(f"{where}: expected keys 'hg0_conv_pred.weight' and 'hg0.res<n>_1.*' "
                                      f"of a stacked hourglass, found {sorted(sd)[:4]}")
    width = need("pre_conv.4.conv3.conv.weight").shape[0]
    landmarks = need("hg0_conv_pred.weight").shape[0]
    channels = need("offset_head.conv1.conv.weight").shape[0]
    downs = len({k.split(".")[2] for k in sd if k.startswith("offset_head.down_ops.")})
    heatmap_size = input_size // 4  # the released stem: 7x7/2 conv and a 2x2 max-pool
    cfg = HourglassConfig(num_stacks=stacks, depth=max(levels), width=width, input_size=input_size,
                          heatmap_size=heatmap_size, num_landmarks=landmarks, official_unused_shortcut=True,
                          align_corners=True).validate()
    # the decimal head halves H once in its max-pool and once per down block: d = H / 2^(downs + 1)
    return cfg, {"decimal_size": heatmap_size // 2 ** (downs + 1), "decimal_channels": channels}


def load_released_state_dict(model: LandmarkModel, sd: dict[str, Tensor], where: str = "released checkpoint") -> None:
    """Copy a released state dict into ``model`` (built with ``released_config``). Every released key must
    map onto one hihlib tensor of the same shape and every hihlib tensor must be given:
    ``ReleasedCheckpointError`` names the first key that does not, with the expected shape."""
    load_key_pairs(model, sd, released_key_pairs(model), where,
                   f"a {model.config.num_stacks}-stack, depth-{model.config.depth} HIH model")


def load_key_pairs(model: torch.nn.Module, sd: dict[str, Tensor], pairs: list[tuple[str, str]], where: str,
                   described: str) -> None:
    """Copy ``sd`` into ``model`` through ``pairs`` (hihlib key, released key), one per tensor of the model:
    every released key must have a counterpart and every counterpart the model's shape;
    ``ReleasedCheckpointError`` names the first that does not (``described``: the model, for the message)."""
    ours = model.state_dict()
    mapped = {theirs for _, theirs in pairs}
    for key, value in sd.items():
        if key not in mapped:
            raise ReleasedCheckpointError(f"{where}: unexpected key {key!r} {tuple(value.shape)}: no counterpart in "
                                          f"{described}")
    new = {}
    for mine, theirs in pairs:
        want = tuple(ours[mine].shape)
        if theirs not in sd:
            raise ReleasedCheckpointError(f"{where}: key {theirs!r} missing (expected shape {want}, for {mine})")
        got = tuple(sd[theirs].shape)
        if got != want:
            raise ReleasedCheckpointError(f"{where}: key {theirs!r} has shape {got}, expected {want} (for {mine})")
        new[mine] = sd[theirs]
    model.load_state_dict(new, strict=True)


def load_released_hih(path: str | os.PathLike, *, input_size: int = 256, device: str | torch.device = "cpu"
                      ) -> LandmarkModel:
    """The released HIH network as a hihlib ``LandmarkModel`` in eval mode.

    Its outputs are those of the released ``StackedHourGlass`` on the same input (bit-identical on the
    CPU): "heatmaps" (B, stacks, K, 64, 64), "heatmap" the last stack, "decimal" (B, K, d, d) logits. Decode
    them with ``get_codec("hih", frame="released_hih")`` for the released coordinates. ``input_size``
    (pixels) is not stored in the file: 256 for the released WFLW model."""
    return _model_from_released(read_released_state_dict(path), input_size, str(path)).to(device).eval()


def _model_from_released(sd: dict[str, Tensor], input_size: int, where: str) -> LandmarkModel:
    cfg, head = released_config(sd, input_size=input_size, where=where)
    model = LandmarkModel(cfg, head="hih", **head)
    load_released_state_dict(model, sd, where=where)
    return model.eval()


def released_state_dict(model: LandmarkModel) -> dict[str, Tensor]:
    """hihlib model -> a state dict with the released key names (the inverse of ``load_released_state_dict``)."""
    ours = model.state_dict()
    return {theirs: ours[mine].detach().clone() for mine, theirs in released_key_pairs(model)}


# ----------------------------------------------------------------------------------------------
# A hihlib checkpoint
# ----------------------------------------------------------------------------------------------

def released_checkpoint(model: LandmarkModel, *, source: str, extra: dict | None = None, box: str = "dataset",
                        scale: float = 1.25, dataset: str = "wflw") -> dict:
    """The dict of a hihlib checkpoint (``hihlib.pipeline.checkpoint``) holding a converted released model."""
    from ..codecs import get_codec
    from ..pipeline.checkpoint import checkpoint_dict
    from ..pipeline.config import DEFAULTS, check_config
    from ..data.dataset import IMAGENET_MEAN, IMAGENET_STD

    if (list(IMAGENET_MEAN), list(IMAGENET_STD)) != (RELEASED_PREPROCESSING["mean"], RELEASED_PREPROCESSING["std"]):
        raise HihError("hihlib's image normalisation no longer matches the released pipeline's "
                       f"(mean/std {IMAGENET_MEAN}/{IMAGENET_STD}); the converted model would read other inputs")
    c = model.config
    codec_options = {"frame": "released_hih", "sigma": 1.5, "decimal_size": model.decimal_size, "decimal_sigma": 1.0}
    cfg = copy.deepcopy(DEFAULTS)
    cfg["data"].update(dataset=dataset, input_size=c.input_size, box=box, scale=float(scale))
    cfg["codec"] = {"name": "hih", "options": codec_options}
    cfg["model"] = {"name": "hih_b", "heatmap_size": c.heatmap_size, "head": model.head,
                    "options": {"num_stacks": c.num_stacks, "depth": c.depth, "width": c.width,
                                "official_unused_shortcut": True, "align_corners": True}}
    check_config(cfg, where=source)
    codec = get_codec("hih", input_size=c.input_size, heatmap_size=c.heatmap_size, **codec_options)
    return checkpoint_dict(model, codec, None, cfg,
                           released={"source": source, "preprocessing": RELEASED_PREPROCESSING, **(extra or {})})


def convert_released(path: str | os.PathLike, out: str | os.PathLike, *, input_size: int = 256, box: str = "dataset",
                     scale: float = 1.25) -> Path:
    """Released checkpoint ``path`` -> hihlib checkpoint ``out`` (written atomically). Returns ``out``."""
    from ..io import torch_save

    sd, meta = read_released(path)
    model = _model_from_released(sd, input_size, str(path))
    ckpt = released_checkpoint(model, source=str(path), extra=meta, box=box, scale=scale)
    return torch_save(ckpt, out)
