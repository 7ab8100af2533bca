"""Training losses for the three codecs, and ``make_loss(codec_name, **options)`` that assembles them.

Shapes: ``B`` faces, ``S`` stacks, ``K`` landmarks, ``H x W`` heatmap cells, ``d x d`` decimal cells.
Predictions may carry the stack axis, (B, S, K, H, W); every stack is then trained on the same
(B, K, H, W) target. Every loss computes in float32 (so bf16-autocast outputs are safe) and returns a
0-d tensor.

* ``heatmap_mse``: mean squared error over every element of every stack (as released: the stacks'
  MSEs are averaged, not summed).
* ``adaptive_wing``: Adaptive Wing loss (Wang et al., ICCV 2019), optionally with its weighted map.
* ``csc_kl``: HIH's coordinate soft-classification loss, KL(label || softmax(logits)) over the d*d
  decimal cells of each landmark, averaged over landmarks; the label is the codec's normalised
  Gaussian ``targets["decimal"]``.
* ``csc_official``: the released variant: label = softmax of the Gaussian *values* (peak 1), which is
  nearly flat (for sigma = 1 the peak cell gets about 4 % of the mass instead of 16 %), and the KL
  averaged over every element (B*K*d*d), i.e. d*d times smaller than ``csc_kl`` for the same maps.
* ``h3r_softmax_ce`` (H3R default): cross-entropy of a softmax over the H*W cells of each map.
* ``h3r_bce``: per-pixel binary cross-entropy with the positive weighted by ``H*W - 1`` (one
  positive per map against H*W - 1 negatives, so both classes carry the same total weight) and an
  optional focal factor.

Why the spatial softmax is the H3R default. A randomized-rounding target t is one-hot with
E[t] = p, the bilinear weights of the 4 cells around the landmark. The expected softmax
cross-entropy, -sum_c p_c log softmax(z)_c, is minimal exactly when softmax(z) = p, i.e. logits
z = log p + const: the top-k decoder (softmax over the largest logits, mean of their cells) then
returns the landmark exactly. The per-pixel BCE with positive weight w is minimal at
sigmoid(z) = w p / (w p + 1 - p), i.e. z = log p + log w - log(1 - p): the extra -log(1 - p) term grows
with p and pulls the top-k mean toward the nearest cell (on a 1-D map, a landmark a quarter cell
from a cell centre has p = (3/4, 1/4): odds 3 and 1/3, weights 9 : 1 instead of 3 : 1), which
reintroduces part of the rounding error that H3R removes. Measured with free logits (no network):
256 landmarks at random positions on an 8x8 map, 1500 Adam steps (lr 0.05 decayed linearly to 0),
each on a fresh randomized-rounding draw, then top-k decoding: mean error 0.022 cells with the
spatial softmax, 0.089 cells with the weighted BCE (nearest-cell rounding: 0.38 cells).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .errors import ConfigError


def _full(x: Tensor) -> Tensor:
    """float16/bfloat16 -> float32 (float64 stays float64)."""
    return x if x.dtype == torch.float64 else x.float()


def _stacked(pred: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """Float32 (B, S, K, ...) prediction and the target broadcast to it (a view, not a copy)."""
    pred = _full(pred)
    target = _full(target).to(pred.dtype)
    if pred.dim() == target.dim():
        pred = pred.unsqueeze(1)
    if pred.dim() != target.dim() + 1 or pred.shape[:1] + pred.shape[2:] != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} does not match target {tuple(target.shape)} "
                         "(expected (B, S, K, ...) or (B, K, ...) against (B, K, ...))")
    return pred, target.unsqueeze(1).expand_as(pred)


# -- heatmap regression (gaussian and HIH integer maps) -----------------------------------------------

def heatmap_mse(pred: Tensor, target: Tensor) -> Tensor:
    """pred (B, S, K, H, W) or (B, K, H, W), target (B, K, H, W) -> mean of (pred - target)^2."""
    pred, target = _stacked(pred, target)
    return F.mse_loss(pred, target)


def adaptive_wing(pred: Tensor, target: Tensor, *, alpha: float = 2.1, omega: float = 14.0, epsilon: float = 1.0,
                  theta: float = 0.5, weighted: bool = False, weight: float = 10.0,
                  threshold: float = 0.2) -> Tensor:
    """Adaptive Wing loss (Wang, Bo & Fuxin, ICCV 2019, eq. 6), mean over all elements.

    With y the target, e = |pred - y| and p = alpha - y:

        AWing = omega * ln(1 + (e / epsilon)^p)       if e < theta
                A * e - C                              otherwise
        A = omega / (1 + (theta/epsilon)^p) * p * (theta/epsilon)^(p - 1) / epsilon
        C = theta * A - omega * ln(1 + (theta/epsilon)^p)

    so the two pieces meet with equal value and slope at e = theta. ``weighted=True`` multiplies each
    element by ``weight * M + 1``, M being the 3x3 grey dilation of (y >= threshold) (the paper's
    weighted loss map, W = 10). pred (B, S, K, H, W) or (B, K, H, W), target (B, K, H, W).
    """
    pred, y = _stacked(pred, target)
    e = (pred - y).abs()
    p = alpha - y
    r = theta / epsilon
    a = omega / (1 + r ** p) * p * r ** (p - 1) / epsilon
    c = theta * a - omega * torch.log1p(r ** p)
    loss = torch.where(e < theta, omega * torch.log1p((e / epsilon) ** p), a * e - c)
    if weighted:
        mask = (target >= threshold).to(y.dtype)
        mask = F.max_pool2d(mask.flatten(0, -3).unsqueeze(1), 3, stride=1, padding=1).view_as(target)
        loss = loss * (weight * mask.unsqueeze(1) + 1)
    return loss.mean()


# -- HIH coordinate soft-classification (decimal maps) ------------------------------------------------

def csc_kl(logits: Tensor, label: Tensor) -> Tensor:
    """KL(label || softmax(logits)) over the d*d cells of each map, averaged over the B*K maps.

    logits (B, K, d, d); label (B, K, d, d) probabilities (each map sums to 1, the codec's
    ``targets["decimal"]``). Zero exactly when softmax(logits) == label. Unlike the cross-entropy,
    the label's entropy is subtracted, so a perfect prediction reads 0.
    """
    logq = F.log_softmax(_full(logits).flatten(-2), dim=-1)
    p = _full(label).flatten(-2)
    return (torch.xlogy(p, p) - p * logq).sum(-1).mean()


def official_soft_label(values: Tensor, *, flat: bool = False) -> Tensor:
    """The released HIH soft label: softmax over the d*d decimal cells of the Gaussian *values* (peak 1).

    values (..., d, d), or (..., d*d) with ``flat=True`` -> probabilities of the same shape. Much flatter
    than the codec's normalised Gaussian: for sigma = 1 its peak holds about 4 % of the mass, not 16 %.
    """
    return F.softmax(values, dim=-1) if flat else F.softmax(values.flatten(-2), dim=-1).view(values.shape)


def csc_official(logits: Tensor, label: Tensor) -> Tensor:
    """The released CSC loss: KL(softmax(g) || softmax(logits)) averaged over all B*K*d*d elements.

    g are the Gaussian *values* with peak 1, recovered from the normalised label as label / max(label)
    (exact when the label's peak falls on a cell centre, as in the released target generator).
    logits, label (B, K, d, d).
    """
    p = _full(label).flatten(-2)
    soft = official_soft_label(p / p.amax(-1, keepdim=True).clamp_min(1e-12), flat=True)
    logq = F.log_softmax(_full(logits).flatten(-2), dim=-1)
    return (torch.xlogy(soft, soft) - soft * logq).mean()


# -- H3R randomized-rounding targets -----------------------------------------------------------------

def h3r_softmax_ce(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of a spatial softmax: -sum_c t_c log softmax(z)_c / sum_c t_c per map, mean over maps.

    logits (B, S, K, H, W) or (B, K, H, W); target (B, K, H, W) one-hot (or any non-negative map,
    e.g. the codec's ``expected`` bilinear target; it is normalised per map). Maps whose target is
    all zero are left out of the mean.
    """
    z, t = _stacked(logits, target)
    logq = F.log_softmax(z.flatten(-2), dim=-1)
    t = t.flatten(-2)
    mass = t.sum(-1)
    per_map = -(t * logq).sum(-1) / mass.clamp_min(1e-12)
    valid = (mass > 0).float()
    return (per_map * valid).sum() / valid.sum().clamp_min(1)


def h3r_bce(logits: Tensor, target: Tensor, *, pos_weight: float | None = None, gamma: float = 0.0) -> Tensor:
    """Per-pixel binary cross-entropy with explicit class balance, mean over all elements.

    loss = -[w t (1 - s)^gamma log s + (1 - t) s^gamma log(1 - s)], s = sigmoid(z),
    w = ``pos_weight``, by default H*W - 1 (the number of negatives per positive).
    ``gamma > 0`` adds the focal factor (Lin et al. 2017). logits (B, S, K, H, W) or (B, K, H, W),
    target (B, K, H, W) in [0, 1].
    """
    z, t = _stacked(logits, target)
    if pos_weight is None:
        pos_weight = z.shape[-1] * z.shape[-2] - 1
    log_s = F.logsigmoid(z)
    log_1s = F.logsigmoid(-z)
    pos, neg = -pos_weight * t * log_s, -(1 - t) * log_1s
    if gamma:
        pos = pos * (1 - log_s.exp()) ** gamma
        neg = neg * log_s.exp() ** gamma
    return (pos + neg).mean()


# -- assembling the loss of a codec -----------------------------------------------------------------

HEATMAP_LOSSES = ("mse", "awing")
DECIMAL_LOSSES = ("kl", "official")
H3R_LOSSES = ("softmax", "bce")


class LandmarkLoss:
    """``loss(outputs, targets) -> (total, parts)``.

    outputs: the model's dict ("heatmaps" (B, S, K, H, W), or "heatmap" (B, K, H, W); "decimal"
    (B, K, d, d) logits for HIH). targets: the codec's dict ("heatmap", and "decimal" for HIH).
    total: 0-d float32 tensor to backpropagate. parts: detached 0-d tensors by name ("heatmap",
    "decimal" for HIH, and "total"); no GPU sync happens until the caller reads them (``float(v)``).
    """

    def __init__(self, codec_name: str, heatmap: Callable[[Tensor, Tensor], Tensor],
                 decimal: Callable[[Tensor, Tensor], Tensor] | None = None, decimal_weight: float = 0.0,
                 description: str = ""):
        self.codec_name = codec_name
        self.heatmap = heatmap
        self.decimal = decimal
        self.decimal_weight = decimal_weight
        self.description = description
        self.options: dict = {}   # set by ``make_loss``: every option, defaults included

    def __call__(self, outputs: dict[str, Tensor], targets: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        pred = outputs["heatmaps"] if "heatmaps" in outputs else outputs["heatmap"]
        parts = {"heatmap": self.heatmap(pred, targets["heatmap"])}
        total = parts["heatmap"]
        if self.decimal is not None:
            parts["decimal"] = self.decimal(outputs["decimal"], targets["decimal"])
            total = total + self.decimal_weight * parts["decimal"]
        parts["total"] = total
        return total, {k: v.detach() for k, v in parts.items()}

    def __repr__(self) -> str:
        return f"LandmarkLoss({self.codec_name}: {self.description})"


#: HIH's weight of the CSC term. The released code weighs 0.05 x a KL averaged over the d*d = 64 decimal
#: cells; ``csc_kl`` is a KL per landmark (64 x larger), so 0.05 / 64 keeps the released balance between
#: the integer maps and the decimal map.
DECIMAL_WEIGHT = 0.05 / 64


@dataclasses.dataclass(frozen=True)
class LossOptions:
    """The options of a codec's loss and their defaults (see ``make_loss``); a checkpoint stores them as a dict."""

    heatmap_loss: str = "mse"
    awing: dict | None = None
    decimal_loss: str = "kl"
    decimal_weight: float = DECIMAL_WEIGHT
    h3r_loss: str = "softmax"
    pos_weight: float | None = None
    gamma: float = 0.0


def make_loss(codec_name: str, **options) -> LandmarkLoss:
    """The training loss of codec ``codec_name`` ("gaussian", "h3r" or "hih"); ``options`` are fields of
    ``LossOptions`` (their defaults are the only ones). ``hihlib.pipeline.build.build_loss`` builds the
    loss of a configuration through it.

    * gaussian: ``heatmap_loss`` "mse" (default) or "awing" (keyword options in ``awing``, e.g.
      ``{"weighted": True}``) on every stack.
    * hih: the same on the integer maps + ``decimal_weight`` (``DECIMAL_WEIGHT`` = 0.05 / 64: the released
      0.05 on a KL averaged over the 64 decimal cells, for the per-landmark KL here) x CSC, where
      ``decimal_loss`` is "kl" (default: normalised label, KL per landmark) or "official" (softmax of
      the Gaussian values, KL averaged over elements; see ``csc_official``).
    * h3r: ``h3r_loss`` "softmax" (default, see the module docstring) or "bce" (``pos_weight``,
      default H*W - 1, and focal ``gamma``).

    Options that do not concern the codec (e.g. ``decimal_loss`` for gaussian) are ignored, so one
    loss section can serve configs of every codec. Unknown options raise ``ConfigError`` (so a typo in
    a YAML config is reported, not ignored). The loss's ``options`` holds every option, defaults included.
    """
    allowed = [f.name for f in dataclasses.fields(LossOptions)]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ConfigError(f"unknown loss option(s) {unknown}; expected some of {allowed}")
    opts = LossOptions(**options)
    loss = _assemble(codec_name, opts)
    loss.options = dataclasses.asdict(opts)
    return loss


def _assemble(codec_name: str, o: LossOptions) -> LandmarkLoss:
    heatmap_loss, awing, decimal_loss, decimal_weight = o.heatmap_loss, o.awing, o.decimal_loss, o.decimal_weight
    h3r_loss, pos_weight, gamma = o.h3r_loss, o.pos_weight, o.gamma
    if codec_name not in ("gaussian", "h3r", "hih"):
        raise ConfigError(f"no loss for codec {codec_name!r}; expected 'gaussian', 'h3r' or 'hih'")
    if codec_name == "h3r":
        if h3r_loss == "softmax":
            return LandmarkLoss(codec_name, h3r_softmax_ce, description="spatial softmax cross-entropy")
        if h3r_loss == "bce":
            fn = lambda z, t: h3r_bce(z, t, pos_weight=pos_weight, gamma=gamma)  # noqa: E731
            return LandmarkLoss(codec_name, fn, description=f"BCE pos_weight={pos_weight or 'H*W-1'} gamma={gamma}")
        raise ConfigError(f"h3r_loss must be one of {H3R_LOSSES}, got {h3r_loss!r}")

    if heatmap_loss == "mse":
        heat = heatmap_mse
    elif heatmap_loss == "awing":
        opts = dict(awing or {})
        try:
            adaptive_wing(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 3, 3), **opts)
        except TypeError as e:
            raise ConfigError(f"bad Adaptive Wing option in {opts}: {e}") from None
        heat = lambda p, t: adaptive_wing(p, t, **opts)  # noqa: E731
    else:
        raise ConfigError(f"heatmap_loss must be one of {HEATMAP_LOSSES}, got {heatmap_loss!r}")
    if codec_name == "gaussian":
        return LandmarkLoss(codec_name, heat, description=heatmap_loss)

    if decimal_loss not in DECIMAL_LOSSES:
        raise ConfigError(f"decimal_loss must be one of {DECIMAL_LOSSES}, got {decimal_loss!r}")
    dec = csc_kl if decimal_loss == "kl" else csc_official
    if not (isinstance(decimal_weight, (int, float)) and math.isfinite(decimal_weight) and decimal_weight >= 0):
        raise ConfigError(f"decimal_weight must be a finite number >= 0, got {decimal_weight!r}")
    return LandmarkLoss(codec_name, heat, dec, float(decimal_weight),
                        description=f"{heatmap_loss} + {decimal_weight} x CSC ({decimal_loss})")
