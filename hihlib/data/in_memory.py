"""Crop sets kept in memory: a ``FaceDataset`` computed once (``CachedCrops``) and repeated to a fixed
epoch length (``Repeat``). The demo (``hihlib.studies.demo``) and the decimal-head study
(``hihlib.studies.decimal_study``) train every model on the same crops in the same order with them.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset


class CachedCrops(Dataset):
    """A ``FaceDataset`` computed once and kept in memory (images in float16 to halve the memory).

    Items are FaceDataset's: "image" (3, S, S) float32, "landmarks" (K, 2) crop pixels, "matrix"
    (2, 3) original -> crop, "index". ``workers`` > 0 renders and crops in that many processes.
    Attributes: ``images`` (N, 3, S, S) float16, ``landmarks`` (N, K, 2), ``matrices`` (N, 2, 3),
    and the source's ``records`` and ``scheme``.
    """

    def __init__(self, dataset, workers: int = 0):
        loader = DataLoader(dataset, batch_size=64, num_workers=workers, collate_fn=stack_items)
        parts = list(loader)
        self.images = torch.cat([p["image"] for p in parts])
        self.landmarks = torch.cat([p["landmarks"] for p in parts])
        self.matrices = torch.cat([p["matrix"] for p in parts])
        self.records, self.scheme = dataset.records, dataset.scheme

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        return {"image": self.images[i].float(), "landmarks": self.landmarks[i], "matrix": self.matrices[i], "index": i}


def stack_items(items: list[dict]) -> dict:
    """FaceDataset items -> {"image" (B, 3, S, S) float16, "landmarks" (B, K, 2), "matrix" (B, 2, 3)}."""
    return {"image": torch.stack([it["image"] for it in items]).half(),
            "landmarks": torch.stack([it["landmarks"] for it in items]),
            "matrix": torch.stack([it["matrix"] for it in items])}


class Repeat(Dataset):
    """``base`` repeated so that one "epoch" holds ``length`` samples (item i is ``base[i % len(base)]``)."""

    def __init__(self, base, length: int):
        self.base, self.length = base, length
        self.records, self.scheme = base.records, base.scheme

    def __len__(self):
        return self.length

    def __getitem__(self, i):
        return self.base[i % len(self.base)]
