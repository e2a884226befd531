"""PPO: losses vs hand values, config validation, learning on the toy env,
determinism, seed vmapping, chunked training and checkpoint bytes."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.core.config import ConfigError
from jaxtwin.core.rollout import batch_rollout, random_policy
from jaxtwin.core.toy_env import PointEnv
from jaxtwin.learn.ppo import (PPOConfig, approx_kl, clipped_surrogate_loss, clipped_value_loss,
                               make_policy, make_train, make_train_chunks, runner_state_from_bytes,
                               runner_state_to_bytes)

ENV = PointEnv(dim=2)
TINY = PPOConfig(num_envs=4, num_steps=8, total_timesteps=4 * 8 * 2, minibatch_size=16,
                 update_epochs=2, hidden=(16,))


def test_clipped_surrogate_hand_value():
    ratios = np.array([1.5, 0.5, 1.1, 0.7])
    old = np.array([-1.0, 0.3, -2.0, 0.0], np.float32)
    new = old + np.log(ratios).astype(np.float32)
    adv = jnp.array([1.0, 1.0, -2.0, -1.0])
    # min(r A, clip(r) A): 1.2, 0.5, -2.2, -0.8 -> mean -0.325 -> loss 0.325
    np.testing.assert_allclose(clipped_surrogate_loss(new, old, adv, 0.2), 0.325, rtol=1e-6)
    # no clipping when eps is huge: -mean(r A) = -(1.5 + 0.5 - 2.2 - 0.7)/4
    np.testing.assert_allclose(clipped_surrogate_loss(new, old, adv, 100.0), 0.225, rtol=1e-6)


def test_clipped_value_loss_hand_value():
    v, v_old, ret = jnp.array([1.0, 2.0]), jnp.array([0.5, 2.0]), jnp.array([2.0, 1.0])
    # first: max((1-2)^2, (0.7-2)^2) = 1.69; second: 1 -> 0.5 * mean = 0.6725
    np.testing.assert_allclose(clipped_value_loss(v, v_old, ret, 0.2), 0.6725, rtol=1e-6)
    # unclipped: 0.5 * mean(1, 1) = 0.5
    np.testing.assert_allclose(clipped_value_loss(v, v_old, ret, 0.2, clip=False), 0.5, rtol=1e-6)


def test_approx_kl_zero_at_equal_policies_and_positive_otherwise():
    lp = jnp.array([-1.0, -2.0])
    assert float(approx_kl(lp, lp)) == 0.0
    assert float(approx_kl(lp + jnp.array([0.1, -0.2]), lp)) > 0.0


@pytest.mark.parametrize("field,value", [
    ("num_envs", 0), ("num_steps", 2.5), ("gamma", 1.5), ("gae_lambda", -0.1),
    ("clip_eps", 0.0), ("lr", float("nan")), ("ent_coef", -1.0), ("hidden", ()),
    ("hidden", (64, 0)), ("activation", "sigmoid"), ("anneal_lr", 1), ("update_epochs", 0),
])
def test_bad_config_names_field(field, value):
    with pytest.raises(ConfigError, match=rf"PPOConfig\.{field}="):
        PPOConfig(**{field: value})


def test_minibatch_must_divide_batch():
    with pytest.raises(ConfigError, match=r"PPOConfig\.minibatch_size=100.*64 \* 128 = 8192"):
        PPOConfig(minibatch_size=100)
    with pytest.raises(ConfigError, match=r"PPOConfig\.total_timesteps"):
        PPOConfig(total_timesteps=100)


def test_defaults_follow_spec():
    cfg = PPOConfig()
    assert (cfg.gamma, cfg.gae_lambda, cfg.clip_eps, cfg.lr, cfg.minibatch_size, cfg.hidden) == \
        (0.97, 0.95, 0.2, 3e-4, 128, (128, 128))
    assert cfg.num_minibatches == 64 and cfg.num_updates == 1_000_000 // 8192


def _completed_mean_return(traj):
    """Mean return over episodes completed in a batch of auto-reset rollouts."""
    rewards = np.asarray(traj["reward"])
    done = np.asarray(traj["terminated"] | traj["truncated"])
    returns = []
    for r, d in zip(rewards, done):
        acc = 0.0
        for rt, dt in zip(r, d):
            acc += rt
            if dt:
                returns.append(acc)
                acc = 0.0
    return float(np.mean(returns))


@pytest.fixture(scope="module")
def toy_run():
    cfg = PPOConfig(num_envs=16, num_steps=32, total_timesteps=16 * 32 * 25, minibatch_size=64,
                    hidden=(64, 64))
    train_state, metrics = jax.jit(make_train(cfg, ENV))(jax.random.PRNGKey(0))
    return cfg, train_state, jax.tree.map(np.asarray, metrics)


def test_ppo_learns_toy_env(toy_run):
    cfg, train_state, metrics = toy_run
    params = ENV.default_params
    for name, values in metrics.items():
        assert values.shape[0] == cfg.num_updates, name
        assert np.all(np.isfinite(values)), name
    np.testing.assert_array_equal(metrics["env_steps"], np.arange(1, 26) * cfg.batch_size)
    keys = jax.random.split(jax.random.PRNGKey(123), 64)
    random_return = _completed_mean_return(
        batch_rollout(ENV, random_policy(ENV, params), keys, params, 96))
    act = make_policy(cfg, ENV, params, deterministic=True)
    greedy = lambda key, obs: act(train_state.params, key, obs)
    greedy_return = _completed_mean_return(batch_rollout(ENV, greedy, keys, params, 96))
    final = metrics["mean_return"][-5:].mean()
    # solving the task is worth ~ initial distance (~1) + bonus 1; random gets ~0.1
    assert random_return < 0.5
    assert final > metrics["mean_return"][0] + 1.0
    assert final > random_return + 1.0
    assert greedy_return > random_return + 1.0
    assert metrics["mean_length"][-5:].mean() < 0.5 * metrics["mean_length"][0]


def test_make_policy_shapes_bounds_and_determinism(toy_run):
    cfg, train_state, _ = toy_run
    act = make_policy(cfg, ENV, deterministic=True)
    sample = make_policy(cfg, ENV, deterministic=False)
    obs = 5.0 * jax.random.normal(jax.random.PRNGKey(0), (3, 4, 5))
    a = act(train_state.params, jax.random.PRNGKey(1), obs)
    assert a.shape == (3, 4, 2) and float(jnp.max(jnp.abs(a))) <= 1.0
    np.testing.assert_array_equal(a, act(train_state.params, jax.random.PRNGKey(2), obs))
    s1 = sample(train_state.params, jax.random.PRNGKey(1), obs[0, 0])
    s2 = sample(train_state.params, jax.random.PRNGKey(2), obs[0, 0])
    assert s1.shape == (2,) and not np.array_equal(s1, s2)


@pytest.fixture(scope="module")
def tiny_train():
    return jax.jit(make_train(TINY, ENV))


def test_deterministic_for_fixed_key(tiny_train):
    (s1, m1), (s2, m2) = tiny_train(jax.random.PRNGKey(5)), tiny_train(jax.random.PRNGKey(5))
    jax.tree.map(np.testing.assert_array_equal, (s1.params, m1), (s2.params, m2))
    _, m3 = tiny_train(jax.random.PRNGKey(6))
    assert not np.array_equal(m1["value_loss"], m3["value_loss"])


def test_vmap_over_seeds_matches_separate_runs(tiny_train):
    keys = jax.random.split(jax.random.PRNGKey(9), 2)
    states, metrics = jax.jit(jax.vmap(make_train(TINY, ENV)))(keys)
    for i in range(2):
        state_i, metrics_i = tiny_train(keys[i])
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a[i], b, rtol=1e-5, atol=1e-6),
                     (states.params, metrics), (state_i.params, metrics_i))


def test_chunks_and_checkpoint_bytes_match_one_run(tiny_train):
    key = jax.random.PRNGKey(11)
    full_state, full_metrics = tiny_train(key)
    init, run_updates = make_train_chunks(TINY, ENV)
    runner = init(key)
    runner, m_a = run_updates(runner, 1)
    data = runner_state_to_bytes(runner)
    assert isinstance(data, bytes)
    restored = runner_state_from_bytes(data, init(jax.random.PRNGKey(0)))
    jax.tree.map(np.testing.assert_array_equal, restored, runner)
    restored, m_b = run_updates(restored, 1)
    chunked = jax.tree.map(lambda a, b: np.concatenate([a, b]), m_a, m_b)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
                 (restored.train_state.params, chunked), (full_state.params, full_metrics))
    assert int(restored.update) == TINY.num_updates


def test_ppo_runs_on_civic_without_nans():
    from jaxtwin.civic.env import CivicEnv

    env = CivicEnv(n_msps=2, heads_per_msp=1, horizon=20, cooperative=True)
    cfg = PPOConfig(num_envs=4, num_steps=25, total_timesteps=4 * 25 * 2, minibatch_size=20,
                    update_epochs=1, hidden=(16,))
    train_state, metrics = jax.jit(make_train(cfg, env))(jax.random.PRNGKey(0))
    for name, values in metrics.items():
        assert np.all(np.isfinite(np.asarray(values))), name
    assert all(bool(jnp.all(jnp.isfinite(p))) for p in jax.tree.leaves(train_state.params))
    # 200 steps of 20-step episodes: most of them finished and were counted
    assert int(np.sum(metrics["episodes"])) >= 8
    assert float(metrics["mean_return"][-1]) != 0.0
