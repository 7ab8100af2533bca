"""The package's metadata: environment.yml and pyproject.toml list the same packages."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = data["dependencies"] + data["optional-dependencies"]["test"]
    return {_name(r): r.replace(" ", "") for r in deps}


def _environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    reqs = [r for r in pip if not r.startswith("-")]
    return {_name(r): r.replace(" ", "") for r in reqs}


def test_environment_yml_lists_the_same_packages_and_versions_as_pyproject():
    assert _environment() == _pyproject()


def test_required_packages_are_declared():
    required = {"torch", "numpy", "matplotlib", "ipywidgets", "jupytext", "nbval", "jupyterlab",
                "opencv-python-headless", "tqdm", "h5py"}
    assert required <= set(_pyproject())
    assert _pyproject()["opencv-python-headless"] == "opencv-python-headless>=4.8,<5"


def test_console_command_and_notebook_pairing():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert data["project"]["scripts"]["hih"] == "hihlib.cli:main"
    assert 'formats = "ipynb,py:percent"' in (ROOT / "jupytext.toml").read_text()
