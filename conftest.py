"""Test-suite wide settings.

``HIH_SMOKE=1`` puts every notebook (run by nbval, which inherits this environment) and every
long job into its fast smoke mode. Set ``HIH_SMOKE=0`` to run the notebooks in full.
"""

import os

os.environ.setdefault("HIH_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
