"""Test-suite wide settings.

``HIH_SMOKE=1`` puts every notebook (run by nbval, which inherits this environment) and every
long job into its fast smoke mode. Set ``HIH_SMOKE=0`` to run the notebooks in full.

Nothing the suite runs writes into the repository or a user's folders: ``HIH_FIGURES`` (the
notebooks' and tools' figures, ``hihlib.viz.figure_dir``) and ``HIH_RUNS`` (the notebooks' scratch
data, ``hihlib.viz.runs_dir``) point at a temporary folder for the whole session, whatever the
developer's shell had set (``HIH_FIGURES=figures`` would otherwise overwrite the committed figures).
``user_folders_survive_the_suite`` checks it: every file of the repository's output folders (``runs/``,
where ``hih demo`` keeps a user's trained models, the committed ``figures/`` and notebooks, and the default
``--out`` folders of ``hih eval`` / ``hih predict``) is the same after the session as before it, or the
last test errors, naming the files that changed. (Source files are left out: a developer may edit them
while the suite runs.)
"""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HIH_SMOKE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

SESSION_OUT = Path(tempfile.mkdtemp(prefix="hih_tests_"))
os.environ["HIH_FIGURES"] = str(SESSION_OUT / "figures")
os.environ["HIH_RUNS"] = str(SESSION_OUT / "runs")
atexit.register(shutil.rmtree, SESSION_OUT, ignore_errors=True)

REPO = Path(__file__).resolve().parent
WATCHED = ("runs", "figures", "notebooks", "eval", "predictions", "data", "BENCHMARKS.md", "README.md")
# written by tools that are not part of what the suite checks (Python's byte code, hypothesis' examples)
SKIPPED = {".git", "__pycache__", ".hypothesis", ".pytest_cache", ".ipynb_checkpoints"}


def snapshot(root: Path, watched=WATCHED) -> dict[str, tuple]:
    """relative path -> (size, modification time in ns) of every file and folder (size None) under the
    ``watched`` paths of ``root``: a file rewritten with the same bytes still changes its time."""
    found = {}
    for top in watched:
        path = root / top
        if path.is_file():
            st = path.stat()
            found[top] = (st.st_size, st.st_mtime_ns)
        elif path.is_dir():
            found.update(_walk(root, path))
    return found


def _walk(root: Path, top: Path) -> dict[str, tuple]:
    found = {}
    for folder, dirs, files in os.walk(top):
        dirs[:] = [d for d in dirs if d not in SKIPPED and not d.endswith(".egg-info")]
        rel = os.path.relpath(folder, root)
        found[rel] = (None, None)
        for name in files:
            path = os.path.join(folder, name)
            try:
                st = os.stat(path, follow_symlinks=False)
            except OSError:
                continue
            found[os.path.join(rel, name)] = (st.st_size, st.st_mtime_ns)
    return found


def changed_paths(before: dict, after: dict) -> list[str]:
    """What appeared, vanished or changed between two snapshots, sorted."""
    return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))


@pytest.fixture(scope="session", autouse=True)
def user_folders_survive_the_suite():
    before = snapshot(REPO)
    yield
    changed = changed_paths(before, snapshot(REPO))
    if changed:
        pytest.fail(f"the test session changed {len(changed)} path(s) of the repository (tests must write under "
                    f"a temporary folder only): {', '.join(changed[:10])}", pytrace=False)
