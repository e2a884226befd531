"""CivicEnv(observe_sla=True): the SLA accuracies join the observation and nothing else changes;
agents trained on one observation are not loaded or run under the other."""
import jax
import numpy as np
import pytest

from jaxtwin.civic.agents import AgentConfig, drl_policy, load_agent, train_agents
from jaxtwin.civic.config import CivicConfig, scenario_env
from jaxtwin.civic.env import CivicEnv
from jaxtwin.core.config import ConfigError

M, H_PER, T = 2, 2, 5
PLAIN = CivicEnv(M, H_PER, T, cooperative=True)
SLA = CivicEnv(M, H_PER, T, cooperative=True, observe_sla=True)
H = M * H_PER
SLA_SLICE = slice(2 * M + 2 * H, 2 * M + 3 * H)   # after budgets, fulfilled, clients, requests


_COMPILED = {env: (jax.jit(env.reset_env), jax.jit(env.step_env)) for env in (PLAIN, SLA)}   # not op by op


def _rollout(env, key, actions):
    params = env.default_params
    reset, step = _COMPILED[env]
    obs, state = reset(key, params)
    out = [(obs, state, 0.0)]
    for t, a in enumerate(actions):
        obs, state, reward, *_ = step(jax.random.fold_in(key, t), state, a, params)
        out.append((obs, state, reward))
    return out


def test_sla_entries_are_the_scaled_accuracies_and_the_rest_is_the_spec_observation():
    assert SLA.obs_size == PLAIN.obs_size + H
    rooms = SLA.rooms(SLA.default_params)
    actions = jax.random.uniform(jax.random.PRNGKey(4), (T - 1, SLA.action_size), minval=-1, maxval=1)
    for key in jax.random.split(jax.random.PRNGKey(0), 3):
        for (o_sla, s_sla, r_sla), (o, s, r) in zip(_rollout(SLA, key, actions), _rollout(PLAIN, key, actions)):
            eps = np.asarray(s_sla.eps)
            want = (eps - np.asarray(rooms.eps_min)) / (np.asarray(rooms.eps_max) - np.asarray(rooms.eps_min))
            np.testing.assert_allclose(np.asarray(o_sla[SLA_SLICE]), want, rtol=1e-6, atol=1e-7)
            assert np.all((want >= 0) & (want <= 1))
            rest = np.concatenate([o_sla[:SLA_SLICE.start], o_sla[SLA_SLICE.stop:]])
            np.testing.assert_array_equal(rest, np.asarray(o))          # the spec's observation, unchanged
            assert float(r_sla) == float(r)                              # and the same dynamics
            for a, b in zip(jax.tree.leaves(s_sla), jax.tree.leaves(s)):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_config_builds_sla_envs_and_rejects_a_non_boolean():
    assert scenario_env(CivicConfig(observe_sla=True), 3, 100, False).observe_sla
    assert not scenario_env(CivicConfig(), 3, 100, True).observe_sla
    with pytest.raises(ConfigError, match=r"observe_sla='yes'"):
        CivicConfig(observe_sla="yes")


def test_an_agent_is_used_only_under_the_observation_it_was_trained_on(tmp_path):
    agent = AgentConfig(total_timesteps=64, num_envs=4, num_steps=16, minibatch_size=32, chunks=1)
    train_agents(SLA, SLA.default_params, agent, jax.random.split(jax.random.PRNGKey(0), 1), tmp_path,
                 progress=False)
    net = load_agent(tmp_path, SLA, agent)
    assert jax.tree.leaves(net)[0].shape[0] == 1
    with pytest.raises(ConfigError, match="observe_sla=True there, None here"):
        load_agent(tmp_path, PLAIN, agent)
    noncoop_sla = CivicEnv(M, H_PER, T, cooperative=False, observe_sla=True)
    with pytest.raises(ConfigError, match="observe_sla"):
        drl_policy(PLAIN, PLAIN.default_params, agent, jax.tree.map(lambda x: x[0], net),
                   trained_env=noncoop_sla)
    # DRL in the coop table reads the cooperative observation less its two GCP entries: with the
    # SLA entries placed before t/T that is exactly the non-cooperative SLA observation
    obs, _ = SLA.reset_env(jax.random.PRNGKey(1), SLA.default_params)
    plain_obs, _ = noncoop_sla.reset_env(jax.random.PRNGKey(1), SLA.default_params)
    np.testing.assert_array_equal(np.asarray(obs[:-2]), np.asarray(plain_obs))


def test_verdicts_say_when_the_best_baseline_reads_the_sla():
    from jaxtwin.civic.tables import agent_verdicts

    def row(policy, ret, T):
        return {"horizon": T, "policy": policy, "episode_return_mean": ret, "episode_return_ci95": 1.0,
                "n_train_seeds": 3 if policy.startswith("DRL") else ""}

    summary = [row("Myopic-GCP", 270.0, 100), row("Max-GCP", 100.0, 100), row("DRL-GCP", 260.0, 100),
               row("Myopic-GCP", 90.0, 200), row("Max-GCP", 120.0, 200), row("DRL-GCP", 150.0, 200)]
    short, fine = agent_verdicts(summary, ("horizon",))
    assert (short["best_baseline"], short["best_baseline_reads_sla"], short["under_trained"]) == ("Myopic-GCP", True, True)
    assert (fine["best_baseline"], fine["best_baseline_reads_sla"], fine["under_trained"]) == ("Max-GCP", False, False)
