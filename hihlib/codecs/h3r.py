"""H3R: heatmap regression via randomized rounding (Yu & Tao, TPAMI 2021).

Encoding. A landmark at heatmap position u (cells, see ``hihlib.codecs.base``) is rounded *randomly*
on each axis: to floor(u) with probability 1 - frac(u) and to floor(u) + 1 with probability frac(u).
The target activates that single cell, so over many draws the four neighbouring cells are activated
with bilinear probabilities and E[q] = u exactly: the representation is unbiased. The draw is new at
every call (a new one per mini-batch); pass a ``torch.Generator`` to make it repeatable.

``expected(coords)`` is the mean of those draws, the bilinear soft target; it is what a network
trained on the random targets learns in the limit.

Decoding (``outputs["heatmap"]`` holds logits):
* ``topk``   softmax over the k largest logits of each map (k = 9 by default) and the average of their
  cell coordinates. For logits equal to log(expected target) this returns u exactly (lossless).
* ``argmax`` the single best cell (for comparison: the rounding error of 0.3826 cells).

At the crop's edge: the cells are centred on 0..H-1, so a landmark in the outer half cell (x < 1.5 or
x > S - 2.5 px at stride 4) is clamped onto the border cell, by the random draws and ``expected`` alike:
both decoders then return clamp(u, 0, H - 1), never a point outside the crop (as argmax does, and at most
half a cell from the landmark).

Frame: cells are read in hihlib's frame, x = s (u + 0.5) - 0.5 (``hihlib.codecs.base``). The released H3R
code (like mmpose) reads the same cell at x = s u; ``hihlib.codecs.convert_frame`` converts, and
``H3RCodec(frame="released_h3r")`` encodes and decodes in that frame (the codec of a converted released
H3R checkpoint, ``hihlib.inference.released_h3r``: its ``topk`` decoding is then the released decoder's).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .base import Codec, grid_coords, heatmap_to_pixels, pixels_to_heatmap, register
from .gaussian import argmax_decode, topk_cells


def topk_decode(logits: Tensor, k: int = 9) -> Tensor:
    """Softmax-weighted mean of the top-k cells. logits (B, K, H, W) -> (B, K, 2) cells."""
    vals, ix, iy = topk_cells(logits.float(), k)  # (B, K, k) each
    p = vals.softmax(-1)
    return torch.stack([(p * ix).sum(-1), (p * iy).sum(-1)], -1)


@register
class H3RCodec(Codec):
    """Randomized-rounding binary targets.

    Args: input_size, heatmap_size; k: number of cells used by ``topk`` decoding.
    Targets: {"heatmap": (B, K, H, W) float 0/1, one active cell per landmark}.
    Outputs decoded: {"heatmap": (B, K, H, W) logits}.
    """

    name = "h3r"
    methods = ("topk", "argmax")
    target_keys = ("heatmap",)

    def __init__(self, *, input_size: int = 256, heatmap_size: int = 64, k: int = 9, frame: str = "hihlib"):
        super().__init__(input_size=input_size, heatmap_size=heatmap_size)
        if frame not in ("hihlib", "released_h3r"):
            raise ValueError(f"h3r frame must be 'hihlib' or 'released_h3r', got {frame!r}")
        self.k = int(k)
        self.frame = frame

    def to_cells(self, xy: Tensor) -> Tensor:
        """Input pixels -> heatmap cells read in the codec's frame."""
        return pixels_to_heatmap(xy, self.stride, self.frame)

    def to_pixels(self, uv: Tensor) -> Tensor:
        """Heatmap cells read in the codec's frame -> input pixels (released_h3r: x = s u)."""
        return heatmap_to_pixels(uv, self.stride, self.frame)

    def round_randomly(self, coords: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """coords (B, K, 2) input pixels -> (B, K, 2) integer cells (float dtype), randomly rounded."""
        coords = self._check_coords(coords)
        u = self.to_cells(coords)
        base = torch.floor(u)
        gen_device = generator.device if generator is not None else u.device
        r = torch.rand(u.shape, generator=generator, device=gen_device, dtype=u.dtype).to(u.device)
        return (base + (r < (u - base)).to(u.dtype)).clamp(0, self.heatmap_size - 1)

    def encode(self, coords: Tensor, *, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """coords (B, K, 2) input pixels -> {"heatmap": (B, K, H, W) one-hot}, a fresh draw per call."""
        q = self.round_randomly(coords, generator)
        g = grid_coords(self.heatmap_size, device=q.device, dtype=q.dtype)
        hit_x = (g == q[..., 0:1]).to(q.dtype)  # (B, K, W)
        hit_y = (g == q[..., 1:2]).to(q.dtype)  # (B, K, H)
        return {"heatmap": hit_y[..., :, None] * hit_x[..., None, :]}

    def expected(self, coords: Tensor) -> dict[str, Tensor]:
        """The mean of the random targets: bilinear weights on the 4 cells around u. (B, K, H, W).

        A landmark outside the heatmap is clamped onto its border cells, as ``round_randomly`` does."""
        coords = self._check_coords(coords)
        # clamped onto the grid like the random draws, so a landmark outside the crop still has a target
        u = self.to_cells(coords).clamp(0, self.heatmap_size - 1)
        g = grid_coords(self.heatmap_size, device=u.device, dtype=u.dtype)
        wx = (1 - (g - u[..., 0:1]).abs()).clamp_min(0)  # (B, K, W)
        wy = (1 - (g - u[..., 1:2]).abs()).clamp_min(0)
        return {"heatmap": wy[..., :, None] * wx[..., None, :]}

    def perfect_outputs(self, targets: dict[str, Tensor]) -> dict[str, Tensor]:
        """Logits of a network that predicts the target probabilities exactly: their log."""
        return {"heatmap": targets["heatmap"].log()}

    def roundtrip(self, coords: Tensor, method: str | None = None) -> Tensor:
        """Decode the log of the *expected* target (what training on random draws converges to)."""
        return self.decode(self.perfect_outputs(self.expected(coords)), method)

    def decode_cells(self, logits: Tensor, method: str | None = None) -> Tensor:
        method = self._check_method(method)
        if method == "topk":
            return topk_decode(logits, self.k)
        return argmax_decode(logits)

    def decode(self, outputs: dict[str, Tensor], method: str | None = None) -> Tensor:
        """{"heatmap": (B, K, H, W) logits} -> (B, K, 2) input pixels."""
        return self.to_pixels(self.decode_cells(outputs["heatmap"], method).float())

    def __repr__(self) -> str:
        return (f"H3RCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, k={self.k}, "
                f"frame={self.frame!r})")
