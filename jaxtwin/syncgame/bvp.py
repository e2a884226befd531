"""Hermite–Simpson collocation of a two-point boundary-value problem, solved by
damped Newton with a block Riccati linear solve: the machinery shared by the
open-loop Nash (:mod:`jaxtwin.syncgame.collocation`) and Stackelberg
(:mod:`jaxtwin.syncgame.stackelberg_collocation`) solvers.

A problem is ``dY/dt = field(Y)`` (autonomous) on the nodes ``ts`` of ``[0, T]``,
with unknowns ``Y (K, n)`` whose first ``nz`` entries are fixed at ``t = 0``
(``Y_0[:nz] = start``) and the other ``n - nz`` at ``t = T`` (``Y_K-1[nz:] = 0``).
Every PMP problem here has that shape: states (and, for a Stackelberg leader,
the costates of the followers' costates) start at known values, costates end
at zero. Each interval gets the Hermite–Simpson (3-stage Lobatto IIIA) residual,
the scheme of ``scipy.integrate.solve_bvp``::

    Y_mid = (Y_k + Y_k+1)/2 + h/8 (G_k - G_k+1)
    r_k   = Y_k+1 - Y_k - h/6 (G_k + 4 G_mid + G_k+1)

The Jacobian of all residuals is block-bidiagonal. Its blocks come from
``dG/dY`` by ``vmap(jacfwd)`` over nodes and midpoints (:func:`residuals_and_blocks`),
and a backward Riccati decoupling then a forward scan solve the linear system
(:func:`riccati_block_solve`): the initial-value block is propagated forward
and the terminal-value block backward, their stable directions, so no growing
mode is amplified. Everything is ``lax.scan``/``while_loop``, so the solvers
jit and ``vmap`` over parameter batches.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from jaxtwin.core import linalg
from jaxtwin.syncgame.newton import NewtonResult, newton

Field = Callable[[jax.Array], jax.Array]   # Y (n,) -> dY/dt (n,)


def midpoints(ts: jax.Array, Y: jax.Array, G: jax.Array) -> jax.Array:
    """Hermite midpoints ``(Y_k + Y_k+1)/2 + h/8 (G_k - G_k+1)`` of every interval, ``(K-1, n)``."""
    h = jnp.diff(ts)[:, None]
    return 0.5 * (Y[:-1] + Y[1:]) + (h / 8.0) * (G[:-1] - G[1:])


def nodes_then_midpoints(fn: Callable, ts: jax.Array, Y: jax.Array, zeros):
    """``vmap(fn)`` at the nodes ``Y``, then at the Hermite midpoints built from its first
    output (the field ``G`` at the nodes): ``(out at nodes (K, ...), out at midpoints (K-1, ...))``.
    ``zeros``: arrays shaped like ``vmap(fn)``'s outputs (given, as tracing ``fn`` for
    its shapes would cost as much as a pass).

    Both passes run ONE traced ``fn`` inside a two-iteration loop. Why: the field (or its
    Jacobian) is the bulk of every program here, and the midpoints need the nodes' values
    first, so two plain calls trace and compile it twice; measured on the 3-VSP
    Stackelberg solve, the loop cut the program by a third at no measurable run time.
    """
    K = Y.shape[0]

    def body(i, carry):
        nodes, mids = carry
        first = i == 0
        points = jnp.where(first, Y, jnp.concatenate([midpoints(ts, Y, nodes[0]), Y[-1:]]))
        out = jax.vmap(fn)(points)
        pick = lambda a, b: jax.tree.map(lambda u, v: jnp.where(first, u, v), a, b)  # noqa: E731
        return pick(out, nodes), pick(mids, out)

    nodes, mids = jax.lax.fori_loop(0, 2, body, (zeros, zeros))
    return nodes, jax.tree.map(lambda a: a[: K - 1], mids)


def residuals(field: Field, start: jax.Array, ts: jax.Array, Y: jax.Array) -> jax.Array:
    """All residuals of the discrete BVP, flat: ``[Y_0[:nz] - start, r_0..r_K-2, Y_K-1[nz:]]``
    (as many as unknowns ``Y (K, n)``; ``nz = len(start)``). ``G`` is evaluated once per node
    and midpoint."""
    h = jnp.diff(ts)[:, None]
    nz = start.shape[-1]
    (G,), (Gm,) = nodes_then_midpoints(lambda y: (field(y),), ts, Y, (jnp.zeros_like(Y),))
    r = Y[1:] - Y[:-1] - (h / 6.0) * (G[:-1] + 4.0 * Gm + G[1:])
    return jnp.concatenate([Y[0, :nz] - start, r.reshape(-1), Y[-1, nz:]])


def residuals_and_blocks(field: Field, ts: jax.Array, Y: jax.Array):
    """``(r (K-1, n), A (K-1, n, n), B (K-1, n, n))``: interval residuals and their
    Jacobian blocks ``A_k = dr_k/dY_k``, ``B_k = dr_k/dY_k+1``.

    ``dG/dY`` is taken ONCE per node and midpoint (``vmap(jacfwd)``, with ``G`` as its
    aux: :func:`nodes_then_midpoints`) and the blocks follow by the chain rule through
    the midpoint formula::

        A_k = -I - h/6 (G'_k + 4 G'_mid (I/2 + h/8 G'_k))
        B_k =  I - h/6 (G'_k+1 + 4 G'_mid (I/2 - h/8 G'_k+1))

    (half the G evaluations of differentiating each interval residual, and a
    third of the traced program: compilation time matters in sweeps and tests).
    """
    h = jnp.diff(ts)[:, None]
    n = Y.shape[1]

    def twice(y):
        g = field(y)
        return g, g

    def value_and_jacobian(y):
        dg, g = jax.jacfwd(twice, has_aux=True)(y)
        return g, dg

    zeros = (jnp.zeros_like(Y), jnp.zeros(Y.shape + (n,), Y.dtype))
    (G, dGn), (Gm, dGm) = nodes_then_midpoints(value_and_jacobian, ts, Y, zeros)
    r = Y[1:] - Y[:-1] - (h / 6.0) * (G[:-1] + 4.0 * Gm + G[1:])
    eye = jnp.eye(n, dtype=Y.dtype)
    h3 = h[:, :, None]
    A = -eye - (h3 / 6.0) * (dGn[:-1] + 4.0 * dGm @ (0.5 * eye + (h3 / 8.0) * dGn[:-1]))
    B = eye - (h3 / 6.0) * (dGn[1:] + 4.0 * dGm @ (0.5 * eye - (h3 / 8.0) * dGn[1:]))
    return r, A, B


def riccati_block_solve(A: jax.Array, B: jax.Array, r: jax.Array, dz0: jax.Array, dlamK: jax.Array) -> jax.Array:
    """Solve ``A_k dY_k + B_k dY_k+1 = -r_k`` (k = 0..K-2) with ``dz_0 = dz0`` and
    ``dlambda_K-1 = dlamK``; returns ``dY (K, n)``. ``z``: the initial-value block
    (``len(dz0)`` entries), ``lambda``: the terminal-value block.

    Backward sweep (``lax.scan``): with ``dlambda_k+1 = S_k+1 dz_k+1 + w_k+1``
    (``S_K-1 = 0``, ``w_K-1 = dlamK``) interval ``k`` is the square system
    ``[A_k^lam, B_k^z + B_k^lam S_k+1] (dlambda_k, dz_k+1) = -r_k - B_k^lam w_k+1 - A_k^z dz_k``,
    solved for its dependence on ``dz_k``: ``dlambda_k = S_k dz_k + w_k`` and
    ``dz_k+1 = P_k dz_k + q_k``. Forward sweep: ``dz`` from ``dz0`` by ``P, q``.
    Only terminal values and initial values are propagated in their stable
    directions, so no growing mode is amplified.
    """
    nz = dz0.shape[-1]
    nl = dlamK.shape[-1]

    # Carry-independent slices outside the scans (fewer ops per sequential step).
    Az, Al = A[..., :nz], A[..., nz:]
    Bz, Bl = B[..., :nz], B[..., nz:]

    def back(carry, blk):
        SW1 = carry                                   # [S_k+1 | w_k+1], (nl, nz + 1)
        Azk, Alk, Bzk, Blk, rk = blk
        BSW = Blk @ SW1
        Mk = jnp.concatenate([Alk, Bzk + BSW[:, :nz]], axis=1)
        rhs = jnp.concatenate([-Azk, (-rk - BSW[:, nz])[:, None]], axis=1)
        sol = linalg.solve(Mk, rhs)                   # [[S_k | w_k], [P_k | q_k]]; batch-safe on a split CPU
        return sol[:nl], sol

    init = jnp.concatenate([jnp.zeros((nl, nz), A.dtype), dlamK[:, None]], axis=1)
    _, sols = jax.lax.scan(back, init, (Az, Al, Bz, Bl, r), reverse=True)

    def fwd(dz, sol):
        v = sol @ jnp.concatenate([dz, jnp.ones((1,), dz.dtype)])    # (dlambda_k, dz_k+1)
        return v[nl:], jnp.concatenate([dz, v[:nl]])

    dz_last, rows = jax.lax.scan(fwd, dz0, sols)
    return jnp.concatenate([rows, jnp.concatenate([dz_last, dlamK])[None]], axis=0)


def assemble_jacobian(A: jax.Array, B: jax.Array, nz: int) -> jax.Array:
    """The dense Jacobian of :func:`residuals` from its blocks (for tests)."""
    km1, n, _ = A.shape
    K = km1 + 1
    J = jnp.zeros((K * n, K * n), A.dtype)
    J = J.at[jnp.arange(nz), jnp.arange(nz)].set(1.0)
    for k in range(km1):
        row = nz + k * n
        J = J.at[row:row + n, k * n:(k + 1) * n].set(A[k])
        J = J.at[row:row + n, (k + 1) * n:(k + 2) * n].set(B[k])
    last = nz + km1 * n
    J = J.at[last + jnp.arange(n - nz), (K - 1) * n + nz + jnp.arange(n - nz)].set(1.0)
    return J


def newton_direction(field: Field, start: jax.Array, ts: jax.Array, Y: jax.Array):
    """``(F(Y) flat, Newton step dY (K, n))`` with ``J(Y) dY = -F(Y)``."""
    nz = start.shape[-1]
    r, A, B = residuals_and_blocks(field, ts, Y)
    bc_z = Y[0, :nz] - start
    end = Y[-1, nz:]
    F = jnp.concatenate([bc_z, r.reshape(-1), end])
    step = riccati_block_solve(A, B, r, -bc_z, -end)
    return F, jnp.where(jnp.isfinite(step), step, 0.0)


def solve(field: Field, start: jax.Array, ts: jax.Array, Y0: jax.Array, *, tol: float, max_iter: int,
          max_halvings: int) -> NewtonResult:
    """Damped Newton from ``Y0`` (:func:`jaxtwin.syncgame.newton.newton` with its
    residual-only line search: each outer iteration costs ONE Jacobian however
    often it backtracks). ``residual`` is ``max |F|`` over the collocation residuals
    and both boundary conditions; ``iterations`` counts Jacobians."""
    return newton(lambda Y: (*newton_direction(field, start, ts, Y), None), Y0, tol=tol, max_iter=max_iter,
                  max_halvings=max_halvings, residual=lambda Y: residuals(field, start, ts, Y))


def hermite_interpolate(field: Field, ts: jax.Array, Y: jax.Array, t_new: jax.Array) -> jax.Array:
    """The collocation solution's C1 cubic Hermite interpolant (values ``Y``, slopes
    ``G(Y)`` at the nodes ``ts``) evaluated at ``t_new``."""
    G = jax.vmap(field)(Y)
    j = jnp.clip(jnp.searchsorted(ts, t_new, side="right") - 1, 0, ts.shape[0] - 2)
    h = (ts[j + 1] - ts[j])[:, None]
    th = ((t_new - ts[j]) / (ts[j + 1] - ts[j]))[:, None]
    h00, h10 = 2 * th ** 3 - 3 * th ** 2 + 1, th ** 3 - 2 * th ** 2 + th
    h01, h11 = -2 * th ** 3 + 3 * th ** 2, th ** 3 - th ** 2
    return h00 * Y[j] + h10 * h * G[j] + h01 * Y[j + 1] + h11 * h * G[j + 1]


def simpson(ts: jax.Array, g: jax.Array, g_mid: jax.Array) -> jax.Array:
    """``int_0^T g dt`` by Simpson from ``g`` at the nodes ``(K, ...)`` and at the interval
    midpoints ``(K-1, ...)``: the quadrature of the collocation scheme itself (4th order)."""
    h = jnp.diff(ts).reshape((-1,) + (1,) * (g.ndim - 1))
    return jnp.sum((h / 6.0) * (g[:-1] + 4.0 * g_mid + g[1:]), axis=0)


def discounted_payoffs(controls_and_field: Callable, payoff: Callable, r, ts: jax.Array, Y: jax.Array,
                       n_controls: int):
    """``(controls at the nodes (K, M), int_0^T exp(-r t) payoff(Y(t), u(t)) dt)`` for a solved ``Y``.

    ``controls_and_field(y) -> (u (n_controls,), G)``: the pointwise controls and the field,
    evaluated at the nodes and at the Hermite midpoints in ONE traced pass
    (:func:`nodes_then_midpoints`; the payoff itself is cheap), the integral by :func:`simpson`.
    """
    zeros = (jnp.zeros_like(Y), jnp.zeros((ts.shape[0], n_controls), Y.dtype))
    (G, u), (_, u_mid) = nodes_then_midpoints(lambda y: controls_and_field(y)[::-1], ts, Y, zeros)
    t_mid = 0.5 * (ts[:-1] + ts[1:])
    disc = jax.vmap(lambda t, y, v: jnp.exp(-r * t) * payoff(y, v))
    return u, simpson(ts, disc(ts, Y, u), disc(t_mid, midpoints(ts, Y, G), u_mid))


__all__ = ["assemble_jacobian", "discounted_payoffs", "hermite_interpolate", "midpoints", "newton_direction",
           "nodes_then_midpoints", "residuals", "residuals_and_blocks", "riccati_block_solve", "simpson", "solve"]
