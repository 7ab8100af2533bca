"""Single-feature backbones (HRNetV2, H3R's MobileNetV2) with any hihlib head: ``BackboneModel``.

Where the stacked hourglass predicts heatmaps inside each stack, these backbones give one feature map
(B, C, S/4, S/4) (HRNet-W18: C = 270, MobileNetV2: C = 152) and a head reads it:

* ``heatmap_head``: 1x1 conv C -> C, BN, ReLU, 1x1 conv C -> K (the HRNet-facial head, both convs with a
  bias) or, for ``head="h3r"``, C -> 2K without biases: H3R's released ``BinaryHeadBlock``, viewed as
  (B, 2, K, H, W), plane 0 background and plane 1 foreground logits (``head_bias`` and ``head_channels``
  change either). Outputs "heatmap" (B, K, H, W) (for h3r: plane 1, what the released decoder reads),
  "heatmaps" (B, 1, K, H, W) the same map as a one-stack tensor (what the losses read), and for h3r
  "planes" (B, 2, K, H, W). hihlib's H3R loss trains plane 1 on its own: the plane-0 rows of the last
  conv get zero gradients (they are kept so that the released weights load and round-trip; a 2-way
  softmax over the planes is a sigmoid of their difference, the same model class as one logit plane).
* ``hih``: the integer maps as above plus "decimal" (B, K, d, d) from a ``DecimalHead`` on the feature
  (only at heatmap >= 4 x decimal, as the released code builds it; ``hih_ext``: the same head at any ratio).
* ``hih_local``: the same with a ``LocalDecimalHead`` (reads the training landmarks, see heads.py).

``create("hrnet_w18", head="h3r")`` builds one (``hihlib.models.registry``); ``BackboneConfig`` holds
everything that shapes it, so ``hihlib.pipeline.checkpoint`` rebuilds it from a checkpoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .heads import HEADS, HIH_HEADS, DecimalHead, LocalDecimalHead, require_released_buildable
from .hrnet import HRNET_ARCHS, UPSAMPLING, HRNet
from .mobilenetv2 import MobileNetV2

ARCHS = tuple(HRNET_ARCHS) + ("mobilenetv2",)


@dataclass
class BackboneConfig:
    """The architecture of a ``BackboneModel``. Sizes in pixels (input) and cells (heatmap = input / 4)."""

    arch: str = "hrnet_w18"        # one of ARCHS
    input_size: int = 256          # S
    heatmap_size: int = 64         # H = S / 4 (the backbones' output stride)
    num_landmarks: int = 98        # K
    upsample: str = "nearest"      # HRNet fuse up-sampling: "nearest" (H3R, timm) or "bilinear" (HRNet-facial)
    head_channels: int | None = None   # channels of the head's hidden 1x1 conv (default: the feature's C)
    head_bias: bool | None = None      # biases in the head's convs (default: False for h3r, True otherwise)

    @property
    def stride(self) -> int:
        return self.input_size // self.heatmap_size

    @property
    def num_stacks(self) -> int:
        """One map per landmark ("heatmaps" has one stack), as for a 1-stack hourglass."""
        return 1

    def validate(self) -> "BackboneConfig":
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown backbone arch {self.arch!r}; expected one of {list(ARCHS)}")
        if self.upsample not in UPSAMPLING:
            raise ConfigError(f"upsample must be one of {list(UPSAMPLING)}, got {self.upsample!r}")
        if self.num_landmarks < 1:
            raise ConfigError(f"num_landmarks must be >= 1, got {self.num_landmarks}")
        if self.input_size <= 0 or self.input_size % 32 or self.heatmap_size * 4 != self.input_size:
            raise ConfigError(f"{self.arch}: input_size must be a multiple of 32 and heatmap_size = input_size / 4, "
                              f"got input_size={self.input_size}, heatmap_size={self.heatmap_size}")
        return self


def build_backbone(cfg: BackboneConfig) -> nn.Module:
    """The backbone module of ``cfg`` (its ``out_channels`` is the feature's C)."""
    if cfg.arch == "mobilenetv2":
        return MobileNetV2()
    return HRNet(cfg.arch, cfg.upsample)


class BackboneModel(nn.Module):
    """Backbone + head. forward(images (B, 3, S, S), ImageNet-normalised, landmarks=None) -> dict
    (module docstring). Attributes as ``LandmarkModel``: ``input_size``, ``heatmap_size``,
    ``decimal_size``, ``decimal_channels``, ``num_landmarks``, ``head``, ``config``."""

    def __init__(self, config: BackboneConfig, *, head: str = "h3r", decimal_size: int = 8,
                 decimal_channels: int | None = None):
        super().__init__()
        if head not in HEADS:
            raise ConfigError(f"head must be one of {HEADS}, got {head!r}")
        self.config = config.validate()
        self.head = head
        self.input_size, self.heatmap_size, self.num_landmarks = config.input_size, config.heatmap_size, config.num_landmarks
        self.backbone = build_backbone(config)
        c = self.backbone.out_channels
        hidden = config.head_channels or c
        bias = config.head_bias if config.head_bias is not None else head != "h3r"
        self.planes = 2 if head == "h3r" else 1
        k = config.num_landmarks
        self.heatmap_head = nn.Sequential(nn.Conv2d(c, hidden, 1, bias=bias), nn.BatchNorm2d(hidden),
                                          nn.ReLU(inplace=True), nn.Conv2d(hidden, self.planes * k, 1, bias=bias))
        self.decimal_size = decimal_size if head in HIH_HEADS else None
        self.decimal_channels = None
        if head == "hih":
            require_released_buildable(config.heatmap_size, decimal_size)
        if head in ("hih", "hih_ext"):
            channels = self.decimal_channels = decimal_channels or 384
            self.decimal = DecimalHead(c, k, heatmap_size=config.heatmap_size, decimal_size=decimal_size,
                                       channels=channels)
        if head == "hih_local":
            from ..codecs import get_codec

            channels = self.decimal_channels = decimal_channels or 16
            self.decimal = LocalDecimalHead(c, k, decimal_size=decimal_size, channels=channels)
            self._cells = get_codec("hih", input_size=config.input_size, heatmap_size=config.heatmap_size,
                                    decimal_size=decimal_size).split
        last = self.heatmap_head[3]
        nn.init.normal_(last.weight, std=1e-3)  # small outputs at the start, as the hourglass's prediction
        if last.bias is not None:
            # h3r with a bias: the prior -log(H W - 1) as heads.py; the other heads start at 0
            nn.init.constant_(last.bias, -math.log(config.heatmap_size ** 2 - 1) if head == "h3r" else 0.0)

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        feature = self.backbone(images)                                   # (B, C, H, W)
        maps = self.heatmap_head(feature)                                 # (B, planes K, H, W)
        B, _, H, W = maps.shape
        out = {}
        if self.planes == 2:
            out["planes"] = maps.view(B, 2, self.num_landmarks, H, W)
            maps = out["planes"][:, 1]
        out["heatmap"], out["heatmaps"] = maps, maps[:, None]
        if self.head in ("hih", "hih_ext"):
            out["decimal"] = self.decimal(feature)
        elif self.head == "hih_local":
            if landmarks is not None:
                cells = self._cells(landmarks.float())[0]
            else:
                from ..codecs.gaussian import argmax_2d

                cells = torch.stack(argmax_2d(maps.detach()), -1)
            out["decimal"] = self.decimal(feature, cells)
        return out

    def extra_repr(self) -> str:
        return (f"arch={self.config.arch!r}, head={self.head!r}, input_size={self.input_size}, "
                f"heatmap_size={self.heatmap_size}, decimal_size={self.decimal_size}")


#: Keys of an ImageNet HRNet file (HRNet-Image-Classification, timm ``hrnet_w18``) that belong to its
#: classification head, not to the backbone: left out when a backbone starts from it.
IMAGENET_HEAD_PREFIXES = ("incre_modules.", "downsamp_modules.", "final_layer.", "classifier.", "fc.", "head.")


def load_imagenet_backbone(model: BackboneModel, path: str) -> BackboneModel:
    """Start ``model``'s HRNet backbone from ImageNet weights in a local file (HRNet-Image-Classification's
    ``hrnetv2_w18_imagenet_pretrained.pth`` or timm's ``hrnet_w18`` state dict; ``module.`` prefixes and a
    ``{"state_dict": ...}`` wrapper are accepted). Every backbone tensor must be in the file with its shape;
    the classification head's keys (``IMAGENET_HEAD_PREFIXES``) are left out; any other key, a missing key
    or a shape that does not fit is a one-line ``ConfigError`` naming the file and the key. The heads keep
    their initialisation. Returns ``model``."""
    from ..io import read_released

    if model.config.arch == "mobilenetv2":
        raise ConfigError(f"model.options.pretrained={path}: ImageNet weights are supported for the HRNet backbones only")
    try:
        sd, _ = read_released(path)
    except Exception as e:  # ReleasedCheckpointError: not found, not a state dict
        raise ConfigError(str(e)) from None
    ours = model.backbone.state_dict()
    for key, value in sd.items():
        if key not in ours and not key.startswith(IMAGENET_HEAD_PREFIXES):
            raise ConfigError(f"{path}: unexpected key {key!r} {tuple(value.shape)}: not a {model.config.arch} backbone "
                              f"key (expected HRNet-Image-Classification / timm names)")
    for key, t in ours.items():
        if key not in sd:
            raise ConfigError(f"{path}: key {key!r} missing (expected shape {tuple(t.shape)}; is this a "
                              f"{model.config.arch} ImageNet file?)")
        if tuple(sd[key].shape) != tuple(t.shape):
            raise ConfigError(f"{path}: key {key!r} has shape {tuple(sd[key].shape)}, expected {tuple(t.shape)} "
                              f"({model.config.arch})")
    model.backbone.load_state_dict({k: sd[k] for k in ours}, strict=True)
    return model
