"""Device placement that the CUDA machine showed to be wrong, checked without a GPU (tests/test_cuda.py runs the
same code on CUDA where one is present)."""

import torch

from hihlib.codecs import get_codec
from hihlib.inference.export import LandmarkGraph
from hihlib import models
from hihlib.training import distributed


def test_bind_cuda_device_sets_only_an_indexed_device(monkeypatch):
    """``torch.cuda.set_device(torch.device("cuda"))`` raises on torch 2.11 ("Expected a torch.device with a
    specified index"): the Trainer binds only ``cuda:N`` (torchrun's rank device), never a bare ``cuda`` or the CPU."""
    calls = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda d: calls.append(d))
    for spec in ("cpu", "cuda", "cuda:1", "cuda:0"):
        distributed.bind_cuda_device(torch.device(spec))
    assert calls == [torch.device("cuda:1"), torch.device("cuda:0")]


def test_landmark_graph_buffers_follow_the_model_device():
    """A graph built around a model on another device keeps its normalisation and mirror buffers there (a CUDA
    model's graph failed with "found at least two devices, cuda:0 and cpu"). The meta device stands in for CUDA."""
    codec = get_codec("h3r", input_size=64, heatmap_size=16)
    model = models.create("hg_tiny", num_landmarks=3, head="h3r", heatmap_size=16, input_size=64, width=16,
                          depth=2).to("meta")
    graph = LandmarkGraph(model, codec, flip=True, mirror=[2, 1, 0])
    devices = {name: b.device.type for name, b in graph.named_buffers()}
    assert set(devices) >= {"network.scale", "network.shift", "decoder.mirror"}
    assert set(devices.values()) == {"meta"}
    cpu = LandmarkGraph(model.to_empty(device="cpu"), codec, flip=True, mirror=[2, 1, 0])
    assert {b.device.type for b in cpu.buffers()} == {"cpu"}
