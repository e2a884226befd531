"""Solver failures are results, not silence (issue 11): an unconverged solve stops its step
with `error: ...` and exit code 1 and leaves no finished-looking files, unless
--allow-unconverged keeps the results marked converged=false with a warning."""
import json

import numpy as np
import pytest

from jaxtwin.cli import main
from jaxtwin.core.artifacts import read_csv
from jaxtwin.core.errors import ResultError
from jaxtwin.syncgame.checks import require_converged
from jaxtwin.syncgame.experiments import SyncGameConfig

TINY = ["--n-grid", "21", "--sens-n-grid", "21", "--max-grid-points", "2", "--T", "10", "--no-progress"]
ONE_STEP = ["--max-iter", "1", *TINY]


def test_unconverged_trajectories_fail_and_remove_stale_outputs(tmp_path, capsys):
    out = tmp_path / "sg"
    out.mkdir()
    stale = [out / "trajectories_2vsp.csv", out / "trajectories_2vsp.png"]
    for p in stale:          # an earlier run's outputs: a rerun must not skip the step as done
        p.write_text("old")
    assert main(["syncgame", "trajectories", "--out", str(out), "--overwrite", *ONE_STEP]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: syncgame trajectories: the 2-VSP open-loop Nash solve")
    assert "did not converge (residual" in err and "> tol 1e-08" in err
    assert "--max-iter (now 1)" in err and "--allow-unconverged" in err
    assert not any(p.exists() for p in stale) and not (out / "trajectories_4vsp.csv").exists()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["trajectories_2vsp"]["converged"] is False and summary["trajectories_2vsp"]["residual"] > 1e-8


def test_allow_unconverged_keeps_ess_marked(tmp_path, capsys):
    out = tmp_path / "sg"
    assert main(["syncgame", "ess", "--out", str(out), "--allow-unconverged", *ONE_STEP]) == 0
    err = capsys.readouterr().err
    assert "warning: syncgame ess: the 2-VSP open-loop Nash solve" in err
    rows = read_csv(out / "ess.csv")
    assert set(rows[0]) == {"t", "y1_0", "y1", "converged", "residual"}
    assert {r["converged"] for r in rows} == {"False"} and float(rows[0]["residual"]) > 1e-8
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ess"]["nash_converged"] is False
    assert list(summary["warnings"]) == ["ess: the 2-VSP open-loop Nash solve behind the plateau controls "
                                         "(collocation, n_grid=21)"]
    mtime = (out / "ess.csv").stat().st_mtime
    # a rerun without the flag does not pass the kept results off as fine; with it, it warns again
    assert main(["syncgame", "ess", "--out", str(out), *ONE_STEP]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: syncgame ess: the 2-VSP open-loop Nash solve") and "did not converge" in err
    assert "an earlier run with --allow-unconverged kept those results here" in err
    assert main(["syncgame", "ess", "--out", str(out), "--allow-unconverged", *ONE_STEP]) == 0
    assert "warning: reused: syncgame ess:" in capsys.readouterr().err
    assert (out / "ess.csv").stat().st_mtime == mtime   # reused, not solved again


def test_sensitivity_checks_every_grid_point(tmp_path, capsys):
    out = tmp_path / "sg"
    args = ["syncgame", "sensitivity", "--out", str(out), "--studies", "r", *ONE_STEP]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "error: syncgame sensitivity: study r: the 4-VSP Nash solves (collocation, n_grid=21) did not " \
           "converge (2 of 2 grid points, tol 1e-08: r=0.01: residual" in err
    assert not (out / "sensitivity_r.csv").exists() and not (out / "findings.csv").exists()
    assert main(args + ["--allow-unconverged"]) == 0
    assert "warning: syncgame sensitivity: study r" in capsys.readouterr().err
    assert {r["converged"] for r in read_csv(out / "sensitivity_r.csv")} == {"False"}
    assert json.loads((out / "summary.json").read_text())["sensitivity"]["r"]["unconverged_points"] == 2


def test_require_converged_messages():
    cfg, summary = SyncGameConfig(), {}
    assert require_converged(cfg, summary, "s", "x", 1e-12, True, tol=1e-8) and summary == {}
    with pytest.raises(ResultError, match=r"No option changes this solve's iterations; pass --allow-unconverged"):
        require_converged(cfg, summary, "compare", "the static solve", 1e-3, False, tol=1e-10, fixed_iterations=True)
    labels = [f"v={i}" for i in range(9)]
    with pytest.raises(ResultError, match=r"\(8 of 9 grid points, tol 1e-08: v=1: residual 1, .*v=6: residual 6, "
                                          r"and 2 more; iteration limit"):
        require_converged(cfg, summary, "sensitivity", "study v", np.arange(9.0), np.arange(9) == 0, tol=1e-8,
                          result=np.ones(9, int), labels=labels)
    with pytest.raises(ResultError, match=r"More iterations do not mend a non-finite solution"):
        require_converged(cfg, summary, "trajectories", "the Nash solve", np.inf, False, tol=1e-8, result=2)
    allow = SyncGameConfig(allow_unconverged=True)
    assert not require_converged(allow, summary, "s", "x", 1.0, False, tol=1e-8)
    assert list(summary["warnings"]) == ["s: x"]
    assert require_converged(allow, summary, "s", "x", 0.0, True, tol=1e-8) and "warnings" not in summary
