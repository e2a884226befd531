"""Open-loop Stackelberg differential game (spec §3).

Leaders ``L`` announce paths; followers ``F`` play open-loop Nash given them,
so each follower's control is its clipped Hamiltonian maximiser
``u_j = phi_j(z, lambda_j)`` with ``dlambda_j/dt = r lambda_j - dH_j/dz``,
``lambda_j(T) = 0``. The followers' costates become extra states of the
leaders' problem; leader ``l`` maximises over ``u_l`` the Hamiltonian

    H_l = J_l(z, u~) + mu_l^z . f(z, u~) + mu_l^lam . G(z, lambda_F, u~),
    u~  = leaders' controls with followers' entries replaced by phi_F(z, lambda_F),

(``G`` the followers' costate field), with costates ``mu_l^z(T) = 0`` and
``mu_l^lam(0) = 0`` (``lambda_F(0)`` is free). All derivatives (including
through the followers' clipped responses) come from ``jax.grad`` of that one
expression. ``H_l`` stays a strictly concave quadratic in ``u_l``.

Unknowns of the fixed point: all control paths and the leaders' ``mu^lam``
paths (its initial-value condition sits at the other end from ``mu^z``'s, so
one sweep cannot integrate both): ``z`` forward, ``lambda_F`` backward,
``mu^z`` backward (``mu^lam`` from the current iterate), ``mu^lam`` forward,
then the maximisers at the nodes.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp

from jaxtwin.syncgame.model import instantaneous_payoff, state_field
from jaxtwin.syncgame.nash import forward_with_payoffs, initial_controls
from jaxtwin.syncgame.params import SyncParams, call_float64
from jaxtwin.syncgame.pmp import (SolverOptions, controls_fn, costate_field, integrate_backward, integrate_forward,
                                  maximise_controls, maximise_quadratic, resolve_substeps,
                                  solve_pytree_fixed_point)
from jaxtwin.syncgame.replicator import control_path, time_grid
from jaxtwin.syncgame.results import Result, all_finite, classify, ode_succeeded


class StackelbergSolution(NamedTuple):
    """Stackelberg paths on the grid plus solver diagnostics.

    ``follower_costates``: ``(K, |F|, 2M)``; ``leader_state_costates``
    (``mu^z``): ``(K, |L|, 2M)``; ``leader_costate_costates`` (``mu^lam``):
    ``(K, |L|, |F|, 2M)``. Other fields as in :class:`~jaxtwin.syncgame.nash.GameSolution`.
    """

    ts: jax.Array
    states: jax.Array
    controls: jax.Array
    follower_costates: jax.Array
    leader_state_costates: jax.Array
    leader_costate_costates: jax.Array
    payoffs: jax.Array
    residual: jax.Array
    converged: jax.Array
    iterations: jax.Array
    result: jax.Array


def split_roles(n_vsp: int, leaders: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate leader indices; return ``(leaders, followers)`` as sorted tuples."""
    leaders = tuple(sorted(set(int(i) for i in leaders)))
    if not leaders or any(i < 0 or i >= n_vsp for i in leaders):
        raise ValueError(f"leaders={leaders}: need at least one leader index in [0, {n_vsp})")
    followers = tuple(i for i in range(n_vsp) if i not in leaders)
    if not followers:
        raise ValueError(f"leaders={leaders}: every VSP leads; at least one follower is needed")
    return leaders, followers


def _with_follower_responses(params, fol, z, lam_f, u):
    return u.at[fol].set(maximise_controls(params, z, lam_f, u, players=fol))


def leader_hamiltonian(params: SyncParams, leader, followers: jax.Array, z, lam_f, mu_z, mu_lam, u):
    """``H_l`` of one leader on the augmented state ``(z, lambda_F)`` (see module doc)."""
    ut = _with_follower_responses(params, followers, z, lam_f, u)
    g = costate_field(params, z, lam_f, ut, players=followers)
    return (instantaneous_payoff(params, z, ut)[leader] + jnp.dot(mu_z, state_field(params, z, ut))
            + jnp.sum(mu_lam * g))


def stackelberg_sweep(params: SyncParams, ts, us, mu_lam_nodes, leaders, followers, substeps=1):
    """One sweep of the Stackelberg fixed-point map; returns ``((us_new, mu_lam_new), aux)``."""
    m = params.n_vsp
    lead, fol = jnp.array(leaders), jnp.array(followers)
    u_of_t = controls_fn(ts, us)
    mu_lam_of_t = control_path(ts, mu_lam_nodes).evaluate
    zsol = forward_with_payoffs(params, ts, u_of_t, substeps)
    z_of_t = lambda t: zsol.evaluate(t)[: 2 * m]  # noqa: E731
    lam_f = integrate_backward(lambda t, l: costate_field(params, z_of_t(t), l, u_of_t(t), players=fol), ts,
                               jnp.zeros((len(followers), 2 * m), us.dtype), substeps=substeps, dense=True)

    def grads(t, mu_z, mu_lam):
        """(dH_l/dz, dH_l/dlambda_F) for every leader at time t."""
        z, lf, u = z_of_t(t), lam_f.evaluate(t), u_of_t(t)
        return jax.vmap(lambda l, mz, ml: jax.grad(leader_hamiltonian, argnums=(3, 4))(
            params, l, fol, z, lf, mz, ml, u))(lead, mu_z, mu_lam)

    mu_z = integrate_backward(lambda t, mz: params.r * mz - grads(t, mz, mu_lam_of_t(t))[0], ts,
                              jnp.zeros((len(leaders), 2 * m), us.dtype), substeps=substeps, dense=True)
    mu_lam = integrate_forward(lambda t, ml: params.r * ml - grads(t, mu_z.evaluate(t), ml)[1], ts,
                               jnp.zeros_like(mu_lam_nodes[0]), substeps=substeps)
    zs = zsol.ys[:, : 2 * m]

    def new_controls(z, lf, mz, ml, u):
        u_f = maximise_controls(params, z, lf, u, players=fol)
        u_l = jax.vmap(lambda l, mzl, mll: maximise_quadratic(
            lambda ul: leader_hamiltonian(params, l, fol, z, lf, mzl, mll, u.at[l].set(ul)), u[l], params.u_max)
        )(lead, mz, ml)
        return u.at[fol].set(u_f).at[lead].set(u_l)

    us_new = jax.vmap(new_controls)(zs, lam_f.ys, mu_z.ys, mu_lam.ys, us)
    ode_ok = ode_succeeded(zsol) & ode_succeeded(lam_f.sol) & ode_succeeded(mu_z.sol) & ode_succeeded(mu_lam)
    aux = (zs, lam_f.ys, mu_z.ys, mu_lam.ys, zsol.ys[-1, 2 * m:], ode_ok)
    return (us_new, mu_lam.ys), aux


def solve_stackelberg(params: SyncParams, leaders: Sequence[int], opts: SolverOptions = SolverOptions(),
                      us0: jax.Array | None = None) -> StackelbergSolution:
    """Open-loop Stackelberg paths for one parameter set (pure, jit/vmap-able)."""
    leaders, followers = split_roles(params.n_vsp, leaders)
    ts = time_grid(params.T, opts.n_grid)
    us0 = initial_controls(params, ts) if us0 is None else us0
    mu0 = jnp.zeros((opts.n_grid, len(leaders), len(followers), 2 * params.n_vsp), us0.dtype)
    (us, _), res = solve_pytree_fixed_point(
        lambda v: stackelberg_sweep(params, ts, v[0], v[1], leaders, followers, opts.substeps), (us0, mu0), opts)
    zs, lam_f, mu_z, mu_lam, payoffs, ode_ok = res.aux
    code = classify(res.residual, opts.tol, all_finite(res.value, zs, lam_f, mu_z, mu_lam, payoffs), ode_ok)
    return StackelbergSolution(ts, zs, us, lam_f, mu_z, mu_lam, payoffs, res.residual, code == Result.CONVERGED,
                               res.iterations, code)



def stackelberg_equilibrium(params: SyncParams, leaders: Sequence[int], opts: SolverOptions = SolverOptions(), *,
                            batched: bool = False, devices: int = 1) -> StackelbergSolution:
    """float64 entry point of :func:`solve_stackelberg` (vmapped over a leading axis when ``batched``,
    sharded over ``devices`` when not 1), with enough Tsit5 substeps for the largest ``sigma``
    (:func:`~jaxtwin.syncgame.pmp.resolve_substeps`)."""
    leaders, _ = split_roles(params.delta.shape[-1], leaders)
    return call_float64(solve_stackelberg, params, static=(leaders, resolve_substeps(params, opts)),
                        batched=batched, devices=devices)
