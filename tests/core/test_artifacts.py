"""Atomic result files round-trip and never leave temp files behind."""
import json

import numpy as np
import pytest

from jaxtwin.core.artifacts import read_csv, write_columns_csv, write_csv, write_json


def test_csv_roundtrip_and_no_temp_files(tmp_path):
    path = tmp_path / "sub" / "r.csv"
    write_csv(path, [{"a": np.float32(1.5), "b": "x"}, {"a": 2, "b": "y"}])
    assert read_csv(path) == [{"a": "1.5", "b": "x"}, {"a": "2", "b": "y"}]
    write_columns_csv(path, {"t": np.arange(3), "v": np.array([0.5, 1.0, 1.5])})
    assert [r["v"] for r in read_csv(path)] == ["0.5", "1.0", "1.5"]
    assert sorted(p.name for p in path.parent.iterdir()) == ["r.csv"]


def test_csv_rejects_missing_columns_and_ragged_columns(tmp_path):
    with pytest.raises(ValueError, match="lacks columns"):
        write_csv(tmp_path / "x.csv", [{"a": 1}], columns=["a", "b"])
    with pytest.raises(ValueError, match="differ in length"):
        write_columns_csv(tmp_path / "y.csv", {"a": [1, 2], "b": [1]})
    assert not (tmp_path / "y.csv").exists()


def test_json_handles_dataclasses_and_arrays(tmp_path):
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class C:
        x: tuple = (1, 2)

    write_json(tmp_path / "c.json", {"cfg": C(), "arr": np.arange(2)})
    assert json.loads((tmp_path / "c.json").read_text()) == {"cfg": {"x": [1, 2]}, "arr": [0, 1]}


def test_a_write_cut_short_by_an_immediate_exit_leaves_no_temporary_file(tmp_path, monkeypatch):
    """Ctrl-C inside compiled code ends the process from the watchdog thread (os._exit, no
    cleanup in the main thread): it first removes the temporary files of writes in progress."""
    from jaxtwin.core import artifacts

    left = []

    def fsync_then_exit(fd):   # the main thread is mid-write when the watchdog acts
        assert list(tmp_path.glob(".r.json.*.tmp"))
        artifacts.remove_unfinished_writes()
        left.extend(tmp_path.glob(".*.tmp"))
        raise SystemExit(130)   # stands for os._exit

    monkeypatch.setattr(artifacts.os, "fsync", fsync_then_exit)
    with pytest.raises(SystemExit):
        write_json(tmp_path / "r.json", {"a": 1})
    assert left == [] and not (tmp_path / "r.json").exists()


def test_the_manifest_lists_a_rewritten_file_once(tmp_path):
    """A claimed folder's list of written files (what --overwrite deletes, what Ctrl-C counts)
    names a checkpoint rewritten after every chunk once."""
    from jaxtwin.core import artifacts

    manifest = tmp_path / ".config.json.files"
    artifacts.track_writes(tmp_path, manifest)
    for chunk in range(3):
        write_json(tmp_path / "checkpoint.json", {"chunk": chunk})
        write_json(tmp_path / f"part{chunk}.json", {})
    assert manifest.read_text().split() == ["checkpoint.json", "part0.json", "part1.json", "part2.json"]
    assert [p.name for p in artifacts.written_since_claim(tmp_path)] == manifest.read_text().split()
