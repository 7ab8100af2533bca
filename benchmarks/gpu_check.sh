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
#   decimal  the released decimal head at its own geometry and size (issue 18): hih_b (4 stacks, width 256,
#          256 px, heatmap 64 -> decimal 8), released recipe, heads hih and hih_local with the same trunk,
#          data and 1,000 steps (124 s and 113 s per head on an H200; --seconds 120 planned only 83 steps, its
#          timing probe counting the evaluation and CUDA's warm-up), on synthetic faces -> $OUT/decimal_head/
#          (rows as in figures/decimal_head/results.json: decimal KL vs the average-label KL, NME with
#          the decimal map vs the integer map alone)
#   suite  (not in the default steps) the whole test suite on that machine, notebooks excluded (it may lack
#          nbval), one thread per xdist worker: the tests that train and evaluate pick CUDA there
#          (train.device=auto); each result is printed as it comes (-v), so a stopped run still names its
#          failures -> $OUT/suite.log
# and a summary (each step's exit status and seconds) -> BENCHMARKS.md section gpu-check.
#
# Usage: bash benchmarks/gpu_check.sh [--smoke] [STEP ...]      (default: all seven steps)
#   --smoke  CPU-sized versions of every step (the test suite runs this, so the script keeps working
#            on machines without a GPU): CUDA tests skip, the benchmark times hg_tiny on the CPU
#            without writing BENCHMARKS.md, the demos run a few steps on a few faces, the decode
#            benchmark times a batch of 2 faces on the CPU (--smoke).
# Environment: OUT (default runs/gpu_check) for the outputs, the demos' checkpoints included (never
# runs/demo/, where a user's own hih demo keeps its models); HIH_PYTHON (default python3).
# Works without installing hihlib (PYTHONPATH=repository), e.g. on a machine with torch but no
# network. Each GPU step has a time limit (tests 90 s, bench 300 s, full 540 s, long 90 s, backbones
# 90 s, decode 60 s, decimal 330 s); a step stopped at its limit shows exit 124 in the summary. Measured on
# an H200 (2026-12-04, BENCHMARKS.md gpu-check): tests 21 s, decode 6 s, backbones 24 s; bench's eager and
# bf16 runs took most of 150 s and torch.compile did not finish in the rest; `full` renders 21,000 faces
# (110 s on 16 cores) before its 8 models, more than one 10-minute call holds with anything else. With a
# lent GPU's 15 minutes: `tests decode backbones` in one call, then `bench` or `full` or `decimal` alone.
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
    tests|bench|full|long|backbones|decode|decimal|suite) STEPS+=("$a") ;;
    *) echo "gpu_check.sh: unknown argument '$a' (expected --smoke or tests, bench, full, long, backbones, decode, decimal, suite)" >&2; exit 2 ;;
  esac
done
[ ${#STEPS[@]} -eq 0 ] && STEPS=(tests bench full long backbones decode decimal)
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
        run_step bench 300 "$PY" benchmarks/train.py --device cuda --models hih_b --batch 128 --compile
      fi ;;
    full)
      if [ $SMOKE = 1 ]; then
        run_step full 300 "${HIH[@]}" demo --quick --steps 3 --train-faces 24 --test-faces 8 --out "$OUT/demo_full" --work-dir "$OUT/demo_full_checkpoints"
      else
        run_step full 540 "${HIH[@]}" demo --full --out "$OUT/demo_full" --work-dir "$OUT/demo_full_checkpoints"
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
    decimal)
      if [ $SMOKE = 1 ]; then
        run_step decimal 300 "$PY" -m hihlib.studies.decimal_study compare --out "$OUT/decimal_head" --device cpu \
          --steps 2 --num-train 8 --num-test 4 --image-size 64 --input-size 64 --heatmap 32 --width 16 --num-stacks 1 \
          --depth 2 --batch-size 2 --point-stride 8
      else
        run_step decimal 330 "$PY" -m hihlib.studies.decimal_study compare --out "$OUT/decimal_head" --device cuda \
          --steps 1000 --num-train 2000 --num-test 300 --image-size 256 --input-size 256 --heatmap 64 --width 256 \
          --num-stacks 4 --depth 4 --batch-size 16 --point-stride 1
      fi ;;
    suite)
      workers=()
      "$PY" -c "import xdist" 2>/dev/null && workers=(-n "${HIH_SUITE_WORKERS:-12}")
      if [ $SMOKE = 1 ]; then
        run_step suite 300 "$PY" -m pytest -v -o addopts="" -p no:cacheprovider -rfE --tb=short tests/test_devices.py
      else
        OMP_NUM_THREADS=1 run_step suite 330 "$PY" -m pytest -v -o addopts="" -p no:cacheprovider "${workers[@]}" \
          -rfE --tb=short --durations=25 tests
      fi ;;
  esac
done

# the summary table, into BENCHMARKS.md on a GPU run (a smoke run only prints it)
"$PY" - "$SUMMARY" "$OUT" "$SMOKE" <<'PY'
import json, sys
from pathlib import Path

from hihlib.studies.benchmarking import machine_description, markdown_table, write_section

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
f = out / "decimal_head" / "compare.json"
if f.is_file():
    r = json.loads(f.read_text())
    lines.append(f"\nReleased decimal head at its geometry (`python -m hihlib.studies.decimal_study compare`, released recipe, "
                 f"{r[0]['input_size']} px, heatmap {r[0]['heatmap']} -> decimal {r[0]['decimal']}, "
                 f"{r[0]['num_stacks']} stacks of width {r[0]['width']}, {r[0]['steps']} steps of batch {r[0]['batch_size']}):\n")
    lines.append(markdown_table(["head", "decimal KL", "average-label KL", "NME % decimal (official)",
                                 "NME % expectation", "NME % integer map alone"],
                                [[x["head"], f"{x['decimal_kl']:.4f}", f"{x['average_label_kl']:.4f}", f"{x['nme_decimal']:.2f}",
                                  f"{x['nme_expectation']:.2f}", f"{x['nme_integer']:.2f}"] for x in r]))
md = "\n".join(lines)
print(md)
if not smoke:
    write_section("gpu-check", md)
PY
status=0
while IFS=$'\t' read -r name rc secs; do [ "$rc" = 0 ] || status=1; done < "$SUMMARY"
exit $status
