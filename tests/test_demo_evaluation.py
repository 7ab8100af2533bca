"""``hihlib.studies.demo.evaluate_model`` (the evaluation of every demo model and of notebook 04's) against
an independent path: a network that outputs perfect maps must score exactly the representation floor,
which ``floor_nmes`` computes without the network, the loader or the batching. And the in-memory crop
sets of ``hihlib.data.in_memory`` hold the crops of the dataset they cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from hihlib import metrics
from hihlib.codecs import get_codec
from hihlib.data.in_memory import Repeat
from hihlib.studies.demo import PROFILES, evaluate_model, make_data

P = dataclasses.replace(PROFILES["quick"], num_train=4, num_test=70)   # 70 faces: two batches of predict_all


@pytest.fixture(scope="module")
def test_set():
    return make_data(P, seed=0)[1]


class PerfectMaps(torch.nn.Module):
    """Finds each input crop among ``crops`` and outputs the codec's perfect maps of its landmarks."""

    def __init__(self, codec, crops):
        super().__init__()
        self.codec, self.crops = codec, crops

    def forward(self, images):
        stored = self.crops.images.float().flatten(1)                              # (N, 3 * S * S)
        index = [int((stored == x.flatten()).all(1).nonzero()[0, 0]) for x in images]
        return self.codec.perfect_outputs(self.codec.encode(self.crops.landmarks[index].float()))


@pytest.mark.parametrize("head", ["gaussian", "hih_local"])
def test_a_perfect_network_scores_the_representation_floor(test_set, head):
    codec = get_codec("gaussian" if head == "gaussian" else "hih", input_size=P.input_size, heatmap_size=16)
    ev = evaluate_model(PerfectMaps(codec, test_set), codec, test_set, "cpu", head)
    assert [r["decoder"] for r in ev.rows] == list(codec.methods)
    for r in ev.rows:
        assert (r["head"], r["heatmap"], r["stride"]) == (head, 16, 4)
        assert r["nme"] == pytest.approx(r["floor_nme"], rel=1e-6, abs=1e-9), r
        assert r["nme"] == pytest.approx(100 * ev.nmes[r["decoder"]].mean(), rel=1e-12)
    gt = np.stack([rec.landmarks for rec in test_set.records])
    assert ev.preds["argmax"].shape == gt.shape == (P.num_test, 98, 2)
    np.testing.assert_allclose(metrics.nme(ev.preds["argmax"], gt, test_set.scheme.normaliser()), ev.nmes["argmax"])
    assert ev.integral is None


def test_cached_crops_hold_the_datasets_crops_and_repeat_cycles_them(test_set):
    from hihlib.data import FaceDataset

    source = FaceDataset(test_set.records, test_set.scheme, input_size=P.input_size, box="dataset")
    item = source[5]
    assert torch.equal(test_set[5]["image"], item["image"].half().float())        # stored in float16
    assert torch.equal(test_set[5]["landmarks"], item["landmarks"]) and torch.equal(test_set[5]["matrix"], item["matrix"])
    rep = Repeat(test_set, 150)
    assert len(rep) == 150 and rep[145]["index"] == 145 % P.num_test and rep.scheme is test_set.scheme
