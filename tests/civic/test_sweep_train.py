"""A CIVIC sweep that trains DRL-GCP (and DRL, without the pool) at every point: its rows
are the trainings a caller would run (the same learners and episode keys), its CIs are across trainings, "all"
never trains, and a bad agent value fails before anything compiles."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxtwin.civic.agents import AgentConfig, train_agents
from jaxtwin.civic.env import CivicEnv
from jaxtwin.civic.baselines import from_actor
from jaxtwin.civic.evaluate import run_episode
from jaxtwin.learn.ppo import make_policy
from jaxtwin.core.config import ConfigError
from jaxtwin.core.stats import t_ci_halfwidth
from jaxtwin.studies import run_study
from jaxtwin.core.study import Study

AGENT = dict(total_timesteps=512, num_envs=4, num_steps=16, minibatch_size=32)
SHAPE = dict(n_msps=2, horizon=8, train_seeds=2, **{f"agent.{k}": v for k, v in AGENT.items()})
THRESHOLDS = (0.8, 0.9)
SEEDS = 3
ENV = CivicEnv(2, 1, 8, cooperative=True)


def _episode_keys():
    return jax.random.split(jax.random.PRNGKey(5), SEEDS)   # the study's (seed 5)


@jax.jit
def _agent_episodes(net, params):
    """One learner's deterministic actor on the sweep's episode keys: ``(state, return)``."""
    act = make_policy(AgentConfig(chunks=1, **AGENT).ppo(), ENV, ENV.default_params, deterministic=True)
    return jax.vmap(lambda k: run_episode(ENV, from_actor(act, net), k, params)[:2])(_episode_keys())


def _study(policies=("Max-GCP", "DRL-GCP", "DRL"), **fixed):
    return Study("civic", (("threshold", THRESHOLDS),), fixed=tuple({**SHAPE, **fixed}.items()),
                 policies=policies, seeds=SEEDS, seed=5)


@pytest.fixture(scope="module")
def swept():
    rows, summary = run_study(_study(), progress=False)
    return rows.to_dict("records"), summary.to_dict("records")


def test_rows_are_the_trainings_a_caller_would_run(swept):
    rows, _ = swept
    rows = [r for r in rows if r["policy"] == "DRL-GCP"]
    assert len(rows) == len(THRESHOLDS) * 2 * SEEDS
    assert {r["train_seed"] for r in rows} == {0, 1}
    agent = AgentConfig(**AGENT)   # the sweep's: trained in the default 4 chunks (checkpoints)
    points = [ENV.default_params.replace(threshold=t) for t in THRESHOLDS for _ in range(2)]
    train_keys = jax.random.split(jax.random.fold_in(_episode_keys()[0], 7), 2)   # the same at every point
    nets, _ = train_agents(ENV, points, agent, np.concatenate([train_keys, train_keys]), progress=False)
    for i, t in enumerate(THRESHOLDS):
        got = [r for r in rows if r["threshold"] == t]
        for k in (0, 1):
            state, ret = _agent_episodes(jax.tree.map(lambda x: x[2 * i + k], nets), points[2 * i])
            mine = [r for r in got if r["train_seed"] == k]
            assert [r["seed"] for r in mine] == list(range(SEEDS))
            assert [r["served"] for r in mine] == np.asarray(state.n_served.sum(-1)).tolist()
            np.testing.assert_allclose([r["episode_return"] for r in mine], np.asarray(ret), rtol=1e-5)


def test_drl_in_a_pooled_group_trains_without_the_pool_and_plays_in_it(swept):
    """The coop table's DRL: trained in the non-pooled env on the point's scenario and budgets
    (the same training keys), then playing in the pooled env without donating."""
    from jaxtwin.civic.agents import agent_actor

    rows = [r for r in swept[0] if r["policy"] == "DRL"]
    assert len(rows) == len(THRESHOLDS) * 2 * SEEDS
    no_pool = CivicEnv(2, 1, 8, cooperative=False)
    points = [ENV.default_params.replace(threshold=t) for t in THRESHOLDS for _ in range(2)]
    train_keys = jax.random.split(jax.random.fold_in(_episode_keys()[0], 7), 2)
    nets, _ = train_agents(no_pool, points, AgentConfig(**AGENT), np.concatenate([train_keys, train_keys]),
                           progress=False)
    policy_of = agent_actor(ENV, AgentConfig(**AGENT), trained_env=no_pool)
    play = jax.jit(lambda net, params: jax.vmap(lambda k: run_episode(ENV, policy_of(net), k, params)[:2])(
        _episode_keys()))
    for i, t in enumerate(THRESHOLDS):
        for k in (0, 1):
            state, ret = play(jax.tree.map(lambda x: x[2 * i + k], nets), points[2 * i])
            mine = [r for r in rows if r["threshold"] == t and r["train_seed"] == k]
            assert [r["served"] for r in mine] == np.asarray(state.n_served.sum(-1)).tolist()
            np.testing.assert_allclose([r["episode_return"] for r in mine], np.asarray(ret), rtol=1e-5)
            assert all(r["gcp_final"] == 0 for r in mine)   # it never donates


class _StopAtFirstTick:
    """A progress bar whose first tick (after a training's first chunk is checkpointed) is Ctrl-C."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n):
        raise KeyboardInterrupt


def test_an_interrupted_training_resumes_from_its_checkpoint(swept, tmp_path, monkeypatch, capsys):
    """With an output folder the trainings of each chunk are checkpointed under
    ``work/gGGG/cCCCC/agent``: stopped after their first PPO chunk, a rerun resumes them
    there and writes the rows of an uninterrupted run (the fixture's, which had no folder)."""
    import pandas as pd

    from jaxtwin.civic import agents

    with monkeypatch.context() as m:
        m.setattr(agents, "progress_bar", _StopAtFirstTick)
        with pytest.raises(KeyboardInterrupt):
            run_study(_study(), tmp_path / "s", progress=False)
    work = tmp_path / "s" / "work" / "g000" / "c0000" / "agent"
    assert (work / "checkpoint.msgpack").exists() and not (work / "agent.json").exists()
    assert not (tmp_path / "s" / "parts").exists()
    rows, _ = run_study(_study(), tmp_path / "s", progress=False)
    assert f"resuming the training in {work} at chunk 2 of 4" in capsys.readouterr().err
    assert (work / "agent.json").exists() and (work / "train_metrics.csv").exists()
    pd.testing.assert_frame_equal(rows, pd.DataFrame(swept[0]))   # the same table, read back from the files


def test_train_on_base_trains_once_and_evaluates_that_agent_at_every_point(monkeypatch):
    """``train_on = "base"``: one training, of the base scenario (the defaults plus the fixed
    values: threshold 0.85) on the usual training keys; its learners play every point's episodes."""
    from jaxtwin.civic import sweep

    trainings = []

    def spy(env, points, agent, keys, **kw):
        trainings.append((points, np.asarray(keys), sweep_train(env, points, agent, keys, **kw)[0]))
        return trainings[-1][2], None

    sweep_train = sweep.train_agents
    monkeypatch.setattr(sweep, "train_agents", spy)
    rows, _ = run_study(_study(("Max-GCP", "DRL-GCP"), train_on="base"), progress=False)
    ((points, keys, nets),) = trainings
    assert len(points) == 2 and all(float(p.threshold) == 0.85 for p in points)
    np.testing.assert_array_equal(keys, jax.random.split(jax.random.fold_in(_episode_keys()[0], 7), 2))
    rows = [r for r in rows.to_dict("records") if r["policy"] == "DRL-GCP"]
    for t in THRESHOLDS:
        for k in (0, 1):
            _, ret = _agent_episodes(jax.tree.map(lambda x: x[k], nets), ENV.default_params.replace(threshold=t))
            mine = [r["episode_return"] for r in rows if r["threshold"] == t and r["train_seed"] == k]
            np.testing.assert_allclose(mine, np.asarray(ret), rtol=1e-5)


def test_summary_of_the_agent_is_across_trainings(swept):
    rows, summary = swept
    for t in THRESHOLDS:
        (s,) = [s for s in summary if s["policy"] == "DRL-GCP" and s["threshold"] == t]
        per_training = [np.mean([r["episode_return"] for r in rows if r["policy"] == "DRL-GCP"
                                 and r["threshold"] == t and r["train_seed"] == k]) for k in (0, 1)]
        assert s["n_train_seeds"] == 2 and s["n_seeds"] == SEEDS
        np.testing.assert_allclose(s["episode_return_mean"], np.mean(per_training), rtol=1e-12)
        np.testing.assert_allclose(s["episode_return_ci95"], t_ci_halfwidth(np.asarray(per_training)), rtol=1e-12)
        (b,) = [s for s in summary if s["policy"] == "Max-GCP" and s["threshold"] == t]
        assert not np.isfinite(b.get("n_train_seeds", np.nan))   # a baseline has no trainings
        assert b["n_seeds"] == SEEDS


def test_all_never_trains_and_bad_agent_values_fail_first():
    from jaxtwin.civic.sweep import ADAPTER
    from jaxtwin.core.engine import plan

    _, _, groups = plan(_study(policies=("all",)), ADAPTER)
    assert not any(p.startswith("DRL") for p in groups[0].runner.policies)   # neither agent trains
    assert "Myopic-GCP" in groups[0].runner.policies
    _, _, groups = plan(_study(policies=("all", "DRL-GCP")), ADAPTER)
    assert groups[0].runner.policies[-2:] == ("DRL-GCP#0", "DRL-GCP#1")
    with pytest.raises(ConfigError, match=r"AgentConfig.lr"):
        plan(_study(**{"agent.lr": -1.0}), ADAPTER)
    with pytest.raises(ConfigError, match=r"train_seeds=0"):
        plan(_study(train_seeds=0), ADAPTER)


@pytest.fixture(scope="module")
def saved_agent(tmp_path_factory):
    """Two learners of the base scenario saved as ``jaxtwin civic train`` saves them."""
    folder = tmp_path_factory.mktemp("agent")
    nets, _ = train_agents(ENV, ENV.default_params, AgentConfig(chunks=1, **AGENT),
                           jax.random.split(jax.random.PRNGKey(9), 2), folder, progress=False)
    return folder, nets


def test_a_saved_agent_plays_every_point_and_nothing_trains(saved_agent, tmp_path, monkeypatch):
    """``agent_dir``: the saved learners (under their own config: the study's agent fields are
    not used) play every point's episodes; the record holds the checkpoint's hash."""
    from jaxtwin.civic import sweep
    from jaxtwin.core import engine

    folder, nets = saved_agent
    monkeypatch.setattr(sweep, "train_agents", lambda *a, **k: pytest.fail("a saved agent must not train"))
    study = Study("civic", (("threshold", THRESHOLDS),), fixed=(("n_msps", 2), ("horizon", 8),
                  ("agent_dir", str(folder)), ("agent.lr", 0.5)), policies=("Max-GCP", "DRL-GCP"),
                  seeds=SEEDS, seed=5)
    rows, _ = engine.run(study, sweep.ADAPTER, tmp_path / "sweep", progress=False)
    for t in THRESHOLDS:
        for k in (0, 1):
            _, ret = _agent_episodes(jax.tree.map(lambda x: x[k], nets), ENV.default_params.replace(threshold=t))
            mine = [r["episode_return"] for r in rows if r["policy"] == "DRL-GCP" and r["threshold"] == t
                    and r["train_seed"] == k]
            np.testing.assert_allclose(mine, np.asarray(ret), rtol=1e-5)
    recorded = (tmp_path / "sweep" / "config.json").read_text()
    (fingerprint,) = sweep.ADAPTER.inputs(study).values()
    assert fingerprint in recorded
    with open(folder / "checkpoint.msgpack", "ab") as f:   # the agent changed: so does its fingerprint
        f.write(b"\0")
    try:
        assert fingerprint not in sweep.ADAPTER.inputs(study).values()
    finally:
        with open(folder / "checkpoint.msgpack", "rb+") as f:
            f.truncate(f.seek(0, 2) - 1)


@pytest.mark.parametrize("fixed, message", [
    ({"agent_dir": "/nonexistent/agent"}, r"agent_dir='/nonexistent/agent': no finished agent there"),
    ({"n_msps": 3}, r"trained for another scenario: n_msps=2 there, 3 here"),
    ({"cooperative": False}, r"cooperative=True there \(a GCP agent\), False here"),
])
def test_a_saved_agent_that_cannot_play_fails_before_any_work(saved_agent, fixed, message):
    from jaxtwin.civic.sweep import ADAPTER
    from jaxtwin.core.engine import plan

    folder, _ = saved_agent
    fixed = {"n_msps": 2, "horizon": 8, "agent_dir": str(folder), **fixed}
    pols = ("Max", "DRL-GCP") if fixed.get("cooperative") is False else ("Max-GCP", "DRL-GCP")
    with pytest.raises(ConfigError, match=message):
        plan(Study("civic", (("threshold", THRESHOLDS),), fixed=tuple(fixed.items()), policies=pols), ADAPTER)
