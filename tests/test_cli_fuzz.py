"""Fuzz the CLI of every system with malformed values, files and folders.

Whatever is thrown at it, the CLI exits non-zero with one ``error: ...`` line on
stderr that names the option, file or folder, prints no traceback, never reaches
the computation and leaves nothing under ``--out`` that a rerun could take as a
result. The run functions are replaced by a recorder, so no JAX work is done;
what reaches one is checked to be a valid config instead.
"""
from __future__ import annotations

import importlib
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jaxtwin.cli import SYSTEMS, main

NOT_A_NUMBER = ("nan", "NaN", "-nan", "abc", "", "1e", "0x1G", "1,5", "1..2", "\u00bd")
NOT_AN_INT = ("1.5", "1e3", "2.0", *NOT_A_NUMBER)


def _numeric_options():
    """``(argv prefix, flag, dest, kind)`` for every int/float option of every command."""
    found = []
    for name, (module, _) in SYSTEMS.items():
        system = importlib.import_module(module).SYSTEM
        parser = system.parser(f"jaxtwin {name}")
        subs = {"": parser} if "" in system.commands else \
            parser._subparsers._group_actions[0].choices
        for cmd, sub in subs.items():
            command = system.commands[cmd]
            prefix = [name] + ([cmd] if cmd else []) + ([next(iter(command.choices))] if command.select else [])
            for action in sub._actions:
                kind = getattr(action.type, "__name__", None)
                if action.option_strings and kind in ("int", "float") and action.dest != "devices":
                    found.append((prefix, action.option_strings[0], action.dest, kind, action.nargs))
    return found


OPTIONS = _numeric_options()


@pytest.fixture
def no_runs():
    """Replace every command's run by a recorder (commands are frozen: restored after)."""
    reached, saved = [], []
    for module, _ in SYSTEMS.values():
        for command in importlib.import_module(module).SYSTEM.commands.values():
            saved.append((command, command.run, command.report))
            object.__setattr__(command, "run", lambda cfg, out, **kw: reached.append(cfg))
            object.__setattr__(command, "report", None)
    yield reached
    for command, run, report in saved:
        object.__setattr__(command, "run", run)
        object.__setattr__(command, "report", report)


def _run(argv) -> int:
    """The exit code of ``jaxtwin argv`` (argparse's errors exit through SystemExit)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def _names(dest: str) -> tuple[str, ...]:
    """How an error line may name the option: its flag, or its field (a cross-field
    constraint such as ``capacity_init`` in ``[capacity_min, capacity_max]`` names it there)."""
    return (f"--{dest.replace('_', '-')}", dest.split(".")[-1])


def _named(line: str, names) -> bool:
    return any(re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", line) for n in names)


def _assert_rejected(argv, out, capsys, *names):
    assert _run([*argv, "--out", str(out), "--no-progress"]) != 0
    line = _one_error_line(capsys.readouterr().err)
    assert _named(line, names), (line, names)
    assert not out.exists() or not any(out.iterdir()), sorted(out.iterdir())


CASES = {"n": 0}  # unique folder names across examples (hypothesis reuses tmp_path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(OPTIONS), data=st.data())
def test_malformed_numbers_are_one_line_errors(option, data, tmp_path, capsys, no_runs):
    prefix, flag, dest, kind, nargs = option
    bad = data.draw(st.sampled_from(NOT_AN_INT if kind == "int" else NOT_A_NUMBER))
    values = [bad] if nargs is None else [data.draw(st.sampled_from(["1", "2"])), bad]
    CASES["n"] += 1
    # argparse names a value that looks like an option ("-nan") instead of the option it follows
    _assert_rejected([*prefix, flag, *values], tmp_path / f"out{CASES['n']}", capsys, *_names(dest),
                     f"arguments: {bad}")
    assert not no_runs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from([o for o in OPTIONS if o[4] is None]),
       value=st.floats(allow_nan=False) | st.integers(-10**6, 10**6))
def test_any_number_that_reaches_a_run_is_a_valid_config(option, value, tmp_path, capsys, no_runs):
    """Out-of-range values are rejected naming the option; what is accepted was validated."""
    prefix, flag, dest, kind, _ = option
    if kind == "int" and isinstance(value, float):
        value = int(value) if math.isfinite(value) and abs(value) < 1e9 else 0
    CASES["n"] += 1
    out = tmp_path / f"out{CASES['n']}"
    code = _run([*prefix, flag, repr(value) if kind == "float" else str(value), "--out", str(out),
                 "--no-progress"])
    err = capsys.readouterr().err
    if code == 0:
        assert len(no_runs) == 1 and err == "", err
        no_runs.clear()
    else:
        line = _one_error_line(err)
        assert _named(line, _names(dest)), line
        assert not no_runs


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(system=st.sampled_from([["coevodt"], ["civic", "train"], ["syncgame", "all"]]),
       content=st.text(max_size=40).map(str.encode) | st.binary(max_size=40),
       suffix=st.sampled_from([".toml", ".json"]))
def test_garbage_config_files_are_one_line_errors(system, content, suffix, tmp_path, capsys, no_runs):
    CASES["n"] += 1
    path = tmp_path / f"c{CASES['n']}{suffix}"
    path.write_bytes(content)
    out = tmp_path / f"out{CASES['n']}"
    code = _run([*system, "--config", str(path), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    if code == 0:  # the garbage happened to be a valid (empty) table
        assert len(no_runs) == 1 and err == ""
        no_runs.clear()
    else:
        line = _one_error_line(err)
        assert str(path) in line, line
        assert not out.exists() and not no_runs


@pytest.mark.parametrize("argv", [["coevodt"], ["civic", "train"], ["civic", "experiment", "coop"],
                                  ["syncgame", "trajectories"]])
def test_bad_output_folders_are_one_line_errors(argv, tmp_path, capsys, no_runs):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    for out, message in ((a_file, "exists and is not a folder"), (tmp_path / "a_file" / "sub", "cannot write"),
                         ("/proc/jaxtwin-out", "cannot write there")):
        assert _run([*argv, "--out", str(out), "--no-progress"]) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert f"--out {out}" in line and message in line, line
    assert not no_runs


def test_unknown_options_and_commands_are_one_line_errors(capsys):
    for argv in (["coevodt", "--runz", "3"], ["civic", "trian"], ["syncgame", "all", "--T"], ["nope"]):
        assert _run(argv) == 2
        line = _one_error_line(capsys.readouterr().err)
        assert "(see jaxtwin" in line and "--help)" in line, line
