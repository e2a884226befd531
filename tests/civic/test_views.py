"""CIVIC's discrete-action view: the contract PureJaxRL's ``ppo.py`` relies on,
the action encoding, exactness against the raw env, gymnax's wrappers."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import environment, spaces
from gymnax.wrappers import FlattenObservationWrapper, LegacyStepAPIWrapper, LogWrapper, StickyActionWrapper

from jaxtwin import civic
from jaxtwin.civic.env import CivicEnv
from jaxtwin.core.config import ConfigError
from tests.helpers import scan_rollout

HORIZON = 4


@pytest.fixture(scope="module")
def env():
    return CivicEnv(n_msps=2, heads_per_msp=1, horizon=HORIZON)


def test_contract(env):
    view = civic.discrete(env)
    assert isinstance(view, environment.Environment)
    assert isinstance(type(view).default_params, property)
    for a, b in zip(jax.tree.leaves(view.default_params), jax.tree.leaves(env.default_params), strict=True):
        np.testing.assert_array_equal(a, b)
    assert view.name == "CIVIC-Discrete"
    # 4 levels per Head, 2 Heads, 2 donation fractions
    assert view.num_actions == 4 ** 2 * 2 == view.action_space(view.default_params).n
    assert isinstance(view.action_space(), spaces.Discrete)
    obs = view.observation_space(view.default_params)
    assert isinstance(obs, spaces.Box) and obs.shape == (env.obs_size,)
    assert FlattenObservationWrapper(view).observation_space(view.default_params).shape == (env.obs_size,)
    StickyActionWrapper(view, sticky_action_prob=0.25)
    non_coop = civic.discrete(CivicEnv(n_msps=2, horizon=HORIZON, cooperative=False))
    assert non_coop.num_actions == 16   # no donation digit without the GCP


def test_encoding(env):
    view = civic.discrete(env, levels=(-1.0, 0.0, 1.0), donations=(0.0, 0.25, 1.0))
    assert view.num_actions == 3 * 3 * 3
    # index = (k_0 * 3 + k_1) * 3 + d; native [B_0, B_1, f_0, f_1, beta_0, beta_1, delta_0, delta_1]
    k0, k1, d = 2, 1, 1
    native = view.native_action((k0 * 3 + k1) * 3 + d)
    np.testing.assert_array_equal(native, [1.0, 0.0, 1.0, 0.0, 1.0, 0.0, -0.5, -0.5])
    np.testing.assert_array_equal(view.native_action(0), [-1.0] * 8)
    np.testing.assert_array_equal(view.native_action(26), [1.0] * 8)
    # the top level is the top of every range in the raw env's decoding
    p = env.default_params
    alloc = env.decode_action(view.native_action(26), p)
    rooms = env.rooms(p)
    np.testing.assert_array_equal(alloc.B, rooms.B_max)
    np.testing.assert_array_equal(alloc.f, rooms.f_max)
    np.testing.assert_allclose(alloc.beta, rooms.beta_max, atol=1e-6)
    np.testing.assert_array_equal(alloc.delta, [1.0, 1.0])
    # all rows distinct
    table = jax.vmap(view.native_action)(jnp.arange(view.num_actions))
    assert len({tuple(r) for r in np.asarray(table).tolist()}) == view.num_actions


def test_bad_actions_and_configs(env):
    view = civic.discrete(env)
    for bad in (view.num_actions, -1, 0.5, float("nan"), [0, 1]):
        with pytest.raises(ValueError, match="CIVIC discrete action"):
            view.native_action(bad)
    top = view.native_action(view.num_actions - 1)
    np.testing.assert_array_equal(jax.jit(view.native_action)(10 ** 6), top)   # traced: clipped
    np.testing.assert_array_equal(jax.jit(view.native_action)(-5), view.native_action(0))
    for kwargs, field in (({"levels": ()}, "levels"), ({"levels": (1.5,)}, "levels"),
                          ({"levels": (0.1, 0.1)}, "levels"), ({"levels": (float("nan"),)}, "levels"),
                          ({"levels": "ab"}, "levels"), ({"donations": (1.5,)}, "donations"),
                          ({"levels": tuple(np.linspace(-1, 1, 300))}, "levels")):
        with pytest.raises(ConfigError, match=f"discrete.{field}"):
            civic.discrete(env, **kwargs)
    with pytest.raises(TypeError, match="CivicEnv"):
        civic.discrete("not an env")


def test_steps_exactly_like_raw_env(env):
    view = civic.discrete(env)
    params = env.default_params
    n = 2 * HORIZON + 1
    keys = jax.random.split(jax.random.PRNGKey(5), n + 1)
    idx = jax.random.randint(jax.random.PRNGKey(6), (n,), 0, view.num_actions)

    def rollout(e, to_action):
        return scan_rollout(e, params, keys, idx, to_action)

    # the raw env fed native_action(index) in the same place of the program: bitwise equal
    out_v = jax.jit(lambda: rollout(view, lambda a: a))()
    out_r = jax.jit(lambda: rollout(env, view.native_action))()
    for x, y in zip(jax.tree.leaves(out_v), jax.tree.leaves(out_r), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    reward, term, trunc = out_v[1][2:5]
    assert reward.shape == (n,) and reward.dtype == jnp.float32
    assert bool(jnp.any(term | trunc))   # crossed an auto-reset


def test_reset_env_and_step_env_delegate(env):
    view = civic.discrete(env)
    params = env.default_params
    k0, k1 = jax.random.split(jax.random.PRNGKey(9))

    def run(e, to_action, index):
        obs, state = e.reset_env(k0, params)
        return obs, state, e.step_env(k1, state, to_action(index), params)

    out_v = jax.jit(lambda i: run(view, lambda a: a, i))(11)
    out_r = jax.jit(lambda i: run(env, view.native_action, i))(11)
    for x, y in zip(jax.tree.leaves(out_v), jax.tree.leaves(out_r), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_under_gymnax_wrappers_jit_vmap(env):
    """LogWrapper's episode return equals the summed rewards; the legacy wrapper gives 5 values."""
    view = civic.discrete(env)
    wrapped = LegacyStepAPIWrapper(LogWrapper(view))
    params = wrapped.default_params

    def run(key):
        k_reset, k_steps, k_act = jax.random.split(key, 3)
        _, state = wrapped.reset(k_reset, params)

        def body(state, x):
            k, ka = x
            out = wrapped.step(k, state, wrapped.action_space(params).sample(ka), params)
            assert len(out) == 5
            _, state, reward, done, info = out
            return state, (reward, done, info["returned_episode_returns"], info["returned_episode"])
        xs = (jax.random.split(k_steps, HORIZON), jax.random.split(k_act, HORIZON))
        return jax.lax.scan(body, state, xs)[1]

    reward, done, returned, flagged = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(2), 3))
    np.testing.assert_array_equal(flagged, done)
    first = np.argmax(np.asarray(done), axis=1)   # first episode end (stuck limit or horizon)
    assert np.asarray(done).any(axis=1).all()
    for i, t in enumerate(first):
        np.testing.assert_allclose(returned[i, t], reward[i, :t + 1].sum(), rtol=1e-5)
