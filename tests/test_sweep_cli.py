"""``jaxtwin sweep`` end to end for each system at tiny sizes, ``jaxtwin plot``, and the
CIVIC sweep against per-point calls of the same evaluator."""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxtwin.cli import main
from jaxtwin.core import artifacts

CIVIC = ["sweep", "civic", "--grid", "budget_factor=0.4,1.2", "--set", "horizon=8", "--set", "n_msps=2",
         "--policies", "Random-GCP,Myopic-GCP", "--seeds", "3", "--chunk", "1", "--no-progress"]


def test_civic_sweep_matches_per_point_evaluation_and_plots(tmp_path, capsys):
    """Two budgets x two horizons: one program (the horizons padded to 8, each point masked to
    its own), every row exactly what an evaluator of an env with that horizon returns."""
    from jaxtwin.civic.baselines import make_baseline
    from jaxtwin.civic.env import CivicEnv
    from jaxtwin.civic.evaluate import make_evaluator

    out = tmp_path / "civic"
    assert CIVIC[4:6] == ["--set", "horizon=8"]
    assert main([*CIVIC[:4], "--grid", "horizon=6,8", *CIVIC[6:], "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "civic study: 8 point x policy rows" in text and "summary.csv" in text
    rows = artifacts.read_table(out / "results.csv")
    assert len(rows) == 2 * 2 * 2 * 3
    assert list(rows[0])[:6] == ["point", "budget_factor", "horizon", "policy", "seed", "completion_pct"]
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    for T in (6, 8):
        env = CivicEnv(2, 1, T, cooperative=True)
        ev = make_evaluator(env, [make_baseline(n, env) for n in ("Random-GCP", "Myopic-GCP")])
        for bf in (0.4, 1.2):
            m = ev(keys, env.default_params.replace(budget_factor=bf))
            got = [r for r in rows if r["budget_factor"] == bf and r["horizon"] == T]
            assert len(got) == 2 * 3
            for r in got:
                p = ("Random-GCP", "Myopic-GCP").index(r["policy"])
                assert r["episode_return"] == float(m["episode_return"][p, r["seed"]])   # exact
                assert r["total_cost"] == float(m["total_cost"][p, r["seed"]])
    record = json.loads((out / "study.json").read_text())
    (group,) = record["groups"]
    assert group["shape"]["horizon"] == 8 and group["chunks"] == 4 and group["compilations"] == 1
    assert record["metric_labels"]["gini"] == "Gini of served requests"   # `jaxtwin plot`'s axis label
    summary = artifacts.read_table(out / "summary.csv")
    assert {"completion_pct_mean", "completion_pct_std", "completion_pct_ci95", "n_seeds"} <= set(summary[0])
    assert (out / "episode_return_heatmap.png").exists()
    assert main(["plot", str(out), "--x", "budget_factor", "--metric", "gini"]) == 2   # horizon varies too
    assert "axes horizon also vary" in capsys.readouterr().out
    assert main(["plot", str(out), "--x", "budget_factor", "--metric", "gini", "--where", "horizon=8"]) == 0
    assert (out / "gini_vs_budget_factor.png").exists()
    assert main(["plot", str(out), "--x", "nope", "--metric", "gini"]) == 2
    assert "--x nope: not a column" in capsys.readouterr().out


def test_civic_sweep_refuses_another_declaration(tmp_path, capsys):
    out = tmp_path / "c"
    small = [*CIVIC[:3], "budget_factor=0.8", *CIVIC[4:]]
    assert main([*small, "--out", str(out)]) == 0
    assert main([*small[:3], "budget_factor=0.9", *small[4:], "--out", str(out)]) == 2
    assert "holds results of other options" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--grid", "nope=1"], "unknown field 'nope' of civic"),
    (["--grid", "threshold=1.5"], "EnvParams.threshold=1.5"),
    (["--grid", "horizon=8.5"], "study axis horizon: '8.5' is not a valid int"),
    (["--policies", "Best"], "'Best' not valid for civic"),
    (["--seeds", "0", "--grid", "p_req=0.5", "--set", "cooperative=maybe"], "cooperative: 'maybe' is not a valid bool"),
])
def test_sweep_bad_values_are_one_line_errors(tmp_path, capsys, argv, message):
    assert main(["sweep", "civic", *argv, "--out", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "x" / "results.csv").exists()


def test_syncgame_sweep_converges_and_draws_a_heatmap(tmp_path):
    out = tmp_path / "sg"
    assert main(["sweep", "syncgame", "--grid", "delta_k=0.2,0.4", "--grid", "r=0.03,0.1", "--set", "n_vsp=2",
                 "--set", "n_grid=21", "--no-progress", "--out", str(out)]) == 0
    rows = artifacts.read_table(out / "results.csv")
    assert len(rows) == 4 * 3 and {r["scheme"] for r in rows} == {"nash", "stackelberg", "static"}
    assert all(r["converged"] for r in rows) and "seed" not in rows[0]
    nash = [r for r in rows if r["scheme"] == "nash"]
    assert all(r["residual"] <= 1e-9 and 0 < r["y_rest_vsp2"] < 1 for r in nash)
    assert np.isclose(nash[0]["payoff_total"], nash[0]["payoff_vsp1"] + nash[0]["payoff_vsp2"])
    # the leader (VSP 1) could play its Nash control and get the Nash outcome: committing first never loses
    stack = [r for r in rows if r["scheme"] == "stackelberg"]
    assert all(r["residual"] <= 1e-9 for r in stack)
    for n, s in zip(nash, stack):
        assert (n["delta_k"], n["r"]) == (s["delta_k"], s["r"])
        assert s["payoff_vsp1"] >= n["payoff_vsp1"] - 1e-9
    assert (out / "payoff_total_heatmap.png").exists()


def test_coevodt_sweep_runs_the_protocol_per_point_and_run(tmp_path):
    tiny = ["episodes=20", "episode_len=12", "baseline_episodes=10", "eval_episodes=4", "pop_size=3",
            "evolve_freq=10", "eval_per_member=2", "tournament_k=2", "n_replace=1", "convergence_window=5"]
    out = tmp_path / "co"
    argv = ["sweep", "coevodt", "--grid", "alpha_i=0.04,0.12", "--seeds", "2", "--no-progress", "--out", str(out)]
    for t in tiny:
        argv += ["--set", t]
    assert main(argv) == 0
    rows = artifacts.read_table(out / "results.csv")
    assert len(rows) == 2 * 2 and {r["mode"] for r in rows} == {"NoPred"} and {r["run"] for r in rows} == {0, 1}
    assert all(np.isfinite(r["trained_qoe"]) and np.isfinite(r["baseline_cost"]) for r in rows)
    # the same run key and params give the same baseline at both alpha_i values only if alpha_i is ignored
    assert rows[0]["baseline_cost"] != rows[2]["baseline_cost"]


@pytest.mark.parametrize("name", ["civic_budget_threshold", "syncgame_delta_r", "coevodt_alpha_load"])
def test_shipped_studies_are_valid_declarations(name):
    from jaxtwin import studies as sw
    from jaxtwin.core import engine
    from jaxtwin.core.study import load_study
    from jaxtwin.sweep_cli import shipped_study

    study = load_study(shipped_study(name))
    _, points, groups = engine.plan(study, sw.adapter(study.system))   # builds, compiles nothing
    assert len(points) >= 25 and len(groups) == 1
