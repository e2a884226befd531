"""PPO's loss terms (Schulman et al. 2017), as pure functions of batched arrays."""
from __future__ import annotations

import jax
import jax.numpy as jnp


def clipped_surrogate_loss(log_prob: jax.Array, old_log_prob: jax.Array,
                           advantages: jax.Array, clip_eps: float) -> jax.Array:
    """PPO policy loss ``-mean(min(rho * A, clip(rho, 1-eps, 1+eps) * A))``, ``rho = exp(logp - logp_old)``."""
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -jnp.mean(jnp.minimum(unclipped, clipped))


def clipped_value_loss(values: jax.Array, old_values: jax.Array, returns: jax.Array,
                       clip_eps: float, clip: bool = True) -> jax.Array:
    """``0.5 * mean(max((v - R)^2, (v_clipped - R)^2))``, ``v_clipped = v_old + clip(v - v_old, +-eps)``.

    With ``clip=False``, plain ``0.5 * mean((v - R)^2)``.
    """
    unclipped = jnp.square(values - returns)
    if not clip:
        return 0.5 * jnp.mean(unclipped)
    v_clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum(unclipped, jnp.square(v_clipped - returns)))


def approx_kl(log_prob: jax.Array, old_log_prob: jax.Array) -> jax.Array:
    """Low-variance estimator of ``KL(old || new)``: ``mean((rho - 1) - log rho)``."""
    log_ratio = log_prob - old_log_prob
    return jnp.mean(jnp.expm1(log_ratio) - log_ratio)


