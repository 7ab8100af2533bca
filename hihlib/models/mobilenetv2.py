"""H3R's MobileNetV2 backbone (baoshengyu/H3R, torchalign/backbone/mobilenet.py): a 1/4-resolution feature.

Read top to bottom::

    image (B, 3, S, S)
      -> features[0]:    conv3x3/2 (3 -> 32) BN ReLU6
      -> features[1:14]: inverted residual blocks (t, c, n, s) = (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2),
                         (6, 64, 4, 2), (6, 96, 3, 1); a block adds its input when stride 1 and same width
      -> c2 = features[:4] (24 ch, S/4), c3 = features[4:7] (32 ch, S/8), c4 = features[7:14] (96 ch, S/16)
      -> c3 and c4 resized bilinearly (align_corners=False) to c2 and concatenated: (B, 152, S/4, S/4)

Parameter names are the released ones (``features.{i}.conv.{j}``), so a released H3R state dict loads
without renaming (``backbone.`` prefix aside): 234 state-dict entries, 542,528 parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: (expansion t, channels c, blocks n, stride s) after the stem (32 channels), as released.
H3R_MOBILENETV2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand BN ReLU6] -> 3x3 depthwise (stride) BN ReLU6 -> 1x1 project BN (+ x).

    Attribute ``conv`` (nn.Sequential) holds the layers under their released indices."""

    def __init__(self, cin: int, cout: int, expansion: int = 1, stride: int = 1):
        super().__init__()
        if expansion == 1:
            layers = [nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin),
                      nn.ReLU6(inplace=True), nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        else:
            c = expansion * cin
            layers = [nn.Conv2d(cin, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU6(inplace=True),
                      nn.Conv2d(c, c, 3, stride, 1, groups=c, bias=False), nn.BatchNorm2d(c), nn.ReLU6(inplace=True),
                      nn.Conv2d(c, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        return out + x if self.residual else out


class MobileNetV2(nn.Module):
    """forward(images (B, 3, S, S)) -> (B, 152, S/4, S/4): c2, c3, c4 resized to c2 and concatenated."""

    out_channels = 24 + 32 + 96

    def __init__(self, config=H3R_MOBILENETV2, stem: int = 32):
        super().__init__()
        features = [nn.Sequential(nn.Conv2d(3, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU6(inplace=True))]
        cin = stem
        for t, c, n, s in config:
            for i in range(n):
                features.append(InvertedResidual(cin, c, t, s if i == 0 else 1))
                cin = c
        self.features = nn.Sequential(*features)
        self.arch = "mobilenetv2"

    def forward(self, x: Tensor) -> Tensor:
        c2 = self.features[:4](x)
        c3 = self.features[4:7](c2)
        c4 = self.features[7:14](c3)
        size = c2.shape[-2:]
        return torch.cat([F.interpolate(t, size=size, mode="bilinear", align_corners=False) for t in (c2, c3, c4)], 1)
