"""hihlib.studies.probe: the feature gather matches indexing by hand, and the ridge probe's R^2 is ~1 for a
linear target, ~0 for noise."""

import torch

from hihlib.studies.probe import cell_features, ridge_probe


def test_cell_features_gathers_the_block_at_each_cell_as_indexing_by_hand():
    g = torch.Generator().manual_seed(0)
    feature = torch.randn(2, 3, 8, 8, generator=g)
    cells = torch.tensor([[[2, 5], [7, 0]], [[0, 0], [4, 3]]])
    out = cell_features(feature, cells, window=2)      # cells i and i + 1 per axis
    assert out.shape == (2, 2, 3 * 4)
    padded = torch.nn.functional.pad(feature, (1, 1, 1, 1))   # zeros outside the map
    for b in range(2):
        for k in range(2):
            x, y = cells[b, k].tolist()
            block = padded[b, :, y + 1:y + 3, x + 1:x + 3].reshape(3, 4)
            assert torch.equal(out[b, k].view(3, 4), block)


def test_ridge_probe_r2_is_one_for_a_linear_target_and_near_zero_for_noise():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2000, 10, generator=g)
    w = torch.randn(10, 2, generator=g)
    y = x @ w + 0.5
    r2 = ridge_probe(x[:1500], y[:1500], x[1500:], y[1500:], ridge=1e-6)
    assert torch.all(r2 > 0.999)
    noise = torch.randn(2000, 2, generator=g)
    r2 = ridge_probe(x[:1500], noise[:1500], x[1500:], noise[1500:])
    assert torch.all(r2.abs() < 0.03)


def test_ridge_probe_ignores_features_constant_in_training_even_if_they_vary_at_test_time():
    """A dead channel (zero on every training row) that is non-zero on a test row must not blow up."""
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1000, 5, generator=g)
    y = x[:, :2] * 2.0
    x_dead = torch.cat([x, torch.zeros(1000, 1)], 1)
    x_test = x_dead[800:].clone()
    x_test[:, -1] = 1.0
    r2 = ridge_probe(x_dead[:800], y[:800], x_test, y[800:], ridge=1e-6)
    assert torch.all(r2 > 0.999)
