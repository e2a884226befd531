"""The CLI: the registry of systems, the one builder every system's commands come from
(booleans, config files, shared options, epilogue), README command lines, the compile cache."""
import dataclasses
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from jaxtwin.cli import SYSTEMS, main

ROOT = Path(__file__).resolve().parents[1]


def _systems():
    return {name: importlib.import_module(entry[0]).SYSTEM for name, entry in SYSTEMS.items()}


def _command_helps():
    """``(argv prefix, help text)`` of every command of every system."""
    out = []
    for name, system in _systems().items():
        for cmd in system.commands:
            argv = [name] + ([cmd] if cmd else [])
            parser = system.parser(f"jaxtwin {name}")
            text = parser.format_help() if not cmd else \
                parser._subparsers._group_actions[0].choices[cmd].format_help()
            out.append((argv, text))
    return out


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __import__("jaxtwin").__version__
    assert main([]) == 2
    assert "coevodt" in capsys.readouterr().out


def test_unknown_system_is_an_error():
    r = subprocess.run([sys.executable, "-m", "jaxtwin", "nosuch"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_every_command_has_the_shared_options_booleans_and_epilog_once():
    """Booleans are --flag/--no-flag everywhere (no `{true,false}` values), every command has
    --config/--out/--overwrite/--progress, and the multi-device epilogue comes once."""
    helps = _command_helps()
    assert [a for a, _ in helps] == [["coevodt"], ["civic", "experiment"], ["civic", "train"],
                                     ["civic", "evaluate"], ["syncgame"]]
    for argv, text in helps:
        for option in ("--config FILE", "--out DIR", "--overwrite, --no-overwrite", "--progress, --no-progress"):
            assert option in text, (argv, option)
        assert "true,false" not in text and "{0,1}" not in text, argv
        assert text.count("Multiple devices: --devices 0 spreads") == 1, argv
    text = dict((" ".join(a), t) for a, t in helps)
    assert "--sensitivity, --no-sensitivity" in text["coevodt"]
    assert "--cooperative, --no-cooperative" in text["civic train"]
    assert "--agent.total-timesteps INT" in text["civic evaluate"]
    assert "--env.alpha-p FLOAT" in text["coevodt"]
    # fields set by a positional, or unused by a command, are not options
    assert "--experiment" not in text["civic train"] + text["civic evaluate"] + text["civic experiment"]
    assert "--command" not in text["syncgame"]


def test_experiment_choices_come_from_the_registries():
    from jaxtwin.civic.experiments import EXPERIMENTS
    from jaxtwin.syncgame.experiments import STEPS

    systems = _systems()
    civic = systems["civic"].commands["experiment"]
    assert list(civic.choices) == list(EXPERIMENTS) == ["noncoop", "tolerance", "coop", "adapt", "withdraw"]
    assert list(systems["syncgame"].commands[""].choices) == [*STEPS, "all"]


@pytest.fixture
def recorded(monkeypatch):
    """Replace each command's run with one that records the config it gets."""
    seen = []
    for name, system in _systems().items():
        commands = {k: dataclasses.replace(c, run=lambda config, out, **kw: seen.append((config, out, kw)),
                                           report=None)
                    for k, c in system.commands.items()}
        monkeypatch.setattr(importlib.import_module(SYSTEMS[name][0]), "SYSTEM",
                            dataclasses.replace(system, commands=commands))
    return seen


def test_flags_files_and_positionals_build_the_config(recorded, tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('n_msps = 4\nratios = [1.0, inf]\ncooperative = false\n[agent]\nlr = 1\nchunks = 3\n')
    assert main(["civic", "experiment", "withdraw", "--config", str(toml), "--agent.chunks", "2",
                 "--out", str(tmp_path / "o"), "--no-progress", "--overwrite"]) == 0
    cfg, out, kw = recorded[-1]
    assert cfg.experiment == "withdraw" and cfg.n_msps == 4 and cfg.ratios == (1.0, float("inf"))
    assert cfg.cooperative is False and cfg.agent.lr == 1.0 and isinstance(cfg.agent.lr, float)
    assert cfg.agent.chunks == 2                                   # the flag overrides the file
    assert out == str(tmp_path / "o") and kw == {"overwrite": True, "progress": False}
    assert main(["civic", "train", "--config", str(toml), "--cooperative", "--out", str(tmp_path)]) == 0
    assert recorded[-1][0].cooperative is True and recorded[-1][2] == {"overwrite": False, "progress": True}

    js = tmp_path / "c.json"
    js.write_text(json.dumps({"T": 20, "studies": ["r"], "command": "ess"}))
    assert main(["syncgame", "compare", "--config", str(js), "--out", str(tmp_path)]) == 0
    cfg = recorded[-1][0]
    assert (cfg.command, cfg.T, cfg.studies) == ("compare", 20.0, ("r",))   # the positional wins
    assert main(["coevodt", "--sensitivity", "--env.w-qoe", "1", "2", "3"]) == 0
    cfg, out, _ = recorded[-1]
    assert cfg.sensitivity is True and cfg.env.w_qoe == (1.0, 2.0, 3.0) and out == "results/coevodt"


@pytest.mark.parametrize("name,text,message", [
    ("bad.toml", "runs = \n", r"config file .*bad.toml: invalid TOML: .*line 1"),
    ("bad.json", '{"runs": 3,,}', r"config file .*bad.json: invalid JSON: .*\(line 1, column 12\)"),
    ("list.json", "[1, 2]", r"config file .*list.json: must hold a table of options at the top, not a list"),
    ("env.toml", "env = 3\n", r"config file .*env.toml: CoEvoDTConfig.env=3: must be a table of EnvParams options"),
    ("runs.toml", 'runs = "ten"\n', r"config file .*runs.toml: CoEvoDTConfig.runs='ten': must be an integer"),
    ("flag.json", '{"sensitivity": "yes"}', r"CoEvoDTConfig.sensitivity='yes': must be true or false"),
    ("w.toml", "[env]\nw_qoe = 1.0\n", r"EnvParams.w_qoe=1.0: must be a list"),
    ("unknown.toml", "nope = 1\n", r"config file .*unknown.toml: CoEvoDTConfig: unknown option\(s\) \['nope'\]"),
    ("c.yaml", "runs: 3\n", r"config file .*c.yaml: use a .toml or .json file"),
    (None, "", r"config file .*missing.toml does not exist"),
])
def test_bad_config_files_are_one_line_errors(tmp_path, capsys, name, text, message):
    path = tmp_path / (name or "missing.toml")
    if name:
        path.write_text(text)
    out = tmp_path / "out"
    assert main(["coevodt", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: "), err
    assert re.search(message, err), err
    assert not out.exists()


def test_readme_command_lines_parse():
    """Every `jaxtwin ...` line of the README's run section names real options."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Running each system", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [ln.split("#")[0].split() for ln in block.splitlines() if ln.startswith("jaxtwin ")]
    assert len(lines) >= 5
    systems = _systems()
    for argv in lines:
        system = systems[argv[1]]
        ns = system.parser(f"jaxtwin {argv[1]}").parse_args(argv[2:])   # SystemExit on an unknown flag
        assert ns._out.startswith("results/")


def test_compilation_cache_is_written_then_reused(tmp_path):
    """Two identical CLI runs in fresh processes: the first stores its compiled programs
    under $JAXTWIN_CACHE_DIR, the second finds every one of them (no new entries) and
    writes the same CSVs."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "cache"
    env = dict(os.environ, JAXTWIN_CACHE_DIR=str(cache), JAX_PLATFORMS="cpu",
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")  # store every program: no threshold effects
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    # a cheap command (static Stackelberg solves, a few programs) that still writes CSVs
    argv = ["sweep", "syncgame", "--grid", "r=0.05,0.1", "--set", "n_vsp=2", "--set", "n_grid=21",
            "--policies", "static", "--no-progress"]
    entries = []
    for out in ("a", "b"):
        r = subprocess.run([sys.executable, "-m", "jaxtwin", *argv, "--out", str(tmp_path / out)],
                           capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        entries.append({p.name for p in cache.iterdir() if p.name.endswith("-cache")})
    assert entries[0], "the first run stored no compiled program"
    assert entries[1] == entries[0], f"the second run compiled anew: {sorted(entries[1] - entries[0])[:3]}"
    csvs = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.csv"))
    assert csvs
    for f in csvs:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_compilation_cache_folder_rules(tmp_path, monkeypatch):
    from jaxtwin.core.compile_cache import default_cache_dir

    monkeypatch.setenv("JAXTWIN_CACHE_DIR", "")
    assert default_cache_dir() is None
    monkeypatch.setenv("JAXTWIN_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("JAXTWIN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "jaxtwin" / "xla"
