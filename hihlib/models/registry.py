"""Named models: ``create("hih_b", num_landmarks=98, head="hih")`` and ``list_models()``.

Each entry is a small function returning the ``HourglassConfig`` of a variant (timm style); keyword
overrides change any config field. The paper's models (256x256 input, 64x64 heatmaps, depth 4,
width 256, decimal head 8x8 with 384 channels) are ``hih_t`` (1 stack), ``hih_s`` (2 stacks) and
``hih_b`` (4 stacks). The small variants for a CPU take 128x128 inputs and 32x32 heatmaps: ``hg_tiny``
(1 stack, depth 3, width 64) and ``hg_small`` (2 stacks, depth 3, width 96). Their training speed is
measured in BENCHMARKS.md.

Single-feature backbones (``hihlib.models.backbones``: a ``BackboneConfig`` instead of an
``HourglassConfig``) are registered the same way: ``hrnet_w18``, ``hrnet_w18_small_v2``, ``hrnet_w32``
(HRNetV2, 256 px input) and ``mobilenetv2`` (H3R's, 256 px; 128 or 160 with ``input_size=``). Their
options are ``BackboneConfig``'s fields (``upsample``, ``head_channels``, ``head_bias``).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError
from .backbones import BackboneConfig, BackboneModel
from .heads import LandmarkModel
from .hourglass import HourglassConfig

_MODELS: dict[str, Callable[[], HourglassConfig]] = {}
# Short names accepted by ``create`` (not listed by ``list_models``, so nothing is tested twice).
ALIASES = {"tiny": "hg_tiny", "small": "hg_small"}


def register_model(fn: Callable[[], HourglassConfig]) -> Callable[[], HourglassConfig]:
    """Decorator: register ``fn`` (returning a config) under its function name."""
    _MODELS[fn.__name__] = fn
    return fn


@register_model
def hih_t() -> HourglassConfig:
    return HourglassConfig(num_stacks=1, depth=4, width=256, input_size=256, heatmap_size=64)


@register_model
def hih_s() -> HourglassConfig:
    return HourglassConfig(num_stacks=2, depth=4, width=256, input_size=256, heatmap_size=64)


@register_model
def hih_b() -> HourglassConfig:
    return HourglassConfig(num_stacks=4, depth=4, width=256, input_size=256, heatmap_size=64)


@register_model
def hg_tiny() -> HourglassConfig:
    return HourglassConfig(num_stacks=1, depth=3, width=64, input_size=128, heatmap_size=32)


@register_model
def hg_small() -> HourglassConfig:
    return HourglassConfig(num_stacks=2, depth=3, width=96, input_size=128, heatmap_size=32)


@register_model
def hrnet_w18() -> BackboneConfig:
    return BackboneConfig(arch="hrnet_w18", input_size=256, heatmap_size=64)


@register_model
def hrnet_w18_small_v2() -> BackboneConfig:
    return BackboneConfig(arch="hrnet_w18_small_v2", input_size=256, heatmap_size=64)


@register_model
def hrnet_w32() -> BackboneConfig:
    return BackboneConfig(arch="hrnet_w32", input_size=256, heatmap_size=64)


@register_model
def mobilenetv2() -> BackboneConfig:
    return BackboneConfig(arch="mobilenetv2", input_size=256, heatmap_size=64)


def list_models() -> list[str]:
    """Registered model names, in registration order."""
    return list(_MODELS)


def model_config(name: str, **overrides) -> HourglassConfig | BackboneConfig:
    """The config (``HourglassConfig``, or ``BackboneConfig`` for the single-feature backbones) of ``name``
    with ``overrides`` applied (ConfigError on unknown names)."""
    name = ALIASES.get(name, name)
    if name not in _MODELS:
        raise ConfigError(f"unknown model {name!r}; expected one of {list_models() + list(ALIASES)}")
    base = _MODELS[name]()
    if isinstance(base, BackboneConfig) and "pretrained" in overrides:  # not architecture: read by ``create``
        pretrained = overrides.pop("pretrained")
        if pretrained is not None and not isinstance(pretrained, str):
            raise ConfigError(f"model option pretrained expects the path of an ImageNet weights file, found {pretrained!r}")
    if isinstance(base, BackboneConfig) and "heatmap_size" not in overrides and "input_size" in overrides:
        overrides["heatmap_size"] = overrides["input_size"] // 4  # the backbones' stride
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = set(overrides) - fields
    if unknown:
        raise ConfigError(f"unknown model option(s) {sorted(unknown)}; expected some of {sorted(fields)}")
    return dataclasses.replace(base, **overrides).validate()


def create(name: str, num_landmarks: int = 98, head: str = "hih", *, heatmap_size: int | None = None,
           decimal_size: int = 8, decimal_channels: int | None = None, **overrides) -> LandmarkModel | BackboneModel:
    """Build the model ``name`` with the given head ("hih", "hih_local", "hih_ext", "gaussian" or "h3r"; "hih", the
    released decimal head, only where the released code builds it: heatmap >= 4 x decimal, else "hih_ext").

    ``heatmap_size`` (cells) defaults to the variant's (input_size / 4); ``overrides`` set any other
    ``HourglassConfig`` field (num_stacks, depth, width, input_size, official_unused_shortcut).
    ``decimal_size`` (d) and ``decimal_channels`` (default 3/2 x width) configure the HIH decimal head.
    For the single-feature backbones the overrides are ``BackboneConfig``'s fields, and ``pretrained=PATH``
    starts an HRNet backbone from ImageNet weights in a local file (``backbones.load_imagenet_backbone``).
    """
    if heatmap_size is not None:
        overrides["heatmap_size"] = heatmap_size
    pretrained = overrides.get("pretrained")
    cfg = model_config(name, num_landmarks=num_landmarks, **overrides)
    if isinstance(cfg, BackboneConfig):
        from .backbones import load_imagenet_backbone

        model = BackboneModel(cfg, head=head, decimal_size=decimal_size, decimal_channels=decimal_channels)
        return load_imagenet_backbone(model, pretrained) if pretrained else model
    return LandmarkModel(cfg, head=head, decimal_size=decimal_size, decimal_channels=decimal_channels)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (BN running statistics are buffers and not counted)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: LandmarkModel, batch_size: int = 1) -> int:
    """Multiply-accumulates of one forward pass at the model's input size, via ``torch.utils.flop_counter``.

    Counts convolutions and matrix products (FLOPs / 2), not BN, ReLU, pooling or interpolation,
    which is how the paper's "FLOPs" were counted. Runs a real forward on the model's device: build
    the model under ``with torch.device("meta"):`` to count without computing.
    """
    from torch.utils.flop_counter import FlopCounterMode

    param = next(model.parameters())
    x = torch.zeros(batch_size, 3, model.input_size, model.input_size, device=param.device, dtype=param.dtype)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2
