"""hihlib: sub-pixel accurate face alignment with heatmaps.

Coordinate convention (used by every module; see ``hihlib.codecs.base`` for the details):
a pixel's centre sits at integer coordinates, so an image of width W spans x in [-0.5, W - 0.5];
landmarks are (x, y) in pixels, 0-based.
"""

__version__ = "0.1.0"



def __getattr__(name: str):
    """``hihlib.Aligner`` (``hihlib.inference.predict.Aligner``), imported on first use: ``import hihlib`` stays light."""
    if name in ("Aligner", "Faces"):
        from .inference import predict

        return getattr(predict, name)
    raise AttributeError(f"module 'hihlib' has no attribute {name!r}")
