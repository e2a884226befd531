"""Several PPO learners trained as one vmapped program (:func:`train_agents`): each equals
that learner trained alone, resume after an interruption is exact, a finished stack
loads back with its learner axis, and CIs of trained agents are across training seeds."""
from __future__ import annotations

import jax
import numpy as np
import pytest

from jaxtwin.civic.agents import AgentConfig, learner, load_agent, train_agent, train_agents
from jaxtwin.civic.env import CivicEnv
from jaxtwin.civic.evaluate import METRIC_NAMES
from jaxtwin.civic.tables import drl_policies, policy_rows, summarize
from jaxtwin.core.stats import t_ci_halfwidth
from tests.helpers import interrupt_training_after_first_chunk

ENV = CivicEnv(2, 1, 8, cooperative=True)
AGENT = AgentConfig(total_timesteps=1024, num_envs=8, num_steps=32, minibatch_size=64, chunks=2)
KEYS = jax.random.split(jax.random.PRNGKey(3), 2)
POINTS = [ENV.default_params.replace(threshold=0.8), ENV.default_params.replace(threshold=0.9)]


@pytest.fixture(scope="module")
def stacked():
    return train_agents(ENV, POINTS, AGENT, KEYS, progress=False)


def test_each_vmapped_learner_equals_it_trained_alone(stacked):
    nets, metrics = stacked
    assert metrics["mean_return"].shape == (2, AGENT.ppo().num_updates)
    for i in range(2):
        net, m = train_agent(ENV, POINTS[i], AGENT, KEYS[i], progress=False)
        for a, b in zip(jax.tree.leaves(learner(nets, i)), jax.tree.leaves(net)):
            # float32 round-off only: batched matmuls may sum in another order
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(metrics["mean_return"][i], m["mean_return"], rtol=1e-5)
    a, b = (np.concatenate([np.ravel(x) for x in jax.tree.leaves(learner(nets, i))]) for i in range(2))
    assert not np.allclose(a, b)   # different keys and thresholds: different learners


def test_resume_after_interrupt_is_exact_and_loads_the_stack(tmp_path, stacked, monkeypatch):
    with monkeypatch.context() as m:
        interrupt_training_after_first_chunk(m)
        with pytest.raises(KeyboardInterrupt):
            train_agents(ENV, POINTS, AGENT, KEYS, tmp_path, progress=False)
    assert not (tmp_path / "agent.json").exists()
    nets, metrics = train_agents(ENV, POINTS, AGENT, KEYS, tmp_path, progress=False)
    for a, b in zip(jax.tree.leaves(nets), jax.tree.leaves(stacked[0])):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(metrics["mean_return"], stacked[1]["mean_return"])
    loaded = load_agent(tmp_path, ENV, AGENT, POINTS[0])
    for a, b in zip(jax.tree.leaves(loaded), jax.tree.leaves(nets)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_trained_agents_ci_is_across_training_seeds(stacked):
    nets, _ = stacked
    pols = drl_policies("DRL-GCP", ENV, POINTS[0], AGENT, nets)
    assert list(pols) == ["DRL-GCP#0", "DRL-GCP#1"]
    m = {"completion_pct": np.asarray([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0], [1.0, 2.0, 3.0]])}
    m.update({k: np.zeros((3, 3)) for k in METRIC_NAMES if k != "completion_pct"})
    rows = policy_rows(["DRL-GCP#0", "DRL-GCP#1", "Random"], m)
    assert {(r["policy"], r["train_seed"]) for r in rows} == {("DRL-GCP", 0), ("DRL-GCP", 1), ("Random", "")}
    by = {r["policy"]: r for r in summarize(rows, ("policy",))}
    assert by["DRL-GCP"]["n"] == 6 and by["DRL-GCP"]["n_train_seeds"] == 2
    assert by["DRL-GCP"]["completion_pct_mean"] == pytest.approx(35.0)
    # two training seeds with means 20 and 50: the CI is over these two, not the six episodes
    assert by["DRL-GCP"]["completion_pct_ci95"] == pytest.approx(t_ci_halfwidth([20.0, 50.0]))
    assert by["Random"]["completion_pct_ci95"] == pytest.approx(t_ci_halfwidth([1.0, 2.0, 3.0]))
