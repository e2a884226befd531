"""Lower level: the state ODE (DT values + replicator) under given control paths,
the replicator's interior rest point (the ESS) for constant controls, and the
replicator dynamics of any population game (a payoff matrix or a fitness
function: :func:`replicator_vector_field`, :func:`replicator_dynamics`), of
which the model's UAV replicator is one instance.

Control paths are given on a time grid ``ts`` (shape ``(K,)``) as ``us``
(shape ``(K, M)``) and interpolated linearly between nodes; the solver steps
exactly on the grid nodes (``diffrax.StepTo``) so the kinks of the interpolant
never fall inside a step.
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Union

import diffrax
import jax
import jax.numpy as jnp
import optimistix as optx

from jaxtwin.syncgame.model import incentive_pool, initial_state, instantaneous_payoff, replicator_field, state_field
from jaxtwin.syncgame.params import SyncParams
from jaxtwin.syncgame.results import integration_result


def time_grid(T, n_points: int) -> jax.Array:
    """Uniform grid of ``n_points`` nodes on ``[0, T]`` (``T`` may be traced)."""
    return jnp.linspace(0.0, 1.0, n_points) * T


def control_path(ts: jax.Array, us: jax.Array) -> diffrax.LinearInterpolation:
    """Piecewise-linear control path through ``(ts[k], us[k])``."""
    return diffrax.LinearInterpolation(ts=ts, ys=us)


def step_grid(ts: jax.Array, substeps: int) -> jax.Array:
    """The grid refined by ``substeps`` equal steps per interval (nodes kept)."""
    if substeps == 1:
        return ts
    frac = jnp.arange(substeps) / substeps
    inner = (ts[:-1, None] + frac[None, :] * jnp.diff(ts)[:, None]).reshape(-1)
    return jnp.concatenate([inner, ts[-1:]])


class Trajectory(NamedTuple):
    """States on the grid and the discounted payoffs of a controlled run."""

    ts: jax.Array        # (K,)
    states: jax.Array    # (K, 2M)  z = concat(x, y)
    payoffs: jax.Array   # (M,)     int_0^T exp(-r t) J_i dt
    result: jax.Array    # Result code (results.integration_result)


def simulate(params: SyncParams, ts: jax.Array, us: jax.Array, *, substeps: int = 1,
             adjoint: diffrax.AbstractAdjoint | None = None, z0: jax.Array | None = None) -> Trajectory:
    """Integrate ``dz/dt = f(z, u(t))`` and the discounted payoffs (as extra states).

    Differentiable in ``us`` and ``params`` (reverse mode by default through
    ``RecursiveCheckpointAdjoint``; pass ``diffrax.ForwardMode()`` for jvp/jacfwd).
    Never raises under ``vmap``: failures are reported in ``result``.
    """
    path = control_path(ts, us)
    m = us.shape[-1]
    z0 = initial_state(params) if z0 is None else z0

    def field(t, state, args):
        z = state[: 2 * m]
        u = path.evaluate(t)
        dpay = jnp.exp(-params.r * t) * instantaneous_payoff(params, z, u)
        return jnp.concatenate([state_field(params, z, u), dpay])

    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(field), diffrax.Tsit5(), t0=ts[0], t1=ts[-1], dt0=None,
        y0=jnp.concatenate([z0, jnp.zeros(m, z0.dtype)]),
        stepsize_controller=diffrax.StepTo(ts=step_grid(ts, substeps)),
        saveat=diffrax.SaveAt(ts=ts), adjoint=adjoint or diffrax.RecursiveCheckpointAdjoint(),
        max_steps=None if substeps * ts.shape[0] > 100_000 else 4 * substeps * ts.shape[0] + 16,
        throw=False)
    return Trajectory(ts, sol.ys[:, : 2 * m], sol.ys[-1, 2 * m:], integration_result(sol))


def simulate_replicator(params: SyncParams, u: jax.Array, y0: jax.Array, ts: jax.Array) -> jax.Array:
    """UAV shares under CONSTANT controls ``u`` from ``y0``, saved at ``ts`` (adaptive Tsit5)."""
    return _integrate_adaptive(lambda y: replicator_field(params, y, u), y0, ts).ys


def _integrate_adaptive(field: Callable, y0: jax.Array, ts: jax.Array) -> diffrax.Solution:
    """``dy/dt = field(y)`` from ``y0`` saved at ``ts``: adaptive Tsit5 (rtol 1e-8, atol 1e-10),
    never raising (failures in the solution's result)."""
    return diffrax.diffeqsolve(
        diffrax.ODETerm(lambda t, y, args: field(y)), diffrax.Tsit5(),
        t0=ts[0], t1=ts[-1], dt0=None, y0=y0, saveat=diffrax.SaveAt(ts=ts),
        stepsize_controller=diffrax.PIDController(rtol=1e-8, atol=1e-10),
        max_steps=100_000, throw=False)


def replicator_rest_point(params: SyncParams, u: jax.Array) -> jax.Array:
    """The interior rest point of the replicator for constant controls ``u > 0``.

    With ``k_i = R_i/N`` and ``S = sum_j (k_j - c_j y_j)`` the rest condition
    ``k_i - c_i y_i = y_i S`` gives ``y_i = k_i / (c_i + S)``; ``S`` is the
    unique root of ``sum_i k_i/(c_i+S) = 1`` on ``(-min c, sum k)`` (the sum
    falls monotonically there), found by bisection. With equal costs this is
    ``y_i = R_i / sum_j R_j``.

    Where that bracket holds no root (a control at 0, or non-finite controls from a
    failed solve) there is no interior rest point and the result is NaN. Why not
    leave it to the solver: optimistix's ``Bisection`` raises on such a bracket even
    with ``throw=False`` (it ended a ``sensitivity --T 3000`` run in a traceback), so
    those points are bisected on a stand-in bracket (``k = 1``) and masked.
    """
    def bracket(k):
        return -jnp.min(params.c) + 1e-12 * (1.0 + jnp.sum(k)), jnp.sum(k) + jnp.max(params.c)

    def excess_of(k):
        return lambda s, args: jnp.sum(k / (params.c + s)) - 1.0

    k = incentive_pool(params, u) / params.N
    lo, hi = bracket(k)
    # optimistix's own test: the signs at both ends must differ (NaN fails it too)
    ok = (excess_of(k)(lo, None) < 0) != (excess_of(k)(hi, None) < 0)
    k = jnp.where(ok, k, 1.0)
    lo, hi = bracket(k)
    sol = optx.root_find(excess_of(k), optx.Bisection(rtol=1e-14, atol=1e-14), 0.5 * (lo + hi),
                         options=dict(lower=lo, upper=hi), throw=False, max_steps=400)
    return jnp.where(ok, k / (params.c + sol.value), jnp.nan)



# ------------------------------------------------ any population game
Payoff = Union[jax.Array, Callable[[jax.Array], jax.Array]]


class ReplicatorPath(NamedTuple):
    """Population shares ``xs`` ``(K, n)`` at times ``ts`` and the integration's
    :class:`~jaxtwin.syncgame.results.Result` code."""

    ts: jax.Array
    xs: jax.Array
    result: jax.Array


def fitness(payoff: Payoff, x: jax.Array) -> jax.Array:
    """Fitness of every strategy in population ``x``: ``A @ x`` for a payoff matrix
    ``A`` (``(n, n)``, row = own strategy), else ``payoff(x)``."""
    return payoff(x) if callable(payoff) else jnp.asarray(payoff) @ x


def replicator_vector_field(payoff: Payoff, x: jax.Array, mutation: jax.Array | None = None) -> jax.Array:
    """``dx_i/dt = x_i (f_i(x) - x . f(x))`` with ``f`` = :func:`fitness` (pure, vmappable).

    With a ``mutation`` matrix ``Q`` (``Q[i, j]``: probability that offspring of
    an ``i`` is a ``j``, rows summing to 1) the replicator-mutator
    ``dx_j/dt = sum_i x_i f_i Q_ij - x_j x . f``, as in nashpy. Both are tangent
    to the simplex (components sum to ``(1 - sum x) x . f``).
    """
    f = fitness(payoff, x)
    mean = jnp.dot(x, f)
    growth = x * f if mutation is None else (x * f) @ mutation
    return growth - x * mean


def replicator_dynamics(payoff: Payoff, x0: jax.Array, ts: jax.Array,
                        mutation: jax.Array | None = None) -> ReplicatorPath:
    """Integrate :func:`replicator_vector_field` from ``x0`` and save at ``ts``
    (adaptive Tsit5, rtol 1e-8, atol 1e-10). jit/vmap-able over ``x0``, ``ts``,
    a payoff matrix or mutation matrix; a payoff function is closed over. Never
    raises: a failed integration shows in ``result``."""
    sol = _integrate_adaptive(lambda x: replicator_vector_field(payoff, x, mutation), x0, ts)
    return ReplicatorPath(ts, sol.ys, integration_result(sol))
