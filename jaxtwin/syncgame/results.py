"""Result codes of every sync-game solver: one enumeration, one meaning per code.

Every solution the sync-game solvers return (:class:`~jaxtwin.syncgame.nash.GameSolution`,
:class:`~jaxtwin.syncgame.stackelberg.StackelbergSolution`,
:class:`~jaxtwin.syncgame.static.StaticSolution`,
:class:`~jaxtwin.syncgame.replicator.Trajectory`) carries a ``result`` field
holding a :class:`Result` value as an ``int32`` array (one per point under
``vmap``: solvers never raise inside traced code). :func:`classify` is the one
place the codes are decided; :func:`message` turns a code into words.
"""
from __future__ import annotations

import enum

import diffrax
import jax.numpy as jnp
import numpy as np


class Result(enum.IntEnum):
    """Outcome of a solve (an ODE integration reports ``CONVERGED`` when it completed)."""

    CONVERGED = 0
    MAX_ITER = 1
    NOT_FINITE = 2
    ODE_FAILED = 3


_MESSAGES = {
    Result.CONVERGED: "converged: max |residual| <= tol and everything finite (an ODE solve: completed)",
    Result.MAX_ITER: "iteration limit reached before max |residual| <= tol (everything finite)",
    Result.NOT_FINITE: "a non-finite residual or solution (e.g. NaN parameters): nothing to trust",
    Result.ODE_FAILED: "an ODE solve failed (diffrax stopped early: step limit or step-size collapse)",
}


def message(code):
    """The message of a :class:`Result` code (an ``int`` or a 0-d array); for an array of
    codes, a numpy array of messages of the same shape."""
    codes = np.asarray(code)
    if codes.ndim:
        return np.vectorize(message, otypes=[object])(codes)
    try:
        return _MESSAGES[Result(int(codes))]
    except ValueError:
        raise ValueError(f"result code {int(codes)!r} is not a jaxtwin.syncgame.results.Result "
                         f"(valid: {[int(r) for r in Result]})") from None


def classify(residual, tol, finite, ode_ok=True) -> jnp.ndarray:
    """The :class:`Result` code (``int32``, traceable, vmappable) of a solve that stopped at
    ``residual`` (``max |F|``) with everything finite iff ``finite`` and every ODE solve
    successful iff ``ode_ok``. Precedence: ``ODE_FAILED``, ``NOT_FINITE``, ``CONVERGED``
    (``residual <= tol``), ``MAX_ITER``."""
    finite = finite & jnp.isfinite(residual)
    code = jnp.where(residual <= tol, Result.CONVERGED, Result.MAX_ITER)
    code = jnp.where(finite, code, Result.NOT_FINITE)
    return jnp.where(ode_ok, code, Result.ODE_FAILED).astype(jnp.int32)


def all_finite(*arrays) -> jnp.ndarray:
    """Whether every entry of every array is finite (a traced ``bool``)."""
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in arrays]))


def ode_succeeded(sol: diffrax.Solution):
    """Whether a diffrax solve (``throw=False``) completed, through diffrax's public
    ``RESULTS`` enumeration (never its private code field)."""
    return sol.result == diffrax.RESULTS.successful


def integration_result(sol: diffrax.Solution) -> jnp.ndarray:
    """The :class:`Result` code of a plain ODE integration: ``CONVERGED`` when it completed
    with finite values, else ``NOT_FINITE`` or ``ODE_FAILED``."""
    return classify(jnp.zeros((), sol.ys.dtype), 0.0, all_finite(sol.ys), ode_succeeded(sol))


__all__ = ["Result", "all_finite", "classify", "integration_result", "message", "ode_succeeded"]
