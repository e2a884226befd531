"""Pontryagin machinery shared by the Nash and Stackelberg solvers (spec §2-3).

One definition of the instantaneous payoff ``J`` and the dynamics ``f``
(:mod:`jaxtwin.syncgame.model`) gives everything else by autodiff:

* the current-value Hamiltonian ``H_i = J_i + lambda_i . f`` (:func:`hamiltonian`);
* costate dynamics ``dlambda_i/dt = r*lambda_i - dH_i/dz`` (:func:`costate_field`,
  ``jax.grad`` of ``H_i``);
* the clipped maximiser: ``H_i`` is quadratic and strictly concave in ``u_i``,
  so one Newton step from ANY point is exact, ``u_i* = clip(u_i - H'/H'')``
  with ``H'`` and ``H''`` from ``jax.grad`` (:func:`maximise_quadratic`).

The two-point boundary problem becomes a fixed point ``v = Phi(v)`` of a
forward-backward sweep on a time grid (controls piecewise linear between the
nodes, states/costates integrated by diffrax Tsit5 stepping on the nodes, dense
output for the other direction). :func:`solve_fixed_point` solves it by damped
Newton on ``F(v) = Phi(v) - v`` (Jacobian by ``jax.jacfwd`` through the ODE
solves with ``diffrax.ForwardMode``, backtracking on ``|F|``); the classic
relaxed sweep ``v <- v + alpha*(Phi(v) - v)`` is kept for comparison. Both are
``lax.while_loop``s, so the solvers ``vmap`` over parameters.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import diffrax
import jax
import numpy as np
import jax.numpy as jnp
import lineax as lx
from jax.flatten_util import ravel_pytree

from jaxtwin.core import linalg
from jaxtwin.core.config import require_choice, require_int, require_positive, require_range
from jaxtwin.syncgame.model import instantaneous_payoff, state_field
from jaxtwin.syncgame.newton import NewtonResult, newton
from jaxtwin.syncgame.params import SyncParams
from jaxtwin.syncgame.replicator import control_path, step_grid


# ------------------------------------------------------------------ options
@dataclasses.dataclass(frozen=True)
class SolverOptions:
    """How the two-point problems are discretised and solved (static, hashable)."""

    n_grid: int = dataclasses.field(default=201, metadata={"help": "time-grid nodes on [0, T] (controls are piecewise linear between them)"})
    substeps: int = dataclasses.field(default=1, metadata={"help": "Tsit5 steps per grid interval (at least; the float64 entry points raise it so that step*sigma <= 1)"})
    method: str = dataclasses.field(default="newton", metadata={"help": "fixed-point solver: newton (damped, jacfwd Jacobian) or sweep (relaxed forward-backward sweep)"})
    tol: float = dataclasses.field(default=1e-8, metadata={"help": "convergence: max |Phi(u) - u| below this"})
    max_iter: int = dataclasses.field(default=60, metadata={"help": "Newton iterations (sweep: sweeps)"})
    relaxation: float = dataclasses.field(default=0.02, metadata={"help": "sweep only: step alpha of v <- v + alpha*(Phi(v)-v)"})
    linear_solver: str = dataclasses.field(default="dense", metadata={"help": "Newton step: gmres (matrix-free, jvp per Krylov vector) or dense (jacfwd + LU)"})
    krylov_dim: int = dataclasses.field(default=40, metadata={"help": "GMRES restart length"})

    def __post_init__(self):
        require_int(self, "n_grid", minimum=3)
        require_int(self, "substeps", minimum=1)
        require_int(self, "max_iter", minimum=1)
        require_choice(self, "method", ("newton", "sweep"))
        require_choice(self, "linear_solver", ("gmres", "dense"))
        require_int(self, "krylov_dim", minimum=2)
        require_positive(self, "tol")
        require_range(self, "relaxation", 0.0, 1.0, lo_open=True)


# Largest Tsit5 step h (in units of 1/sigma) the forward-backward sweep is
# solved on. Why: the replicator (and the costates, its adjoint) relax at a rate
# proportional to sigma, and beyond this the explicit steps are too inaccurate
# for the discrete two-point problem to keep a solution near the continuous one.
# Measured on the 4-VSP base with n_grid=101 (h=0.5): sigma=2 (h*sigma=1)
# converges in 9 Newton iterations; sigma=4 (h*sigma=2) stalls at residual 7.4
# after 60 and 6.8 after 200; sigma=4 with two substeps (h*sigma=1) converges to
# 3e-9, and its plateau controls agree with four substeps to 1e-5.
MAX_STEP_TIMES_SIGMA = 1.0


def resolve_substeps(params: SyncParams, opts: SolverOptions) -> SolverOptions:
    """``opts`` with ``substeps`` raised so that every Tsit5 step ``h`` (over all
    parameter sets of a batched ``params``) has ``h * sigma <= MAX_STEP_TIMES_SIGMA``.

    Needs concrete ``params`` (call it outside ``jit``): the step count is static.
    """
    h = float(np.max(np.asarray(params.T))) / (opts.n_grid - 1)
    steps = h * float(np.max(np.asarray(params.sigma))) / MAX_STEP_TIMES_SIGMA
    if not np.isfinite(steps):   # non-finite T or sigma: the entry point's validate_params names it
        return opts
    need = int(np.ceil(steps - 1e-9))
    return opts if need <= opts.substeps else dataclasses.replace(opts, substeps=need)


# --------------------------------------------------------- Hamiltonian terms
def hamiltonian(params: SyncParams, i, z: jax.Array, lam_i: jax.Array, u: jax.Array) -> jax.Array:
    """Current-value Hamiltonian of VSP ``i``: ``J_i(z, u) + lambda_i . f(z, u)``."""
    return instantaneous_payoff(params, z, u)[i] + jnp.dot(lam_i, state_field(params, z, u))


def costate_field(params: SyncParams, z: jax.Array, lam: jax.Array, u: jax.Array,
                  players: jax.Array | None = None) -> jax.Array:
    """``dlambda_i/dt = r*lambda_i - dH_i/dz`` for the given players (default all).

    ``lam``: ``(len(players), 2M)``, row ``k`` the costate of player ``players[k]``.
    """
    players = jnp.arange(params.n_vsp) if players is None else players
    grad_z = jax.vmap(lambda i, li: jax.grad(hamiltonian, argnums=2)(params, i, z, li, u))(players, lam)
    return params.r * lam - grad_z


def maximise_quadratic(h: Callable[[jax.Array], jax.Array], u_at: jax.Array, u_max) -> jax.Array:
    """Clipped maximiser of a strictly concave quadratic ``h`` on ``[0, u_max]``.

    One Newton step from ``u_at`` is exact for a quadratic; ``H''`` is negative
    (``-2*w4*(D*s)^2`` here) so the division is safe; a non-finite result (NaN
    input) is mapped to 0 rather than propagated.
    """
    g = jax.grad(h)(u_at)
    hh = jax.grad(jax.grad(h))(u_at)
    u_star = jnp.clip(u_at - g / hh, 0.0, u_max)
    return jnp.where(jnp.isfinite(u_star), u_star, 0.0)


def maximise_controls(params: SyncParams, z: jax.Array, lam: jax.Array, u: jax.Array,
                      players: jax.Array | None = None) -> jax.Array:
    """``argmax_{u_i in [0,u_max]} H_i`` for each listed player, others held at ``u``."""
    players = jnp.arange(params.n_vsp) if players is None else players

    def one(i, lam_i):
        return maximise_quadratic(lambda ui: hamiltonian(params, i, z, lam_i, u.at[i].set(ui)), u[i], params.u_max)

    return jax.vmap(one)(players, lam)


# ------------------------------------------------------------- ODE sweeps
def integrate_forward(rhs: Callable, ts: jax.Array, y0, *, substeps: int = 1, dense: bool = False):
    """Solve ``dy/dt = rhs(t, y)`` from ``ts[0]`` saving at ``ts`` (Tsit5 on the grid nodes).

    Returns the diffrax ``Solution`` (``ys`` on the grid; ``evaluate`` when dense).
    Forward-mode differentiable (``diffrax.ForwardMode``), never raises.
    """
    return diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: rhs(t, y)), diffrax.Tsit5(), t0=ts[0], t1=ts[-1],
        dt0=None, y0=y0, stepsize_controller=diffrax.StepTo(ts=step_grid(ts, substeps)),
        saveat=diffrax.SaveAt(ts=ts, dense=dense), adjoint=diffrax.ForwardMode(),
        max_steps=4 * substeps * ts.shape[0] + 16, throw=False)


class BackwardSolution(NamedTuple):
    """A terminal-value solve, saved on the grid in forward time order."""

    ys: jax.Array
    sol: diffrax.Solution
    T: jax.Array

    def evaluate(self, t):
        """The solution at forward time ``t`` (dense output)."""
        return self.sol.evaluate(self.T - t)


def integrate_backward(rhs: Callable, ts: jax.Array, yT, *, substeps: int = 1, dense: bool = False) -> BackwardSolution:
    """Solve ``dy/dt = rhs(t, y)`` backward from ``y(ts[-1]) = yT``.

    Integrates ``dy/ds = -rhs(T - s, y)`` forward in ``s = T - t`` (grid mirrored),
    so the same fixed-node stepping applies.
    """
    T = ts[-1]
    s_grid = (T - ts)[::-1]
    sol = integrate_forward(lambda s, y: -rhs(T - s, y), s_grid, yT, substeps=substeps, dense=dense)
    return BackwardSolution(jax.tree.map(lambda a: a[::-1], sol.ys), sol, T)


# -------------------------------------------------------- fixed-point solver
def solve_fixed_point(phi: Callable, v0: jax.Array, opts: SolverOptions) -> NewtonResult:
    """Solve ``v = phi(v)[0]`` for a flat vector ``v`` (``lax.while_loop``, vmappable).

    ``phi(v) -> (v_new, aux)``; ``F(v) = phi(v)[0] - v`` goes to the damped Newton
    driver (:func:`jaxtwin.syncgame.newton.newton`, every trial linearised so
    ``phi`` is traced once: fast compilation). ``newton``: the step solves
    ``J s = -F`` with ``J = jacfwd(F)`` (``dense``: LU, batch-safe on a CPU split
    into devices) or matrix-free (``gmres``: one jvp per Krylov vector).
    ``sweep``: the relaxed iteration ``v <- v + alpha*F(v)`` (the step ``alpha*F``,
    never backtracked unless a trial is not finite); its ``iterations`` count
    sweeps after the first evaluation of ``phi``, its ``max_iter`` bounds them.
    """
    def F(v):
        v_new, aux = phi(v)
        return v_new - v, aux

    def linearise(v):
        """``F(v)``, the step (``J s = -F(v)``, or ``alpha*F`` for the sweep) and aux."""
        if opts.method == "sweep":
            f, aux = F(v)
            return f, opts.relaxation * f, aux
        if opts.linear_solver == "dense":
            def fwd(v):
                f, aux = F(v)
                return f, (f, aux)
            jac, (f, aux) = jax.jacfwd(fwd, has_aux=True)(v)
            step = linalg.solve(jac, -f)  # batch-safe on a CPU split into devices
        else:
            f, jvp, aux = jax.linearize(F, v, has_aux=True)
            op = lx.FunctionLinearOperator(jvp, jax.ShapeDtypeStruct(v.shape, v.dtype))
            solver = lx.GMRES(rtol=1e-10, atol=1e-13, restart=opts.krylov_dim,
                              max_steps=20 * opts.krylov_dim, stagnation_iters=opts.krylov_dim)
            step = lx.linear_solve(op, -f, solver, throw=False).value
        return f, jnp.where(jnp.isfinite(step), step, 0.0), aux

    if opts.method == "sweep":
        res = newton(linearise, v0, tol=opts.tol, max_iter=opts.max_iter + 1, max_halvings=0)
        return res._replace(iterations=res.iterations - 1)
    return newton(linearise, v0, tol=opts.tol, max_iter=opts.max_iter, max_halvings=12)


def solve_pytree_fixed_point(phi: Callable, v0, opts: SolverOptions):
    """:func:`solve_fixed_point` for a pytree ``v``: ``phi(v) -> (v_new, aux)``.

    Returns ``(v, result)`` with ``v`` unflattened and ``result.aux`` phi's aux.
    """
    flat0, unravel = ravel_pytree(v0)

    def flat_phi(v):
        v_new, aux = phi(unravel(v))
        return ravel_pytree(v_new)[0], aux

    res = solve_fixed_point(flat_phi, flat0, opts)
    return unravel(res.value), res


def controls_fn(ts: jax.Array, us: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """``t -> u(t)``: the piecewise-linear control path through the grid values."""
    return control_path(ts, us).evaluate
