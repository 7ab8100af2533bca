#!/usr/bin/env bash
# GPU readiness in one go (issue: no CUDA path of hihlib had run before):
#   tests  the CUDA tests (tests/test_cuda.py and the CUDA test of tests/test_codecs.py)
#   bench  training throughput of hih_b: fp32 eager vs bf16 + channels_last (+ torch.compile)
#          -> BENCHMARKS.md section train-cuda (benchmarks/train.py)
#   full   hih demo --full (the GPU profile of the demo) -> $OUT/demo_full/
#   long   hih demo --long (the two HIH heads trained 8x longer, curves)  -> $OUT/demo_long/
#   backbones  params, GFLOPs, ms/face (batch 1, 32; fp32, bf16) and training images/s of hg_tiny, hih_b,
#          HRNetV2-W18, MobileNetV2 -> BENCHMARKS.md section backbones-cuda (benchmarks/backbones.py)
#   decode every decoder against one memory pass on the GPU, interleaved (benchmarks/decode.py --device cuda)
#          -> BENCHMARKS.md section decode-cuda
# and a summary (each step's exit status and seconds) -> BENCHMARKS.md section gpu-check.
#
# Usage: bash benchmarks/gpu_check.sh [--smoke] [STEP ...]      (default: all six steps)
#   --smoke  CPU-sized versions of every step (the test suite runs this, so the script keeps working
#            on machines without a GPU): CUDA tests skip, the benchmark times hg_tiny on the CPU
#            without writing BENCHMARKS.md, the demos run a few steps on a few faces, the decode
#            benchmark times a batch of 2 faces on the CPU (--smoke).
# Environment: OUT (default runs/gpu_check) for the outputs, the demos' checkpoints included (never
# runs/demo/, where a user's own hih demo keeps its models); HIH_PYTHON (default python3).
# Works without installing hihlib (PYTHONPATH=repository), e.g. on a machine with torch but no
# network. Each GPU step has a time limit (tests 90 s, bench 150 s, full 150 s, long 90 s, backbones
# 90 s, decode 60 s): about 10 minutes in all, so run it as two calls on a lent GPU (e.g. `tests bench
# full` then `long backbones decode`); a step stopped at its limit shows exit 124 in the summary.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${HIH_PYTHON:-python3}
OUT=${OUT:-runs/gpu_check}
SMOKE=0
STEPS=()
for a in "$@"; do
  case $a in
    --smoke) SMOKE=1 ;;
    tests|bench|full|long|backbones|decode) STEPS+=("$a") ;;
    *) echo "gpu_check.sh: unknown argument '$a' (expected --smoke or tests, bench, full, long, backbones, decode)" >&2; exit 2 ;;
  esac
done
[ ${#STEPS[@]} -eq 0 ] && STEPS=(tests bench full long backbones decode)
mkdir -p "$OUT"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
HIH=("$PY" -m hihlib.cli)
SUMMARY="$OUT/summary.tsv"
: > "$SUMMARY"

run_step() {  # name timeout_seconds command...
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name: $*"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  echo -e "$name\t$rc\t$((SECONDS - t0))" >> "$SUMMARY"
  echo "== $name: exit $rc after $((SECONDS - t0)) s"
}

"$PY" - <<'PY' > "$OUT/environment.txt" 2>&1
import platform, torch
print("python", platform.python_version(), "| torch", torch.__version__, "| cuda", torch.version.cuda,
      "| available", torch.cuda.is_available())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.0f} GiB", p.multi_processor_count, "SMs")
PY
cat "$OUT/environment.txt"

for step in "${STEPS[@]}"; do
  case $step in
    tests)
      run_step tests "$([ $SMOKE = 1 ] && echo 300 || echo 90)" "$PY" -m pytest -q -o addopts="" -p no:cacheprovider tests/test_cuda.py \
        "tests/test_codecs.py::test_codecs_run_on_cuda" ;;
    bench)
      if [ $SMOKE = 1 ]; then
        run_step bench 240 "$PY" benchmarks/train.py --device cpu --models "" --small-models hg_tiny \
          --small-batch 2 --steps 1 --no-write
      else
        run_step bench 150 "$PY" benchmarks/train.py --device cuda --models hih_b --batch 128 --compile
      fi ;;
    full)
      if [ $SMOKE = 1 ]; then
        run_step full 300 "${HIH[@]}" demo --quick --steps 3 --train-faces 24 --test-faces 8 --out "$OUT/demo_full" --work-dir "$OUT/demo_full_checkpoints"
      else
        run_step full 150 "${HIH[@]}" demo --full --out "$OUT/demo_full" --work-dir "$OUT/demo_full_checkpoints"
      fi ;;
    long)
      if [ $SMOKE = 1 ]; then
        run_step long 300 "${HIH[@]}" demo --long --steps 10 --train-faces 24 --test-faces 8 --device cpu --out "$OUT/demo_long" --work-dir "$OUT/demo_long_checkpoints"
      else
        run_step long 90 "${HIH[@]}" demo --long --out "$OUT/demo_long" --work-dir "$OUT/demo_long_checkpoints"
      fi ;;
    backbones)
      if [ $SMOKE = 1 ]; then
        run_step backbones 240 "$PY" benchmarks/backbones.py --smoke
      else
        run_step backbones 90 "$PY" benchmarks/backbones.py --device cuda --repeat 10 --write
      fi ;;
    decode)
      if [ $SMOKE = 1 ]; then
        run_step decode 120 "$PY" benchmarks/decode.py --smoke
      else
        run_step decode 60 "$PY" benchmarks/decode.py --device cuda --rounds 30
      fi ;;
  esac
done

# the summary table, into BENCHMARKS.md on a GPU run (a smoke run only prints it)
"$PY" - "$SUMMARY" "$OUT" "$SMOKE" <<'PY'
import json, sys
from pathlib import Path

from hihlib.benchmarking import machine_description, markdown_table, write_section

summary, out, smoke = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
rows = [line.split("\t") for line in summary.read_text().splitlines() if line.strip()]
lines = [f"### GPU check (`bash benchmarks/gpu_check.sh`)\n\nOn {machine_description('cuda' if not smoke else 'cpu')}. "
         "Each step's exit status (0 = passed; 124 = stopped at its time limit) and wall seconds.\n",
         markdown_table(["step", "exit", "seconds"], rows)]
for name in ("demo_full", "demo_long"):
    f = out / name / "demo_results.json"
    if f.is_file():
        r = json.loads(f.read_text())
        c = r["claims"]
        lines.append(f"\n`hih demo --{name.split('_')[1]}`: {r['seconds_total']:.0f} s on {r['device']} "
                     f"({r.get('device_name', '')}); data: {r['data']}.\n")
        best = [[x["head"], x["heatmap"], x["stride"], x["decoder"], f"{x['nme']:.2f}", f"{x['fr']:.1f}",
                 f"{x['floor_nme']:.2f}"] for x in r["rows"]
                if x["decoder"] in ("argmax", "dark", "topk", "expectation")]
        lines.append(markdown_table(["head", "heatmap", "stride", "decoder", "NME %", "FR@0.1 %", "floor NME %"], best))
        lines.append("\nclaims: " + json.dumps({k: v for k, v in c.items() if k != "gap_argmax_minus_subpixel_nme"}))
md = "\n".join(lines)
print(md)
if not smoke:
    write_section("gpu-check", md)
PY
status=0
while IFS=$'\t' read -r name rc secs; do [ "$rc" = 0 ] || status=1; done < "$SUMMARY"
exit $status
