"""Quantization-error analysis: closed forms against Monte-Carlo, and NME scaling."""

import math

import numpy as np
import pytest
import torch

from hihlib.teaching.analysis import (ALL_DECODERS, FLOORING_ERROR, ROUNDING_ERROR, error_vs_resolution,
                             quantization_nme, uniform_coords)


def test_closed_forms_match_monte_carlo():
    g = torch.Generator().manual_seed(0)
    e = torch.rand(200_000, 2, generator=g, dtype=torch.float64)
    assert ROUNDING_ERROR == pytest.approx((e - 0.5).norm(dim=1).mean().item(), rel=3e-3)
    assert FLOORING_ERROR == pytest.approx(e.norm(dim=1).mean().item(), rel=3e-3)
    assert ROUNDING_ERROR == pytest.approx(0.3826, abs=1e-4)


def test_argmax_quantization_nme_is_rounding_error_over_normaliser():
    coords = uniform_coords(200, 20, margin=24, generator=torch.Generator().manual_seed(1))
    d = np.full(200, 60.0)  # a 60 px inter-ocular distance in a 256 crop
    out = quantization_nme(coords, d, "gaussian", "argmax", heatmap_size=64)
    assert out.shape == (200,)
    assert out.mean() == pytest.approx(ROUNDING_ERROR * 4 / 60, rel=0.02)


def test_error_vs_resolution_halves_with_doubled_resolution_for_argmax_and_vanishes_for_subpixel():
    coords = uniform_coords(40, 20, margin=40, generator=torch.Generator().manual_seed(2))
    d = np.full(40, 60.0)
    table = error_vs_resolution(coords, d, ALL_DECODERS, [32, 64])
    argmax = table[("gaussian", "argmax")]
    assert argmax[0] / argmax[1] == pytest.approx(2.0, rel=0.1)
    assert argmax[1] == pytest.approx(100 * ROUNDING_ERROR * 4 / 60, rel=0.05)
    for key in [("gaussian", "dark"), ("h3r", "topk"), ("hih", "expectation")]:
        assert (table[key] < 0.01 * argmax).all(), key
    assert table[("hih", "official")][1] == pytest.approx(argmax[1] / 8, rel=0.1)


def test_crop_coords_scales_dataset_landmarks_into_the_input_frame():
    from hihlib.teaching.analysis import crop_coords

    # a 100 px box at scale 1.25 becomes a 125 px square resized to 256: zoom 256 / 125
    lm = np.array([[[50.0, 60.0], [150.0, 160.0]], [[10.0, 10.0], [30.0, 10.0]]])
    boxes = np.array([[50.0, 60.0, 150.0, 160.0], [0.0, 0.0, 40.0, 20.0]])
    coords, zoom = crop_coords(lm, boxes, 256, 1.25)
    np.testing.assert_allclose(zoom, [256 / 125, 256 / 50])
    # the box centre lands on the crop centre (127.5 in the pixel-centre convention)
    centre = coords.mean(1)
    np.testing.assert_allclose(centre[0], [127.5, 127.5])
    # distances scale by the zoom, so an NME measured in either frame is the same
    np.testing.assert_allclose(np.linalg.norm(coords[1, 0] - coords[1, 1]), 20 * 256 / 50)
