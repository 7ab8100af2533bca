"""Issue 19, items 1 and 7: the suite writes only under temporary folders, and nothing in it can hang.

The root ``conftest.py`` points ``HIH_FIGURES`` and ``HIH_RUNS`` at a session folder (for the tests and the
notebooks nbval runs, which inherit the environment) and fails the session when a watched file of the
repository (``runs/``, ``figures/``, the notebooks, ...) changed. These tests check the pinning and that
the check sees what it must (``tests/test_gpu_check.py`` checks the smoke run of the GPU script against a
user's ``runs/demo``).
"""

import os
import tempfile
from pathlib import Path

from hihlib import viz

ROOT = Path(__file__).resolve().parent.parent


def root_conftest(config):
    """The repository's conftest.py module, as pytest loaded it (tests/conftest.py shares its name)."""
    return next(m for m in config.pluginmanager.get_plugins()
                if getattr(m, "__file__", None) and Path(m.__file__).resolve() == ROOT / "conftest.py")


def test_figures_and_scratch_data_go_to_a_temporary_folder_during_the_suite():
    tmp = Path(tempfile.gettempdir()).resolve()
    for name, folder in (("HIH_FIGURES", viz.figure_dir()), ("HIH_RUNS", viz.runs_dir())):
        folder = folder.resolve()
        assert tmp in folder.parents, f"{name} -> {folder}"
        assert ROOT not in folder.parents, f"{name} -> {folder} (inside the repository)"
    assert os.environ["HIH_FIGURES"] != "figures"


def test_the_session_check_sees_a_rewritten_file_a_new_file_and_a_new_folder(tmp_path, pytestconfig):
    c = root_conftest(pytestconfig)
    (tmp_path / "runs" / "demo" / "checkpoints").mkdir(parents=True)
    ckpt = tmp_path / "runs" / "demo" / "checkpoints" / "last.pt"
    ckpt.write_bytes(b"trained for an hour")
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.png").write_bytes(b"png")
    before = c.snapshot(tmp_path)
    assert c.changed_paths(before, c.snapshot(tmp_path)) == []
    ckpt.write_bytes(b"trained 3 steps!!!!")          # same size, new bytes
    os.utime(ckpt, ns=(before["runs/demo/checkpoints/last.pt"][1] + 10**6,) * 2)
    (tmp_path / "eval").mkdir()                       # hih eval's default --out
    (tmp_path / "figures" / "b.png").write_bytes(b"png")
    assert c.changed_paths(before, c.snapshot(tmp_path)) == ["eval", "figures/b.png", "runs/demo/checkpoints/last.pt"]


# -- nothing can hang the suite -------------------------------------------------------------------
WAITS = {"run", "check_output", "check_call", "call"}


def _unbounded_waits(source: str) -> list[tuple[int, str]]:
    """(line, call) of every ``subprocess.run/check_output/check_call/call`` without ``timeout=`` and every
    ``mp.spawn`` / ``multiprocessing`` spawn that joins without one (``join=True``, the default)."""
    import ast

    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)):
            continue
        owner, name = node.func.value.id, node.func.attr
        kws = {k.arg: k.value for k in node.keywords}
        if owner == "subprocess" and name in WAITS and "timeout" not in kws:
            found.append((node.lineno, f"subprocess.{name}"))
        if owner in ("mp", "multiprocessing") and name == "spawn":
            join = kws.get("join")
            if not (isinstance(join, ast.Constant) and join.value is False):
                found.append((node.lineno, f"{owner}.spawn"))
    return found


def test_every_subprocess_and_spawn_of_the_suite_has_a_timeout():
    offenders = [f"{path.name}:{line}: {call}" for path in sorted((ROOT / "tests").glob("*.py"))
                 for line, call in _unbounded_waits(path.read_text())]
    assert offenders == []


def test_the_timeout_check_sees_a_call_without_one():
    code = ("import subprocess\nimport torch.multiprocessing as mp\n"
            "subprocess.run(['x'], capture_output=True)\nsubprocess.run(['x'], timeout=5)\n"
            "mp.spawn(f, nprocs=2)\nmp.spawn(f, nprocs=2, join=False)\n")
    assert _unbounded_waits(code) == [(3, "subprocess.run"), (5, "mp.spawn")]
