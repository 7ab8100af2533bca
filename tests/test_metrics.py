"""Metrics against hand-computed values."""

import numpy as np
import pytest
import torch

from hihlib.metrics import auc, ced, failure_rate, nme, normaliser, summary


def test_nme_with_index_pair_by_hand():
    gt = np.array([[[0.0, 0.0], [10.0, 0.0], [5.0, 5.0]]])
    pred = gt + np.array([[[3.0, 4.0], [0.0, 0.0], [0.0, -2.0]]])  # errors 5, 0, 2
    # normaliser |p0 - p1| = 10 -> (5 + 0 + 2) / 3 / 10
    assert nme(pred, gt, (0, 1))[0] == pytest.approx(7 / 30)


def test_nme_with_per_face_distances_and_torch_inputs():
    gt = torch.zeros(2, 2, 2)
    pred = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 0.0], [6.0, 8.0]]])  # face errors 1,1 and 0,10
    out = nme(pred, gt, torch.tensor([2.0, 5.0]))
    np.testing.assert_allclose(out, [0.5, 1.0])


def test_nme_rejects_coincident_normaliser_and_bad_shapes():
    gt = np.zeros((1, 3, 2))
    with pytest.raises(ValueError, match="zero"):
        nme(gt, gt, (0, 1))
    with pytest.raises(ValueError, match=r"\(B, K, 2\)"):
        nme(np.zeros((1, 3)), np.zeros((1, 3)), (0, 1))


def test_ced_and_failure_rate_by_hand():
    nmes = [0.02, 0.05, 0.05, 0.12]
    np.testing.assert_allclose(ced(nmes, [0.0, 0.02, 0.049, 0.05, 0.1, 0.2]), [0, 0.25, 0.25, 0.75, 0.75, 1.0])
    assert failure_rate(nmes, 0.1) == pytest.approx(0.25)
    assert failure_rate(nmes, 0.05) == pytest.approx(0.25)


def test_auc_matches_closed_form():
    # integral_0^T CED(t) dt / T = mean_i max(0, 1 - e_i / T)
    rng = np.random.default_rng(0)
    nmes = rng.uniform(0, 0.15, 500)
    closed = np.clip(1 - nmes / 0.1, 0, None).mean()
    assert auc(nmes, 0.1) == pytest.approx(closed, abs=2e-4)
    assert auc([0.0, 0.0], 0.1) == pytest.approx(1.0)
    assert auc([0.2], 0.1) == pytest.approx(0.0)


def test_summary_reports_percent():
    s = summary([0.04, 0.06, 0.2])
    assert s["nme"] == pytest.approx(10.0)
    assert s["fr"] == pytest.approx(100 / 3)
    assert s["n"] == 3


@pytest.mark.parametrize("scheme,kind,pair", [
    ("wflw", "inter_ocular", (60, 72)), ("wflw", "inter_pupil", (96, 97)),
    ("cofw", "inter_ocular", (8, 9)), ("cofw", "inter_pupil", (16, 17)), ("300w", "inter_ocular", (36, 45)),
])
def test_named_normalisers(scheme, kind, pair):
    assert normaliser(scheme, kind) == pair
