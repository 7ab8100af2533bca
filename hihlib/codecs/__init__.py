"""Target representations (codecs): coordinates -> training targets -> coordinates.

``get_codec(name, input_size=256, heatmap_size=64, **options)`` with name in
``gaussian``, ``h3r``, ``hih``. The coordinate convention, and the peers' frames with their conversions
(``convert_frame``), are documented in ``hihlib.codecs.base``.
"""

from .base import (CODECS, FRAMES, Codec, cells_to_pixels, convert_frame, heatmap_to_pixels, pixels_to_cells,
                   pixels_to_heatmap, register)


def get_codec(name: str, input_size: int = 256, heatmap_size: int = 64, **options) -> Codec:
    """Build the codec ``name`` (gaussian | h3r | hih) for the given input and heatmap sizes."""
    _load_builtin()
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; choose one of {sorted(CODECS)}")
    known = _option_names(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        import difflib

        from ..errors import ConfigError

        near = difflib.get_close_matches(unknown[0], list(known), n=1, cutoff=0.6)
        hint = f"did you mean {near[0]}?" if near else (f"its options are {', '.join(known)}" if known else "it takes no option")
        raise ConfigError(f"unknown option {unknown[0]} of the {name} codec; {hint}")
    return CODECS[name](input_size=input_size, heatmap_size=heatmap_size, **options)


def _option_names(name: str) -> list[str]:
    import inspect

    params = inspect.signature(CODECS[name].__init__).parameters
    return [k for k in params if k not in ("self", "input_size", "heatmap_size")]


def accepted_options(name: str, options: dict) -> dict:
    """The subset of ``options`` that codec ``name`` takes (e.g. ``sigma`` is dropped for ``h3r``), so one
    set of options can be passed to every codec in a comparison."""
    import inspect

    _load_builtin()
    params = inspect.signature(CODECS[name].__init__).parameters
    return {k: v for k, v in options.items() if k in params and k not in ("self", "input_size", "heatmap_size")}


def _load_builtin() -> None:
    from . import gaussian, h3r, hih  # noqa: F401  (each module registers its codec)


__all__ = ["Codec", "CODECS", "FRAMES", "accepted_options", "get_codec", "register", "pixels_to_cells", "cells_to_pixels",
           "heatmap_to_pixels", "pixels_to_heatmap", "convert_frame"]
