"""Static (constant-control) baselines (spec §4).

Every VSP commits to a constant ``u_i`` for the whole horizon; UAV shares
follow the replicator under the constants and payoffs are the same discounted
integrals (the steps of :func:`jaxtwin.syncgame.replicator.simulate`, :func:`constant_path`). Followers play Nash
among themselves in constants (projected Newton on their payoff gradients, by
the shared driver :func:`jaxtwin.syncgame.newton.newton`);
the leader picks its constant anticipating those responses (grid search with
two zooming refinements, all points evaluated in one ``vmap``).
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import diffrax
import jax
import jax.numpy as jnp

from jaxtwin.core import linalg
from jaxtwin.syncgame.model import initial_state, instantaneous_payoff, state_field, supply_matching_controls
from jaxtwin.syncgame.newton import NewtonResult, newton
from jaxtwin.syncgame.params import LEAN_COMPILE, SyncParams, call_float64
from jaxtwin.syncgame.replicator import time_grid
from jaxtwin.syncgame.results import all_finite, classify
from jaxtwin.syncgame.stackelberg import split_roles

# First-order residual at which the static games stop: the pseudo-gradient dP_j/du_j
# of payoffs O(100-500) reaches ~1e-14 at convergence (round-off), 1e-10 is well above
# that and far below any gain the grid search can resolve.
STATIC_TOL = 1e-10


class StaticSolution(NamedTuple):
    """Constant controls ``(M,)``, their payoffs ``(M,)``, state path, the
    followers' first-order (KKT) residual at the constants and its
    :class:`~jaxtwin.syncgame.results.Result` code (``NOT_FINITE`` when the final
    path is not finite: the fixed-step solve cannot fail otherwise)."""

    controls: jax.Array
    payoffs: jax.Array
    ts: jax.Array
    states: jax.Array
    residual: jax.Array
    result: jax.Array


def constant_path(params: SyncParams, u: jax.Array, n_grid: int = 201, *, save: bool = True):
    """``(states (n_grid, 2M) or None, payoffs (M,))`` when every VSP plays the constant ``u``:
    the states and discounted payoffs integrated together on the uniform ``n_grid`` nodes.

    The steps :func:`~jaxtwin.syncgame.replicator.simulate` takes on that grid (Tsit5,
    one step per interval, diffrax's own tableau ``diffrax.Tsit5.tableau``), written as a
    ``lax.scan`` (forward-mode differentiable; ``save=False`` keeps only the payoffs).
    Why not ``simulate``: this is differentiated twice (the followers' Newton on their
    payoff gradients) inside the leader's 41-point search, and measured on 3 VSPs
    (2 busy cores, both with ``LEAN_COMPILE``) the static Stackelberg program traced in
    2.9 s, compiled in 3.9 s and ran in 0.4 s this way, against 6.7, 8.7 and 2.2 s
    through ``diffeqsolve`` (which carries adaptivity, events and dense output this
    fixed-step solve never uses). Payoffs agree with ``simulate``'s to 8e-16 relative
    (tested to 1e-12).
    """
    m = u.shape[0]
    tableau = diffrax.Tsit5.tableau
    stages = max(i for i, w in enumerate(tableau.b_sol) if w != 0) + 1   # the FSAL stage has no weight
    h = params.T / (n_grid - 1)

    def rhs(t, state):
        z = state[: 2 * m]
        return jnp.concatenate([state_field(params, z, u), jnp.exp(-params.r * t) * instantaneous_payoff(params, z, u)])

    def step(state, k):
        # the stages unrolled: a loop over them traced the field once but ran 5x slower
        t = k * h
        slopes = [rhs(t, state)]
        for c, a in zip(tableau.c[: stages - 1], tableau.a_lower[: stages - 1]):
            slopes.append(rhs(t + c * h, state + h * sum(a_j * k_j for a_j, k_j in zip(a, slopes))))
        new = state + h * sum(w * k_i for w, k_i in zip(tableau.b_sol[:stages], slopes))
        return new, (new[: 2 * m] if save else None)

    z0 = initial_state(params)
    end, zs = jax.lax.scan(step, jnp.concatenate([z0, jnp.zeros(m, z0.dtype)]), jnp.arange(n_grid - 1))
    return (jnp.concatenate([z0[None], zs]) if save else None), end[2 * m:]


def constant_payoffs(params: SyncParams, u: jax.Array, n_grid: int = 201) -> jax.Array:
    """Discounted payoffs ``(M,)`` when every VSP plays the constant ``u`` (:func:`constant_path`)."""
    return constant_path(params, u, n_grid, save=False)[1]


def constant_nash(params: SyncParams, u: jax.Array, players: Sequence[int], n_grid: int = 201,
                  iterations: int = 25, tol: float = STATIC_TOL) -> NewtonResult:
    """Nash in constants among ``players`` (others fixed at ``u``): projected Newton
    (:func:`jaxtwin.syncgame.newton.newton`, iterates clipped to ``[0, u_max]``, no
    backtracking) on the pseudo-gradient ``g = (dP_j/du_j)_j``, at most ``iterations``
    steps, stopping once the first-order residual is at most ``tol``: ``|g_j|`` for an
    interior constant, the part of ``g_j`` pointing out of ``[0, u_max]`` at a bound.

    Returns the driver's result: ``value`` is ``u`` with the players' constants set.
    """
    idx = jnp.array(players)

    def pseudo_grad(v):
        def own(j, vj):
            return constant_payoffs(params, u.at[idx].set(v.at[j].set(vj)), n_grid)[idx[j]]
        return jax.vmap(lambda j: jax.jacfwd(own, argnums=1)(j, v[j]))(jnp.arange(len(players)))

    def pg_twice(v):
        g = pseudo_grad(v)
        return g, g

    def linearise(v):
        jac, g = jax.jacfwd(pg_twice, has_aux=True)(v)
        step = linalg.solve(jac, -g)  # batch-safe on a CPU split into devices
        lower, upper = v <= 1e-9, v >= params.u_max - 1e-9
        kkt = jnp.where(lower, jnp.maximum(g, 0.0), jnp.where(upper, jnp.maximum(-g, 0.0), g))
        return kkt, jnp.where(jnp.isfinite(step), step, 0.0), None

    # iterations + 1 linearisations: the last one gives the residual at the returned constants
    res = newton(linearise, u[idx], tol=tol, max_iter=iterations + 1, max_halvings=0,
                 project=lambda v: jnp.clip(v, 0.0, params.u_max))
    return res._replace(value=u.at[idx].set(res.value))


def _static_solution(params: SyncParams, res: NewtonResult, n_grid: int, tol: float) -> StaticSolution:
    """Simulate the constants of ``res`` and wrap everything up."""
    u = res.value
    states, payoffs = constant_path(params, u, n_grid)
    code = classify(res.residual, tol, all_finite(u, payoffs, states))
    return StaticSolution(u, payoffs, time_grid(params.T, n_grid), states, res.residual, code)


def static_stackelberg(params: SyncParams, leaders: Sequence[int] = (0,), n_grid: int = 201,
                       n_search: int = 41, refinements: int = 2, tol: float = STATIC_TOL) -> StaticSolution:
    """Static Stackelberg in constants with one leader (pure, jit/vmap-able)."""
    leaders, followers = split_roles(params.n_vsp, leaders)
    if len(leaders) != 1:
        raise ValueError(f"static_stackelberg: one leader supported, got leaders={leaders}")
    lead = leaders[0]
    u_start = supply_matching_controls(params)

    def leader_value(ul):
        res = constant_nash(params, u_start.at[lead].set(ul), followers, n_grid, tol=tol)
        return constant_payoffs(params, res.value, n_grid)[lead], res

    def refine(_, carry):
        lo, hi, _ = carry
        grid = jnp.linspace(0.0, 1.0, n_search) * (hi - lo) + lo
        vals, results = jax.vmap(leader_value)(grid)
        k = jnp.argmax(jnp.where(jnp.isfinite(vals), vals, -jnp.inf))
        width = (hi - lo) / (n_search - 1)
        return (jnp.maximum(grid[k] - width, 0.0), jnp.minimum(grid[k] + width, params.u_max),
                jax.tree.map(lambda a: a[k], results))

    zero = jnp.zeros((), u_start.dtype)
    none_yet = NewtonResult(u_start, None, zero, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
    _, _, res = jax.lax.fori_loop(0, refinements + 1, refine, (zero, params.u_max + zero, none_yet))
    return _static_solution(params, res, n_grid, tol)


def static_nash(params: SyncParams, n_grid: int = 201, tol: float = STATIC_TOL) -> StaticSolution:
    """Simultaneous static game in constants: all VSPs play Nash in constants (pure, jit/vmap-able)."""
    res = constant_nash(params, supply_matching_controls(params), tuple(range(params.n_vsp)), n_grid, tol=tol)
    return _static_solution(params, res, n_grid, tol)


def static_stackelberg_equilibrium(params: SyncParams, leaders: Sequence[int] = (0,), n_grid: int = 201) -> StaticSolution:
    """float64 entry point of :func:`static_stackelberg` (compiled with
    :data:`~jaxtwin.syncgame.params.LEAN_COMPILE`)."""
    return call_float64(static_stackelberg, params, static=(tuple(leaders), n_grid), compile_with=LEAN_COMPILE)
