"""Policy MLP of Co-EvoDT (spec coevodt §2) and helpers for stacked populations.

A population is one parameter pytree whose leaves carry leading axes
``(agent, member)`` (or just ``(member,)``); picking a member is indexing.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


class PolicyNet(nn.Module):
    """``obs -> 64 -> ReLU -> 32 -> ReLU -> n_actions`` logits."""

    hidden: Sequence[int] = (64, 32)
    n_actions: int = 3

    @nn.compact
    def __call__(self, obs: jnp.ndarray) -> jnp.ndarray:
        x = obs
        for width in self.hidden:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.n_actions)(x)


def init_population(key: jax.Array, net: PolicyNet, obs_dim: int, shape: tuple[int, ...]):
    """Independently initialised parameters stacked with leading axes ``shape``.

    E.g. ``shape=(3, 8)`` gives 3 agents x 8 members, each from its own key.
    """
    n = 1
    for s in shape:
        n *= s
    keys = jax.random.split(key, n)
    dummy = jnp.zeros((obs_dim,), jnp.float32)
    flat = jax.vmap(lambda k: net.init(k, dummy))(keys)
    return jax.tree.map(lambda x: x.reshape(shape + x.shape[1:]), flat)


def take_member(population, index: jax.Array):
    """Member ``index`` of a population with a leading member axis."""
    return jax.tree.map(lambda x: x[index], population)


def put_member(population, index: jax.Array, params):
    """The population with member ``index`` replaced by ``params``."""
    return jax.tree.map(lambda pop, p: pop.at[index].set(p), population, params)


def sample_action(net: PolicyNet, params, key: jax.Array, obs: jax.Array) -> jax.Array:
    """Action drawn from ``softmax(logits)`` (training)."""
    return jax.random.categorical(key, net.apply(params, obs)).astype(jnp.int32)


def inverse_cdf_action(net: PolicyNet, params, u: jax.Array, obs: jax.Array) -> jax.Array:
    """Action drawn from ``softmax(logits)`` by inverting its CDF at a uniform draw ``u``.

    Same distribution as :func:`sample_action`; taking the uniform as data lets
    rollouts draw all their randomness up front (no RNG inside the step loop).
    """
    cdf = jnp.cumsum(jax.nn.softmax(net.apply(params, obs), axis=-1), axis=-1)
    return jnp.sum(cdf[..., :-1] < u[..., None], axis=-1).astype(jnp.int32)


def greedy_action(net: PolicyNet, params, obs: jax.Array) -> jax.Array:
    """``argmax`` of the logits (evaluation)."""
    return jnp.argmax(net.apply(params, obs), axis=-1).astype(jnp.int32)


def log_prob(net: PolicyNet, params, obs: jax.Array, action: jax.Array) -> jax.Array:
    """``log pi(action | obs)`` via a stable log-softmax (broadcasts over leading axes)."""
    logp = jax.nn.log_softmax(net.apply(params, obs), axis=-1)
    return jnp.take_along_axis(logp, action[..., None].astype(jnp.int32), axis=-1)[..., 0]
