"""hihlib: sub-pixel accurate face alignment with heatmaps.

Coordinate convention (used by every module; see ``hihlib.codecs.base`` for the details):
a pixel's centre sits at integer coordinates, so an image of width W spans x in [-0.5, W - 0.5];
landmarks are (x, y) in pixels, 0-based.
"""

__version__ = "0.1.0"

import os as _os

# OpenMP threads that spin while waiting (libgomp's default) take turns with other processes on a
# shared CPU and slow torch down by an order of magnitude: on this project's 2-core machine under a
# load of ~5, a training step of hg_tiny with 2 threads took 7.5 s with spinning and 0.26 s with
# sleeping threads (1 thread: 0.16 s). Read once, when torch loads: set before it, and only if the
# user has not chosen.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
