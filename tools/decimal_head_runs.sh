#!/usr/bin/env bash
# The long trained runs of the decimal-head study (issue 18), one at a time, niced, 1 torch thread.
# Each writes its row to OUT/<run key>.json; `python -m hihlib.studies.decimal_study --out figures/decimal_head
# --trained OUT` then folds them into results.json.
# usage: tools/decimal_head_runs.sh OUT [extra TrainedRun options, e.g. --spread aligned --width 32 --stop-at 11:15]
# The committed width-16 rows of figures/decimal_head: `tools/decimal_head_runs.sh runs/decimal_head` (demo spread)
# and `... --spread aligned --stop-at 11:15`, each head's run started side by side (two processes) to fit the
# session's time; about 30 min per 4,000-step run on 2 loaded cores. The width-32 and 2 x 64 rows came from
# tools/decimal_head_device.sh on a GPU (a width-32 run here took 1.8 s/step on the loaded 2 cores).
set -euo pipefail
out=${1:?usage: $0 OUT [options]}; shift
for head in hih hih_local; do
  OMP_NUM_THREADS=1 nice -n 10 python -m hihlib.studies.decimal_study train --out "$out" --head "$head" \
    --threads 1 --width 16 --batch-size 8 --steps 4000 "$@"
done
