"""One table of dataset facts (as mmpose's dataset metainfo): a frozen ``DatasetInfo`` per dataset.

Every fact that used to be written in several modules is written here once: the name and its
aliases, the title printed above results, the loader, the splits and their official face counts,
the landmark scheme (count, mirror permutation and normalisers live in ``schemes.py``), WFLW's
attributes and the files of their subset lists, and the evaluation policy: which splits ``hih eval``
reads, which subsets it reports and with which normalisers. The loaders (``wflw.py``, ``cofw.py``,
``w300.py``), ``data check``, the synthetic export, ``hih eval``, ``hih predict`` / ``export`` and
the published tables (``studies.reproduce``) read it.

Adding a dataset is one row here and one loader (a ``FaceSource`` taking ``(root, split, *, skip_bad)``)
plus its ``LandmarkScheme`` when it brings a new point set.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from ..errors import ConfigError
from .schemes import LandmarkScheme, get_scheme


@dataclass(frozen=True)
class DatasetInfo:
    """The facts of one dataset.

    name: the key ("wflw"); title: as papers write it ("WFLW"); aliases: other accepted keys;
    loader: "module:Class" of its ``FaceSource`` (None: generated faces, no files); env: the
    environment variable naming a download; splits: every split the loader opens; counts: split ->
    official number of faces (``hih data check``); check_splits: the splits ``data check`` opens (300W's
    "full" is common + challenge); scheme: the landmark scheme's name; attributes: per-face flags in
    the annotation's order; subset_files: attribute -> suffix of its subset list file; subset_counts:
    attribute -> official number of test faces. Evaluation policy (``hih eval``): eval_splits are read
    and concatenated (with more than one, each is also a subset, then "full"); eval_attributes adds
    ``full`` plus one subset per attribute; eval_norms are the normalisers reported (the first draws
    the CED).
    """

    name: str
    title: str
    loader: str | None
    scheme: str
    splits: tuple[str, ...]
    eval_splits: tuple[str, ...]
    eval_norms: tuple[str, ...]
    aliases: tuple[str, ...] = ()
    env: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    check_splits: tuple[str, ...] = ()
    attributes: tuple[str, ...] = ()
    subset_files: dict[str, str] = field(default_factory=dict)
    subset_counts: dict[str, int] = field(default_factory=dict)
    eval_attributes: bool = False

    @property
    def landmark_scheme(self) -> LandmarkScheme:
        return get_scheme(self.scheme)

    @property
    def num_points(self) -> int:
        return self.landmark_scheme.num_points

    @property
    def mirror(self) -> tuple[int, ...]:
        return tuple(self.landmark_scheme.mirror)

    @property
    def normalisers(self) -> dict[str, tuple[int, int]]:
        return dict(self.landmark_scheme.normalisers)

    def loader_class(self):
        """The loader class (imported on demand: the loaders import this table)."""
        if self.loader is None:
            raise ConfigError(f"dataset {self.name!r} has no files to open (generated faces)")
        module, _, cls = self.loader.partition(":")
        return getattr(importlib.import_module(module), cls)

    def open(self, root, split: str, *, skip_bad: bool = False):
        """The loader on ``root``'s ``split``."""
        return self.loader_class()(root, split, skip_bad=skip_bad)


_WFLW_ATTRIBUTES = ("pose", "expression", "illumination", "makeup", "occlusion", "blur")

DATASETS: dict[str, DatasetInfo] = {d.name: d for d in (
    DatasetInfo(
        name="wflw", title="WFLW", loader="hihlib.data.wflw:WFLW", scheme="wflw", env="HIH_WFLW_ROOT",
        splits=("train", "test"), counts={"train": 7500, "test": 2500}, check_splits=("train", "test"),
        attributes=_WFLW_ATTRIBUTES,
        subset_files={"pose": "largepose", "expression": "expression", "illumination": "illumination",
                      "makeup": "makeup", "occlusion": "occlusion", "blur": "blur"},
        subset_counts={"pose": 326, "expression": 314, "illumination": 698, "makeup": 206, "occlusion": 736,
                       "blur": 773},
        eval_splits=("test",), eval_attributes=True, eval_norms=("inter_ocular",)),
    DatasetInfo(
        name="cofw", title="COFW", loader="hihlib.data.cofw:COFW", scheme="cofw", env="HIH_COFW_ROOT",
        splits=("train", "test"), counts={"train": 1345, "test": 507}, check_splits=("train", "test"),
        # HRNet, PIPNet and HIH report inter-ocular (outer eye corners); ADNet and STAR inter-pupil
        eval_splits=("test",), eval_norms=("inter_ocular", "inter_pupil")),
    DatasetInfo(
        name="300w", title="300W", loader="hihlib.data.w300:W300", scheme="300w", aliases=("w300",),
        env="HIH_300W_ROOT", splits=("train", "common", "challenge", "full", "private"),
        counts={"train": 3148, "common": 554, "challenge": 135, "full": 689, "private": 600},
        check_splits=("train", "common", "challenge", "private"),
        eval_splits=("common", "challenge"), eval_norms=("inter_ocular",)),
    # generated faces carry WFLW's 98 points and six attributes; `hih eval` reads a held-out seed
    DatasetInfo(
        name="synth", title="synthetic", loader=None, scheme="wflw", splits=("train", "val"),
        attributes=_WFLW_ATTRIBUTES, eval_splits=("val",), eval_attributes=True, eval_norms=("inter_ocular",)),
)}

#: The datasets read from files (a download or a synthetic export in their format).
FILE_DATASETS: tuple[str, ...] = tuple(n for n, d in DATASETS.items() if d.loader is not None)


def dataset_info(name: str) -> DatasetInfo:
    """The row of ``name`` or one of its aliases (any case); ``ConfigError`` naming the choices."""
    key = name.lower()
    for info in DATASETS.values():
        if key == info.name or key in info.aliases:
            return info
    raise ConfigError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")


def attribute_order() -> tuple[str, ...]:
    """Display order of attribute subsets: each attribute, then its subset file's name where it differs
    (WFLW: pose, largepose, expression, ...)."""
    order: dict[str, None] = {}
    for info in DATASETS.values():
        for a in info.attributes:
            order.update(dict.fromkeys((a, info.subset_files.get(a, a))))
    return tuple(order)


__all__ = ["DatasetInfo", "DATASETS", "FILE_DATASETS", "dataset_info", "attribute_order"]
