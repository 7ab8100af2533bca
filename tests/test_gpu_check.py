"""benchmarks/gpu_check.sh keeps working on machines without a GPU: its --smoke mode runs every step
(CUDA tests, the training benchmark, the full and the long demo, the decode benchmark) at CPU size and passes."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_smoke_runs_every_step_and_passes(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path), "HIH_PYTHON": sys.executable, "OMP_NUM_THREADS": "2"}
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line.split("\t") for line in (tmp_path / "summary.tsv").read_text().splitlines()]
    assert [r[0] for r in rows] == ["tests", "bench", "full", "long", "decode"]
    assert all(r[1] == "0" for r in rows), rows
    for name in ("demo_full", "demo_long"):
        assert (tmp_path / name / "demo_results.json").is_file()
    assert (tmp_path / "demo_long" / "demo_long.png").is_file()
    assert "### GPU check" in proc.stdout
    assert "| h3r / topk |" in (tmp_path / "decode.log").read_text()  # the decode table, printed not written
