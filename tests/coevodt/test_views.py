"""Co-EvoDT views: the gymnax single controller and the JaxMARL view.

Pins the contract single-agent JAX RL code (gymnax wrappers, PureJaxRL) relies
on, and that both views follow the raw env key for key.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import environment, spaces
from gymnax.wrappers import FlattenObservationWrapper, LegacyStepAPIWrapper, LogWrapper, StickyActionWrapper

from jaxtwin import coevodt
from jaxtwin.coevodt.env import CoEvoEnv
from jaxtwin.coevodt.views import decode_joint_action, encode_joint_action
from tests.helpers import scan_rollout

T = 4  # short episodes so rollouts cross an auto-reset
N_STEPS = 10


def _tree_equal(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_single_controller_contract():
    view = coevodt.single_controller(CoEvoEnv(episode_len=T))
    assert isinstance(view, environment.Environment)
    assert isinstance(type(view).default_params, property)
    assert view.default_params == coevodt.default_params()
    assert isinstance(view.action_space(view.default_params), spaces.Discrete)
    assert view.action_space().n == view.num_actions == 27
    obs_space = view.observation_space(view.default_params)
    assert isinstance(obs_space, spaces.Box) and obs_space.shape == (5,)
    assert view.name == "CoEvoDT-SingleController"
    # gymnax's own wrappers accept the spaces
    assert FlattenObservationWrapper(view).observation_space(view.default_params).shape == (5,)
    StickyActionWrapper(view, sticky_action_prob=0.25)
    with pytest.raises(TypeError, match="CoEvoEnv"):
        coevodt.single_controller("not an env")


def test_joint_action_encoding():
    idx = jnp.arange(27)
    agents = jax.vmap(decode_joint_action)(idx)
    # base 3, content most significant: 9*content + 3*infra + user
    np.testing.assert_array_equal(agents[13], [1, 1, 1])
    np.testing.assert_array_equal(agents[5], [0, 1, 2])
    np.testing.assert_array_equal(agents[18], [2, 0, 0])
    assert len({tuple(a) for a in np.asarray(agents).tolist()}) == 27
    np.testing.assert_array_equal(jax.vmap(encode_joint_action)(agents), idx)
    for bad in (27, -1, 1.5, float("nan"), [1, 2]):
        with pytest.raises(ValueError, match="single_controller action"):
            decode_joint_action(bad)
    # traced actions cannot be inspected: projected onto 0..26
    np.testing.assert_array_equal(jax.jit(decode_joint_action)(40), [2, 2, 2])
    np.testing.assert_array_equal(jax.jit(decode_joint_action)(-3), [0, 0, 0])


def test_single_controller_steps_exactly_like_raw_env():
    env = CoEvoEnv(episode_len=T)
    view = coevodt.single_controller(env)
    params = env.default_params
    keys = jax.random.split(jax.random.PRNGKey(3), N_STEPS + 1)
    joint = jax.random.randint(jax.random.PRNGKey(4), (N_STEPS,), 0, 27)

    def rollout(e, to_action):
        return scan_rollout(e, params, keys, joint, to_action)

    obs_v, (o_v, s_v, r_v, te_v, tr_v, f_v) = jax.jit(lambda: rollout(view, lambda a: a))()
    obs_r, (o_r, s_r, r_r, te_r, tr_r, f_r) = jax.jit(lambda: rollout(env, decode_joint_action))()
    _tree_equal((obs_v, o_v, s_v, te_v, tr_v, f_v), (obs_r, o_r, s_r, te_r, tr_r, f_r))
    assert r_v.shape == (N_STEPS,) and r_v.dtype == jnp.float32   # one scalar per step
    np.testing.assert_allclose(r_v, r_r.sum(axis=-1), rtol=1e-6)
    # 6-tuple with auto-reset: the time limit truncates (never terminates) and restarts
    np.testing.assert_array_equal(tr_v, (np.arange(N_STEPS) + 1) % T == 0)
    assert not te_v.any()
    assert s_v.time[T - 1] == 0 and f_v[T - 1, 4] == 1.0 and o_v[T - 1, 4] == 0.0


def test_single_controller_reset_env_and_step_env_delegate():
    env = CoEvoEnv(episode_len=T)
    view = coevodt.single_controller(env)
    params = env.default_params
    k0, k1 = jax.random.split(jax.random.PRNGKey(9))
    obs_v, state_v = view.reset_env(k0, params)
    obs_r, state_r = env.reset_env(k0, params)
    _tree_equal((obs_v, state_v), (obs_r, state_r))
    out_v = view.step_env(k1, state_v, 7, params)
    out_r = env.step_env(k1, state_r, decode_joint_action(7), params)
    assert len(out_v) == len(out_r)   # the raw env's step_env form, whichever it is
    _tree_equal((out_v[0], out_v[1]) + tuple(out_v[3:-1]), (out_r[0], out_r[1]) + tuple(out_r[3:-1]))
    np.testing.assert_allclose(out_v[2], jnp.sum(out_r[2]), rtol=1e-6)
    np.testing.assert_array_equal(out_v[-1]["agent_rewards"], out_r[2])


def test_single_controller_under_gymnax_wrappers_jit_vmap():
    """LogWrapper's returns equal the summed rewards; LegacyStepAPIWrapper gives the 5-tuple."""
    view = coevodt.single_controller(CoEvoEnv(episode_len=T))
    env = LegacyStepAPIWrapper(LogWrapper(view))
    params = env.default_params
    n_envs = 3

    def run(key):
        k_reset, k_steps, k_act = jax.random.split(key, 3)
        obs, state = env.reset(k_reset, params)

        def body(state, x):
            k, ka = x
            a = env.action_space(params).sample(ka)
            obs, state, reward, done, info = env.step(k, state, a, params)
            return state, (reward, done, info["returned_episode_returns"], info["returned_episode"])
        xs = (jax.random.split(k_steps, 2 * T), jax.random.split(k_act, 2 * T))
        return jax.lax.scan(body, state, xs)[1]

    reward, done, returned, flagged = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(0), n_envs))
    assert reward.shape == done.shape == (n_envs, 2 * T)
    np.testing.assert_array_equal(flagged, done)
    np.testing.assert_array_equal(done[:, T - 1], True)
    np.testing.assert_allclose(returned[:, T - 1], reward[:, :T].sum(axis=1), rtol=1e-5)
    np.testing.assert_allclose(returned[:, 2 * T - 1], reward[:, T:].sum(axis=1), rtol=1e-5)


@pytest.fixture(scope="module")
def jaxmarl():
    return pytest.importorskip("jaxmarl")


def test_jaxmarl_view_interface(jaxmarl):
    from jaxmarl.environments import spaces as marl_spaces
    from jaxmarl.environments.multi_agent_env import MultiAgentEnv

    env = CoEvoEnv(episode_len=T)
    view = coevodt.as_jaxmarl(env)
    assert isinstance(view, MultiAgentEnv)
    assert view.agents == ["content", "infra", "user"] and view.num_agents == 3
    for a in view.agents:
        assert isinstance(view.action_space(a), marl_spaces.Discrete) and view.action_space(a).n == 3
        assert isinstance(view.observation_space(a), marl_spaces.Box)
        assert view.observation_space(a).shape == (5,)
    _, state = view.reset(jax.random.PRNGKey(0))
    avail = view.get_avail_actions(state)
    assert set(avail) == set(view.agents) and all(bool(np.all(v)) and v.shape == (3,) for v in avail.values())
    np.testing.assert_array_equal(view.get_obs(state)["user"], view.reset(jax.random.PRNGKey(0))[0]["user"])
    assert view.params == env.default_params
    scaled = env.default_params.replace(alpha_i=0.2)
    assert coevodt.as_jaxmarl(env, scaled).params == scaled


def test_jaxmarl_view_exact_against_raw_env(jaxmarl):
    env = CoEvoEnv(episode_len=T)
    view = coevodt.as_jaxmarl(env)
    params = env.default_params
    keys = jax.random.split(jax.random.PRNGKey(7), N_STEPS + 1)
    actions = jax.random.randint(jax.random.PRNGKey(8), (N_STEPS, 3), 0, 3)

    def marl_rollout():
        obs, state = view.reset(keys[0])

        def body(state, x):
            key, a = x
            acts = {name: a[i] for i, name in enumerate(view.agents)}
            obs, state, rewards, dones, info = view.step(key, state, acts)
            return state, (obs, state, rewards, dones, info)
        return obs, jax.lax.scan(body, state, (keys[1:], actions))[1]

    def raw_rollout():
        obs, state = env.reset(keys[0], params)

        def body(state, x):
            key, a = x
            obs, state, reward, term, trunc, info = env.step(key, state, a, params)
            return state, (obs, state, reward, term, trunc)
        return obs, jax.lax.scan(body, state, (keys[1:], actions))[1]

    obs0_m, (obs_m, state_m, rew_m, done_m, info_m) = jax.jit(marl_rollout)()
    obs0_r, (obs_r, state_r, rew_r, term_r, trunc_r) = jax.jit(raw_rollout)()
    _tree_equal(state_m, state_r)
    done_r = term_r | trunc_r
    for i, a in enumerate(view.agents):
        np.testing.assert_array_equal(obs0_m[a], obs0_r)
        np.testing.assert_array_equal(obs_m[a], obs_r)
        np.testing.assert_array_equal(rew_m[a], rew_r[:, i])
        np.testing.assert_array_equal(done_m[a], done_r)
    np.testing.assert_array_equal(done_m["__all__"], done_r)
    np.testing.assert_array_equal(info_m["truncated"], trunc_r)
    np.testing.assert_array_equal(info_m["terminated"], term_r)
    assert done_r.sum() == N_STEPS // T   # the rollout crossed auto-resets


def test_jaxmarl_log_wrapper_jit_vmap(jaxmarl):
    from jaxmarl.wrappers.baselines import LogWrapper as MarlLogWrapper

    view = coevodt.as_jaxmarl(CoEvoEnv(episode_len=T))
    env = MarlLogWrapper(view)

    def run(key):
        k_reset, k_steps = jax.random.split(key)
        _, state = env.reset(k_reset)

        def body(state, k):
            k_act, k_step = jax.random.split(k)
            ks = jax.random.split(k_act, 3)
            acts = {a: view.action_space(a).sample(ks[i]) for i, a in enumerate(view.agents)}
            _, state, rewards, dones, info = env.step(k_step, state, acts)
            return state, (jnp.stack([rewards[a] for a in view.agents]), dones["__all__"],
                           info["returned_episode_returns"], info["returned_episode"])
        return jax.lax.scan(body, state, jax.random.split(k_steps, T))[1]

    rewards, done, returned, flagged = jax.jit(jax.vmap(run))(jax.random.split(jax.random.PRNGKey(1), 2))
    assert rewards.shape == (2, T, 3) and returned.shape == (2, T, 3)
    np.testing.assert_array_equal(done[:, -1], True)
    np.testing.assert_array_equal(flagged[:, -1], True)
    np.testing.assert_allclose(returned[:, -1], rewards.sum(axis=1), rtol=1e-5)
