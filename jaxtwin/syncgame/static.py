"""Static (constant-control) baselines (spec §4).

Every VSP commits to a constant ``u_i`` for the whole horizon; UAV shares
follow the replicator under the constants and payoffs are the same discounted
integrals (:func:`jaxtwin.syncgame.replicator.simulate`). Followers play Nash
among themselves in constants (projected Newton on their payoff gradients);
the leader picks its constant anticipating those responses (grid search with
two zooming refinements, all points evaluated in one ``vmap``).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import diffrax
import jax
import jax.numpy as jnp

from jaxtwin.syncgame.params import SyncParams, as_float64
from jaxtwin.syncgame.replicator import simulate, time_grid
from jaxtwin.syncgame.stackelberg import split_roles


class StaticSolution(NamedTuple):
    """Constant controls ``(M,)``, their payoffs ``(M,)``, state path and the
    followers' first-order residual (``|dP_j/du_j|`` at interior constants)."""

    controls: jax.Array
    payoffs: jax.Array
    ts: jax.Array
    states: jax.Array
    residual: jax.Array


def constant_payoffs(params: SyncParams, u: jax.Array, n_grid: int = 201) -> jax.Array:
    """Discounted payoffs ``(M,)`` when every VSP plays the constant ``u`` (forward-mode differentiable)."""
    ts = time_grid(params.T, n_grid)
    return simulate(params, ts, jnp.broadcast_to(u, (n_grid, u.shape[0])), adjoint=diffrax.ForwardMode()).payoffs


def constant_nash(params: SyncParams, u: jax.Array, players: Sequence[int], n_grid: int = 201,
                  iterations: int = 25) -> tuple[jax.Array, jax.Array]:
    """Nash in constants among ``players`` (others fixed at ``u``): projected Newton
    on the pseudo-gradient ``(dP_j/du_j)_j``; returns ``(u, first-order residual)``."""
    idx = jnp.array(players)

    def pseudo_grad(v):
        def own(j, vj):
            return constant_payoffs(params, u.at[idx].set(v.at[j].set(vj)), n_grid)[idx[j]]
        return jax.vmap(lambda j: jax.jacfwd(own, argnums=1)(j, v[j]))(jnp.arange(len(players)))

    def pg_twice(v):
        g = pseudo_grad(v)
        return g, g

    def step(_, carry):
        v, _ = carry
        jac, g = jax.jacfwd(pg_twice, has_aux=True)(v)
        new = jnp.clip(v - jnp.linalg.solve(jac, g), 0.0, params.u_max)
        interior = (v > 1e-9) & (v < params.u_max - 1e-9)
        resid = jnp.max(jnp.where(interior, jnp.abs(g), 0.0))
        return jnp.where(jnp.all(jnp.isfinite(new)), new, v), resid

    # the residual reported is the gradient at the last-but-one iterate (one trace of the payoff)
    v, resid = jax.lax.fori_loop(0, iterations, step, (u[idx], jnp.zeros((), u.dtype)))
    return u.at[idx].set(v), resid


def static_stackelberg(params: SyncParams, leaders: Sequence[int] = (0,), n_grid: int = 201,
                       n_search: int = 41, refinements: int = 2) -> StaticSolution:
    """Static Stackelberg in constants with one leader (pure, jit/vmap-able)."""
    leaders, followers = split_roles(params.n_vsp, leaders)
    if len(leaders) != 1:
        raise ValueError(f"static_stackelberg: one leader supported, got leaders={leaders}")
    lead = leaders[0]
    u_start = jnp.clip(params.N * params.d * params.y0 / (params.D * params.s), 0.0, params.u_max)

    def leader_value(ul):
        u, resid = constant_nash(params, u_start.at[lead].set(ul), followers, n_grid)
        return constant_payoffs(params, u, n_grid)[lead], u, resid

    def refine(_, carry):
        lo, hi, _, _, _ = carry
        grid = jnp.linspace(0.0, 1.0, n_search) * (hi - lo) + lo
        vals, us, resids = jax.vmap(leader_value)(grid)
        k = jnp.argmax(jnp.where(jnp.isfinite(vals), vals, -jnp.inf))
        width = (hi - lo) / (n_search - 1)
        return (jnp.maximum(grid[k] - width, 0.0), jnp.minimum(grid[k] + width, params.u_max),
                vals[k], us[k], resids[k])

    zero = jnp.zeros((), u_start.dtype)
    _, _, _, u, resid = jax.lax.fori_loop(0, refinements + 1, refine,
                                          (zero, params.u_max + zero, zero, u_start, zero))
    ts = time_grid(params.T, n_grid)
    traj = simulate(params, ts, jnp.broadcast_to(u, (n_grid, params.n_vsp)))
    return StaticSolution(u, traj.payoffs, ts, traj.states, resid)


def static_nash(params: SyncParams, n_grid: int = 201) -> StaticSolution:
    """Simultaneous static game in constants: all VSPs play Nash in constants."""
    u_start = jnp.clip(params.N * params.d * params.y0 / (params.D * params.s), 0.0, params.u_max)
    u, resid = constant_nash(params, u_start, tuple(range(params.n_vsp)), n_grid)
    ts = time_grid(params.T, n_grid)
    traj = simulate(params, ts, jnp.broadcast_to(u, (n_grid, params.n_vsp)))
    return StaticSolution(u, traj.payoffs, ts, traj.states, resid)


_CACHE: dict = {}


def static_stackelberg_equilibrium(params: SyncParams, leaders: Sequence[int] = (0,), n_grid: int = 201) -> StaticSolution:
    """float64 entry point of :func:`static_stackelberg`."""
    key = ("stackelberg", tuple(leaders), n_grid)
    if key not in _CACHE:
        _CACHE[key] = jax.jit(lambda p: static_stackelberg(p, tuple(leaders), n_grid))
    with jax.enable_x64(True):
        return jax.block_until_ready(_CACHE[key](as_float64(params)))
