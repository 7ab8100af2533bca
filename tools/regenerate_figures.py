#!/usr/bin/env python
"""Regenerate the committed figures/ and notebook outputs: the one explicit command that writes them.

Everything else (the notebooks run by hand or by the tests, the widget check, ``hih demo``) writes its
figures to ``runs/figures/`` (``hihlib.viz.figure_dir()``), which git ignores. This tool sets
``HIH_FIGURES=figures`` and ``HIH_SMOKE=0`` and runs, in this order:

* every notebook given (default: all of notebooks/), executed in place with its outputs kept
  (``jupyter nbconvert --execute --inplace``; static widgets, one torch thread);
* with ``--widgets``: ``tools/check_widgets.py --full`` (the screenshots in figures/widgets/);
* with ``--long``: ``hih demo --long --out figures/long`` (about 20 minutes on 2 idle cores; notebooks 02
  and 04 show its figure);
* with ``--demo``: ``hih demo --out figures`` (the demo's figures and results table);
* with ``--replot``: ``hih demo --replot --out figures`` (the demo's figures and ``demo_results.md`` redrawn
  from the committed ``figures/demo_results.json``, no training; seconds);
* with ``--demo``, ``--long`` or ``--replot``: ``tools/update_readme.py`` (README.md's blocks written from those
  results).

    python tools/regenerate_figures.py                               # all notebooks (tens of minutes on a CPU)
    python tools/regenerate_figures.py notebooks/03_randomized_rounding.ipynb
    python tools/regenerate_figures.py --no-notebooks --widgets --demo

Review the result with ``git diff --stat figures notebooks`` before committing it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd: list[str], env: dict, cwd: Path) -> int:
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    code = subprocess.call(cmd, env=env, cwd=cwd)
    print(f"  exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
    return code


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("notebooks", nargs="*", help="notebooks to run (default: every notebooks/*.ipynb)")
    ap.add_argument("--no-notebooks", action="store_true", help="run no notebook")
    ap.add_argument("--widgets", action="store_true", help="also refresh figures/widgets/ (needs playwright, Chromium)")
    ap.add_argument("--demo", action="store_true", help="also run hih demo --out figures")
    ap.add_argument("--long", action="store_true", help="also run hih demo --long --out figures/long")
    ap.add_argument("--replot", action="store_true",
                    help="also redraw the demo's figures from figures/demo_results.json (no training)")
    ap.add_argument("--timeout", type=int, default=7200, help="seconds allowed per notebook")
    args = ap.parse_args(argv)

    env = dict(os.environ, HIH_FIGURES=str(ROOT / "figures"), HIH_SMOKE="0", HIH_WIDGETS="static",
               MPLBACKEND="Agg", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    failed = []
    notebooks = [] if args.no_notebooks else (
        [Path(n).resolve() for n in args.notebooks] or sorted((ROOT / "notebooks").glob("*.ipynb")))
    for nb in notebooks:
        if not nb.is_file():
            print(f"regenerate_figures: {nb}: no such notebook", file=sys.stderr)
            return 2
        if run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                f"--ExecutePreprocessor.timeout={args.timeout}", nb.name], env, nb.parent):
            failed.append(nb.name)
    if args.widgets and run([sys.executable, str(ROOT / "tools" / "check_widgets.py"), "--full"], env, ROOT):
        failed.append("check_widgets")
    if args.long and run([sys.executable, "-m", "hihlib.cli", "demo", "--long", "--out", str(ROOT / "figures" / "long")],
                         env, ROOT):
        failed.append("hih demo --long")
    if args.demo and run([sys.executable, "-m", "hihlib.cli", "demo", "--out", str(ROOT / "figures")], env, ROOT):
        failed.append("hih demo")
    if args.replot and not args.demo and run([sys.executable, "-m", "hihlib.cli", "demo", "--replot", "--out",
                                              str(ROOT / "figures")], env, ROOT):
        failed.append("hih demo --replot")
    if (args.demo or args.long or args.replot) and run([sys.executable, str(ROOT / "tools" / "update_readme.py")], env, ROOT):
        failed.append("update_readme")
    if failed:
        print("regenerate_figures: failed: " + ", ".join(failed), file=sys.stderr)
        return 1
    print("done: review with git diff --stat figures notebooks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
