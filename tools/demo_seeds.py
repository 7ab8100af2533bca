#!/usr/bin/env python
"""Measure how much ``hih demo`` varies from run to run: the same profile with several seeds.

Runs ``hih demo --seed S`` for each seed, one after another (each in its own output and checkpoint
folder under ``--work``), or reads finished runs (``--from DIR ...``, each holding a
``demo_results.json``), and writes the spread (``hihlib.studies.claims.seed_spread``) to ``--out``
(default ``figures/demo_seeds.json``; ``tools/update_readme.py`` writes the README's sentence from it).

    python tools/demo_seeds.py --seeds 0 1 2 3 --work /tmp/demo_seeds     # about 7 min per seed on 2 idle cores
    python tools/demo_seeds.py --from figures /tmp/demo_seeds/seed1 /tmp/demo_seeds/seed2
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hihlib.studies.claims import same_seed_repeat, seed_spread  # noqa: E402
from hihlib.io import write_json  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3], help="seeds to run")
    ap.add_argument("--from", dest="dirs", nargs="+", default=None, help="read these finished runs instead")
    ap.add_argument("--work", default="runs/demo_seeds", help="folder for the runs' outputs and checkpoints")
    ap.add_argument("--profile", choices=("quick", "cpu", "full"), default=None, help="demo profile (default: the demo's)")
    ap.add_argument("--same-seed", nargs="+", default=None,
                    help="folder of another run with the first run's seed (e.g. another thread count): recorded as "
                         "the same-seed repeat, the variation that remains with the seed fixed")
    ap.add_argument("--same-seed-note", nargs="+", default=None, help="what each --same-seed run is (recorded beside it)")
    ap.add_argument("--out", default=str(ROOT / "figures" / "demo_seeds.json"))
    args = ap.parse_args(argv)
    dirs = [Path(d) for d in args.dirs] if args.dirs else []
    if not dirs:
        for s in args.seeds:
            d = Path(args.work) / f"seed{s}"
            cmd = [sys.executable, "-m", "hihlib.cli", "demo", "--seed", str(s), "--out", str(d),
                   "--work-dir", str(Path(args.work) / f"checkpoints{s}")] + ([f"--{args.profile}"] if args.profile else [])
            print("$", " ".join(cmd), flush=True)
            if subprocess.call(cmd, cwd=ROOT):
                print(f"demo_seeds: seed {s} failed", file=sys.stderr)
                return 1
            dirs.append(d)
    runs = []
    for d in dirs:
        try:
            run = json.loads((d / "demo_results.json").read_text())
        except (OSError, ValueError) as e:
            print(f"demo_seeds: {d / 'demo_results.json'}: expected a hih demo results file ({e.__class__.__name__})",
                  file=sys.stderr)
            return 2
        run.setdefault("seed", int(run["data"].split(" training faces seed ")[1].split(",")[0]))  # older results
        runs.append(run)
    spread = seed_spread(runs)
    # each run as the results file describes it (no local paths: this file is committed)
    spread["runs"] = [{k: run.get(k) for k in ("seed", "seconds_total", "torch_threads", "load_average_start",
                                               "device_name")} for run in runs]
    if args.same_seed:
        notes = args.same_seed_note or [""] * len(args.same_seed)
        spread["same_seed_repeats"] = []
        for folder, note in zip(args.same_seed, notes):
            other = json.loads((Path(folder) / "demo_results.json").read_text())
            spread["same_seed_repeats"].append({**same_seed_repeat(runs[0], other), "note": note})
    write_json(Path(args.out), spread)
    for k, v in spread["spread"].items():
        print(f"{k:40s} " + " ".join(f"{x:6.2f}" for x in v["values"]) + f"   sd {v['sd']:.2f}  range {v['max'] - v['min']:.2f}")
    print(f"claims held: {spread['claims_held']}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
