"""What the sync-game experiments read off solved paths (:mod:`jaxtwin.syncgame.experiments`):
plateau means over ``[0.4T, 0.6T]`` on any nodes, the shares' settle time, and the
replicator rest point under the plateau controls with its residual."""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.syncgame.model import replicator_field
from jaxtwin.syncgame.replicator import replicator_rest_point


def _host_float64(fn):
    """``fn`` (jnp code) traced as is, or on host arrays run in float64 and returned as numpy."""
    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        if any(isinstance(a, jax.Array) for a in args):
            return fn(*args, **kwargs)
        with jax.enable_x64(True):
            return np.asarray(fn(*args, **kwargs))
    return wrapped


@_host_float64
def plateau_mean(ts, values, T, axis: int = 0):
    """Time average of ``values`` (nodes ``ts`` along ``axis``) over ``[0.4T, 0.6T]``,
    by linear interpolation on 41 even points: independent of where the nodes lie
    (uniform for the sweep solver, graded for collocation). Traceable."""
    t_eval = jnp.linspace(0.4 * T, 0.6 * T, 41)
    v = jnp.moveaxis(jnp.asarray(values), axis, 0)
    flat = v.reshape(v.shape[0], -1)        # one column per series
    means = jax.vmap(lambda col: jnp.interp(t_eval, ts, col).mean(), in_axes=1)(flat)
    return means.reshape(v.shape[1:])


@_host_float64
def settle_time(ts, y, target, tol: float = 0.01):
    """First time from which every share stays within ``tol`` of ``target`` up to 0.6 T
    (0 if always; NaN if never). Traceable."""
    idx = jnp.arange(ts.shape[0])
    window = ts <= 0.6 * ts[-1]             # a prefix of the increasing nodes
    far = jnp.any(jnp.abs(y - target) > tol, axis=1) & window
    after = jnp.max(jnp.where(far, idx, -1)) + 1
    settled = jnp.where(after < window.sum(), ts[jnp.minimum(after, ts.shape[0] - 1)], jnp.nan)
    return jnp.where(after == 0, jnp.zeros_like(ts[0]), settled)


def rest_point(params, u):
    """The replicator rest point under constant ``u`` and its residual: the larger of
    ``max |dy/dt|`` there and its distance from the simplex (+inf where not finite)."""
    y = replicator_rest_point(params, u)
    off_simplex = jnp.maximum(jnp.abs(jnp.sum(y) - 1.0), jnp.max(-y))
    res = jnp.maximum(jnp.max(jnp.abs(replicator_field(params, y, u))), off_simplex)
    return y, jnp.where(jnp.all(jnp.isfinite(y)) & jnp.isfinite(res), res, jnp.inf)


__all__ = ["plateau_mean", "rest_point", "settle_time"]
