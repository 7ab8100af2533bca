"""The stacked hourglass backbone of HIH (Newell et al. 2016, as configured by Lan et al. 2021).

Read top to bottom like the paper's figure::

    image (B, 3, S, S)
      -> Stem:       7x7/2 conv-BN-ReLU (w/4) -> Residual w/4->w/2 -> maxpool/2
                     -> Residual w/2->w/2 -> Residual w/2->w                 (B, w, H, W), H = S/4
      -> Stack x N:  Hourglass(depth) -> Residual -> 1x1 conv-BN-ReLU = feature
                     -> 1x1 conv = heatmaps (B, K, H, W)
                     -> remap: x <- x + conv-BN-ReLU(feature) + conv-BN-ReLU(heatmaps)
      -> (x, heatmaps of every stack): x is the "final merged feature" the HIH decimal head reads.

The remap runs after the last stack too when a head reads the merged feature (HIH, as released; the
published parameter counts include it); for heads that read only heatmaps it is left out, as in
Newell et al., since nothing would train it.

``w`` is ``width`` (256 in the paper), ``K`` the number of landmarks. Every residual is the
post-activation bottleneck (1x1 conv w/2, 3x3 conv w/2, 1x1 conv w, add, ReLU).

Heatmap size
------------
The stem's two stride-2 steps (the 7x7 conv and the max-pool) give heatmaps of S/4, the paper's
setting (256 -> 64). ``HourglassConfig(heatmap_size=...)`` chooses another stride:

* stride 2 (S/2, e.g. 128 -> 64): the stem's max-pool is left out;
* stride 4 (S/4, e.g. 128 -> 32): the paper's stem;
* stride 8 (S/8, e.g. 128 -> 16): one more 2x2 max-pool before the stem's last residual.

Only the stem changes, so the backbone's parameters are the same at every heatmap size (the demo
compares 64/32/16 on one backbone this way; the HIH decimal head adapts its pooling, see heads.py);
compute grows with the heatmap area.
The heatmap side must be divisible by ``2**depth`` (each hourglass level halves it).

Deviations from the released code, on purpose
---------------------------------------------
* Upsampling is bilinear with ``align_corners=False``, which keeps hihlib's pixel-centre convention
  (a cell centre at ``u`` on the coarse grid lands at ``2u + 0.5`` on the fine one); the released
  code uses ``align_corners=True``. The network learns either way; the parameter count is the same.
  ``HourglassConfig(align_corners=True)`` up-samples as released: the released weights need it (with
  the default their heatmaps come out 7-14 % different; with it, bit-identical to the released network;
  ``hihlib.inference.released_hih`` builds models this way).
* The released residual block always creates a 1x1 shortcut conv-BN, even when input and output
  widths match and the shortcut is the identity; it is never used, but the published parameter counts
  include it. ``official_unused_shortcut=True`` reproduces those counts; the default ``False`` leaves
  the dead weights out (they would also make DistributedDataParallel fail with "parameters that were
  not used in producing the loss").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError


@dataclass
class HourglassConfig:
    """Everything that shapes the backbone. Sizes are in pixels (input) and cells (heatmap)."""

    num_stacks: int = 4
    depth: int = 4             # hourglass levels: the coarsest level is heatmap_size / 2**depth
    width: int = 256           # channels of the hourglass features
    input_size: int = 256      # S: the network input is (3, S, S)
    heatmap_size: int = 64     # H = S / stride, stride in {2, 4, 8}
    num_landmarks: int = 98    # K
    official_unused_shortcut: bool = False
    align_corners: bool = False  # bilinear up-sampling in the hourglass; True as released (see above)

    @property
    def stride(self) -> int:
        return self.input_size // self.heatmap_size

    def validate(self) -> "HourglassConfig":
        if self.num_stacks < 1 or self.depth < 1 or self.num_landmarks < 1:
            raise ConfigError(f"num_stacks, depth and num_landmarks must be >= 1, got {self}")
        if self.width % 4 or self.width < 4:
            raise ConfigError(f"width must be a positive multiple of 4 (the stem uses width/4), got {self.width}")
        if self.heatmap_size <= 0 or self.input_size % self.heatmap_size or self.stride not in (2, 4, 8):
            raise ConfigError(f"heatmap_size must be input_size/2, /4 or /8; got input_size={self.input_size}, "
                              f"heatmap_size={self.heatmap_size}")
        if self.heatmap_size % 2 ** self.depth:
            raise ConfigError(f"heatmap_size {self.heatmap_size} must be divisible by 2**depth = {2 ** self.depth}")
        return self


class ConvBNReLU(nn.Sequential):
    """k x k conv (no bias, BN follows) -> BN -> ReLU (optional). 'same' padding for odd k."""

    def __init__(self, cin: int, cout: int, kernel: int = 1, stride: int = 1, *, relu: bool = True):
        layers = [nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, bias=False), nn.BatchNorm2d(cout)]
        if relu:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Residual(nn.Module):
    """Post-activation bottleneck: relu(shortcut(x) + 1x1(cout) . 3x3(cout/2) . 1x1(cout/2) (x)).

    The shortcut is a 1x1 conv-BN when ``cin != cout`` and the identity otherwise. With
    ``official_unused_shortcut`` the 1x1 conv-BN is also built for ``cin == cout`` and left unused,
    as in the released code (it only changes the parameter count).
    """

    def __init__(self, cin: int, cout: int, *, official_unused_shortcut: bool = False):
        super().__init__()
        mid = cout // 2
        self.body = nn.Sequential(
            ConvBNReLU(cin, mid, 1),
            ConvBNReLU(mid, mid, 3),
            ConvBNReLU(mid, cout, 1, relu=False),
        )
        self.needs_projection = cin != cout
        self.shortcut = (ConvBNReLU(cin, cout, 1, relu=False)
                         if self.needs_projection or official_unused_shortcut else None)

    def forward(self, x: Tensor) -> Tensor:
        skip = self.shortcut(x) if self.needs_projection else x
        return F.relu(self.body(x) + skip)


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels on (B, w, h, w') features; output has the input's shape.

    level(x) = skip(x) + upsample(up(inner(down(maxpool(x)))))
    where ``inner`` is the next level, or one residual at the coarsest level.
    """

    def __init__(self, depth: int, width: int, *, official_unused_shortcut: bool = False, align_corners: bool = False):
        super().__init__()
        res = lambda: Residual(width, width, official_unused_shortcut=official_unused_shortcut)  # noqa: E731
        self.skip = res()
        self.down = res()
        self.inner = (Hourglass(depth - 1, width, official_unused_shortcut=official_unused_shortcut,
                                align_corners=align_corners)
                      if depth > 1 else res())
        self.up = res()
        self.align_corners = align_corners

    def forward(self, x: Tensor) -> Tensor:
        low = self.up(self.inner(self.down(F.max_pool2d(x, 2))))
        return self.skip(x) + F.interpolate(low, size=x.shape[-2:], mode="bilinear", align_corners=self.align_corners)


class Stem(nn.Module):
    """(B, 3, S, S) images -> (B, w, S/stride, S/stride) features; stride 2, 4 or 8 (module docstring)."""

    def __init__(self, width: int, stride: int, *, official_unused_shortcut: bool = False):
        super().__init__()
        kw = dict(official_unused_shortcut=official_unused_shortcut)
        self.conv = ConvBNReLU(3, width // 4, 7, 2)
        self.res1 = Residual(width // 4, width // 2, **kw)
        self.pool1 = nn.MaxPool2d(2) if stride >= 4 else nn.Identity()
        self.res2 = Residual(width // 2, width // 2, **kw)
        self.pool2 = nn.MaxPool2d(2) if stride == 8 else nn.Identity()
        self.res3 = Residual(width // 2, width, **kw)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool1(self.res1(self.conv(x)))
        return self.res3(self.pool2(self.res2(x)))


class Stack(nn.Module):
    """One stack: hourglass, heatmap prediction, and (``remap=True``) the remap into the next input.

    forward(x (B, w, H, W)) -> (x_next (B, w, H, W), heatmaps (B, K, H, W)). Without the remap,
    x_next is the stack's 1x1 feature (nothing reads it but a head that asks for it).
    """

    def __init__(self, cfg: HourglassConfig, *, remap: bool = True):
        super().__init__()
        w, k, kw = cfg.width, cfg.num_landmarks, dict(official_unused_shortcut=cfg.official_unused_shortcut)
        self.hourglass = Hourglass(cfg.depth, w, align_corners=cfg.align_corners, **kw)
        self.residual = Residual(w, w, **kw)
        self.feature = ConvBNReLU(w, w, 1)
        self.predict = nn.Conv2d(w, k, 1)
        self.remap = remap
        if remap:
            self.remap_feature = ConvBNReLU(w, w, 1)
            self.remap_heatmaps = ConvBNReLU(k, w, 1)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feature = self.feature(self.residual(self.hourglass(x)))
        heatmaps = self.predict(feature)
        if not self.remap:
            return feature, heatmaps
        return x + self.remap_feature(feature) + self.remap_heatmaps(heatmaps), heatmaps


class StackedHourglass(nn.Module):
    """forward(images (B, 3, S, S)) -> (feature (B, w, H, W), heatmaps (B, stacks, K, H, W)).

    ``heatmaps`` are the raw outputs of each stack's 1x1 prediction conv (values or logits: the head
    decides how they are read). With ``final_remap=True`` (the HIH model, as released) the last stack
    is remapped too and ``feature`` is that final merged feature, which the decimal head reads; with
    ``False`` (heads that read only heatmaps) the last remap would be dead weight, so it is not
    built, and ``feature`` is the last stack's 1x1 feature.
    """

    def __init__(self, cfg: HourglassConfig, *, final_remap: bool = True):
        super().__init__()
        self.config = cfg.validate()
        self.stem = Stem(cfg.width, cfg.stride, official_unused_shortcut=cfg.official_unused_shortcut)
        last = cfg.num_stacks - 1
        self.stacks = nn.ModuleList(Stack(cfg, remap=i < last or final_remap) for i in range(cfg.num_stacks))
        for stack in self.stacks:
            # Small outputs at the start: the heatmap targets are ~0 almost everywhere (as released).
            nn.init.normal_(stack.predict.weight, std=1e-3)
            nn.init.zeros_(stack.predict.bias)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        x = self.stem(images)
        heatmaps = []
        for stack in self.stacks:
            x, h = stack(x)
            heatmaps.append(h)
        return x, torch.stack(heatmaps, dim=1)
