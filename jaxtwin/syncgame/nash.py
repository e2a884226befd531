"""Open-loop Nash equilibrium of the simultaneous differential game (spec §2).

Unknowns: every VSP's control path on the time grid. Given them, the state is
integrated forward, every VSP's costate (length ``2M``) backward from
``lambda_i(T) = 0``, and each VSP's Hamiltonian is maximised pointwise; a
Nash path is a fixed point of that map (:func:`nash_sweep`), solved by
:func:`jaxtwin.syncgame.pmp.solve_fixed_point`.

:func:`solve_nash` is pure and vmappable (dtype follows the params);
:func:`nash_equilibrium` is the float64 entry point.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from jaxtwin.syncgame.model import initial_state, instantaneous_payoff, state_field, supply_matching_controls
from jaxtwin.syncgame.params import SyncParams, call_float64
from jaxtwin.syncgame.pmp import (SolverOptions, controls_fn, costate_field, integrate_backward,
                                  integrate_forward, maximise_controls, resolve_substeps, solve_fixed_point)
from jaxtwin.syncgame.replicator import time_grid
from jaxtwin.syncgame.results import Result, all_finite, classify, ode_succeeded


class GameSolution(NamedTuple):
    """Equilibrium paths on the grid plus solver diagnostics.

    ``states``: ``(K, 2M)``, ``z = concat(x, y)``; ``controls``: ``(K, M)``;
    ``costates``: ``(K, M, 2M)`` (row ``i`` = VSP ``i``'s costate; for
    Stackelberg the followers' rows are their costates, the leaders' rows
    their costates of ``z``). ``payoffs``: discounted payoffs ``(M,)``
    integrated with the state. ``residual``: ``max |Phi(u) - u|`` of the sweep
    map at the returned controls (collocation: max |collocation and boundary
    residual|); ``converged``: ``result == Result.CONVERGED``; ``result``: the
    :class:`~jaxtwin.syncgame.results.Result` code (``ODE_FAILED`` when one of the
    last sweep's ODE solves failed).
    """

    ts: jax.Array
    states: jax.Array
    costates: jax.Array
    controls: jax.Array
    payoffs: jax.Array
    residual: jax.Array
    converged: jax.Array
    iterations: jax.Array
    result: jax.Array


def forward_with_payoffs(params: SyncParams, ts: jax.Array, u_of_t, substeps: int = 1):
    """State and discounted payoffs integrated together (dense, forward-mode)."""
    m = params.n_vsp

    def rhs(t, s):
        z, u = s[: 2 * m], u_of_t(t)
        return jnp.concatenate([state_field(params, z, u), jnp.exp(-params.r * t) * instantaneous_payoff(params, z, u)])

    z0 = initial_state(params)
    return integrate_forward(rhs, ts, jnp.concatenate([z0, jnp.zeros(m, z0.dtype)]), substeps=substeps, dense=True)


def nash_sweep(params: SyncParams, ts: jax.Array, us: jax.Array, substeps: int = 1):
    """One forward-backward sweep: ``us -> (argmax_u H at the nodes, aux)``.

    ``aux = (states (K, 2M), costates (K, M, 2M), payoffs (M,), whether both ODE solves succeeded)``.
    """
    m = params.n_vsp
    u_of_t = controls_fn(ts, us)
    zsol = forward_with_payoffs(params, ts, u_of_t, substeps)
    lam = integrate_backward(lambda t, l: costate_field(params, zsol.evaluate(t)[: 2 * m], l, u_of_t(t)), ts,
                             jnp.zeros((m, 2 * m), us.dtype), substeps=substeps)
    zs = zsol.ys[:, : 2 * m]
    u_new = jax.vmap(lambda z, l, u: maximise_controls(params, z, l, u))(zs, lam.ys, us)
    return u_new, (zs, lam.ys, zsol.ys[-1, 2 * m:], ode_succeeded(zsol) & ode_succeeded(lam.sol))


def initial_controls(params: SyncParams, ts: jax.Array) -> jax.Array:
    """Starting guess: each VSP supplies the data its initial UAV share brings
    (``D_i s u_i = N d y_i``), i.e. the maximiser with zero costates."""
    return jnp.broadcast_to(supply_matching_controls(params), (ts.shape[0], params.n_vsp))


def solve_nash(params: SyncParams, opts: SolverOptions = SolverOptions(), us0: jax.Array | None = None) -> GameSolution:
    """Open-loop Nash paths for one parameter set (pure, jit/vmap-able)."""
    ts = time_grid(params.T, opts.n_grid)
    us0 = initial_controls(params, ts) if us0 is None else us0
    shape = us0.shape

    def phi(v):
        u_new, aux = nash_sweep(params, ts, v.reshape(shape), opts.substeps)
        return u_new.reshape(-1), aux

    res = solve_fixed_point(phi, us0.reshape(-1), opts)
    zs, lams, payoffs, ode_ok = res.aux
    code = classify(res.residual, opts.tol, all_finite(res.value, zs, lams, payoffs), ode_ok)
    return GameSolution(ts, zs, lams, res.value.reshape(shape), payoffs, res.residual, code == Result.CONVERGED,
                        res.iterations, code)


def nash_equilibrium(params: SyncParams, opts: SolverOptions = SolverOptions(), *, batched: bool = False,
                     devices: int = 1) -> GameSolution:
    """float64 entry point: :func:`solve_nash` jitted (vmapped over a leading
    params axis when ``batched``) inside ``jax.enable_x64``, with enough Tsit5
    substeps for the largest ``sigma`` (:func:`~jaxtwin.syncgame.pmp.resolve_substeps`).

    ``devices`` (batched only; 0 = all, see :func:`jaxtwin.core.sharding.sharded_call`)
    spreads the parameter points over devices; the solutions agree to float64 rounding.
    """
    return call_float64(solve_nash, params, static=(resolve_substeps(params, opts),), batched=batched,
                        devices=devices)

