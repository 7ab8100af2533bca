"""Atomic writes: all or nothing, with ordinary permissions."""

import os
import stat

import pytest

from hihlib.io import append_jsonl, write_json, write_text, write_with


def test_write_replaces_whole_file_with_usual_permissions(tmp_path):
    p = tmp_path / "a" / "out.txt"
    write_text(p, "first")
    write_text(p, "second")
    assert p.read_text() == "second"
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask
    assert [q.name for q in p.parent.iterdir()] == ["out.txt"]  # no temporary file left


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    p = tmp_path / "out.json"
    write_json(p, {"ok": 1})

    def broken(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        write_with(p, broken)
    assert p.read_text() == '{\n  "ok": 1\n}\n'
    assert [q.name for q in tmp_path.iterdir()] == ["out.json"]


def test_append_jsonl_appends_complete_lines(tmp_path):
    p = tmp_path / "m.jsonl"
    append_jsonl(p, {"a": 1})
    append_jsonl(p, {"a": 2})
    assert p.read_text().splitlines() == ['{"a": 1}', '{"a": 2}']
