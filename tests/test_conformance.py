"""One conformance test over every registered jaxtwin environment (JaxMARL-style).

Each entry of :data:`ENVS` builds a tiny environment whose episodes end within
a few steps. :func:`test_conformance` checks, per env: the gymnax contract
(subclass, ``name``, ``num_actions``, gymnax spaces), reset/step shapes and
dtypes, that the spaces contain what the env returns, auto-reset and
``final_observation`` against the raw ``step_env``/``reset_env``, ``jit`` and
``vmap`` (batched equals one by one), determinism per key, bad actions
projected or rejected as each env documents, and gymnax's own wrappers
(``LogWrapper``, ``FlattenObservationWrapper``, ``StickyActionWrapper`` on
discrete envs, ``GymnaxToGymWrapper``, which steps eagerly and supports neither
``jit`` nor ``vmap``) over it.

A new environment (or a view such as a discrete or single-controller one)
joins by adding one :class:`EnvCase` line to :data:`ENVS`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import chex
import gymnasium
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnax.environments import environment as gymnax_env
from gymnax.wrappers import FlattenObservationWrapper, GymnaxToGymWrapper, LogWrapper, StickyActionWrapper

from jaxtwin.civic.env import CivicEnv
from jaxtwin.civic.views import discrete
from jaxtwin.coevodt import env as coevo
from jaxtwin.coevodt.views import single_controller
from jaxtwin.core import spaces
from jaxtwin.core.env import Environment
from jaxtwin.core.toy_env import PointEnv, project_action as point_projection

STEPS = 4          # rollout length: every entry's episodes end by step 3
BATCH = 2


def civic_projection(a):
    """CivicEnv's documented rule: NaN -> -1, +-inf -> +-1, then clip to [-1, 1]."""
    return jnp.clip(jnp.nan_to_num(a, nan=-1.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)


@dataclass(frozen=True)
class EnvCase:
    """A registered env: factory ``() -> (env, params)`` and its documented bad-action rule."""

    id: str
    make: Callable[[], tuple[Environment, Any]]
    num_actions: int
    project: Callable[[jax.Array], jax.Array]   # maps any action to the one the env executes
    rejects_concrete: bool = False              # a concrete bad action raises ValueError instead
    reward_shape: tuple[int, ...] = ()


def _point():
    env = PointEnv(dim=2)
    return env, env.default_params.replace(max_steps=3)


def _civic(cooperative):
    env = CivicEnv(n_msps=2, heads_per_msp=1, horizon=3, cooperative=cooperative)
    return env, env.default_params


def _coevodt():
    return coevo.CoEvoEnv(episode_len=3), coevo.default_params()


def _coevodt_single():
    env = single_controller(coevo.CoEvoEnv(episode_len=3))
    return env, env.default_params


def _civic_discrete():
    env = discrete(CivicEnv(n_msps=2, heads_per_msp=1, horizon=3, cooperative=True))
    return env, env.default_params


def _clip_index(n):
    """The discrete views' documented rule for a traced index: NaN -> 0, round, clip to 0..n-1."""
    return lambda a: jnp.clip(jnp.round(jnp.nan_to_num(a, nan=0.0)), 0, n - 1)


ENVS = [
    EnvCase("civic-coop", lambda: _civic(True), 3 * 2 + 2, civic_projection),
    EnvCase("civic-noncoop", lambda: _civic(False), 3 * 2, civic_projection),
    EnvCase("coevodt", _coevodt, coevo.N_ACTIONS, coevo.project_action, rejects_concrete=True,
            reward_shape=(coevo.N_AGENTS,)),
    EnvCase("point", _point, 2, point_projection),
    # the single-agent discrete views that PureJaxRL's ppo.py trains on
    EnvCase("coevodt-single", _coevodt_single, 27, _clip_index(27), rejects_concrete=True),
    EnvCase("civic-discrete", _civic_discrete, 4 ** 2 * 2, _clip_index(4 ** 2 * 2), rejects_concrete=True),
]


# ------------------------------------------------------------------ helpers
def _in_space(space, x) -> bool:
    """Shape, dtype and range (gymnax's ``contains`` checks the range only)."""
    return spaces.conforms(space, x)


def _rollout(env, params, key, actions):
    """``STEPS`` auto-reset steps with given actions; per step also the raw transition and
    the reset the auto-reset should have taken (same key split as ``Environment.step``)."""
    obs0, state0 = env.reset(key, params)

    def one(carry, xs):
        obs, state = carry
        k, a = xs
        nxt_obs, nxt_state, r, te, tr, info = env.step(k, state, a, params)
        k_step, k_reset = jax.random.split(k)
        raw_obs, raw_state, *_ = env.step_env(k_step, state, a, params)
        re_obs, re_state = env.reset_env(k_reset, params)
        done = te | tr
        want_state = jax.tree.map(lambda x, y: jnp.where(done, x, y), re_state, raw_state)
        same_state = jnp.all(jnp.stack([jnp.all(x == y) for x, y in
                                        zip(jax.tree.leaves(nxt_state), jax.tree.leaves(want_state))]))
        out = dict(obs=obs, state=state, next_obs=nxt_obs, reward=r, terminated=te, truncated=tr,
                   final=info["final_observation"], info_te=info["terminated"], info_tr=info["truncated"],
                   raw_obs=raw_obs, reset_obs=re_obs, same_state=same_state)
        return (nxt_obs, nxt_state), out

    keys = jax.random.split(jax.random.fold_in(key, 1), STEPS)
    _, traj = jax.lax.scan(one, (obs0, state0), (keys, actions))
    return traj


def _sample_actions(env, params, key, batch=()):
    space = env.action_space(params)
    keys = jax.random.split(key, int(np.prod(batch, dtype=int)) * STEPS)
    return jax.vmap(space.sample)(keys).reshape(*batch, STEPS, *space.shape)


# ------------------------------------------------------------------ checks
def _check_contract(case, env, params):
    assert isinstance(env, gymnax_env.Environment) and isinstance(env.name, str) and env.name
    assert env.num_actions == case.num_actions
    assert isinstance(type(env).default_params, property)   # gymnax: a property, not a method
    act, obs_space = env.action_space(params), env.observation_space(params)
    assert isinstance(act, (spaces.Discrete, spaces.Box)) and isinstance(obs_space, spaces.Box)
    for key in jax.random.split(jax.random.key(3), 8):
        assert _in_space(act, act.sample(key))


def _check_reset_step(case, env, params, traj):
    obs_space = env.observation_space(params)   # traj["obs"][0] is env.reset's observation
    chex.assert_shape(traj["reward"], (STEPS,) + case.reward_shape)
    chex.assert_type(traj["reward"], jnp.float32)
    for flag in ("terminated", "truncated"):
        chex.assert_shape(traj[flag], (STEPS,))
        assert traj[flag].dtype == jnp.bool_
    for name in ("obs", "next_obs", "final"):
        for t in range(STEPS):
            assert _in_space(obs_space, traj[name][t]), (name, t)
    assert bool(jnp.all(jnp.isfinite(traj["reward"])))


def _check_auto_reset(traj):
    done = np.asarray(traj["terminated"] | traj["truncated"])
    assert done.any(), "no episode ended within the rollout: make the case's episodes shorter"
    np.testing.assert_array_equal(traj["final"], traj["raw_obs"])
    want = np.where(done.reshape((-1,) + (1,) * (traj["raw_obs"].ndim - 1)), traj["reset_obs"], traj["raw_obs"])
    np.testing.assert_array_equal(traj["next_obs"], want)
    np.testing.assert_array_equal(traj["next_obs"][:-1], traj["obs"][1:])
    assert bool(jnp.all(traj["same_state"]))
    np.testing.assert_array_equal(traj["info_te"], traj["terminated"])
    np.testing.assert_array_equal(traj["info_tr"], traj["truncated"])


def _check_jit_vmap_determinism(env, params, traj_fn, run_one):
    keys = jax.random.split(jax.random.key(7), BATCH)
    actions = _sample_actions(env, params, jax.random.key(8), (BATCH,))
    run = jax.jit(jax.vmap(traj_fn))
    batched = run(keys, actions)
    chex.assert_trees_all_equal(batched, run(keys, actions))
    for i in range(BATCH):
        single = run_one(keys[i], actions[i])
        chex.assert_trees_all_close(jax.tree.map(lambda x: x[i], batched), single, rtol=1e-6, atol=1e-6)
    assert not np.array_equal(batched["obs"][0], batched["obs"][1]), "different keys, same episode"


def _check_bad_actions(case, env, params, run, state):
    """Bad actions (NaN, out of range, -inf) give exactly the rollout of their documented
    projection (reusing the compiled rollout ``run``); concrete ones are rejected where the
    env says so; a wrong shape always raises."""
    space = env.action_space(params)
    shape = space.shape
    too_big = float(space.n + 5) if isinstance(space, spaces.Discrete) else 7.0
    bad = jnp.stack([jnp.full(shape, jnp.nan), jnp.full(shape, too_big), jnp.full(shape, -jnp.inf),
                     jnp.arange(int(np.prod(shape)), dtype=jnp.float32).reshape(shape) * 3.0 - 2.0])
    projected = jnp.asarray(jax.vmap(case.project)(bad), space.dtype)
    assert all(_in_space(space, a) for a in projected)
    got, want = run(jax.random.key(1), bad), run(jax.random.key(1), projected)
    chex.assert_trees_all_equal(got, want)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree.leaves(got)
               if jnp.issubdtype(x.dtype, jnp.floating))
    if case.rejects_concrete:
        for a in bad:
            with pytest.raises(ValueError, match="action"):
                env.step(jax.random.key(1), state, np.asarray(a), params)
    with pytest.raises(ValueError, match="shape"):   # a wrong shape is never silently accepted
        env.step(jax.random.key(1), state, jnp.zeros(shape + (2,), space.dtype), params)


def _check_log_flatten_sticky(case, env, params):
    """LogWrapper over FlattenObservationWrapper (one program covers both), jit of vmap;
    the logged return of each finished episode is the sum of its rewards."""
    wrapped = LogWrapper(FlattenObservationWrapper(env))
    flat_shape = (int(np.prod(env.observation_space(params).shape)),)
    assert wrapped.observation_space(params).shape == flat_shape
    keys = jax.random.split(jax.random.key(11), BATCH)
    obs, state = jax.jit(jax.vmap(wrapped.reset, in_axes=(0, None)))(keys, params)
    step = jax.jit(jax.vmap(wrapped.step, in_axes=(0, 0, 0, None)))
    actions = _sample_actions(env, params, jax.random.key(12), (BATCH,))
    returns, finished = np.zeros((BATCH,) + case.reward_shape), 0
    for t in range(STEPS):
        obs, state, r, te, tr, info = step(jax.random.split(jax.random.key(20 + t), BATCH),
                                           state, actions[:, t], params)
        returns = returns + np.asarray(r)
        done = np.asarray(te | tr)
        np.testing.assert_allclose(np.asarray(info["returned_episode_returns"])[done], returns[done],
                                   rtol=1e-5, atol=1e-5)
        returns[done], finished = 0.0, finished + done.sum()
    assert finished > 0
    chex.assert_shape([obs, info["final_observation"]], (BATCH,) + flat_shape)
    if isinstance(env.action_space(params), spaces.Discrete):
        sticky = StickyActionWrapper(env, sticky_action_prob=0.5)
        obs, state = jax.jit(sticky.reset)(jax.random.key(0), params)
        obs, state, *_ = jax.jit(sticky.step)(jax.random.key(1), state, jnp.asarray(0), params)
        assert _in_space(env.observation_space(params), obs)
    else:   # gymnax documents the wrapper for Discrete spaces only and refuses others up front
        with pytest.raises(ValueError, match="Discrete"):
            StickyActionWrapper(env, sticky_action_prob=0.5)


def _check_gym_wrappers(env, params):
    gym_env = GymnaxToGymWrapper(env, params, seed=0)
    assert gym_env.observation_space.shape == env.observation_space(params).shape
    assert gym_env.action_space.shape == env.action_space(params).shape
    obs, _ = gym_env.reset(seed=0)
    assert gym_env.observation_space.contains(np.asarray(obs))
    gym_env.action_space.seed(0)
    for _ in range(2):   # eager steps (the wrapper calls env.step op by op)
        obs, r, te, tr, info = gym_env.step(gym_env.action_space.sample())
        assert gym_env.observation_space.contains(np.asarray(obs)) and np.all(np.isfinite(r))


@pytest.mark.parametrize("case", ENVS, ids=lambda c: c.id)
def test_conformance(case):
    env, params = case.make()
    _check_contract(case, env, params)
    traj_fn = lambda key, actions: _rollout(env, params, key, actions)  # noqa: E731
    run = jax.jit(traj_fn)
    traj = run(jax.random.key(1), _sample_actions(env, params, jax.random.key(2)))
    _check_reset_step(case, env, params, traj)
    _check_auto_reset(traj)
    _check_jit_vmap_determinism(env, params, traj_fn, run)
    _check_bad_actions(case, env, params, run, jax.tree.map(lambda x: x[0], traj["state"]))
    _check_log_flatten_sticky(case, env, params)
    _check_gym_wrappers(env, params)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_jaxtwin_env_is_registered():
    """Each Environment subclass in jaxtwin's modules (imported here) has an entry in ENVS."""
    shipped = {c for c in _subclasses(Environment) if c.__module__.startswith("jaxtwin.")}
    registered = {type(case.make()[0]) for case in ENVS}
    assert {CivicEnv, coevo.CoEvoEnv, PointEnv} <= shipped
    assert shipped <= registered, shipped - registered
