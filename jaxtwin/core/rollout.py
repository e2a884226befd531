"""Rollouts as ``lax.scan`` over steps, ``vmap`` over episodes.

:func:`rollout` / :func:`batch_rollout`: each episode owns a ``jax.random`` key
and the env draws its own noise (any env, any policy). The batch-major,
counter-mode layout that is ~10x faster for *random* Co-EvoDT episodes lives in
``benchmarks/batch_major.py``: on the studies' own episodes (learned policies,
forecasts, CIVIC's allocation search) it did not pay (see that module).
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxtwin.core.env import Environment

Policy = Callable[[jax.Array, jax.Array], Any]
"""``policy(key, obs) -> action``: a pure function of a key and an observation."""


def rollout(
    env: Environment,
    policy: Policy,
    key: jax.Array,
    params: Any,
    num_steps: int,
) -> dict[str, Any]:
    """Run ``num_steps`` auto-resetting steps from a fresh reset.

    Returns a dict of arrays with a leading time axis: ``obs`` (observation the
    action was chosen on), ``action``, ``reward``, ``terminated``, ``truncated``
    and ``info`` (the env's info dict, stacked).
    """
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset(key_reset, params)

    def one_step(carry, step_key):
        obs, state = carry
        key_act, key_env = jax.random.split(step_key)
        action = policy(key_act, obs)
        next_obs, next_state, reward, terminated, truncated, info = env.step(
            key_env, state, action, params
        )
        out = dict(obs=obs, action=action, reward=reward,
                   terminated=terminated, truncated=truncated, info=info)
        return (next_obs, next_state), out

    _, traj = jax.lax.scan(one_step, (obs, state), jax.random.split(key_steps, num_steps))
    return traj


def batch_rollout(
    env: Environment,
    policy: Policy,
    keys: jax.Array,
    params: Any,
    num_steps: int,
) -> dict[str, Any]:
    """:func:`rollout` ``vmap``-ed over a batch of keys (leading episode axis)."""
    return jax.vmap(lambda k: rollout(env, policy, k, params, num_steps))(keys)


def random_policy(env: Environment, params: Any) -> Policy:
    """Uniform-random policy over ``env.action_space(params)``."""
    space = env.action_space(params)
    return lambda key, obs: space.sample(key)


def discounted_returns(rewards: jax.Array, gamma: float) -> jax.Array:
    """``G_t = sum_k gamma^(k-t) r_k`` over the leading (time) axis, by a reverse scan."""

    def back(g, r):
        g = r + gamma * g
        return g, g

    _, g = jax.lax.scan(back, jnp.zeros_like(rewards[0]), rewards, reverse=True)
    return g
