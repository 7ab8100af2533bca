"""Heads: how the backbone's outputs are read, and the HIH decimal head.

Every head turns the backbone's (final merged feature, per-stack heatmaps) into the dict of named
tensors that the matching codec decodes and the matching loss trains:

* ``"gaussian"``: "heatmaps" (B, stacks, K, H, W) regressed Gaussian values (MSE on every stack),
  "heatmap" (B, K, H, W) the last stack.
* ``"h3r"``: the same keys, read as per-pixel foreground **logits** (randomized-rounding targets).
  The released H3R head predicts two planes (background, foreground) per landmark; a 2-way softmax
  over them equals a sigmoid of their difference, so one logit plane per landmark is the same model.
  The prediction bias starts at ``-log(H*W - 1)``: sigmoid then equals the positive rate 1/(H*W),
  so a per-pixel loss does not start by pushing every pixel down (RetinaNet's prior initialisation);
  the spatial softmax loss is invariant to it.
* ``"hih"``: "heatmaps"/"heatmap" as for gaussian (integer heatmaps, every stack) plus "decimal"
  (B, K, d, d) logits from ``DecimalHead`` applied once to the final merged feature (as released).
  Built only where the released code builds it: heatmap / decimal >= 4 (e.g. 64 -> 8, 32 -> 8); at
  16 -> 8 the released ``HIH_head`` gives a 7 x 7 map, so ``"hih"`` is refused there (``released_buildable``).
* ``"hih_ext"`` (hihlib's extension of the released head to every heatmap / decimal ratio): the same
  ``DecimalHead``; identical to ``"hih"`` where the release builds it, and at ratio 2 (16 -> 8) one
  padded max-pool and no down block, at ratio 1 no reduction. Results at those ratios are this variant's,
  not the released head's.
* ``"hih_local"`` (a hihlib extension, not in the paper): the same integer maps and the same codec,
  loss and "decimal" output, but the decimal logits come from ``LocalDecimalHead``, which reads the
  merged feature *at each landmark's integer cell* instead of a global map pooled 8x below it.
  Training samples the ground-truth cell, inference the argmax cell of the integer map, so the model
  takes the training landmarks: ``model(images, landmarks=coords)``.

``LandmarkModel`` puts backbone and head together; ``hihlib.models.create`` builds one by name.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from .hourglass import ConvBNReLU, HourglassConfig, StackedHourglass

HEADS = ("gaussian", "h3r", "hih", "hih_local", "hih_ext")
# heads whose targets and decoding are the HIH codec's
HIH_HEADS = ("hih", "hih_local", "hih_ext")


def default_head(codec: str, heatmap_size: int, decimal_size: int = 8) -> str:
    """The head a configuration without ``model.head`` trains with a codec: the codec's own head, except
    that the HIH codec at heatmap < 4 x decimal (where the released head cannot be built) gets the labelled
    variant ``"hih_ext"``, which its checkpoint then names."""
    if codec == "hih" and not released_buildable(heatmap_size, decimal_size):
        return "hih_ext"
    return codec


def codec_name(head: str) -> str:
    """The codec a head is trained and decoded with (both HIH heads use the HIH codec)."""
    return "hih" if head in HIH_HEADS else head


class DownBlock(nn.Module):
    """Stride-2 basic block: relu(3x3/2 conv-BN-ReLU . 3x3 conv-BN (x) + 1x1/2 conv-BN (x)).

    (B, c, h, w) -> (B, c, ceil(h/2), ceil(w/2)).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvBNReLU(channels, channels, 3, 2), ConvBNReLU(channels, channels, 3, relu=False))
        self.shortcut = ConvBNReLU(channels, channels, 1, 2, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


def decimal_reductions(heatmap_size: int, decimal_size: int) -> int:
    """Number n of stride-2 reductions from H to d (H = d * 2**n); ConfigError if H/d is no power of 2."""
    ratio = heatmap_size / decimal_size
    n = round(math.log2(ratio)) if ratio >= 1 else -1
    if n < 0 or decimal_size * 2 ** n != heatmap_size:
        raise ConfigError(f"heatmap_size / decimal_size must be a power of 2, got {heatmap_size} / {decimal_size}")
    return n


def released_buildable(heatmap_size: int, decimal_size: int) -> bool:
    """Whether the released ``HIH_head`` builds a d x d map from an H x H feature: its 3x3/2 max-pool has
    no padding and is followed by log2(H/d) - 1 down blocks, which lands on d only for H/d >= 4 (16 -> 8
    gives 7 x 7, 8 -> 8 gives 3 x 3)."""
    return heatmap_size >= 4 * decimal_size and decimal_reductions(heatmap_size, decimal_size) >= 2


def require_released_buildable(heatmap_size: int, decimal_size: int) -> None:
    """ConfigError unless ``released_buildable``: the head called the released one ("hih") is never built at a
    size the released code cannot build (a ratio that is no power of 2 gets ``decimal_reductions``' error)."""
    if not released_buildable(heatmap_size, decimal_size):
        decimal_reductions(heatmap_size, decimal_size)   # a ratio that is no power of 2: its own error
        raise ConfigError(f"head 'hih' (the released decimal head) cannot be built at heatmap {heatmap_size} "
                          f"-> decimal {decimal_size}: the released code needs heatmap >= 4 x decimal; use "
                          f"head='hih_ext' (hihlib's extension, labelled as such) or a larger heatmap")


class DecimalHead(nn.Module):
    """The HIH decimal head: (B, w, H, H) final merged feature -> (B, K, d, d) decimal logits.

    As released for H=64, d=8: 1x1 conv-BN-ReLU to c=384 -> 3x3 max-pool stride 2 without padding
    (64 -> 31) -> two ``DownBlock`` (31 -> 16 -> 8) -> 1x1 conv-BN-ReLU c -> 1x1 conv to K.

    Other sizes, with n = log2(H/d) stride-2 reductions (H/d must be a power of 2):

    * n >= 2: the max-pool without padding (H -> H/2 - 1) then n - 1 down blocks, each ceil(h/2),
      which lands exactly on d (e.g. H=32: 32 -> 15 -> 8; H=128: 128 -> 63 -> 32 -> 16 -> 8);
    * n == 1: the max-pool with padding 1 (H -> H/2 = d; e.g. H=16 -> 8), no down block;
    * n == 0: no reduction (d = H).

    Decimal cell j of axis x stands for the fraction interval [j/d, (j+1)/d) of the coordinate on
    the heatmap grid (see ``hihlib.codecs.hih``).
    """

    def __init__(self, in_channels: int, num_landmarks: int, *, heatmap_size: int = 64, decimal_size: int = 8,
                 channels: int = 384):
        super().__init__()
        n = decimal_reductions(heatmap_size, decimal_size)
        self.decimal_size = decimal_size
        self.reduce = ConvBNReLU(in_channels, channels, 1)
        if n == 0:
            self.pool = nn.Identity()
        else:
            self.pool = nn.MaxPool2d(3, 2, padding=0 if n >= 2 else 1)
        self.down = nn.Sequential(*(DownBlock(channels) for _ in range(max(n - 1, 0))))
        self.out = nn.Sequential(ConvBNReLU(channels, channels, 1), nn.Conv2d(channels, num_landmarks, 1))
        nn.init.normal_(self.out[1].weight, std=1e-3)
        nn.init.zeros_(self.out[1].bias)

    def forward(self, feature: Tensor) -> Tensor:
        return self.out(self.down(self.pool(self.reduce(feature))))


def cell_windows(feature: Tensor, cells: Tensor, window: int) -> Tensor:
    """The feature vectors of a ``window x window`` block of cells at each landmark's integer cell.

    feature (B, w, H, W), cells (B, K, 2) integer (x, y) -> (B, K, w * window^2), channel-major. Even
    windows span cells i - (window/2 - 1) .. i + window/2 per axis (centred on i + 1/2, the middle of the
    span of HIH's decimal map: window 2 is cells i and i + 1), odd windows i - r .. i + r. Cells are
    clamped onto the map; cells of the block outside it read zeros."""
    B, w, H, W = feature.shape
    pad = window
    f = nn.functional.pad(feature, (pad, pad, pad, pad))                   # (B, w, H + 2p, W + 2p)
    first = -(window // 2 - 1) if window % 2 == 0 else -(window // 2)
    offsets = torch.arange(window, device=feature.device) + first
    cx = cells[..., 0].long().clamp(0, W - 1)
    cy = cells[..., 1].long().clamp(0, H - 1)
    rows = cy[..., None] + offsets + pad                                    # (B, K, n) padded rows
    cols = cx[..., None] + offsets + pad                                    # (B, K, n) padded columns
    index = (rows[..., :, None] * (W + 2 * pad) + cols[..., None, :]).flatten(1)   # (B, K*n*n)
    K = cells.shape[1]
    out = f.flatten(2).gather(2, index[:, None, :].expand(B, w, -1))      # (B, w, K*n*n)
    return out.view(B, w, K, window * window).permute(0, 2, 1, 3).reshape(B, K, w * window * window)


class LocalDecimalHead(nn.Module):
    """Decimal logits read at each landmark's integer cell (hihlib's extension of HIH).

    forward(feature (B, w, H, W), cells (B, K, 2) integer cells (x, y)) -> (B, K, d, d) logits.

    1. ``reduce``: 3x3 conv-BN-ReLU w -> c on the whole map (translation-equivariant, shared by all
       landmarks).
    2. Each landmark's window of ``window x window`` cells is gathered around its integer cell i,
       from i - (window/2 - 1) to i + window/2 per axis (cells -1..+2 for the default 4): the decimal
       map spans the fractions between the centres of cells i and i + 1, so the window is centred on
       that span. Cells outside the map read zeros.
    3. A per-landmark linear layer (weights (K, c * window^2, 2d)) gives d logits for x and d for y;
       the d x d logits are their outer sum, log p(jy, jx) = ly[jy] + lx[jx] + const, the same
       factorised form as the CSC soft label (a product of two 1-D Gaussians, ``hihlib.codecs.hih``).

    Why: the released head has to find each landmark in a global 8x8 map pooled from the whole face
    before it can say where inside its cell the landmark sits; this head is told the cell and only
    classifies the fraction, a local and translation-equivariant question. Parameters:
    w*c*9 + 2c (reduce) + K*(c*window^2 + 1)*2d (classifier); for w = 32, c = 16, window 4, K = 98,
    d = 8: 4.6 k + 403 k.
    """

    def __init__(self, in_channels: int, num_landmarks: int, *, decimal_size: int = 8, channels: int = 16,
                 window: int = 4):
        super().__init__()
        if window < 2 or window % 2:
            raise ConfigError(f"window must be an even number >= 2, got {window}")
        self.decimal_size, self.window = decimal_size, window
        self.reduce = ConvBNReLU(in_channels, channels, 3)
        fan_in = channels * window * window
        self.weight = nn.Parameter(torch.randn(num_landmarks, fan_in, 2 * decimal_size) * 1e-3)
        self.bias = nn.Parameter(torch.zeros(num_landmarks, 2 * decimal_size))

    def forward(self, feature: Tensor, cells: Tensor) -> Tensor:
        windows = cell_windows(self.reduce(feature), cells, self.window)   # (B, K, c * window^2)
        d = self.decimal_size
        logits = torch.einsum("bkf,kfo->bko", windows, self.weight.to(windows.dtype)) + self.bias.to(windows.dtype)
        lx, ly = logits[..., :d], logits[..., d:]
        return ly[..., :, None] + lx[..., None, :]                  # (B, K, d, d): rows y, columns x


class LandmarkModel(nn.Module):
    """Stacked hourglass + head. forward(images (B, 3, S, S), ImageNet-normalised) -> dict:

    "heatmaps" (B, stacks, K, H, W), "heatmap" (B, K, H, W) = last stack, and for the HIH heads
    "decimal" (B, K, d, d) logits. Attributes ``input_size`` (S, pixels), ``heatmap_size`` (H, cells),
    ``decimal_size`` (d, or None), ``decimal_channels`` (or None), ``num_landmarks`` (K), ``head``,
    ``config``.

    ``landmarks`` (B, K, 2) input pixels, optional: the training landmarks. Only ``hih_local`` reads
    them (its decimal head samples the ground-truth integer cell); without them it samples the argmax
    cell of the last integer map. Every other head ignores them, so a training loop always passes them.

    Works with ``model.to(memory_format=torch.channels_last)`` and under
    ``torch.autocast("cuda", dtype=torch.bfloat16)`` (outputs are then bf16; the losses compute in fp32).
    """

    def __init__(self, config: HourglassConfig, *, head: str = "hih", decimal_size: int = 8,
                 decimal_channels: int | None = None):
        super().__init__()
        if head not in HEADS:
            raise ConfigError(f"head must be one of {HEADS}, got {head!r}")
        self.config = config
        self.head = head
        self.input_size = config.input_size
        self.heatmap_size = config.heatmap_size
        self.num_landmarks = config.num_landmarks
        self.backbone = StackedHourglass(config, final_remap=head in HIH_HEADS)
        self.decimal_size = decimal_size if head in HIH_HEADS else None
        self.decimal_channels = None
        if head == "hih":
            require_released_buildable(config.heatmap_size, decimal_size)
        if head in ("hih", "hih_ext"):
            # 384 for the paper's width 256: keep the same 3/2 ratio for other widths.
            channels = self.decimal_channels = decimal_channels or 3 * config.width // 2
            self.decimal = DecimalHead(config.width, config.num_landmarks, heatmap_size=config.heatmap_size,
                                       decimal_size=decimal_size, channels=channels)
        if head == "hih_local":
            from ..codecs import get_codec

            channels = self.decimal_channels = decimal_channels or 16
            self.decimal = LocalDecimalHead(config.width, config.num_landmarks, decimal_size=decimal_size,
                                            channels=channels)
            # the codec's split of a coordinate into (integer cell, fraction): one definition of the cell
            self._cells = get_codec("hih", input_size=config.input_size, heatmap_size=config.heatmap_size,
                                    decimal_size=decimal_size).split
        if head == "h3r":
            prior = -math.log(config.heatmap_size ** 2 - 1)
            for stack in self.backbone.stacks:
                nn.init.constant_(stack.predict.bias, prior)

    def forward(self, images: Tensor, landmarks: Tensor | None = None) -> dict[str, Tensor]:
        feature, heatmaps = self.backbone(images)
        out = {"heatmaps": heatmaps, "heatmap": heatmaps[:, -1]}
        if self.head in ("hih", "hih_ext"):
            out["decimal"] = self.decimal(feature)
        elif self.head == "hih_local":
            if landmarks is not None:
                cells = self._cells(landmarks.float())[0]
            else:
                from ..codecs.gaussian import argmax_2d

                cells = torch.stack(argmax_2d(heatmaps[:, -1].detach()), -1)
            out["decimal"] = self.decimal(feature, cells)
        return out

    def extra_repr(self) -> str:
        return (f"head={self.head!r}, input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
                f"decimal_size={self.decimal_size}")
