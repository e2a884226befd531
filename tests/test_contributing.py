"""CONTRIBUTING.md, shown: a toy system (``tests/toy_system/``) joins the CLI with the
registry line the document gives and nothing else, gets ``--help`` from its config
and runs through :func:`jaxtwin.cli.main`."""
from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import jaxtwin.cli
from jaxtwin.cli import main
from jaxtwin.core.artifacts import read_csv

ROOT = Path(__file__).resolve().parents[1]
TOY = ROOT / "tests" / "toy_system"


def _registry_line() -> tuple[str, tuple[str, str]]:
    """The ``"toy": (...)`` line of CONTRIBUTING.md, parsed."""
    lines = [ln for ln in (ROOT / "CONTRIBUTING.md").read_text().splitlines() if ln.strip().startswith('"toy": (')]
    assert len(lines) == 1, lines
    (name, entry), = ast.literal_eval("{" + lines[0].strip() + "}").items()
    return name, entry


@pytest.fixture
def toy(monkeypatch):
    name, entry = _registry_line()
    monkeypatch.setitem(jaxtwin.cli.SYSTEMS, name, entry)
    return name


def test_the_toy_package_uses_only_core(toy):
    """The system needs nothing from another system, learn or nets: only jaxtwin.core."""
    for path in TOY.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jaxtwin"):
                assert node.module.startswith("jaxtwin.core"), (path.name, node.module)


def test_toy_help_comes_from_its_config(toy, capsys):
    assert main([]) == 2
    assert "toy: Toy: episodes of coin flips" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main([toy, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--episodes INT", "episodes (one row of results.csv each) (default: 8)",
                   "--antithetic, --no-antithetic", "--coin.p FLOAT", "probability of heads (default: 0.5)",
                   "--config FILE", "--overwrite, --no-overwrite", "--progress, --no-progress",
                   "Multiple devices: --devices 0 spreads the episodes"):
        assert option in text, option
    assert text.count("Multiple devices:") == 1


def test_toy_runs_from_flags_and_files(toy, tmp_path, capsys):
    out = tmp_path / "flags"
    # p = 1: every flip is heads whatever the draws (u < 1 always)
    assert main([toy, "--episodes", "3", "--flips", "4", "--coin.p", "1", "--no-progress", "--out", str(out)]) == 0
    assert [r["heads"] for r in read_csv(out / "results.csv")] == ["4", "4", "4"]
    assert "mean heads 4.000 over 3 episodes" in capsys.readouterr().out
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["coin"] == {"p": 1.0} and cfg["config"]["antithetic"] is False
    assert "versions" in cfg["environment"]

    # a TOML file sets nested fields; a flag overrides the file
    conf = tmp_path / "toy.toml"
    conf.write_text("episodes = 5\nflips = 6\nantithetic = true\n[coin]\np = 0.0\n")
    out = tmp_path / "file"
    assert main([toy, "--config", str(conf), "--episodes", "2", "--out", str(out)]) == 0
    assert [r["heads"] for r in read_csv(out / "results.csv")] == ["0", "0"]   # p = 0: never heads
    assert json.loads((out / "config.json").read_text())["config"]["antithetic"] is True

    # antithetic draws mirror the plain ones: heads(p) + heads'(1 - p) = flips, episode by episode
    conf.write_text("episodes = 6\nflips = 9\n[coin]\np = 0.3\n")
    plain, mirrored = tmp_path / "plain", tmp_path / "mirrored"
    assert main([toy, "--config", str(conf), "--out", str(plain)]) == 0
    assert main([toy, "--config", str(conf), "--coin.p", "0.7", "--antithetic", "--out", str(mirrored)]) == 0
    a = [int(r["heads"]) for r in read_csv(plain / "results.csv")]
    b = [int(r["heads"]) for r in read_csv(mirrored / "results.csv")]
    assert [x + y for x, y in zip(a, b)] == [9] * 6 and len(set(a)) > 1


def test_toy_bad_value_is_one_line(toy, tmp_path, capsys):
    assert main([toy, "--coin.p", "2", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: CoinConfig.p=2.0: must be in [0.0, 1.0]"
    assert not (tmp_path / "x").exists()
