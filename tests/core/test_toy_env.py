"""PointEnv: contract, termination vs truncation, projection of bad actions."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.core.config import ConfigError
from jaxtwin.core.rollout import rollout
from jaxtwin.core.toy_env import PointEnv, PointState, project_action


@pytest.fixture(scope="module")
def env():
    return PointEnv(dim=2)


def test_reset_obs_in_space(env):
    params = env.default_params
    obs, state = jax.jit(env.reset)(jax.random.PRNGKey(0), params)
    assert obs.shape == env.observation_space(params).shape and obs.dtype == jnp.float32
    assert bool(env.observation_space(params).contains(obs))
    np.testing.assert_allclose(obs[2:4], state.target - state.position)


def test_termination_at_target(env):
    params = env.default_params
    state = PointState(position=jnp.array([0.0, 0.0]), target=jnp.array([0.15, 0.0]),
                       t=jnp.asarray(3, jnp.int32))
    obs, new_state, reward, terminated, truncated, _ = env.step_env(
        jax.random.PRNGKey(0), state, jnp.array([1.0, 0.0]), params)
    assert bool(terminated) and not bool(truncated)
    # progress 0.15 - 0.05 plus the bonus
    np.testing.assert_allclose(reward, 0.1 + 1.0, rtol=1e-6)
    np.testing.assert_allclose(new_state.position, [0.2, 0.0], rtol=1e-6)


def test_truncation_after_max_steps_and_auto_reset(env):
    params = env.default_params.replace(max_steps=5)
    stay = lambda key, obs: jnp.zeros(2)  # never reaches a far target
    traj = rollout(env, stay, jax.random.PRNGKey(3), params, 12)
    # a standing point never terminates unless it starts within goal_radius
    assert not bool(traj["terminated"].any())
    np.testing.assert_array_equal(np.nonzero(np.asarray(traj["truncated"]))[0], [4, 9])
    # after the truncation the next observation starts a new episode at t=0
    np.testing.assert_allclose(traj["obs"][5, -1], 0.0)
    np.testing.assert_allclose(traj["info"]["final_observation"][4, -1], 1.0)


def test_bad_actions_are_projected(env):
    params = env.default_params
    np.testing.assert_array_equal(project_action(jnp.array([jnp.nan, 5.0])), [0.0, 1.0])
    np.testing.assert_array_equal(project_action(jnp.array([-jnp.inf, -0.5])), [0.0, -0.5])
    obs, state = env.reset(jax.random.PRNGKey(0), params)
    obs2, _, reward, *_ = env.step(jax.random.PRNGKey(1), state, jnp.array([jnp.nan, jnp.inf]), params)
    assert bool(jnp.all(jnp.isfinite(obs2))) and bool(jnp.isfinite(reward))
    with pytest.raises(ValueError, match=r"expected shape \(2,\)"):   # no silent broadcasting
        jax.jit(env.step)(jax.random.PRNGKey(1), state, jnp.zeros((2, 2)), params)


def test_position_stays_in_box_and_is_deterministic(env):
    params = env.default_params
    policy = lambda key, obs: 3.0 * jax.random.normal(key, (2,))
    run = jax.jit(lambda k: rollout(env, policy, k, params, 50))
    a, b = run(jax.random.PRNGKey(7)), run(jax.random.PRNGKey(7))
    np.testing.assert_array_equal(a["obs"], b["obs"])
    assert float(jnp.max(jnp.abs(a["obs"][:, :2]))) <= 1.0


def test_bad_dim_rejected_and_gymnax_attributes():
    with pytest.raises(ConfigError, match="PointEnv.dim"):
        PointEnv(dim=0)
    assert PointEnv(dim=3).name == "Point" and PointEnv(dim=3).num_actions == 3
