"""Environment base class: auto-reset semantics, rollouts and returns on a counter env."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxtwin.core.env import Environment
from jaxtwin.core.rollout import batch_rollout, discounted_returns, random_policy
from jaxtwin.core.spaces import Box, Discrete


@struct.dataclass
class CounterParams:
    horizon: int = 3


class CounterEnv(Environment):
    """obs = step count; reward = action; truncates after `horizon` steps."""

    @property
    def default_params(self):
        return CounterParams()

    def reset_env(self, key, params):
        return jnp.zeros(1), jnp.int32(0)

    def step_env(self, key, state, action, params):
        t = state + 1
        return (jnp.full(1, t, jnp.float32), t, action.astype(jnp.float32),
                jnp.bool_(False), t >= params.horizon, {"t": t})

    def action_space(self, params=None):
        return Discrete(2)

    def observation_space(self, params=None):
        return Box(0.0, 10.0, (1,))


def test_step_auto_resets_and_reports_final_observation():
    env = CounterEnv()
    obs, state = env.reset(jax.random.key(0))
    for _ in range(2):
        obs, state, *_ = env.step(jax.random.key(1), state, jnp.int32(1))
    obs, state, r, term, trunc, info = env.step(jax.random.key(2), state, jnp.int32(1))
    assert bool(trunc) and not bool(term)
    assert int(state) == 0 and float(obs[0]) == 0.0
    assert float(info["final_observation"][0]) == 3.0


def test_batch_rollout_shapes_and_random_policy_in_space():
    env = CounterEnv()
    params = env.default_params
    traj = batch_rollout(env, random_policy(env, params), jax.random.split(jax.random.key(0), 4), params, 7)
    assert traj["reward"].shape == (4, 7) and traj["truncated"].shape == (4, 7)
    np.testing.assert_array_equal(traj["truncated"][0], [0, 0, 1, 0, 0, 1, 0])
    assert set(np.unique(traj["action"])) <= {0, 1}


def test_discounted_returns_hand_values():
    g = discounted_returns(jnp.array([1.0, 0.0, 2.0]), 0.5)
    np.testing.assert_allclose(g, [1.5, 1.0, 2.0])


def test_spaces_contains():
    assert bool(Discrete(3, (2,)).contains(jnp.array([0, 2])))
    assert not bool(Discrete(3, (2,)).contains(jnp.array([0, 3])))
    assert not bool(Box(-1.0, 1.0, (2,)).contains(jnp.array([0.0, jnp.nan])))
    s = Box(-1.0, 1.0, (3,)).sample(jax.random.key(0))
    assert bool(Box(-1.0, 1.0, (3,)).contains(s))
