"""hihlib: sub-pixel accurate face alignment with heatmaps.

Coordinate convention (used by every module; see ``hihlib.codecs.base`` for the details):
a pixel's centre sits at integer coordinates, so an image of width W spans x in [-0.5, W - 0.5];
landmarks are (x, y) in pixels, 0-based.

The package is laid out by layer (ARCHITECTURE.md). The module paths of the flat layout before it
(``hihlib.predict``, ``hihlib.train``, ``hihlib.demo`` ...) still import, as aliases of the modules'
homes (``MOVED``), so code and notebooks written against them keep working.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

__version__ = "0.1.0"

#: The flat layout's module paths -> their homes in the layered package (the same module object).
MOVED = {
    "hihlib.config": "hihlib.pipeline.config", "hihlib.build": "hihlib.pipeline.build",
    "hihlib.checkpoint": "hihlib.pipeline.checkpoint",
    "hihlib.evaluate": "hihlib.inference.evaluate", "hihlib.predict": "hihlib.inference.predict",
    "hihlib.export": "hihlib.inference.export", "hihlib.video": "hihlib.inference.video",
    "hihlib.convert": "hihlib.inference.convert", "hihlib.models.released": "hihlib.inference.released_hih",
    "hihlib.models.released_h3r": "hihlib.inference.released_h3r",
    "hihlib.train": "hihlib.training.trainer", "hihlib.distributed": "hihlib.training.distributed",
    "hihlib.analysis": "hihlib.teaching.analysis", "hihlib.widgets": "hihlib.teaching.widgets",
    "hihlib.viz_demo": "hihlib.viz.demo_figures",
    "hihlib.demo": "hihlib.studies.demo", "hihlib.claims": "hihlib.studies.claims",
    "hihlib.decimal_study": "hihlib.studies.decimal_study", "hihlib.probe": "hihlib.studies.probe",
    "hihlib.reproduce": "hihlib.studies.reproduce", "hihlib.benchmarking": "hihlib.studies.benchmarking",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module at its new home (one module object under both names)."""

    def find_spec(self, name, path=None, target=None):
        return importlib.util.spec_from_loader(name, self) if name in MOVED else None

    def create_module(self, spec):
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module):  # the module at its home is already executed
        pass


if not any(isinstance(f, _Alias) for f in sys.meta_path):
    sys.meta_path.append(_Alias())


def __getattr__(name: str):
    """``hihlib.Aligner`` (``hihlib.inference.predict.Aligner``), imported on first use: ``import hihlib`` stays light;
    ``hihlib.<old module>`` (``MOVED``) as an attribute."""
    if name in ("Aligner", "Faces"):
        from .inference import predict

        return getattr(predict, name)
    if f"hihlib.{name}" in MOVED:
        return importlib.import_module(f"hihlib.{name}")
    raise AttributeError(f"module 'hihlib' has no attribute {name!r}")
