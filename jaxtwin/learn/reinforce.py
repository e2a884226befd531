"""REINFORCE for one sampled member per agent (spec coevodt §2).

Each member owns an Adam state, stored stacked like the population
(leading ``(agent, member)`` axes). Once per episode the member that acted for
each agent takes one gradient step on
``-(1/T) sum_t log pi(a_t|s_t) G~_t`` with ``G~`` the discounted returns
normalised over the episode.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxtwin.core.rollout import discounted_returns
from jaxtwin.nets.policy import PolicyNet, log_prob, put_member, take_member


def make_optimizer(lr: float, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
                   max_grad_norm: float | None = None) -> optax.GradientTransformation:
    """Adam, preceded by global-norm clipping when ``max_grad_norm`` is given."""
    adam = optax.adam(lr, b1=b1, b2=b2, eps=eps)
    if max_grad_norm is None:
        return adam
    return optax.chain(optax.clip_by_global_norm(max_grad_norm), adam)


def init_opt_states(optimizer: optax.GradientTransformation, population, n_lead: int):
    """One optimiser state per member, stacked over the ``n_lead`` leading axes."""
    init = optimizer.init
    for _ in range(n_lead):
        init = jax.vmap(init)
    return init(population)


def normalised_returns(rewards: jax.Array, gamma: float, eps: float = 1e-8) -> jax.Array:
    """``(G - mean G) / (std G + eps)`` over the time axis (axis 0), population std."""
    g = discounted_returns(rewards, gamma)
    return (g - g.mean(axis=0)) / (g.std(axis=0) + eps)


def reinforce_loss(net: PolicyNet, params, obs: jax.Array, actions: jax.Array,
                   weights: jax.Array) -> jax.Array:
    """``-(1/T) sum_t log pi(a_t | s_t) * weights_t`` (weights: normalised returns)."""
    return -jnp.mean(log_prob(net, params, obs, actions) * weights)


def reinforce_step(net: PolicyNet, optimizer: optax.GradientTransformation, params, opt_state,
                   obs: jax.Array, actions: jax.Array, rewards: jax.Array, gamma: float):
    """One REINFORCE update of one policy from one episode; returns ``(params, opt_state, loss)``."""
    weights = normalised_returns(rewards, gamma)
    loss, grads = jax.value_and_grad(reinforce_loss, argnums=1)(net, params, obs, actions, weights)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss


def update_sampled_members(net: PolicyNet, optimizer: optax.GradientTransformation,
                           populations, opt_states, member_idx: jax.Array, obs: jax.Array,
                           actions: jax.Array, rewards: jax.Array, gamma: float):
    """Update member ``member_idx[i]`` of every agent ``i`` from one shared episode.

    ``populations``/``opt_states``: leading ``(agent, member)`` axes; ``obs f32[T, d]``
    (what all agents saw), ``actions int[T, A]``, ``rewards f32[T, A]``.
    Returns ``(populations, opt_states, loss f32[A])``; other members are untouched.
    """
    def one_agent(pop, states, idx, act, rew):
        params, state = take_member(pop, idx), take_member(states, idx)
        params, state, loss = reinforce_step(net, optimizer, params, state, obs, act, rew, gamma)
        return put_member(pop, idx, params), put_member(states, idx, state), loss

    return jax.vmap(one_agent, in_axes=(0, 0, 0, 1, 1))(
        populations, opt_states, member_idx, actions, rewards)
