"""What the sync-game experiments read off solved paths (:mod:`jaxtwin.syncgame.experiments`):
plateau means over ``[0.4T, 0.6T]`` on any nodes, the shares' settle time, and the
replicator rest point under the plateau controls with its residual."""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from jaxtwin.syncgame.model import replicator_field
from jaxtwin.syncgame.params import call_float64
from jaxtwin.syncgame.replicator import replicator_rest_point


def plateau_mean(ts: np.ndarray, values: np.ndarray, T: float, axis: int = 0) -> np.ndarray:
    """Time average of ``values`` (nodes ``ts`` along ``axis``) over ``[0.4T, 0.6T]``,
    by linear interpolation on 41 even points: independent of where the nodes lie
    (uniform for the sweep solver, graded for collocation)."""
    t_eval = np.linspace(0.4 * T, 0.6 * T, 41)
    v = np.moveaxis(np.asarray(values), axis, 0)
    flat = v.reshape(v.shape[0], -1)        # one column per series (memory linear in the nodes)
    means = np.array([np.interp(t_eval, ts, col).mean() for col in flat.T])
    return means.reshape(v.shape[1:])


def settle_time(ts: np.ndarray, y: np.ndarray, target: np.ndarray, tol: float = 0.01) -> float:
    """First time from which every share stays within ``tol`` of ``target`` up to 0.6 T (NaN if never)."""
    window = ts <= 0.6 * ts[-1]
    far = np.any(np.abs(y[window] - target) > tol, axis=1)
    if not far.any():
        return 0.0
    last = np.nonzero(far)[0][-1]
    return float(ts[window][last + 1]) if last + 1 < window.sum() else float("nan")


def rest_point(params, u):
    """The replicator rest point under constant ``u`` and its residual: the larger of
    ``max |dy/dt|`` there and its distance from the simplex."""
    y = replicator_rest_point(params, u)
    off_simplex = jnp.maximum(jnp.abs(jnp.sum(y) - 1.0), jnp.max(-y))
    return y, jnp.maximum(jnp.max(jnp.abs(replicator_field(params, y, u))), off_simplex)


def rest_points(stacked_params, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rest_point` for each parameter set under its constant controls ``u``
    (``residual`` +inf where the rest point is not finite)."""
    # through call_float64: one compiled program for every study (a fresh jax.jit per call compiled 7 times)
    y, res = (np.asarray(a) for a in call_float64(rest_point, stacked_params, u, batched=True, check=False))
    return y, np.where(np.all(np.isfinite(y), axis=-1) & np.isfinite(res), res, np.inf)

__all__ = ["plateau_mean", "rest_point", "rest_points", "settle_time"]
