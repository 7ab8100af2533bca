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


def test_license_file_is_the_mit_license_pyproject_declares_and_citation_names_both_papers():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert data["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) 2026 hihlib authors" in text
    assert "THE SOFTWARE IS PROVIDED \"AS IS\"" in text
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["license"] == "MIT" and cff["version"] == data["version"]
    refs = {r["title"]: r for r in cff["references"]}
    hih = refs["HIH: Towards More Accurate Face Alignment via Heatmap in Heatmap"]
    h3r = refs["Heatmap Regression via Randomized Rounding"]
    assert [a["family-names"] for a in hih["authors"]] == ["Lan", "Hu", "Chen", "Xue", "Cheng"]
    assert [a["family-names"] for a in h3r["authors"]] == ["Yu", "Tao"]
    assert (hih["identifiers"][0]["value"], hih["year"]) == ("arXiv:2104.03100", 2021)
    assert (h3r["identifiers"][0]["value"], h3r["year"]) == ("arXiv:2009.00225", 2021)
    assert h3r["journal"] == "IEEE Transactions on Pattern Analysis and Machine Intelligence"
