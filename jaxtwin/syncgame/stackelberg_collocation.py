"""Open-loop Stackelberg differential game (spec §3) by 4th-order collocation: the
boundary-value problem of :mod:`jaxtwin.syncgame.stackelberg` solved as the Nash
one is in :mod:`jaxtwin.syncgame.collocation` (Hermite–Simpson, damped Newton,
block Riccati solve: :mod:`jaxtwin.syncgame.bvp`), started from the Nash solution.

Unknowns at each node, in this order (``nz = 2M``)::

    Y = [z (2M), mu^lam (|L| |F| 2M) | lambda_F (|F| 2M), mu^z (|L| 2M)]

The first block is fixed at ``t = 0`` (``z(0) = z0``, ``mu^lam(0) = 0``: the
followers' costates start free), the second at ``t = T`` (``lambda_F(T) = 0``,
``mu^z(T) = 0``). The field is

    G(Y) = [f(z, u~), r mu^lam - dH_l/dlambda_F, r lambda_F - dH_F/dz, r mu^z - dH_l/dz],

with ``H_l`` :func:`jaxtwin.syncgame.stackelberg.leader_hamiltonian` (every
derivative, including through the followers' clipped responses, by autodiff
of that one expression, evaluated for all leaders at once by
:func:`leader_hamiltonians`) and ``u~`` the pointwise controls
(:func:`stackelberg_controls`): each follower's clipped maximiser of its ``H_j``
given ``(z, lambda_j)``, each leader's clipped maximiser of ``H_l``.

Why collocation: the sweep solver's Newton Jacobian carries one ``jacfwd`` tangent
per control and ``mu^lam`` node value through the ODE solves (3,015 tangents for the
comparison's 3 VSPs at 201 nodes: 270 s on 2 busy cores); here the Jacobian is
``n x n`` blocks per node (``n`` = 36 for 3 VSPs). Why start from Nash: the
leader's advantage is small in this model (its payoff moves by ~1e-5 relative),
so the Nash paths, with the followers' costates as ``lambda_F``, the leader's as
``mu^z`` and ``mu^lam = 0``, are close to the Stackelberg ones.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxtwin.syncgame import bvp
from jaxtwin.syncgame.collocation import (CollocationOptions, collocation_grid, hamiltonians, nash_collocation,
                                          pointwise_controls, solve_nash_collocation)
from jaxtwin.syncgame.model import initial_state, instantaneous_payoff, state_field
from jaxtwin.syncgame.params import QUICK_COMPILE, SyncParams, call_float64
from jaxtwin.syncgame.results import Result, all_finite, classify
from jaxtwin.syncgame.stackelberg import StackelbergSolution, split_roles


def split_unknowns(Y: jax.Array, m: int, n_lead: int, n_fol: int):
    """``Y (..., n)`` -> ``(z (..., 2M), mu_lam (..., |L|, |F|, 2M), lam_f (..., |F|, 2M), mu_z (..., |L|, 2M))``."""
    nz, lead = 2 * m, Y.shape[:-1]
    sizes = (nz, n_lead * n_fol * nz, n_fol * nz, n_lead * nz)
    shapes = ((nz,), (n_lead, n_fol, nz), (n_fol, nz), (n_lead, nz))
    parts, i = [], 0
    for size, shape in zip(sizes, shapes):
        parts.append(Y[..., i:i + size].reshape(lead + shape))
        i += size
    return tuple(parts)


def join_unknowns(z, mu_lam, lam_f, mu_z) -> jax.Array:
    """The inverse of :func:`split_unknowns` (any leading axes)."""
    lead = z.shape[:-1]
    return jnp.concatenate([z, mu_lam.reshape(lead + (-1,)), lam_f.reshape(lead + (-1,)),
                            mu_z.reshape(lead + (-1,))], axis=-1)


def _follower_responses(params: SyncParams, fol: jax.Array, z: jax.Array, lam_f: jax.Array) -> jax.Array:
    """The followers' clipped maximisers of their ``H_j`` given ``(z, lambda_j)``, ``(|F|,)``
    (:func:`jaxtwin.syncgame.collocation.pointwise_controls`, which never reads the other rows)."""
    m = params.n_vsp
    lam_all = jnp.zeros((m, 2 * m), z.dtype).at[fol].set(lam_f)
    return pointwise_controls(params, jnp.concatenate([z, lam_all.reshape(-1)]))[fol]


def leader_hamiltonians(params: SyncParams, leaders: tuple[int, ...], followers: tuple[int, ...], z: jax.Array,
                        lam_f: jax.Array, mu_z: jax.Array, mu_lam: jax.Array, u: jax.Array):
    """Every leader's ``H_l`` at once, ``(|L|,)``, and ``(G_F, f)`` at the same point (aux).

    :func:`jaxtwin.syncgame.stackelberg.leader_hamiltonian` for all leaders together (tested
    equal): ``J`` and ``f`` are evaluated once and ``dH_F/dz`` is one ``jacrev`` of
    :func:`jaxtwin.syncgame.collocation.hamiltonians` rather than a ``grad`` per follower
    and a ``grad(grad)`` per follower's response. Why: this is differentiated twice more
    (the costates' field, then the Newton Jacobian), and the per-player form traced for
    24 s and compiled for 50 s on the comparison's 3 VSPs (2 busy cores).
    """
    m = params.n_vsp
    lead, fol = jnp.array(leaders), jnp.array(followers)
    ut = u.at[fol].set(_follower_responses(params, fol, z, lam_f))
    lam_all = jnp.zeros((m, 2 * m), z.dtype).at[fol].set(lam_f)
    dH_dz = jax.jacrev(lambda zz: hamiltonians(params, zz, lam_all, ut)[fol])(z)
    g_f = params.r * lam_f - dH_dz
    f = state_field(params, z, ut)
    h = instantaneous_payoff(params, z, ut)[lead] + mu_z @ f + jnp.einsum("lfn,fn->l", mu_lam, g_f)
    return h, (g_f, f)


def controls_and_field(params: SyncParams, leaders: tuple[int, ...], followers: tuple[int, ...],
                       Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(u~ (M,), G(Y))`` at one node: the pointwise controls and the field (module doc).

    ``u~``: each follower's clipped maximiser of its ``H_j`` (as in Nash), each
    leader's of its ``H_l``. Every leader's ``H_l`` is a strictly concave quadratic in
    its own ``u_l`` plus terms affine in all controls jointly (``J_l`` holds ``u_l``
    only; ``f`` and the followers' costate field are affine in ``u``; the followers'
    maximisers do not depend on ``u``). So ``dH_l/du_l`` is affine in ``u_l`` alone,
    and ``dH_l/dz``, ``dH_l/dlambda_F``, ``G_F`` and ``f`` are affine in the leaders'
    controls ``u_L``. One ``jacrev`` of :func:`leader_hamiltonians`, ``vmap``ped over
    ``u_L = 0`` and ``u_L = e_k`` (``|L| + 1`` points), then gives everything exactly:
    ``u_l = clip(-g_l(0) / (g_l(e_l) - g_l(0)))`` and every other quantity at ``u~`` by
    ``v(u_L) = v(0) + sum_k u_k (v(e_k) - v(0))``. Why: it traces the Hamiltonian's
    derivatives once instead of once for the slopes and again for the field (half
    the program, and the Newton Jacobian differentiates all of it once more);
    ``tests/syncgame/test_stackelberg_collocation.py`` checks it against the per-leader
    construction from :func:`jaxtwin.syncgame.stackelberg.leader_hamiltonian`.
    """
    m, nl = params.n_vsp, len(leaders)
    lead = jnp.array(leaders)
    z, mu_lam, lam_f, mu_z = split_unknowns(Y, m, nl, len(followers))

    def at(u_lead):
        u = jnp.zeros(m, Y.dtype).at[lead].set(u_lead)
        (dz, dlam, du), (g_f, f) = jax.jacrev(leader_hamiltonians, argnums=(3, 4, 7), has_aux=True)(
            params, leaders, followers, z, lam_f, mu_z, mu_lam, u)
        return jnp.diagonal(du[:, lead]), (dz, dlam, g_f, f)

    corners = jnp.concatenate([jnp.zeros((1, nl), Y.dtype), jnp.eye(nl, dtype=Y.dtype)])
    slopes, parts = jax.vmap(at)(corners)             # slopes[0] at u_L = 0, slopes[1 + k] at e_k
    u_l = jnp.clip(-slopes[0] / (jnp.diagonal(slopes[1:]) - slopes[0]), 0.0, params.u_max)
    u_l = jnp.where(jnp.isfinite(u_l), u_l, 0.0)
    dz, dlam, g_f, f = (v[0] + jnp.tensordot(u_l, v[1:] - v[0], axes=1) for v in parts)
    u = jnp.zeros(m, Y.dtype).at[jnp.array(followers)].set(
        _follower_responses(params, jnp.array(followers), z, lam_f)).at[lead].set(u_l)
    return jnp.where(jnp.isfinite(u), u, 0.0), join_unknowns(f, params.r * mu_lam - dlam, g_f, params.r * mu_z - dz)


def stackelberg_controls(params: SyncParams, leaders: tuple[int, ...], followers: tuple[int, ...],
                         Y: jax.Array) -> jax.Array:
    """``u~ (M,)`` at one node (:func:`controls_and_field`)."""
    return controls_and_field(params, leaders, followers, Y)[0]


def stackelberg_field(params: SyncParams, leaders: tuple[int, ...], followers: tuple[int, ...],
                      Y: jax.Array) -> jax.Array:
    """``G(Y)`` (module doc), flat, same layout as ``Y`` (:func:`controls_and_field`)."""
    return controls_and_field(params, leaders, followers, Y)[1]


def nash_start(leaders: tuple[int, ...], followers: tuple[int, ...], states: jax.Array,
               costates: jax.Array) -> jax.Array:
    """Stackelberg unknowns from Nash paths (``states (..., K, 2M)``, ``costates (..., K, M, 2M)``):
    the followers' costates as ``lambda_F``, the leaders' as ``mu^z``, ``mu^lam = 0``."""
    lam_f = costates[..., jnp.array(followers), :]
    mu_z = costates[..., jnp.array(leaders), :]
    mu_lam = jnp.zeros(states.shape[:-1] + (len(leaders), len(followers), states.shape[-1]), states.dtype)
    return join_unknowns(states, mu_lam, lam_f, mu_z)


def solve_stackelberg_collocation(params: SyncParams, leaders: Sequence[int],
                                  opts: CollocationOptions = CollocationOptions(),
                                  Y0: jax.Array | None = None) -> StackelbergSolution:
    """Open-loop Stackelberg paths for one parameter set by collocation (pure, jit/vmap-able).

    Newton (:func:`jaxtwin.syncgame.bvp.solve`) starts from ``Y0``, by default the
    Nash collocation solution on the same grid (:func:`nash_start`; ``opts.coarse_grid``
    applies to that Nash solve). ``residual``: ``max |F|`` over the collocation
    residuals and all four boundary conditions; ``iterations``: Stackelberg Newton
    steps (Jacobians), not counting the Nash start's.
    """
    leaders, followers = split_roles(params.n_vsp, leaders)
    ts = collocation_grid(params.T, opts.n_grid, opts.grading)
    if Y0 is None:
        nash = solve_nash_collocation(params, opts)
        Y0 = nash_start(leaders, followers, nash.states, nash.costates)
    m = params.n_vsp
    field = lambda y: stackelberg_field(params, leaders, followers, y)  # noqa: E731
    start = jnp.concatenate([initial_state(params), jnp.zeros(len(leaders) * len(followers) * 2 * m, Y0.dtype)])
    res = bvp.solve(field, start, ts, Y0, tol=opts.tol, max_iter=opts.max_iter, max_halvings=opts.max_halvings)
    Y = res.value
    us, payoffs = bvp.discounted_payoffs(lambda y: controls_and_field(params, leaders, followers, y),
                                         lambda y, u: instantaneous_payoff(params, y[: 2 * m], u), params.r, ts, Y, m)
    z, mu_lam, lam_f, mu_z = split_unknowns(Y, m, len(leaders), len(followers))
    code = classify(res.residual, opts.tol, all_finite(Y, payoffs))
    return StackelbergSolution(ts, z, us, lam_f, mu_z, mu_lam, payoffs, res.residual, code == Result.CONVERGED,
                               res.iterations, code)


def _from_start(params, Y0, leaders, opts):
    return solve_stackelberg_collocation(params, leaders, opts, Y0)


def stackelberg_collocation(params: SyncParams, leaders: Sequence[int], opts: CollocationOptions = CollocationOptions(),
                            *, batched: bool = False, devices: int = 1) -> StackelbergSolution:
    """float64 entry point of :func:`solve_stackelberg_collocation` (vmapped over a leading
    axis when ``batched``, sharded over ``devices`` when not 1). The Nash start is the
    float64 entry point :func:`~jaxtwin.syncgame.collocation.nash_collocation` with the same
    options, so a caller that also solves Nash shares its compiled program. Compiled with
    :data:`~jaxtwin.syncgame.params.QUICK_COMPILE`: it runs in milliseconds."""
    leaders, followers = split_roles(params.delta.shape[-1], leaders)
    nash = nash_collocation(params, opts, batched=batched, devices=devices)
    with jax.enable_x64(True):
        Y0 = nash_start(leaders, followers, nash.states, nash.costates)
    return call_float64(_from_start, params, Y0, static=(leaders, opts), batched=batched, devices=devices,
                        compile_with=QUICK_COMPILE)


__all__ = ["join_unknowns", "nash_start", "solve_stackelberg_collocation", "split_unknowns",
           "stackelberg_collocation", "stackelberg_controls", "stackelberg_field"]
