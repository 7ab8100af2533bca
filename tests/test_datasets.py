"""The table of dataset facts (``hihlib.data.datasets``) agrees with docs/REFERENCE.md, and its consumers
read it: the loaders, ``data check``, the synthetic export, ``hih eval``'s policy, the config choices,
predict/export's scheme and the published tables."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from formats import build_wflw_fixture
from hihlib.data import datasets
from hihlib.data.datasets import DATASETS, FILE_DATASETS, dataset_info
from hihlib.errors import ConfigError

REFERENCE = (Path(__file__).resolve().parent.parent / "docs/REFERENCE.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    """The text of docs/REFERENCE.md's ``### <title> (...)`` section."""
    m = re.search(rf"^### {re.escape(title)} \((.*?)\)\n(.*?)(?=^###|^## )", REFERENCE, re.S | re.M)
    assert m, title
    return m.group(1) + "\n" + m.group(2)


def permutation(text: str) -> list[int]:
    """A mirror permutation as docs/REFERENCE.md writes it: comma-separated indices and ``a..b`` runs."""
    out = []
    for tok in re.sub(r"\s+", "", text).split(","):
        if ".." in tok:
            a, b = map(int, tok.split(".."))
            out += list(range(a, b - 1, -1)) if b < a else list(range(a, b + 1))
        else:
            out.append(int(tok))
    return out


@pytest.mark.parametrize("name,title", [("wflw", "WFLW"), ("cofw", "COFW"), ("300w", "300W")])
def test_each_row_agrees_with_the_reference(name, title):
    info, text = DATASETS[name], section(title)
    assert info.title == title
    assert info.num_points == int(re.search(r"(\d+) points", text).group(1))
    mirror = permutation(re.search(r"Mirror permutation[^`]*`([^`]*)`", text).group(1))
    assert list(info.mirror) == mirror
    assert [mirror[i] for i in mirror] == list(range(info.num_points))           # an involution
    pairs = {tuple(map(int, m)) for m in re.findall(r"‖p(\d+) − p(\d+)‖", text)}
    assert set(info.normalisers.values()) == pairs
    assert set(info.eval_norms) <= set(info.normalisers)
    for split, n in info.counts.items():                                          # "1345 train", "train 3148"
        assert re.search(rf"\b({n} {split}|{split}(?: test)? {n})\b", text), (split, n)
    assert set(info.check_splits) <= set(info.splits) and set(info.eval_splits) <= set(info.splits)


def test_wflw_attributes_subset_files_and_sizes_are_the_references():
    text, wflw = section("WFLW"), DATASETS["wflw"]
    flags = re.search(r"6 flags in the order (.*?), then", text, re.S).group(1)
    assert wflw.attributes == tuple(re.sub(r"\s+", " ", flags).replace("make-up", "makeup").split(", "))
    files = re.search(r"list_98pt_test\{,(.*?)\}\.txt", text).group(1).split(",")
    assert [f"_{wflw.subset_files[a]}" for a in wflw.attributes] == files
    sizes = dict((k, int(v)) for k, v in re.findall(r"(\w+) (\d+)", re.search(r"Subset sizes: (.*?)\.", text, re.S).group(1)))
    assert {wflw.subset_files[a]: n for a, n in wflw.subset_counts.items()} == sizes
    assert datasets.attribute_order() == ("pose", "largepose", "expression", "illumination", "makeup",
                                          "occlusion", "blur")


def test_names_aliases_and_an_unknown_name():
    assert dataset_info("W300") is dataset_info("300w") is DATASETS["300w"]
    assert dataset_info("synth").scheme == "wflw" and dataset_info("synth").loader is None
    assert FILE_DATASETS == ("wflw", "cofw", "300w")
    with pytest.raises(ConfigError, match="unknown dataset 'aflw'; choose one of wflw, cofw, 300w, synth"):
        dataset_info("aflw")
    with pytest.raises(ConfigError, match="no files"):
        DATASETS["synth"].open("/nowhere", "train")


def test_every_consumer_reads_the_table():
    from hihlib.cli import build_parser
    from hihlib.data import cofw, commands, open_dataset, synthetic, synthetic_export, w300, wflw
    from hihlib.inference import evaluate, export, predict
    from hihlib.pipeline.config import CHOICES
    from hihlib.studies import reproduce

    for name in FILE_DATASETS:
        info = DATASETS[name]
        assert info.loader_class().splits == info.splits
        assert commands.DATASET_SPLITS[name] == info.check_splits and commands.EXPECTED[name] == info.counts
    assert (wflw.WFLW, cofw.COFW, w300.W300) == tuple(DATASETS[n].loader_class() for n in FILE_DATASETS)
    assert set(w300.SPLIT_FOLDERS) == set(DATASETS["300w"].splits)
    assert wflw.ATTRIBUTES is synthetic.ATTRIBUTES is reproduce.WFLW_SUBSETS is DATASETS["wflw"].attributes
    assert synthetic_export.WFLW_SUBSET_FILES is wflw.SUBSET_FILES is DATASETS["wflw"].subset_files
    assert synthetic_export.FORMATS == FILE_DATASETS and CHOICES["data.dataset"] == tuple(DATASETS)
    assert evaluate.ATTRIBUTE_ORDER == datasets.attribute_order()
    for name, info in DATASETS.items():
        cfg = {"data": {"dataset": name}}
        assert predict.cfg_scheme(cfg) == export.scheme_name(cfg) == info.scheme
        assert evaluate.default_mirror(info.num_points) == info.mirror
    sub = next(a for a in build_parser()._actions if getattr(a, "choices", None) and "eval" in a.choices)
    eval_dataset = next(a for a in sub.choices["eval"]._actions if a.dest == "dataset")
    assert list(eval_dataset.choices) == list(DATASETS)
    assert "300W" in reproduce.synthetic_warning("300w")
    with pytest.raises(ValueError, match="unknown dataset"):
        open_dataset("synth", "/nowhere", "train")


def test_the_evaluation_policy_comes_from_the_row(tmp_path, monkeypatch):
    """``hih eval``'s sets follow the row: a new row over WFLW's loader that asks for both normalisers and no
    attribute subsets is evaluated so, with no other change."""
    from hihlib.inference.evaluate import evaluation_sets
    from hihlib.pipeline.config import DEFAULTS

    root = tmp_path / "WFLW"
    build_wflw_fixture(root)
    records, scheme, subsets, norms, desc = evaluation_sets("wflw", str(root), DEFAULTS)
    assert (len(records), scheme.name, norms) == (4, "wflw", ["inter_ocular"])
    assert list(subsets) == ["full", "pose", "expression", "illumination", "makeup", "occlusion", "blur"]
    assert desc == f"WFLW test split from {root}, 4 faces"
    row = dataclasses.replace(DATASETS["wflw"], name="wflw_pupils", title="WFLW (pupils)",
                              eval_norms=("inter_pupil", "inter_ocular"), eval_attributes=False)
    monkeypatch.setitem(DATASETS, row.name, row)
    records, scheme, subsets, norms, _ = evaluation_sets("wflw_pupils", str(root), DEFAULTS)
    assert norms == ["inter_pupil", "inter_ocular"] and list(subsets) == ["full"]
    assert np.array_equal(subsets["full"], np.arange(4))
