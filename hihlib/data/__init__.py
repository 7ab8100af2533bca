"""Face data: records, landmark schemes, the WFLW / COFW / 300W loaders and the crop dataset.

Data flows one way: a loader's ``records`` (original-image pixels) -> ``FaceDataset`` (one affine
crop + augmentation per sample, landmarks in crop pixels) -> codec -> model.
"""

from .cache import CachedFaces, prepare_cache
from .cofw import COFW
from .dataset import FaceDataset, denormalize_image, normalize_batch, normalize_image, to_original
from .records import FaceRecord, landmark_box
from .schemes import COFW as COFW_SCHEME
from .schemes import W300 as W300_SCHEME
from .schemes import WFLW as WFLW_SCHEME
from .schemes import LandmarkScheme, get_scheme, wflw_to_300w, wflw_to_cofw
from .synthetic import SyntheticFaces
from .transforms import Augment
from .w300 import W300
from .wflw import WFLW

from .datasets import DATASETS, FILE_DATASETS, DatasetInfo, dataset_info


def open_dataset(name: str, root, split: str, *, skip_bad: bool = False):
    """The loader of a dataset read from files by name or alias (``"wflw"``, ``"cofw"``, ``"300w"`` /
    ``"w300"``), from the table of ``datasets.py``; every loader takes ``(root, split, *, skip_bad=False)``."""
    key = name.lower()
    info = next((d for d in DATASETS.values() if d.loader and (key == d.name or key in d.aliases)), None)
    if info is None:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(n for n, d in DATASETS.items() if d.loader)}")
    return info.open(root, split, skip_bad=skip_bad)


__all__ = [
    "COFW", "W300", "WFLW", "CachedFaces", "prepare_cache", "DATASETS", "FILE_DATASETS", "DatasetInfo", "dataset_info", "open_dataset", "FaceDataset", "FaceRecord", "LandmarkScheme",
    "get_scheme", "landmark_box", "wflw_to_300w", "wflw_to_cofw", "normalize_image", "normalize_batch", "denormalize_image",
    "to_original", "WFLW_SCHEME", "COFW_SCHEME", "W300_SCHEME", "SyntheticFaces", "Augment",
]
