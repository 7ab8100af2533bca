"""HIH's integer/decimal split written from the paper's definition, independently of the codec's formula.

Lan et al. 2021, section 3 (docs/REFERENCE.md section 2): a landmark's coordinate is represented by an
integer cell of the heatmap and a decimal cell of the d x d decimal map that spans exactly one integer
cell; each decimal cell is an *interval class* of the fraction. In hihlib's frame decimal cell j of
integer cell i stands for u in [i + (j - 1/2)/d, i + (j + 1/2)/d): the interval classes tile the axis, and
the two outermost classes of the map (i = 0, j = 0 and i = H - 1, j = d - 1) also hold what lies beyond
them (the landmark stays on the map). The released frame is the same tiling of u' = u + 1/2.

``interval_class`` finds, for every coordinate, the one class whose interval holds it by testing every
class of the map: no rounding formula, so a wrong rounding, tie or border rule in ``HIHCodec.split``
disagrees with it.
"""

import torch


def interval_class(u: torch.Tensor, heatmap_size: int, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """u (...,) heatmap cells -> (i, j) (...,) integer cell and decimal index of the class holding u."""
    i = torch.arange(heatmap_size, dtype=torch.float64).repeat_interleave(d)   # (H d,) every class
    j = torch.arange(d, dtype=torch.float64).repeat(heatmap_size)
    lo = i + (j - 0.5) / d
    hi = i + (j + 0.5) / d
    lo[0], hi[-1] = -torch.inf, torch.inf        # the outermost classes hold what lies beyond the map
    x = u.double()[..., None]
    inside = (lo <= x) & (x < hi)                # (..., H d)
    assert (inside.sum(-1) == 1).all(), "the interval classes must tile the axis"
    k = inside.double().argmax(-1)
    return i[k], j[k]
