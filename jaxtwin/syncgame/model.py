"""Model terms of the sync game (spec §1) as standalone pure functions.

State ``z = concat(x, y)`` (DT values, UAV shares), controls ``u`` of shape
``(M,)``. Everything is written for one parameter set; ``jax.vmap`` over
:class:`~jaxtwin.syncgame.params.SyncParams` for grids.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxtwin.syncgame.params import SyncParams


def split_state(z: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``z = concat(x, y)`` -> ``(x, y)``."""
    m = z.shape[-1] // 2
    return z[..., :m], z[..., m:]


def incentive_pool(params: SyncParams, u: jax.Array) -> jax.Array:
    """``R_i = (a*delta_i + b) * u_i * D_i``: incentives grow with sync intensity and decay rate."""
    return (params.a * params.delta + params.b) * u * params.D


def uav_utility(params: SyncParams, u: jax.Array, y: jax.Array) -> jax.Array:
    """``pi_i = R_i / (N*y_i) - c_i``: a UAV's share of VSP i's pool minus its cost."""
    return incentive_pool(params, u) / (params.N * y) - params.c


def dt_value_rate(params: SyncParams, x: jax.Array, u: jax.Array) -> jax.Array:
    """``dx_i/dt = u_i - delta_i*x_i``: value decays, syncing restores it."""
    return u - params.delta * x


def replicator_field(params: SyncParams, y: jax.Array, u: jax.Array) -> jax.Array:
    """``dy_i/dt = sigma*(R_i/N - c_i*y_i - y_i*sum_j(R_j/N - c_j*y_j))``.

    This equals ``sigma*y_i*(pi_i - sum_j y_j pi_j)`` but has no division by
    ``y_i``, so it is smooth on the closed simplex. Its components sum to
    ``sigma*(1 - sum y)*sum_j(R_j/N - c_j y_j)``: zero on the simplex.
    """
    g = incentive_pool(params, u) / params.N - params.c * y
    return params.sigma * (g - y * jnp.sum(g))


def state_field(params: SyncParams, z: jax.Array, u: jax.Array) -> jax.Array:
    """``f(z, u) = concat(dx/dt, dy/dt)``: the full state dynamics."""
    x, y = split_state(z)
    return jnp.concatenate([dt_value_rate(params, x, u), replicator_field(params, y, u)])


def payoff_terms(params: SyncParams, z: jax.Array, u: jax.Array) -> jax.Array:
    """The four weighted terms of ``J_i``, shape ``(4, M)``: data sold, DT business
    value, deviation from the desired value, data demand/supply mismatch (the last
    two enter with a minus sign)."""
    x, y = split_state(z)
    w1, w2, w3, w4 = params.w[0], params.w[1], params.w[2], params.w[3]
    sold = w1 * params.p * params.d * params.N * y
    value = w2 * params.rho * jnp.exp(params.delta) * x
    deviation = -w3 * (x - params.xbar) ** 2
    mismatch = -w4 * (params.D * params.s * u - params.N * params.d * y) ** 2
    return jnp.stack([sold, value, deviation, mismatch])


def instantaneous_payoff(params: SyncParams, z: jax.Array, u: jax.Array) -> jax.Array:
    """``J_i(z, u)`` for every VSP, shape ``(M,)`` (the sum of :func:`payoff_terms`)."""
    return jnp.sum(payoff_terms(params, z, u), axis=0)


def discounted_payoff(params: SyncParams, ts: jax.Array, zs: jax.Array, us: jax.Array) -> jax.Array:
    """``int_0^T exp(-r t) J_i dt`` by the trapezoid rule over sampled paths.

    ``ts``: ``(K,)``; ``zs``: ``(K, 2M)``; ``us``: ``(K, M)``. For an ODE-accurate
    value use :func:`jaxtwin.syncgame.replicator.simulate` (payoff as an extra state).
    """
    js = jax.vmap(lambda z, u: instantaneous_payoff(params, z, u))(zs, us)
    integrand = jnp.exp(-params.r * ts)[:, None] * js
    dt = jnp.diff(ts)[:, None]
    return jnp.sum(0.5 * dt * (integrand[1:] + integrand[:-1]), axis=0)


def initial_state(params: SyncParams) -> jax.Array:
    """``z0 = concat(x0, y0)``."""
    return jnp.concatenate([params.x0, params.y0])


def supply_matching_controls(params: SyncParams) -> jax.Array:
    """The constants ``u_i`` with which each VSP requests the data its initial UAV
    share brings (``D_i s u_i = N d y_i(0)``), clipped to ``[0, u_max]``: the
    maximiser with zero costates, where every solver starts."""
    return jnp.clip(params.N * params.d * params.y0 / (params.D * params.s), 0.0, params.u_max)
