"""Exact, fast Poisson draws for CIVIC's small client arrival/departure rates."""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

POISSON_TERMS = 40
_LOG_FACTORIALS = tuple(math.lgamma(i + 1.0) for i in range(POISSON_TERMS))
"""Support ``0..POISSON_TERMS-1`` of :func:`poisson_small_rate` (exact to float32 for rates <= 10)."""


def poisson_small_rate(key, rate):
    """Poisson draws by inverting the CDF over ``0..POISSON_TERMS-1`` (one per entry of ``rate``).

    The arrival/departure rates are small (0.4, 0.7), where the tail beyond 39
    is far below float32 resolution; unlike ``jax.random.poisson`` (a rejection
    ``while_loop``) this compiles quickly and vectorises.
    """
    rate = jnp.asarray(rate, jnp.float32)
    k = jnp.arange(POISSON_TERMS, dtype=jnp.float32)
    log_fact = jnp.asarray(_LOG_FACTORIALS, jnp.float32)
    log_pmf = k * jnp.log(jnp.maximum(rate[..., None], 1e-30)) - rate[..., None] - log_fact
    cdf = jnp.cumsum(jnp.exp(log_pmf), axis=-1)
    u = jax.random.uniform(key, rate.shape)
    return jnp.sum((u[..., None] > cdf[..., :-1]).astype(jnp.int32), axis=-1)
