"""Face-alignment metrics: NME, CED, failure rate and AUC (definitions as in the HIH paper's code).

* NME of a face = mean over landmarks of ||pred - gt|| / normaliser; a dataset's NME = mean over faces.
  The normaliser is a distance measured in the same frame as the errors (so NME is invariant to the
  similarity transform between an image and its crop).
* CED(t) = fraction of faces with NME <= t.  FR@t0 = 1 - CED(t0).
* AUC@t0 = integral_0^t0 CED(t) dt / t0, with t sampled every 1e-4 and Simpson's rule (as HIH does).

Named normalisers (``normaliser(scheme, kind)``; the pairs live in ``hihlib.data.schemes``):
WFLW inter-ocular (60, 72) and inter-pupil (96, 97); COFW inter-ocular (8, 9) and inter-pupil
(16, 17); 300W inter-ocular (36, 45).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

def normaliser(scheme: str, kind: str = "inter_ocular") -> tuple[int, int]:
    """Landmark index pair of a named normaliser, e.g. normaliser("cofw", "inter_pupil") == (16, 17).

    The pairs live in the landmark schemes (``hihlib.data.schemes``), the one place that defines them.
    """
    from .data.schemes import get_scheme

    return get_scheme(scheme).normaliser(kind)


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def norm_distances(gt, norm) -> torch.Tensor:
    """Per-face normalising distance. gt (B, K, 2); norm: (i, j) pair or (B,) distances -> (B,)."""
    gt = _as_tensor(gt).double()
    if isinstance(norm, tuple) or (isinstance(norm, Sequence) and len(norm) == 2 and isinstance(norm[0], int)):
        i, j = norm
        return (gt[:, i] - gt[:, j]).norm(dim=-1)
    d = _as_tensor(norm).double().to(gt.device).reshape(-1)
    if d.shape[0] != gt.shape[0]:
        raise ValueError(f"norm has {d.shape[0]} distances for {gt.shape[0]} faces")
    return d


def nme(pred, gt, norm) -> np.ndarray:
    """Per-face NME (a fraction, not %). pred, gt (B, K, 2) in the same frame; norm: an index pair such as
    (60, 72), or per-face distances (B,). Returns a float64 numpy array (B,)."""
    pred, gt = _as_tensor(pred).double(), _as_tensor(gt).double().to(_as_tensor(pred).device)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"pred and gt must both be (B, K, 2), got {tuple(pred.shape)} and {tuple(gt.shape)}")
    d = norm_distances(gt, norm)
    if (d <= 0).any():
        raise ValueError("a normalising distance is zero: the two landmarks coincide")
    per_face = (pred - gt).norm(dim=-1).mean(-1) / d
    return per_face.cpu().numpy()


def ced(nmes, thresholds) -> np.ndarray:
    """Fraction of faces with NME <= t, for each threshold t. Returns an array shaped like thresholds."""
    nmes = np.asarray(nmes, dtype=np.float64).reshape(-1)
    t = np.asarray(thresholds, dtype=np.float64)
    return (nmes[None, :] <= t.reshape(-1, 1)).mean(1).reshape(t.shape)


def failure_rate(nmes, threshold: float = 0.1) -> float:
    """FR@threshold = 1 - CED(threshold): the fraction of faces with NME above it."""
    return float(1.0 - ced(nmes, [threshold])[0])


def auc(nmes, threshold: float = 0.1, step: float = 1e-4) -> float:
    """AUC@threshold: integral of CED over [0, threshold] / threshold (Simpson's rule, t every ``step``)."""
    n = int(round(threshold / step))
    if n % 2:
        n += 1  # Simpson's rule needs an even number of intervals
    t = np.linspace(0.0, threshold, n + 1)
    y = ced(nmes, t)
    h = threshold / n
    integral = h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum())
    return float(integral / threshold)


def summary(nmes, threshold: float = 0.1) -> dict[str, float]:
    """{"nme": mean NME in %, "fr": FR@threshold in %, "auc": AUC@threshold (0..1), "n": faces}."""
    nmes = np.asarray(nmes, dtype=np.float64)
    return {"nme": 100 * float(nmes.mean()), "fr": 100 * failure_rate(nmes, threshold),
            "auc": auc(nmes, threshold), "n": int(nmes.size)}
