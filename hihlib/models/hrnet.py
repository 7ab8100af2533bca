"""HRNetV2 (Wang et al. 2019) as H3R and HRNet-facial use it: a 1/4-resolution feature for heatmaps.

Read top to bottom::

    image (B, 3, S, S)
      -> stem:     conv3x3/2 (3 -> 64) BN ReLU, conv3x3/2 (64 -> 64) BN ReLU          (B, 64, S/4, S/4)
      -> layer1:   Bottlenecks 64 -> 256                                              (B, 256, S/4, S/4)
      -> transition1 / stage2 / transition2 / stage3 / transition3 / stage4:
                   2, 3, then 4 parallel branches at 1/4, 1/8, 1/16, 1/32 of the input, widths
                   w, 2w, 4w, 8w; each module runs BasicBlocks on every branch, then fuses: branch i
                   gets the sum of every branch j (1x1 conv + BN + up-sampling for j > i, strided
                   3x3 convs for j < i), then ReLU
      -> output:   branches 2-4 resized bilinearly (align_corners=False) to branch 1 and concatenated:
                   (B, 15w, S/4, S/4): 270 channels for W18, 480 for W32.

Variants (``HRNET_ARCHS``): ``hrnet_w18`` (H3R ``hrnet18``, modules [1, 1, 4, 3], 4 blocks per branch),
``hrnet_w18_small_v2`` (H3R ``hrnet18s``, modules [1, 1, 3, 2], 2 blocks), ``hrnet_w32`` (H3R ``hrnet32``).

Fuse up-sampling: ``"nearest"`` (H3R, HRNet-Image-Classification, timm: ``nn.Upsample(scale_factor=2**(j-i))``
after the 1x1 conv + BN) or ``"bilinear"`` (HRNet-facial: ``F.interpolate(size=..., mode="bilinear")``,
align_corners=False). It has no parameters, so both load the same weights; the released weights need
their own (the maps differ otherwise).

Parameter names are the released ones (``conv1``, ``bn1``, ``layer1.0.conv1``, ``transition1.1.0.0``,
``stage2.0.branches.0.0.conv1``, ``stage2.0.fuse_layers.0.1.0``, ...), identical in baoshengyu/H3R,
HRNet/HRNet-Facial-Landmark-Detection and timm's ``hrnet_w18`` (``features_only``), so their state dicts
load without renaming: the W18 backbone has 1,830 state-dict entries and 9,562,260 parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: arch -> (modules per stage, blocks per branch, width of branch 1); stage 1 is always 1 module of
#: Bottlenecks 64 -> 256 (4 blocks, or 2 for the small variant).
HRNET_ARCHS = {
    "hrnet_w18": ((1, 1, 4, 3), 4, 18),
    "hrnet_w18_small_v2": ((1, 1, 3, 2), 2, 18),
    "hrnet_w32": ((1, 1, 4, 3), 4, 32),
}
UPSAMPLING = ("nearest", "bilinear")


def conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride, 1, bias=False)


class BasicBlock(nn.Module):
    """relu(x' + BN conv3x3 . ReLU BN conv3x3 (x)), x' = downsample(x) or x. (B, cin, h, w) -> (B, planes, h, w)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    """The ResNet bottleneck 1x1 -> 3x3 -> 1x1 (x4), post-activation. (B, cin, h, w) -> (B, 4 planes, h, w)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(out + residual)


def make_layer(block, inplanes: int, planes: int, blocks: int) -> nn.Sequential:
    """``blocks`` blocks, the first with a 1x1 conv + BN projection when the width changes."""
    downsample = None
    if inplanes != planes * block.expansion:
        downsample = nn.Sequential(nn.Conv2d(inplanes, planes * block.expansion, 1, bias=False),
                                   nn.BatchNorm2d(planes * block.expansion))
    layers = [block(inplanes, planes, 1, downsample)]
    layers += [block(planes * block.expansion, planes) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class HighResolutionModule(nn.Module):
    """One multi-resolution module: BasicBlocks per branch, then the exchange ("fuse") between branches.

    forward(list of n tensors (B, c_i, h / 2^i, w / 2^i)) -> list of n tensors of the same shapes."""

    def __init__(self, channels: list[int], blocks: int, upsample: str):
        super().__init__()
        n = len(channels)
        self.upsample = upsample
        self.branches = nn.ModuleList(make_layer(BasicBlock, c, c, blocks) for c in channels)
        self.fuse_layers = None
        if n > 1:
            fuse = []
            for i in range(n):
                row = []
                for j in range(n):
                    if j > i:
                        row.append(nn.Sequential(nn.Conv2d(channels[j], channels[i], 1, bias=False),
                                                 nn.BatchNorm2d(channels[i])))
                    elif j == i:
                        row.append(None)
                    else:
                        convs = []
                        for k in range(i - j):
                            last = k == i - j - 1
                            cout = channels[i] if last else channels[j]
                            layers = [conv3x3(channels[j], cout, 2), nn.BatchNorm2d(cout)]
                            if not last:
                                layers.append(nn.ReLU(inplace=False))
                            convs.append(nn.Sequential(*layers))
                        row.append(nn.Sequential(*convs))
                fuse.append(nn.ModuleList(row))
            self.fuse_layers = nn.ModuleList(fuse)
        self.relu = nn.ReLU(inplace=False)

    def _up(self, x: Tensor, factor: int, like: Tensor) -> Tensor:
        if self.upsample == "nearest":  # nn.Upsample(scale_factor=2**(j-i), mode="nearest"), as H3R / timm
            return F.interpolate(x, scale_factor=float(factor), mode="nearest")
        return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)  # HRNet-facial

    def forward(self, x: list[Tensor]) -> list[Tensor]:
        x = [branch(t) for branch, t in zip(self.branches, x)]
        if self.fuse_layers is None:
            return x
        out = []
        for i, row in enumerate(self.fuse_layers):
            y = x[0] if i == 0 else row[0](x[0])
            for j in range(1, len(x)):
                if j == i:
                    y = y + x[j]
                elif j > i:
                    y = y + self._up(row[j](x[j]), 2 ** (j - i), x[i])
                else:
                    y = y + row[j](x[j])
            out.append(self.relu(y))
        return out


def _transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
    layers = []
    for i, c in enumerate(cur):
        if i < len(pre):
            layers.append(None if c == pre[i] else nn.Sequential(conv3x3(pre[i], c), nn.BatchNorm2d(c),
                                                                 nn.ReLU(inplace=True)))
        else:
            convs = []
            for j in range(i + 1 - len(pre)):
                cout = c if j == i - len(pre) else pre[-1]
                convs.append(nn.Sequential(conv3x3(pre[-1], cout, 2), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)))
            layers.append(nn.Sequential(*convs))
    return nn.ModuleList(layers)


class HRNet(nn.Module):
    """HRNetV2 backbone: forward(images (B, 3, S, S)) -> (B, out_channels, S/4, S/4) (module docstring).

    ``arch`` one of ``HRNET_ARCHS``; ``upsample`` the fuse layers' up-sampling, "nearest" or "bilinear"."""

    def __init__(self, arch: str = "hrnet_w18", upsample: str = "nearest"):
        super().__init__()
        if arch not in HRNET_ARCHS:
            raise ValueError(f"unknown HRNet {arch!r}; expected one of {sorted(HRNET_ARCHS)}")
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {upsample!r}")
        modules, blocks, w = HRNET_ARCHS[arch]
        self.arch, self.upsample = arch, upsample
        self.conv1 = conv3x3(3, 64, 2)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = conv3x3(64, 64, 2)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = make_layer(Bottleneck, 64, 64, blocks)
        pre = [256]
        for stage in (2, 3, 4):
            cur = [w * 2 ** i for i in range(stage)]
            setattr(self, f"transition{stage - 1}", _transition(pre, cur))
            setattr(self, f"stage{stage}", nn.Sequential(*(HighResolutionModule(cur, blocks, upsample)
                                                           for _ in range(modules[stage - 1]))))
            pre = cur
        self.out_channels = sum(pre)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer1(self.relu(self.bn2(self.conv2(x))))
        xs = [x]
        for stage in (2, 3, 4):
            transition = getattr(self, f"transition{stage - 1}")
            xs = [xs[i] if i < len(xs) and t is None else t(xs[min(i, len(xs) - 1)])
                  for i, t in enumerate(transition)]
            xs = getattr(self, f"stage{stage}")(xs)
        size = xs[0].shape[-2:]
        return torch.cat([xs[0]] + [F.interpolate(t, size=size, mode="bilinear", align_corners=False)
                                    for t in xs[1:]], 1)
