"""What every dataset loader shares: records, a scheme, and an account of what was skipped.

Loaders are strict by default: the first malformed line raises ``DataError`` naming the file, the
line and what was expected. With ``skip_bad=True`` they keep going, leave the bad samples out and
list them in ``skipped`` (the caller reports how many). ``data_source`` picks the folder a notebook
reads: a real download, or a synthetic export in the same format.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from pathlib import Path

from ..errors import ConfigError, DataError, HihError
from .datasets import dataset_info
from .records import FaceRecord
from .schemes import LandmarkScheme


class FaceSource:
    """Base of ``WFLW``, ``COFW`` and ``W300``: a list of ``FaceRecord`` and its scheme.

    Attributes: ``root`` (Path), ``split``, ``scheme`` (LandmarkScheme), ``records`` (list of
    FaceRecord), ``skipped`` (DataError per sample left out with ``skip_bad``), ``problems``
    (DataError for inconsistencies that do not invalidate a sample, e.g. subset list mismatches).
    """

    name = "base"
    splits: tuple[str, ...] = ()

    def __init__(self, root, split: str, scheme: LandmarkScheme, *, skip_bad: bool = False):
        if split not in self.splits:
            raise ConfigError(f"split {split!r}: expected one of {', '.join(self.splits)} ({type(self).__name__})")
        self.root = Path(root)
        self.split = split
        self.scheme = scheme
        self.skip_bad = skip_bad
        self.records: list[FaceRecord] = []
        self.skipped: list[DataError] = []
        self.problems: list[DataError] = []

    def _bad(self, error: DataError) -> None:
        """A sample that cannot be used: raise, or remember it when skipping bad samples."""
        if not self.skip_bad:
            raise error
        self.skipped.append(error)

    def _warn_skipped(self) -> None:
        if self.skipped:
            warnings.warn(f"{type(self).__name__}({self.root}, {self.split!r}): skipped {len(self.skipped)} bad "
                          f"sample(s); first: {self.skipped[0]}", stacklevel=3)

    def missing_images(self) -> list[DataError]:
        """One ``DataError`` per face whose image file does not exist, naming the image and the
        annotation (file:line) that lists it. One ``stat`` per distinct file, nothing decoded."""
        exists: dict[str, bool] = {}
        errors = []
        for r in self.records:
            if r.image_path is None:
                continue
            if r.image_path not in exists:
                exists[r.image_path] = os.path.isfile(r.image_path)
            if not exists[r.image_path]:
                errors.append(DataError(r.image_path, None, f"an image file (the image of {r.key})", "no such file"))
        return errors

    def drop(self, errors: list[DataError]) -> None:
        """Leave out the faces whose image file ``errors`` name, and list the errors in ``skipped``."""
        paths = {e.path for e in errors}
        if paths:
            self.records = [r for r in self.records if r.image_path not in paths]
            self.skipped += list(errors)

    def check_images(self, progress: bool = False) -> list[DataError]:
        """Decode every image once; one ``DataError`` per image that cannot be read."""
        errors, seen = [], set()
        for record in _progress(self.records, progress, f"{self.name} {self.split} images"):
            name = record.image_path or record.key
            if name in seen:
                continue
            seen.add(name)
            try:
                record.load_image()
            except DataError as e:
                errors.append(e)
        return errors

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> FaceRecord:
        return self.records[i]

    def __iter__(self):
        return iter(self.records)

    def dataset(self, **kwargs):
        """A ``FaceDataset`` over these records (keyword arguments as ``FaceDataset``)."""
        from .dataset import FaceDataset

        return FaceDataset(self.records, self.scheme, **kwargs)

    def __repr__(self) -> str:
        extra = f", skipped={len(self.skipped)}" if self.skipped else ""
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, faces={len(self.records)}{extra})"


def _progress(items, enabled: bool, desc: str):
    if not enabled:
        return items
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, leave=False, dynamic_ncols=True)


# -- the dataset a notebook reads ---------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class DataSource:
    """A dataset folder and what it holds: the real download, or a synthetic export in its format.

    description: one line to print above every result computed on it.
    """

    dataset: str
    root: Path
    synthetic: bool
    description: str


def data_source(dataset: str, root: str | os.PathLike | None = None, *, env: str | None = None,
                synth_dir: str | os.PathLike | None = None, synth: dict | None = None) -> DataSource:
    """The real dataset when ``root`` (or the environment variable ``env``) names a folder, else a
    synthetic export in the dataset's format, as ``hih data synth --format DATASET`` writes it.

    root: explicit folder (wins over ``env``); env: e.g. "HIH_WFLW_ROOT" (default: the dataset's, from the
    table of ``datasets.py``; "" for none); synth_dir: where to write
    the export (default: a temporary folder); synth: options of ``synthetic_export.export`` (``train``
    and ``test`` face counts, default 200 and 100; ``seed``, ``image_size``). A root that is given but
    does not exist is an error (a typo must not silently fall back to synthetic data).
    """
    from .synthetic_export import export

    info = dataset_info(dataset)
    name, env = info.title, info.env if env is None else env
    given = root if root is not None else (os.environ.get(env) if env else None)
    if given:
        path = Path(given).expanduser()
        if not path.exists():
            raise HihError(f"{path}: the {name} folder does not exist"
                           + (f" (from ${env})" if root is None and env else ""))
        return DataSource(dataset, path, False, f"{name} from {path}")
    import tempfile

    out = Path(synth_dir) if synth_dir is not None else Path(tempfile.mkdtemp(prefix=f"hih_synth_{dataset}_"))
    options = {"train": 200, "test": 100, **(synth or {})}
    export(dataset, out, options.pop("train"), options.pop("test"), **options)
    return DataSource(dataset, out, True,
                      f"SYNTHETIC faces exported in the {name} format to {out} (not {name}: "
                      f"set {env or 'the root'} to a {name} download for real numbers)")
