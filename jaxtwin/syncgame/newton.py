"""The damped Newton driver every sync-game solver runs: the sweep solver
(:func:`jaxtwin.syncgame.pmp.solve_fixed_point`), collocation
(:func:`jaxtwin.syncgame.collocation.solve_nash_collocation`) and the static
games in constants (:func:`jaxtwin.syncgame.static.constant_nash`).

A problem is given by ``linearise(x) -> (F, step, aux)``: the residual vector
``F(x)``, the Newton step ``s`` with ``J(x) s = -F(x)`` (however the caller solves
it: dense LU, GMRES, a block Riccati sweep, or ``alpha*F`` for a relaxed
iteration) and anything else to keep. One convergence test, ``max |F| <= tol``
(:func:`max_abs`), and one sufficient-decrease test,
``|F(x + a s)|_2 <= (1 - 1e-4 a) |F(x)|_2`` (:func:`armijo`), with ``a`` halved
on failure and the trial taken anyway (if finite) after ``max_halvings``
halvings. The iteration stops at tol, after ``max_iter`` linearisations, or as
soon as the accepted residual is not finite (e.g. NaN parameters). Two ways to
backtrack, chosen by what is expensive:

* ``residual=None``: every trial is linearised, so ``linearise`` is traced once
  and a rejected trial costs a Jacobian. For the sweep solver, whose residual
  is an ODE solve and whose compile time dominates (tracing it twice would
  double it), and for the static games.
* ``residual`` given: the line search is an inner loop of residual evaluations
  only, so each outer iteration costs ONE Jacobian however often it
  backtracks. For collocation, whose residual is cheap next to its Jacobian.

Everything is a ``lax.while_loop``, so the solvers ``vmap``.

Why not optimistix: its 0.1.0 ``root_find`` with ``optx.Newton`` was measured on the same
problems (2 VSPs, T = 10, float64, 2 busy CPU cores). It has no line search: on
atan(x) from x = 10 it diverges (linear-solve failure after 9 steps) where this driver
converges. It stops on a Cauchy test of successive iterates, not on max |F| <= tol. Its
step is a lineax solve on a materialised Jacobian, which loses collocation's block
Riccati solve: on 21 uniform nodes both take 5 steps to the same solution (1e-14), but
one solve runs in 1.4 s against 18 ms here (compiling in 27 s against 51 s). On the
21-node sweep fixed point (dense LU) it also takes 5 steps to the same controls
(5e-15), running in 28 ms against 11 ms and compiling in 87 s against 75 s (residual
and Jacobian traced separately). And the static games need a projected step, which
it does not offer.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.extend
import jax.numpy as jnp

from jaxtwin.syncgame.results import Result, all_finite, classify

ARMIJO = 1e-4  # sufficient-decrease factor of the backtracking line search


class NewtonResult(NamedTuple):
    """Outcome of :func:`newton`. ``result``: a :class:`~jaxtwin.syncgame.results.Result`
    code from ``residual`` and the finiteness of ``value`` (solvers that know more, e.g.
    whether their ODE solves succeeded, classify again with it)."""

    value: jax.Array       # the last accepted iterate
    aux: object            # linearise's aux at ``value`` (None with a residual-only line search)
    residual: jax.Array    # max |F(value)|, +inf when not finite
    iterations: jax.Array  # linearisations (Jacobians) done
    result: jax.Array      # Result code

    @property
    def converged(self) -> jax.Array:
        """``residual <= tol`` and everything finite."""
        return self.result == Result.CONVERGED


def max_abs(F: jax.Array) -> jax.Array:
    """``max |F|``, +inf when any entry is not finite: the convergence measure."""
    r = jnp.max(jnp.abs(F))
    return jnp.where(jnp.isfinite(r), r, jnp.inf)


def norm(F: jax.Array) -> jax.Array:
    """``|F|_2``, +inf when not finite: the line search's merit."""
    n = jnp.sqrt(jnp.sum(F * F))
    return jnp.where(jnp.isfinite(n), n, jnp.inf)


def armijo(F_try: jax.Array, F: jax.Array, a) -> jax.Array:
    """Sufficient decrease of the trial ``x + a s``: ``|F_try|_2 <= (1 - 1e-4 a) |F|_2``."""
    return norm(F_try) <= (1.0 - ARMIJO * a) * norm(F)


def _going(F, it, tol, max_iter):
    return jnp.isfinite(norm(F)) & (max_abs(F) > tol) & (it < max_iter)


def newton(linearise: Callable, x0: jax.Array, *, tol: float, max_iter: int, max_halvings: int = 12,
           residual: Callable | None = None, project: Callable | None = None) -> NewtonResult:
    """Damped Newton on ``F(x) = 0`` from ``x0`` (see the module doc).

    ``linearise(x) -> (F, step, aux)``; ``residual(x) -> F`` switches to the
    residual-only line search; ``project`` maps every trial point back into the
    feasible set (projected Newton, e.g. a clip to box bounds).
    """
    project = project or (lambda x: x)
    trial = lambda x, a, s: project(x + a * s)  # noqa: E731
    if residual is None:
        x, F, aux, it = _every_trial_linearised(linearise, x0, trial, tol, max_iter, max_halvings)
    else:
        x, F, it = _residual_only_line_search(linearise, residual, x0, trial, tol, max_iter, max_halvings)
        aux = None
    r = max_abs(F)
    return NewtonResult(x, aux, r, it, classify(r, tol, all_finite(x)))


def _traced_once(f: Callable, x: jax.Array):
    """``(g, shapes)``: ``f`` traced once at ``x``'s shape; ``g`` replays that jaxpr's equations
    (the same program as calling ``f``, without its Python) and ``shapes`` is ``f``'s output."""
    closed, shapes = jax.make_jaxpr(f, return_shape=True)(x)
    replay, tree = jax.extend.core.jaxpr_as_fun(closed), jax.tree.structure(shapes)
    return (lambda x: jax.tree.unflatten(tree, replay(x))), shapes


def _every_trial_linearised(linearise, x0, trial, tol, max_iter, max_halvings):
    # carry: accepted point (x, F, aux, step), trial step length a, halvings k, linearisations
    def cond(c):
        x, F, aux, step, a, k, it = c
        return (it == 0) | _going(F, it, tol, max_iter)

    def body(c):
        x, F, aux, step, a, k, it = c
        x_try = trial(x, a, step)
        F_try, step_try, aux_try = linearise(x_try)
        accept = armijo(F_try, F, a) | ((k >= max_halvings) & jnp.isfinite(norm(F_try)))
        pick = lambda new, old: jax.tree.map(lambda u, v: jnp.where(accept, u, v), new, old)  # noqa: E731
        x, F, aux, step = pick((x_try, F_try, aux_try, step_try), (x, F, aux, step))
        a = jnp.where(accept, 1.0, 0.5 * a)
        k = jnp.where(accept, 0, k + 1)
        return x, F, aux, step, a, k, it + 1

    # The first trial is x0 itself (zero step), accepted because |F| starts at +inf, so
    # linearise runs only inside the loop body; it is traced once, to a jaxpr that gives
    # the carry's shapes and that the body replays (tracing it again, e.g. for eval_shape,
    # would double the sweep solver's trace time: 12.7 s per trace for Stackelberg at 51 nodes).
    linearise, (F_shape, _, aux_shape) = _traced_once(linearise, x0)
    zeros = lambda sd: jnp.zeros(sd.shape, sd.dtype)  # noqa: E731
    init = (x0, jnp.full(F_shape.shape, jnp.inf, F_shape.dtype), jax.tree.map(zeros, aux_shape),
            jnp.zeros_like(x0), jnp.ones((), x0.dtype), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
    x, F, aux, _, _, _, it = jax.lax.while_loop(cond, body, init)
    return x, F, aux, it


def _residual_only_line_search(linearise, residual, x0, trial, tol, max_iter, max_halvings):
    def cond(c):
        x, F, it = c
        return _going(F, it, tol, max_iter)

    def body(c):
        x, F, it = c
        _, step, _ = linearise(x)
        # A lane already at tol (masked out under vmap, but still executed) must
        # not spin through max_halvings at round-off level.
        active = max_abs(F) > tol

        def ls_cond(s):
            a, k, F_try = s
            return active & ~armijo(F_try, F, a) & (k < max_halvings)

        def ls_body(s):
            a, k, _ = s
            a = 0.5 * a
            return a, k + 1, residual(trial(x, a, step))

        one = jnp.ones((), x.dtype)
        a, _, F_try = jax.lax.while_loop(ls_cond, ls_body, (one, jnp.zeros((), jnp.int32), residual(trial(x, one, step))))
        take = jnp.isfinite(norm(F_try))
        return jnp.where(take, trial(x, a, step), x), jnp.where(take, F_try, F), it + 1

    x, F, it = jax.lax.while_loop(cond, body, (x0, residual(x0), jnp.zeros((), jnp.int32)))
    return x, F, it


__all__ = ["ARMIJO", "NewtonResult", "armijo", "max_abs", "newton", "norm"]
