"""benchmarks/gpu_check.sh keeps working on machines without a GPU: its --smoke mode runs every step
(CUDA tests, the training benchmark, the full and the long demo, the backbones' costs, the decode benchmark) at CPU size and passes.

It runs in a copy of the repository holding a user's ``runs/demo`` (the trained models and results of
an earlier ``hih demo``): the smoke run must leave it byte for byte as it was and write nothing else
into the copy's ``runs/`` (issue 19: its ``hih demo`` calls once put their 3-step models there).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("benchmarks", "configs", "hihlib", "tests", "conftest.py", "pyproject.toml")


def make_user_runs(repo: Path) -> dict[Path, bytes]:
    """A user's runs/demo as ``hih demo`` leaves it (checkpoints under runs/demo/checkpoints)."""
    files = {"runs/demo/demo_results.json": b'{"rows": []}\n', "runs/demo/demo_results.md": b"# results\n",
             "runs/demo/checkpoints/hih_16/last.pt": os.urandom(4096),
             "runs/demo/checkpoints/gaussian_16/metrics.jsonl": b'{"kind": "train", "step": 1}\n'}
    for rel, data in files.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    return {repo / rel: data for rel, data in files.items()}


def test_gpu_check_smoke_runs_every_step_and_passes_and_keeps_the_users_runs(tmp_path):
    repo, out = tmp_path / "repo", tmp_path / "out"
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, repo / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, repo / name)
    user = make_user_runs(repo)
    env = {**os.environ, "OUT": str(out), "HIH_PYTHON": sys.executable, "OMP_NUM_THREADS": "2",
           "PYTHONPATH": str(repo)}
    proc = subprocess.run(["bash", str(repo / "benchmarks" / "gpu_check.sh"), "--smoke"], env=env, cwd=repo,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [line.split("\t") for line in (out / "summary.tsv").read_text().splitlines()]
    assert [r[0] for r in rows] == ["tests", "bench", "full", "long", "backbones", "decode", "decimal"]
    assert all(r[1] == "0" for r in rows), rows
    for name in ("demo_full", "demo_long"):
        assert (out / name / "demo_results.json").is_file()
    assert (out / "demo_long" / "demo_long.png").is_file()
    compare = json.loads((out / "decimal_head" / "compare.json").read_text())
    assert [r["head"] for r in compare] == ["hih", "hih_local"] and all(r["recipe"] == "released" for r in compare)
    assert "### GPU check" in proc.stdout
    # the user's runs/ survived byte for byte, and nothing was added to it
    for path, data in user.items():
        assert path.read_bytes() == data, f"{path.relative_to(repo)} was overwritten"
    assert sorted(p for p in (repo / "runs").rglob("*") if p.is_file()) == sorted(user)
    assert "| h3r / topk |" in (out / "decode.log").read_text()  # the decode table, printed not written
