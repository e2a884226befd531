"""Generalised advantage estimation (GAE) that tells truncation from termination.

With auto-resetting environments the observation after a finished episode
belongs to the next episode, so the successor value cannot be read off the next
step. The caller instead passes ``next_values[t] = V(s_{t+1})`` evaluated on the
true successor state (``info["final_observation"]`` of the auto-reset step,
which is the successor whether or not the episode ended). Then

    delta_t = r_t + gamma * (1 - terminated_t) * next_values[t] - values[t]
    A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   done = terminated | truncated

so a terminated episode bootstraps from zero, a truncated one from the value of
its final observation, and advantages never leak across episode boundaries.
The last step of the rollout bootstraps from ``next_values[-1]``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def compute_gae(
    rewards: jax.Array,
    values: jax.Array,
    next_values: jax.Array,
    terminated: jax.Array,
    truncated: jax.Array,
    gamma: float,
    gae_lambda: float,
) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets over a time-major rollout.

    All inputs have shape ``(T, ...)`` (time first, any batch axes after).
    Returns ``(advantages, returns)`` with ``returns = advantages + values``
    (the lambda-returns the critic regresses on).
    """
    rewards = jnp.asarray(rewards)
    values = jnp.asarray(values, rewards.dtype)
    next_values = jnp.asarray(next_values, rewards.dtype)
    not_terminated = 1.0 - jnp.asarray(terminated, rewards.dtype)
    not_done = 1.0 - jnp.logical_or(terminated, truncated).astype(rewards.dtype)
    deltas = rewards + gamma * not_terminated * next_values - values

    def back(adv_next, xs):
        delta, cont = xs
        adv = delta + gamma * gae_lambda * cont * adv_next
        return adv, adv

    _, advantages = jax.lax.scan(back, jnp.zeros_like(deltas[0]), (deltas, not_done),
                                 reverse=True)
    return advantages, advantages + values
