"""CIVIC experiments: tiny end-to-end CLI runs, train/resume/evaluate (evaluate only loads),
config errors, PPO beats baselines."""
import json
import math

import jax
import numpy as np
import pytest

from jaxtwin.cli import main
from jaxtwin.core.artifacts import read_csv
from jaxtwin.core.config import ConfigError
from jaxtwin.civic.env import CivicEnv
from jaxtwin.civic.agents import AgentConfig, drl_policy, train_agent
from jaxtwin.civic.experiments import CivicConfig
from jaxtwin.civic.baselines import make_baseline
from jaxtwin.civic.evaluate import make_evaluator
from tests.helpers import interrupt_training_after_first_chunk
from tests.golden.cases import CASES
from tests.test_golden_outputs import GOLDEN, compare_tables

TINY_AGENT = ["--agent.total-timesteps", "512", "--agent.num-envs", "8", "--agent.num-steps", "32",
              "--agent.chunks", "2", "--eval-episodes", "2", "--no-progress"]


def test_coop_experiment_end_to_end_and_skip(tmp_path):
    """Also the default run's golden-output check for CIVIC: the same command as
    ``tests/test_golden_outputs.py[civic_coop]`` (which runs under ``-m slow``)."""
    out = tmp_path / "coop"
    argv = ["civic", "experiment", "coop", "--msps", "2", "--horizons", "8", *TINY_AGENT]
    assert CASES["civic_coop"] == [argv]
    assert main([*argv, "--out", str(out)]) == 0
    problems = compare_tables(GOLDEN / "civic_coop", out)
    assert not problems, "\n".join(problems)
    rows = read_csv(out / "results.csv")
    assert {r["policy"] for r in rows} == {"Average", "Max", "Random", "DRL", "Avg-GCP", "Max-GCP",
                                           "Random-GCP", "Myopic-GCP", "DRL-GCP"}
    assert len(rows) == (7 + 2 * 3) * 2     # 7 baselines + DRL and DRL-GCP x 3 training seeds, 2 episodes
    assert {r["train_seed"] for r in rows if r["policy"].startswith("DRL")} == {"0", "1", "2"}
    assert {r["train_seed"] for r in rows if not r["policy"].startswith("DRL")} == {""}
    assert all(float(r["credit_error"]) == 0 for r in rows)
    rel = read_csv(out / "relative_to_random.csv")
    assert {float(r["completion_pct_vs_random_pct"]) for r in rel if r["policy"] == "Random"} == {0.0}
    assert (out / "coop_completion_pct_T8.png").exists() and (out / "config.json").exists()
    # a study on the engine: one group, whose DRL-GCP and DRL (no pool) trainings are checkpointed
    work = out / "studies" / "coop" / "work" / "g000" / "c0000"
    for agent in ("agent", "agent-DRL"):
        assert {r["learner"] for r in read_csv(work / agent / "train_metrics.csv")} == {"0", "1", "2"}
    (verdict,) = read_csv(out / "agent_vs_baselines.csv")   # one scenario
    best = max(float(r["episode_return_mean"]) for r in read_csv(out / "summary.csv")
               if not r["policy"].startswith("DRL"))
    assert verdict["best_baseline_return"] == str(best) or float(verdict["best_baseline_return"]) == best
    assert (verdict["under_trained"] == "True") == (float(verdict["return_mean"]) < best)
    mtime = (out / "results.csv").stat().st_mtime
    assert main([*argv, "--out", str(out)]) == 0
    assert (out / "results.csv").stat().st_mtime == mtime      # finished work is skipped


@pytest.mark.slow
def test_withdraw_experiment_tiny(tmp_path):
    out = tmp_path / "w"
    assert main(["civic", "experiment", "withdraw", "--out", str(out), "--n-msps", "2", "--horizon", "8",
                 "--ratios", "1.0", "inf", *TINY_AGENT]) == 0
    rows = read_csv(out / "results.csv")
    assert {float(r["ratio"]) for r in rows} == {1.0, math.inf}
    assert (out / "withdraw_failed_clients.png").exists()


def test_noncoop_is_a_study_on_the_engine(tmp_path):
    """Also the default run's golden-output check for noncoop. Both request counts of one MSP
    count are one shape group (padded to the larger N_m) whose 2 x 3 learners train as one program; each point's budget is sized for its own N_m
    (``T_ref`` zipped with the horizon); the training curves come from the group's work folder."""
    out = tmp_path / "noncoop"
    argv = ["civic", "experiment", "noncoop", "--noncoop-msps", "1", "--noncoop-requests", "6", "8", *TINY_AGENT]
    assert CASES["civic_noncoop"] == [argv]   # also the default run's golden check of noncoop
    argv += ["--out", str(out)]
    assert main(argv) == 0
    problems = compare_tables(GOLDEN / "civic_noncoop", out)
    assert not problems, "\n".join(problems)
    rows = read_csv(out / "results.csv")
    assert len(rows) == 2 * (4 + 3) * 2    # 2 points x (4 baselines + DRL x 3 trainings) x 2 episodes
    assert {(r["requests_per_head"], r["train_seed"]) for r in rows if r["policy"] == "DRL"} == {
        (n, s) for n in ("6", "8") for s in ("0", "1", "2")}
    assert {float(r["requests"]) for r in rows if r["requests_per_head"] == "8"} == {8.0}   # fixed requests
    record = json.loads((out / "studies" / "noncoop" / "study.json").read_text())
    (group,) = record["groups"]
    assert (group["shape"]["horizon"], group["points"], group["chunks"]) == (8, 2, 1)
    assert record["study"]["zipped"] == [["horizon", "T_ref"]]
    metrics = read_csv(out / "studies" / "noncoop" / "work" / "g000" / "c0000" / "agent" / "train_metrics.csv")
    assert {r["learner"] for r in metrics} == {str(i) for i in range(6)}
    for png in ("noncoop_reward_convergence.png", "noncoop_immersion_N6.png", "noncoop_immersion_N8.png"):
        assert (out / png).stat().st_size > 0
    mtime = (out / "results.csv").stat().st_mtime_ns
    assert main(argv) == 0 and (out / "results.csv").stat().st_mtime_ns == mtime   # finished: skipped


@pytest.mark.slow
@pytest.mark.parametrize("which,extra", [
    ("tolerance", ["--n-msps", "1", "--noncoop-requests", "6", "--tolerance-trials", "2"]),
    ("adapt", ["--n-msps", "2", "--horizon", "8"]),
])
def test_other_experiments_tiny(tmp_path, which, extra):
    out = tmp_path / which
    assert main(["civic", "experiment", which, "--out", str(out), *extra, *TINY_AGENT]) == 0
    assert any(p.suffix == ".png" for p in out.iterdir())
    assert (out / ("adapt_curve.csv" if which == "adapt" else "results.csv")).exists()


def test_train_resume_and_evaluate_never_trains(tmp_path, monkeypatch, capsys):
    """evaluate refuses without a finished training (one line saying to run train), resumes
    nothing, rewrites no training output, and depends only on the trained network."""
    out = tmp_path / "agent"
    args = ["--out", str(out), "--n-msps", "2", "--horizon", "8", *TINY_AGENT]
    assert main(["civic", "evaluate", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no trained agent in" in err and f"`jaxtwin civic train --out {out}`" in err

    with monkeypatch.context() as m:
        interrupt_training_after_first_chunk(m)
        assert main(["civic", "train", *args]) == 130   # Ctrl-C: one line saying how to resume
    err = capsys.readouterr().err
    assert err.startswith("interrupted: jaxtwin civic train stopped; the ") and "files of finished work" in err
    assert "rerun the same command to resume" in err
    assert "Traceback" not in err
    # one update of each of the 3 training seeds
    assert len(read_csv(out / "train_metrics.csv")) == 3 and (out / "checkpoint.msgpack").exists()
    assert main(["civic", "evaluate", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "training in" in err and "is not finished (1 of 2 updates" in err
    assert "jaxtwin civic train --out" in err and not (out / "evaluation.csv").exists()

    assert main(["civic", "train", *args]) == 0          # resumes the second chunk
    assert f"resuming the training in {out} at chunk 2 of 2" in capsys.readouterr().err
    assert len(read_csv(out / "train_metrics.csv")) == 3 * 512 // (8 * 32)
    training = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in out.iterdir() if p.is_file()}
    assert {"checkpoint.msgpack", "train_metrics.csv", "config.json", "agent.json"} <= set(training)

    assert main(["civic", "evaluate", *args]) == 0
    first = (out / "evaluation.csv").read_bytes()
    policies = {r["policy"] for r in read_csv(out / "evaluation.csv")}
    assert "DRL-GCP" in policies and "Max-GCP" in policies
    # another number of training environments: the same network, the same evaluation
    assert main(["civic", "evaluate", *args, "--agent.num-envs", "16"]) == 0
    assert (out / "evaluation.csv").read_bytes() == first
    # the record describes the agent evaluated (its agent.json), whatever --agent.* says
    assert "was trained with num_envs=8 (given 16)" in capsys.readouterr().err
    recorded = json.loads((out / "evaluation_config.json").read_text())["config"]["agent"]
    assert recorded == json.loads((out / "agent.json").read_text())["agent"]
    assert main(["civic", "evaluate", *args, "--n-msps", "3"]) == 2
    assert "trained for another scenario: n_msps=2 there, 3 here" in capsys.readouterr().err
    for name, (data, mtime) in training.items():
        assert (out / name).read_bytes() == data and (out / name).stat().st_mtime_ns == mtime, name


def test_bad_config_reports_field(tmp_path, capsys):
    assert main(["civic", "experiment", "coop", "--out", str(tmp_path), "--threshold", "1.5"]) == 2
    assert "CivicConfig.threshold" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="AgentConfig.total_timesteps"):
        AgentConfig(total_timesteps=0)
    with pytest.raises(ConfigError, match="CivicConfig.msps"):
        CivicConfig(msps=(0,))


def test_ppo_beats_random_and_saving():
    """PPO on a small non-cooperative scenario beats Random and Saving (return and fulfilled)."""
    env = CivicEnv(n_msps=1, heads_per_msp=2, horizon=20, cooperative=False)
    params = env.default_params.replace(p_req=1.0)
    agent = AgentConfig(total_timesteps=65_536, num_envs=32, num_steps=64, chunks=1)
    net, metrics = train_agent(env, params, agent, jax.random.PRNGKey(0), progress=False)
    assert metrics["mean_return"][-1] > metrics["mean_return"][0]
    pols = [make_baseline("Random", env), make_baseline("Saving", env), drl_policy(env, params, agent, net)]
    m = jax.tree.map(np.asarray, make_evaluator(env, pols)(jax.random.split(jax.random.PRNGKey(1), 32), params))
    ret, ful = m["episode_return"].mean(axis=1), m["fulfilled"].mean(axis=1)
    assert ret[2] > ret[0] and ret[2] > ret[1]
    assert ful[2] > ful[0] and ful[2] > ful[1]


def test_notebook_runs(run_notebook):
    nb = run_notebook("civic.ipynb")
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "DRL-GCP" in text
