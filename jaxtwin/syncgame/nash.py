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

from jaxtwin.syncgame.model import initial_state, instantaneous_payoff, state_field
from jaxtwin.syncgame.params import SyncParams, as_float64
from jaxtwin.core.sharding import sharded_call
from jaxtwin.syncgame.pmp import (SolverOptions, controls_fn, costate_field, integrate_backward,
                               integrate_forward, maximise_controls, resolve_substeps, solve_fixed_point)
from jaxtwin.syncgame.replicator import time_grid


class GameSolution(NamedTuple):
    """Equilibrium paths on the grid plus solver diagnostics.

    ``states``: ``(K, 2M)``, ``z = concat(x, y)``; ``controls``: ``(K, M)``;
    ``costates``: ``(K, M, 2M)`` (row ``i`` = VSP ``i``'s costate; for
    Stackelberg the followers' rows are their costates, the leaders' rows
    their costates of ``z``). ``payoffs``: discounted payoffs ``(M,)``
    integrated with the state. ``residual``: ``max |Phi(u) - u|`` of the sweep
    map at the returned controls; ``converged``: ``residual <= tol``;
    ``ode_result``: diffrax result code of the last forward solve (0 = ok).
    """

    ts: jax.Array
    states: jax.Array
    costates: jax.Array
    controls: jax.Array
    payoffs: jax.Array
    residual: jax.Array
    converged: jax.Array
    iterations: jax.Array
    ode_result: jax.Array


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

    ``aux = (states (K, 2M), costates (K, M, 2M), payoffs (M,), ode result)``.
    """
    m = params.n_vsp
    u_of_t = controls_fn(ts, us)
    zsol = forward_with_payoffs(params, ts, u_of_t, substeps)
    lam = integrate_backward(lambda t, l: costate_field(params, zsol.evaluate(t)[: 2 * m], l, u_of_t(t)), ts,
                             jnp.zeros((m, 2 * m), us.dtype), substeps=substeps)
    zs = zsol.ys[:, : 2 * m]
    u_new = jax.vmap(lambda z, l, u: maximise_controls(params, z, l, u))(zs, lam.ys, us)
    return u_new, (zs, lam.ys, zsol.ys[-1, 2 * m:], zsol.result._value)


def initial_controls(params: SyncParams, ts: jax.Array) -> jax.Array:
    """Starting guess: each VSP supplies the data its initial UAV share brings
    (``D_i s u_i = N d y_i``), i.e. the maximiser with zero costates."""
    u0 = params.N * params.d * params.y0 / (params.D * params.s)
    return jnp.broadcast_to(jnp.clip(u0, 0.0, params.u_max), (ts.shape[0], params.n_vsp))


def solve_nash(params: SyncParams, opts: SolverOptions = SolverOptions(), us0: jax.Array | None = None) -> GameSolution:
    """Open-loop Nash paths for one parameter set (pure, jit/vmap-able)."""
    ts = time_grid(params.T, opts.n_grid)
    us0 = initial_controls(params, ts) if us0 is None else us0
    shape = us0.shape

    def phi(v):
        u_new, aux = nash_sweep(params, ts, v.reshape(shape), opts.substeps)
        return u_new.reshape(-1), aux

    res = solve_fixed_point(phi, us0.reshape(-1), opts)
    zs, lams, payoffs, code = res.aux
    return GameSolution(ts, zs, lams, res.value.reshape(shape), payoffs, res.residual, res.converged,
                        res.iterations, code)


def nash_equilibrium(params: SyncParams, opts: SolverOptions = SolverOptions(), *, batched: bool = False,
                     devices: int = 1) -> GameSolution:
    """float64 entry point: :func:`solve_nash` jitted (vmapped over a leading
    params axis when ``batched``) inside ``jax.enable_x64``, with enough Tsit5
    substeps for the largest ``sigma`` (:func:`~jaxtwin.syncgame.pmp.resolve_substeps`).

    ``devices`` (batched only; 0 = all, see :func:`jaxtwin.core.sharding.sharded_call`)
    spreads the parameter points over devices; the solutions agree to float64 rounding.
    """
    return call_float64(solve_nash, params, resolve_substeps(params, opts), batched=batched, devices=devices)


_CACHE: dict = {}


def call_float64(solve, params: SyncParams, opts, *, batched: bool = False, devices: int = 1):
    """``solve(params, opts)`` jitted once per ``(solve, opts, batched)`` (vmapped over a
    leading params axis when ``batched``, sharded over ``devices`` when not 1) and run
    inside ``jax.enable_x64`` on float64 params: the shared body of the float64 entry points."""
    key = (solve, opts, batched)
    if key not in _CACHE:
        fn = lambda p: solve(p, opts)  # noqa: E731
        _CACHE[key] = jax.jit(jax.vmap(fn) if batched else fn)
    fn = _CACHE[key]
    if batched and devices != 1:
        fn = sharded_call(fn, devices)
    with jax.enable_x64(True):
        return jax.block_until_ready(fn(as_float64(params)))
