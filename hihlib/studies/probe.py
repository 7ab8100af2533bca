"""Linear probes: does a network's feature map say where inside its cell a landmark sits?

Used by notebook 04 to diagnose HIH's decimal head: if a linear read-out of the trunk's feature at a
landmark's integer cell predicts the landmark's sub-cell fraction, the information is there and a
head that fails to learn it fails to *read* it.

* ``cell_features(feature, cells, window)``: the feature vectors of a ``window x window`` block of
  cells at each landmark's integer cell, flattened: (B, w, H, W), (B, K, 2) -> (B, K, w * window^2).
* ``ridge_probe(x_train, y_train, x_test, y_test, ridge)``: ridge regression fitted on the training
  rows (closed form), its R^2 on the test rows, per output column.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..models.heads import cell_windows


def cell_features(feature: Tensor, cells: Tensor, window: int = 2) -> Tensor:
    """feature (B, w, H, W), cells (B, K, 2) integer (x, y) -> (B, K, w * window^2): the block of cells
    that ``hih_local``'s decimal head reads (``hihlib.models.heads.cell_windows``)."""
    return cell_windows(feature, cells, window)


def ridge_probe(x_train: Tensor, y_train: Tensor, x_test: Tensor, y_test: Tensor, ridge: float = 1e-2) -> Tensor:
    """R^2 on the test rows of a ridge regression y ~ x (with intercept) fitted on the training rows.

    x (N, F), y (N, C) -> (C,) R^2 per output column (1: perfect, 0: no better than the training mean,
    negative: worse). Features are standardised with the training statistics (features constant on the
    training rows are left out); ``ridge`` is the penalty on the standardised weights, times N."""
    x_train, x_test = x_train.double(), x_test.double()
    y_train, y_test = y_train.double(), y_test.double()
    mu, sd = x_train.mean(0), x_train.std(0)
    # a feature constant on the training rows (a dead channel, zero padding) carries nothing the fit could
    # use, and dividing its test values by ~0 would blow the prediction up: it is left out
    sd = torch.where(sd > 1e-6 * sd.max().clamp_min(1e-30), sd, torch.full_like(sd, float("inf")))
    a, b = (x_train - mu) / sd, (x_test - mu) / sd
    y_mu = y_train.mean(0)
    n, f = a.shape
    w = torch.linalg.solve(a.T @ a + ridge * n * torch.eye(f, dtype=a.dtype), a.T @ (y_train - y_mu))
    pred = b @ w + y_mu
    ss_res = ((y_test - pred) ** 2).sum(0)
    ss_tot = ((y_test - y_test.mean(0)) ** 2).sum(0).clamp_min(1e-12)
    return (1 - ss_res / ss_tot).float()
