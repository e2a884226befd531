"""Open-loop Nash equilibrium (spec §2) by 4th-order collocation of the PMP
boundary-value problem: a vmappable alternative to the forward-backward sweep
of :mod:`jaxtwin.syncgame.nash`.

Unknowns ``Y_k = (z_k, lambda_k)`` at the nodes of a grid on ``[0, T]`` (uniform,
or graded toward both ends: :func:`collocation_grid`)
(states ``z = (x, y)`` of length ``2M``, every VSP's costate ``lambda_i`` of
length ``2M``, flattened row-major). The right-hand side is

    G(Y) = [f(z, u*), r*lambda - dH/dz(z, lambda, u*)],   u* = argmax_{[0,u_max]} H_i,

with ``u*`` computed pointwise from ``(z, lambda)``, all by autodiff of the one
Hamiltonian ``H_i = J_i + lambda_i . f`` built from
:func:`jaxtwin.syncgame.model.instantaneous_payoff` and
:func:`~jaxtwin.syncgame.model.state_field` (vectorised over players; tested
equal to :mod:`jaxtwin.syncgame.pmp`'s ``maximise_controls`` and ``costate_field``).
The current-value costate dynamics are autonomous, so ``G`` has no ``t``.

Each interval ``[t_k, t_k+1]`` gets the Hermite–Simpson (3-stage Lobatto IIIA)
residual, the scheme of ``scipy.integrate.solve_bvp``::

    Y_mid = (Y_k + Y_k+1)/2 + h/8 (G_k - G_k+1)
    r_k   = Y_k+1 - Y_k - h/6 (G_k + 4 G_mid + G_k+1)

plus ``z_0 = z0`` and ``lambda_K = 0``. It is 4th order where ``u*`` is smooth
(the clip at the control bounds is only Lipschitz, which lowers the order
locally where a control hits a bound).

Damped (semismooth) Newton solves all residuals at once (optionally started
from a solve on a coarse grid, ``CollocationOptions.coarse_grid``). The Jacobian is
block-bidiagonal; its blocks ``A_k = dr_k/dY_k``, ``B_k = dr_k/dY_k+1`` come
from ``dG/dY`` by ``vmap(jacfwd)`` over nodes and midpoints (parallel) and the
chain rule, and the linear system is
solved by a backward Riccati decoupling ``dlambda_k = S_k dz_k + w_k`` (a
``lax.scan`` from ``S_K = 0``) then a forward scan for ``dz`` — stable here,
where forward propagation is not: states decay forward in time while
costates grow forward (the scheme, the blocks and the solve, for any such
problem: :mod:`jaxtwin.syncgame.bvp`). Everything is a ``lax.while_loop``/``scan``, so
:func:`solve_nash_collocation` jits and vmaps over a params batch;
:func:`nash_collocation` is the float64 entry point. Both return a
:class:`jaxtwin.syncgame.nash.GameSolution`, so callers can swap solvers.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from jaxtwin.core.config import require_int, require_positive, require_range
from jaxtwin.syncgame import bvp
from jaxtwin.syncgame.bvp import assemble_jacobian, riccati_block_solve  # noqa: F401  (public here too)
from jaxtwin.syncgame.model import initial_state, instantaneous_payoff, state_field
from jaxtwin.syncgame.nash import GameSolution, initial_controls
from jaxtwin.syncgame.params import QUICK_COMPILE, SyncParams, call_float64
from jaxtwin.syncgame.results import Result, all_finite, classify

# Residual at which the coarse starting solve stops: its discretisation error
# (~0.2 in x at 9 nodes) dwarfs any tighter solve, and the quadratic tail it
# skips (~1e-3 -> 1e-8 -> 1e-14) is two Newton steps of the coarse solve.
COARSE_TOL = 1e-3


@dataclasses.dataclass(frozen=True)
class CollocationOptions:
    """How the boundary-value problem is discretised and solved (static, hashable)."""

    n_grid: int = dataclasses.field(default=101, metadata={"help": "collocation nodes on [0, T]"})
    tol: float = dataclasses.field(default=1e-9, metadata={"help": "convergence: max |collocation and boundary residual| below this"})
    max_iter: int = dataclasses.field(default=30, metadata={"help": "Newton steps (each one Jacobian + block solve)"})
    max_halvings: int = dataclasses.field(default=12, metadata={"help": "backtracking halvings before a step is taken anyway"})
    coarse_grid: int = dataclasses.field(default=0, metadata={"help": "nodes of a first solve whose Hermite interpolant starts the Newton iteration (0 = start from the simulated guess)"})
    grading: float = dataclasses.field(default=0.0, metadata={"help": "mesh grading a in [0, 1): t = T (s - a sin(2 pi s)/(2 pi)) over uniform s; nodes crowd at both ends, where the boundary layers are (0 = uniform)"})

    def __post_init__(self):
        require_int(self, "n_grid", minimum=3)
        require_int(self, "max_iter", minimum=1)
        require_int(self, "max_halvings", minimum=0)
        require_int(self, "coarse_grid", minimum=0)
        require_positive(self, "tol")
        require_range(self, "grading", 0.0, 1.0, hi_open=True)


def collocation_grid(T, n_grid: int, grading: float = 0.0) -> jax.Array:
    """Nodes ``t = T (s - a sin(2 pi s) / (2 pi))`` for ``n_grid`` uniform ``s`` on ``[0, 1]``.

    ``a = grading``: spacing ``T (1 - a cos(2 pi s)) ds``, i.e. ``1 - a`` times the
    uniform one at both ends and ``1 + a`` in the middle. Why: the Nash paths
    have boundary layers at ``t = 0`` (states leave ``z0``) and ``t = T``
    (costates meet ``lambda(T) = 0``) and a nearly flat plateau between,
    where the error of a uniform grid is ~100x smaller. The map is smooth, so
    the scheme stays 4th order. ``a = 0`` is the uniform grid.
    """
    s = jnp.linspace(0.0, 1.0, n_grid)
    return T * (s - grading * jnp.sin(2.0 * jnp.pi * s) / (2.0 * jnp.pi))


# ------------------------------------------------------------ right-hand side
def split_unknowns(Y: jax.Array, m: int) -> tuple[jax.Array, jax.Array]:
    """``Y (..., 2M + 2M^2)`` -> ``(z (..., 2M), lambda (..., M, 2M))``."""
    return Y[..., : 2 * m], Y[..., 2 * m:].reshape(Y.shape[:-1] + (m, 2 * m))


def hamiltonians(params: SyncParams, z: jax.Array, lam: jax.Array, u: jax.Array) -> jax.Array:
    """Every VSP's current-value Hamiltonian at once, ``H_i = J_i(z, u) + lambda_i . f(z, u)``,
    shape ``(M,)``: :func:`jaxtwin.syncgame.pmp.hamiltonian` for all ``i`` together
    (``lam``: ``(M, 2M)``), so ``J`` and ``f`` are evaluated once, not once per player."""
    return instantaneous_payoff(params, z, u) + lam @ state_field(params, z, u)


def pointwise_controls(params: SyncParams, Y: jax.Array) -> jax.Array:
    """``u* = argmax_{u_i in [0, u_max]} H_i(z, lambda_i, u)`` at one node ``Y``.

    Same maximiser as :func:`jaxtwin.syncgame.pmp.maximise_controls` (tested equal),
    vectorised over players: ``dH_i/du_i`` is affine in ``u_i`` and free of the
    others' controls (``H_i`` is quadratic and strictly concave in ``u_i``, with
    the others entering only linearly), so with ``g(u) = diag(dH/du)`` the
    maximiser is ``clip(-g(0) / (g(1) - g(0)))`` exactly. A non-finite value
    (NaN input) maps to 0, as in :func:`~jaxtwin.syncgame.pmp.maximise_quadratic`.

    The curvature ``g(1) - g(0) = d2H_i/du_i^2`` (``-2 w4 (D_i s)^2`` in this
    model) is taken at ``stop_gradient(z, lambda)``: it does not depend on them,
    so derivatives are unchanged (measured: identical Jacobian), and the Newton
    Jacobian skips pushing 12 tangents through it. Were a model's curvature
    state-dependent, only the Newton Jacobian would be approximate, never the
    solution (the residual uses the values).
    """
    m = params.n_vsp
    z, lam = split_unknowns(Y, m)

    def own_gradients(u, z, lam):
        return jnp.diagonal(jax.jacfwd(lambda v: hamiltonians(params, z, lam, v))(u))

    zero, one = jnp.zeros(m, Y.dtype), jnp.ones(m, Y.dtype)
    g0 = own_gradients(zero, z, lam)
    z_c, lam_c = jax.lax.stop_gradient(z), jax.lax.stop_gradient(lam)
    g_c = jax.vmap(lambda u: own_gradients(u, z_c, lam_c))(jnp.stack([one, zero]))   # one trace for both
    curvature = g_c[0] - g_c[1]
    u = jnp.clip(-g0 / curvature, 0.0, params.u_max)
    return jnp.where(jnp.isfinite(u), u, 0.0)


def bvp_field(params: SyncParams, Y: jax.Array) -> jax.Array:
    """``G(Y) = [f(z, u*), r*lambda - dH/dz(z, lambda, u*)]`` (flat, same length as ``Y``).

    ``dH/dz`` is the ``(M, 2M)`` Jacobian of :func:`hamiltonians` in ``z`` at fixed
    ``u`` (:func:`jaxtwin.syncgame.pmp.costate_field`, all players in one jacrev:
    ``M`` cotangents rather than ``2M`` tangents).
    Why not call ``pmp.maximise_controls``/``costate_field``: they evaluate ``J``
    and ``f`` once per player and the control curvature by ``grad(grad)``; the
    Newton Jacobian of this field (12 tangents at every node and midpoint) is
    the solver's main cost, and this form measured 1.6x cheaper (same values to
    5e-13); with the curvature at stop_gradient and jacrev here, 1.6x again (9.3 ->
    5.8 ms per 64 x 61 Jacobians inside the Newton loop).
    """
    return controls_and_field(params, Y)[1]


def controls_and_field(params: SyncParams, Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(u* (M,), G(Y))``: :func:`pointwise_controls` and :func:`bvp_field` from one evaluation."""
    m = params.n_vsp
    z, lam = split_unknowns(Y, m)
    u = pointwise_controls(params, Y)
    dH_dz = jax.jacrev(lambda zz: hamiltonians(params, zz, lam, u))(z)
    return u, jnp.concatenate([state_field(params, z, u), (params.r * lam - dH_dz).reshape(-1)])


def collocation_residuals(params: SyncParams, ts: jax.Array, Y: jax.Array) -> jax.Array:
    """All residuals of the discrete BVP, flat: ``[z_0 - z0, r_0..r_K-2, lambda_K-1]``
    (as many as unknowns ``Y (K, n)``): :func:`jaxtwin.syncgame.bvp.residuals` of :func:`bvp_field`."""
    return bvp.residuals(_field(params), initial_state(params), ts, Y)


def residuals_and_blocks(params: SyncParams, ts: jax.Array, Y: jax.Array):
    """``(r (K-1, n), A (K-1, n, n), B (K-1, n, n))``: interval residuals and their Jacobian
    blocks (:func:`jaxtwin.syncgame.bvp.residuals_and_blocks` of :func:`bvp_field`)."""
    return bvp.residuals_and_blocks(_field(params), ts, Y)


def newton_direction(params: SyncParams, ts: jax.Array, Y: jax.Array):
    """``(F(Y) flat, Newton step dY (K, n))`` with ``J(Y) dY = -F(Y)`` (block Riccati solve,
    :func:`jaxtwin.syncgame.bvp.riccati_block_solve`)."""
    return bvp.newton_direction(_field(params), initial_state(params), ts, Y)


def _field(params: SyncParams):
    return lambda y: bvp_field(params, y)


# ------------------------------------------------------------------ solver
def initial_guess(params: SyncParams, ts: jax.Array, substeps: int = 4) -> jax.Array:
    """States simulated under the constant :func:`jaxtwin.syncgame.nash.initial_controls`
    (classic RK4, ``substeps`` steps per interval: a starting guess needs no error
    control, and a plain scan compiles in a fraction of a diffrax solve), zero costates."""
    m = params.n_vsp
    u = initial_controls(params, ts)[0]

    def interval(z, h):
        dt = h / substeps

        def rk4(z, _):
            f = lambda z: state_field(params, z, u)  # noqa: E731
            k1 = f(z)
            k2 = f(z + 0.5 * dt * k1)
            k3 = f(z + 0.5 * dt * k2)
            k4 = f(z + dt * k3)
            return z + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4), None

        z_next, _ = jax.lax.scan(rk4, z, None, length=substeps)
        return z_next, z_next

    z0 = initial_state(params)
    _, zs = jax.lax.scan(interval, z0, jnp.diff(ts))
    zs = jnp.concatenate([z0[None], zs])
    return jnp.concatenate([zs, jnp.zeros((ts.shape[0], 2 * m * m), zs.dtype)], axis=1)


def hermite_interpolate(params: SyncParams, ts: jax.Array, Y: jax.Array, t_new: jax.Array) -> jax.Array:
    """The collocation solution's C1 cubic Hermite interpolant (values ``Y``, slopes
    ``G(Y)`` at the nodes ``ts``) evaluated at ``t_new``."""
    return bvp.hermite_interpolate(_field(params), ts, Y, t_new)


def controls_and_payoffs(params: SyncParams, ts: jax.Array, Y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(u* at the nodes (K, M), int_0^T exp(-r t) J_i dt (M,))`` of a solved ``Y``, by Simpson on
    the nodes and the Hermite midpoints (:func:`jaxtwin.syncgame.bvp.discounted_payoffs`)."""
    m = params.n_vsp
    return bvp.discounted_payoffs(lambda y: controls_and_field(params, y),
                                  lambda y, u: instantaneous_payoff(params, y[: 2 * m], u), params.r, ts, Y, m)


def collocation_payoffs(params: SyncParams, ts: jax.Array, Y: jax.Array) -> jax.Array:
    """``int_0^T exp(-r t) J_i dt`` by Simpson on nodes and Hermite midpoints, shape ``(M,)``."""
    return controls_and_payoffs(params, ts, Y)[1]


def solve_nash_collocation(params: SyncParams, opts: CollocationOptions = CollocationOptions(),
                           Y0: jax.Array | None = None) -> GameSolution:
    """Open-loop Nash paths for one parameter set by collocation (pure, jit/vmap-able).

    Damped Newton (:func:`jaxtwin.syncgame.newton.newton` with its residual-only
    line search): at ``Y`` the Jacobian blocks give the step ``s``
    (:func:`newton_direction`); the trial ``Y + a*s`` is accepted when ``|F|_2``
    drops by the Armijo factor ``1 - 1e-4*a``, otherwise ``a`` is halved
    (``max_halvings`` times, then a finite trial is taken anyway). The line
    search evaluates residuals only, so each outer iteration costs ONE Jacobian
    however often it backtracks. Stops at ``max |F| <= tol``, after ``max_iter``
    Jacobians, or at once when the starting residual is not finite (e.g. NaN params).

    With ``opts.coarse_grid`` the start is the Hermite interpolant of the same
    solve on that many nodes (if it converged): measured on the 64-point delta_k
    sweep at 31 graded nodes, 9 coarse nodes cut the fine Newton steps from 6
    to 2 and the solve time by ~1.6x (the coarse steps are ~4x cheaper).

    ``residual`` is ``max |F|`` over the collocation residuals and both boundary
    conditions; ``result`` holds a :class:`~jaxtwin.syncgame.results.Result`
    (``CONVERGED``, ``MAX_ITER`` or ``NOT_FINITE``); ``iterations`` counts Newton
    steps (Jacobians) on the fine grid.
    """
    ts = collocation_grid(params.T, opts.n_grid, opts.grading)
    if Y0 is None and 3 <= opts.coarse_grid < opts.n_grid:
        coarse_opts = dataclasses.replace(opts, n_grid=opts.coarse_grid, coarse_grid=0, tol=max(opts.tol, COARSE_TOL))
        coarse = solve_nash_collocation(params, coarse_opts)
        Yc = jnp.concatenate([coarse.states, coarse.costates.reshape(coarse.states.shape[0], -1)], axis=1)
        # a coarse solve that failed is no better a start than the simulated guess
        Y0 = jnp.where(coarse.converged, hermite_interpolate(params, coarse.ts, Yc, ts), initial_guess(params, ts))
    Y0 = initial_guess(params, ts) if Y0 is None else Y0
    res = bvp.solve(_field(params), initial_state(params), ts, Y0, tol=opts.tol, max_iter=opts.max_iter,
                    max_halvings=opts.max_halvings)
    Y, residual, it = res.value, res.residual, res.iterations

    m = params.n_vsp
    z, lam = split_unknowns(Y, m)
    us, payoffs = controls_and_payoffs(params, ts, Y)
    code = classify(residual, opts.tol, all_finite(Y, payoffs))
    return GameSolution(ts, z, lam, us, payoffs, residual, code == Result.CONVERGED, it, code)


def nash_collocation(params: SyncParams, opts: CollocationOptions = CollocationOptions(), *,
                     batched: bool = False, devices: int = 1) -> GameSolution:
    """float64 entry point: :func:`solve_nash_collocation` jitted (vmapped over a
    leading params axis when ``batched``) inside ``jax.enable_x64``. Concrete params
    out of range raise ``ConfigError`` (:func:`~jaxtwin.syncgame.params.validate_params`);
    under tracing, non-finite params give ``converged=False`` and
    ``result == Result.NOT_FINITE`` for that point.

    ``devices`` (batched only; 0 = all, see :func:`jaxtwin.core.sharding.sharded_call`)
    spreads the parameter points over devices. Compiled with
    :data:`~jaxtwin.syncgame.params.QUICK_COMPILE`: it runs in milliseconds."""
    return call_float64(solve_nash_collocation, params, static=(opts,), batched=batched, devices=devices,
                        compile_with=QUICK_COMPILE)
