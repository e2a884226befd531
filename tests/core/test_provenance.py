"""Output folders know what produced them: reruns with other options are refused or
recompute cleanly, never mixed; folders are checked before any work; umask honoured."""
import json
import os
from dataclasses import dataclass, field

import pytest

from jaxtwin.core import artifacts, provenance
from jaxtwin.core.config import ConfigError, record_config


@dataclass(frozen=True)
class Inner:
    lr: float = 0.1


@dataclass(frozen=True)
class Cfg:
    runs: int = 2
    mode: str = "a"
    devices: int = 1
    inner: Inner = field(default_factory=Inner)


def test_same_options_reuse_the_folder_and_other_options_are_refused_naming_the_fields(tmp_path):
    record_config(tmp_path, Cfg())
    artifacts.write_csv(tmp_path / "results.csv", [{"x": 1}])
    record_config(tmp_path, Cfg(devices=4))  # devices never change results
    with pytest.raises(ConfigError, match=r"inner\.lr=0\.1 there, 0\.2 here; runs=2 there, 3 here"):
        record_config(tmp_path, Cfg(runs=3, inner=Inner(lr=0.2)))
    assert (tmp_path / "results.csv").exists()
    assert json.loads((tmp_path / "config.json").read_text())["config"]["runs"] == 2  # not relabelled


def test_ignored_fields_share_a_folder(tmp_path):
    record_config(tmp_path, Cfg(mode="a"), ignore=("mode",))
    record_config(tmp_path, Cfg(mode="b"), ignore=("mode",))
    record_config(tmp_path / "other", Cfg(mode="a"))
    with pytest.raises(ConfigError, match="mode='a' there, 'b' here"):
        record_config(tmp_path / "other", Cfg(mode="b"))


def test_overwrite_deletes_exactly_what_the_old_run_wrote(tmp_path):
    (tmp_path / "mine.txt").write_text("the user's own file")
    record_config(tmp_path, Cfg())
    artifacts.write_csv(tmp_path / "sub" / "old_only.csv", [{"x": 1}])
    artifacts.write_csv(tmp_path / "results.csv", [{"x": 1}])
    record_config(tmp_path, Cfg(runs=5), overwrite=True)
    assert not (tmp_path / "sub").exists() and not (tmp_path / "results.csv").exists()
    assert (tmp_path / "mine.txt").read_text() == "the user's own file"
    assert json.loads((tmp_path / "config.json").read_text())["config"]["runs"] == 5


def test_a_version_change_is_a_difference(tmp_path, monkeypatch):
    record_config(tmp_path, Cfg())
    real = provenance.versions
    monkeypatch.setattr(provenance, "versions", lambda: {**real(), "jax": "0.0.1"})
    with pytest.raises(ConfigError, match=r"versions\.jax="):
        record_config(tmp_path, Cfg())


def test_a_record_without_fingerprint_is_not_trusted(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"config": {"runs": 2}}))
    with pytest.raises(ConfigError, match="without a fingerprint"):
        record_config(tmp_path, Cfg())


def test_output_folder_checked_before_any_work(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("x")
    with pytest.raises(ConfigError, match=r"--out .*f: exists and is not a folder"):
        record_config(a_file, Cfg())
    with pytest.raises(ConfigError, match=r"--out /proc/jaxtwin: cannot write there"):
        record_config("/proc/jaxtwin", Cfg())
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        with pytest.raises(ConfigError, match="cannot write there"):
            record_config(ro, Cfg())


def test_files_honour_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        path = artifacts.write_csv(tmp_path / "r.csv", [{"x": 1}])
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o640
