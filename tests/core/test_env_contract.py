"""Environment base class: auto-reset semantics, rollouts and returns on a counter env;
gymnax's spaces, the multi-discrete space, and gymnax's wrappers on a discrete env."""
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import struct
from gymnax.environments import environment as gymnax_env
from gymnax.environments.spaces import gymnax_space_to_gym_space
from gymnax.wrappers import LegacyStepAPIWrapper, LogWrapper, StickyActionWrapper

from jaxtwin.core.env import Environment
from jaxtwin.core.rollout import batch_rollout, discounted_returns, random_policy
from jaxtwin.core.spaces import Box, Discrete, MultiDiscrete, conforms


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
    assert bool(MultiDiscrete(3, (2,)).contains(jnp.array([0, 2])))
    assert not bool(MultiDiscrete(3, (2,)).contains(jnp.array([0, 3])))
    assert not bool(MultiDiscrete(3, (2,)).contains(jnp.array([0.5, 1.0])))
    assert not bool(Box(-1.0, 1.0, (2,)).contains(jnp.array([0.0, jnp.nan])))
    s = Box(-1.0, 1.0, (3,)).sample(jax.random.key(0))
    assert bool(Box(-1.0, 1.0, (3,)).contains(s))
    # gymnax's contains checks the range only; conforms adds shape and dtype
    assert bool(Box(-1.0, 1.0, (3,)).contains(jnp.zeros(2)))
    assert not conforms(Box(-1.0, 1.0, (3,)), jnp.zeros(2))
    assert not conforms(Box(-1.0, 1.0, (3,)), jnp.zeros(3, jnp.int32))
    assert conforms(Box(-1.0, 1.0, (3,)), s) and conforms(Discrete(2), jnp.int32(1))


def test_multidiscrete_samples_every_value_and_converts_to_gymnasium():
    space = MultiDiscrete(3, (3,))
    draws = jax.vmap(space.sample)(jax.random.split(jax.random.key(0), 200))
    assert draws.dtype == jnp.int32 and set(np.unique(draws)) == {0, 1, 2}
    assert isinstance(space, Box) and (space.low, space.high, space.n) == (0, 2, 3)
    gym_space = gymnax_space_to_gym_space(space)
    assert isinstance(gym_space, gymnasium.spaces.Box) and gym_space.shape == (3,)
    assert gym_space.dtype == np.int32 and gym_space.contains(np.array([0, 2, 1], np.int32))
    with pytest.raises(ValueError, match="MultiDiscrete.n"):
        MultiDiscrete(0, (3,))
    with pytest.raises(ValueError, match="dtype"):
        MultiDiscrete(3, (3,), jnp.float32)


def test_counter_env_is_a_gymnax_env():
    env = CounterEnv()
    assert isinstance(env, gymnax_env.Environment)
    assert env.name == "CounterEnv" and env.num_actions == 2
    _, state = env.reset(jax.random.key(0))
    *_, info = env.step(jax.random.key(1), state, jnp.int32(1))
    assert set(info) == {"t", "final_observation", "terminated", "truncated"}


def test_gymnax_wrappers_on_a_discrete_env():
    """StickyActionWrapper replays the previous action; LogWrapper sums the episode;
    LegacyStepAPIWrapper folds terminated/truncated into done."""
    env = CounterEnv()
    params = env.default_params

    def episode(wrapped, key):
        obs, state = wrapped.reset(key, params)

        def one(state, k):
            obs, state, reward, *rest = wrapped.step(k, state, jnp.int32(1), params)
            return state, (reward, rest[-1]["returned_episode_returns"])

        return jax.lax.scan(one, state, jax.random.split(key, 3))[1]

    never = jax.jit(lambda k: episode(LogWrapper(StickyActionWrapper(env, 0.0)), k))(jax.random.key(0))
    always = jax.jit(lambda k: episode(LogWrapper(StickyActionWrapper(env, 1.0)), k))(jax.random.key(0))
    np.testing.assert_array_equal(never[0], [1, 1, 1])    # reward = the executed action
    np.testing.assert_array_equal(always[0], [0, 0, 0])   # replays the initial action 0 forever
    assert float(never[1][-1]) == 3.0                     # the episode's return, logged at its end
    legacy = LegacyStepAPIWrapper(env)
    _, state = legacy.reset(jax.random.key(0), params)
    for t in range(3):
        _, state, _, done, info = legacy.step(jax.random.key(t), state, jnp.int32(1), params)
    assert bool(done) and bool(info["truncated"]) and not bool(info["terminated"])
