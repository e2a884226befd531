"""Parameters of the IoT-assisted DT synchronisation game (spec ``syncgame.md`` §1).

:class:`SyncParams` is a ``flax.struct.dataclass`` pytree: every numeric constant
of the model is a leaf, so parameter grids are built by stacking params and the
solvers are ``jax.vmap``-ed over them. The number of VSPs ``M`` is the length of
the per-VSP arrays; any ``M >= 2`` works.
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxtwin.core.concrete import check_if_concrete
from jaxtwin.core.config import ConfigError
from jaxtwin.core.sharding import sharded_call

# Decay rates of the two VSPs the 4-VSP case adds (spec §1 asks for one faster-
# and one slower-decaying VSP than the defaults 0.1 and 0.3). 0.05 halves the
# slowest default; 0.5 is well above the fastest one while its steady sync
# intensity delta*xbar = 25 stays inside u_max = 40, so no control saturates.
EXTRA_VSP_DELTAS: tuple[float, float] = (0.5, 0.05)

PER_VSP = ("delta", "D", "c", "p", "rho", "xbar", "x0", "y0")
SCALARS = ("a", "b", "N", "d", "s", "sigma", "r", "T", "u_max")


@struct.dataclass
class SyncParams:
    """All constants of the sync game. Per-VSP fields have shape ``(M,)``.

    Attributes:
        delta: DT value decay rates ``delta_i``.
        D: number of DTs of each VSP (scales its incentive pool and data demand).
        c: UAV cost of working for VSP ``i``.
        p: unit data price ``p_i``.
        rho: business-value coefficient ``rho_i``.
        xbar: desired DT value ``xbar_i``.
        x0: initial DT values.
        y0: initial UAV shares (on the simplex).
        w: the four weights ``(w1, w2, w3, w4)`` of the instantaneous payoff.
        a, b: affine weight of the incentive pool in the decay rate, ``a*delta + b``.
        N: UAV population size. d: data per UAV. s: request rate.
        sigma: replicator learning rate. r: discount rate. T: horizon.
        u_max: upper bound of every synchronisation intensity.
    """

    delta: jax.Array
    D: jax.Array
    c: jax.Array
    p: jax.Array
    rho: jax.Array
    xbar: jax.Array
    x0: jax.Array
    y0: jax.Array
    w: jax.Array
    a: jax.Array
    b: jax.Array
    N: jax.Array
    d: jax.Array
    s: jax.Array
    sigma: jax.Array
    r: jax.Array
    T: jax.Array
    u_max: jax.Array

    @property
    def n_vsp(self) -> int:
        """Number of VSPs ``M`` (static: the trailing axis of ``delta``)."""
        return self.delta.shape[-1]


def make_params(delta: Sequence[float] = (0.1, 0.3), *, D=10.0, c=0.1, p=1.0, rho=1.0,
                xbar=50.0, x0=1.0, y0=None, w=(1.0, 0.2, 0.05, 0.5), a=1.0, b=0.1,
                N=100.0, d=0.1, s=0.1, sigma=0.5, r=0.05, T=50.0, u_max=40.0,
                dtype=None) -> SyncParams:
    """Params with the spec defaults; per-VSP values may be scalars (broadcast) or length-M.

    ``y0`` defaults to the uniform split ``1/M``. Values are validated
    (:func:`validate_params`) before the pytree is built.
    """
    m = len(delta)
    dtype = dtype or jnp.result_type(float)

    def vec(v):
        return np.broadcast_to(np.asarray(v, dtype=np.float64), (m,)).copy()

    fields = dict(delta=vec(delta), D=vec(D), c=vec(c), p=vec(p), rho=vec(rho), xbar=vec(xbar),
                  x0=vec(x0), y0=vec(np.full(m, 1.0 / m) if y0 is None else y0),
                  w=np.asarray(w, dtype=np.float64), a=np.float64(a), b=np.float64(b),
                  N=np.float64(N), d=np.float64(d), s=np.float64(s), sigma=np.float64(sigma),
                  r=np.float64(r), T=np.float64(T), u_max=np.float64(u_max))
    params = SyncParams(**fields)
    validate_params(params)
    return jax.tree.map(lambda v: jnp.asarray(v, dtype=dtype), params)


def default_params(n_vsp: int = 2, **overrides) -> SyncParams:
    """The spec defaults for 2 VSPs, or 4 VSPs with :data:`EXTRA_VSP_DELTAS` added."""
    if n_vsp == 2:
        delta = (0.1, 0.3)
    elif n_vsp == 3:
        delta = (0.1, 0.3, EXTRA_VSP_DELTAS[0])
    elif n_vsp == 4:
        delta = (0.1, 0.3, *EXTRA_VSP_DELTAS)
    else:
        raise ConfigError(f"default_params: n_vsp={n_vsp!r} must be 2, 3 or 4; use make_params for others")
    return make_params(overrides.pop("delta", delta), **overrides)


def validate_params(params: SyncParams) -> SyncParams:
    """Raise ``ConfigError`` (a ``ValueError``) naming the field when a concrete value is out of
    range; returns ``params``. :func:`make_params` and every float64 solver entry point
    (:func:`call_float64`) run it on concrete params.

    Checks shapes (per-VSP fields share length ``M >= 2``, ``w`` has 4 entries),
    finiteness, positivity (``delta, D, N, d, s, sigma, T, u_max, w4 > 0``;
    ``c, p, rho, xbar, x0, w, a, b, r >= 0``) and that ``y0`` lies in the
    interior of the simplex. Batched params (leading axes) are checked elementwise.
    """
    vals = {k: np.asarray(getattr(params, k), dtype=np.float64) for k in PER_VSP + SCALARS + ("w",)}
    m = vals["delta"].shape[-1] if vals["delta"].ndim else 0
    if m < 2:
        raise ConfigError(f"SyncParams.delta: need at least 2 VSPs, got shape {vals['delta'].shape}")
    for k in PER_VSP:
        if vals[k].shape[-1:] != (m,):
            raise ConfigError(f"SyncParams.{k}: shape {vals[k].shape} does not end in M={m}")
    if vals["w"].shape[-1:] != (4,):
        raise ConfigError(f"SyncParams.w: need 4 weights (w1..w4), got shape {vals['w'].shape}")
    for k, v in vals.items():
        if not np.all(np.isfinite(v)):
            raise ConfigError(f"SyncParams.{k}={v}: must be finite")
    for k in ("delta", "D", "N", "d", "s", "sigma", "T", "u_max"):
        if np.any(vals[k] <= 0):
            raise ConfigError(f"SyncParams.{k}={vals[k]}: must be > 0")
    for k in ("c", "p", "rho", "xbar", "x0", "w", "a", "b", "r"):
        if np.any(vals[k] < 0):
            raise ConfigError(f"SyncParams.{k}={vals[k]}: must be >= 0")
    if np.any(vals["w"][..., 3] <= 0):
        raise ConfigError(f"SyncParams.w={vals['w']}: w4 must be > 0 (it makes H strictly concave in u)")
    y0 = vals["y0"]
    if np.any(y0 <= 0) or np.any(np.abs(y0.sum(-1) - 1.0) > 1e-6):
        raise ConfigError(f"SyncParams.y0={y0}: must lie in the interior of the simplex (positive, sum 1)")
    return params


def stack_params(params_list: Sequence[SyncParams]) -> SyncParams:
    """Stack params along a new leading axis (a grid for ``jax.vmap``)."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *params_list)


def as_float64(params: SyncParams) -> SyncParams:
    """Cast every leaf to float64; call inside ``with jax.enable_x64(True):``."""
    return jax.tree.map(lambda v: jnp.asarray(v, dtype=jnp.float64), params)


_FLOAT64_CACHE: dict = {}
_ACCEPTED: dict = {}   # compiler option sets -> whether this XLA knows them

# XLA:CPU options for programs that compile for seconds and run for milliseconds (the
# collocation solves): no LLVM optimisation and the classic elemental emitters instead
# of the MLIR fusion emitters. Measured on 2 busy cores (jaxlib 0.10.2): the 2-VSP Nash
# solve on 201 nodes compiled in 1.8-2.4 s against 10-17 s with the defaults, running
# in the same 0.02-0.06 s; the 7-point 4-VSP sensitivity batch in 2.3 s against 15 s,
# running in 1.1 s against 0.95 s.
QUICK_COMPILE = (("xla_backend_optimization_level", 0), ("xla_cpu_use_fusion_emitters", False))
# The fusion emitters off only: for programs whose run time matters at O0 (the static
# games, 41 x 3 Newton solves through Tsit5: 12 s at O0 against 2-3 s), still compiling
# in about 2/3 of the default time.
LEAN_COMPILE = (("xla_cpu_use_fusion_emitters", False),)


def compiler_options(options: tuple) -> dict:
    """``options`` as the ``compiler_options`` of ``jax.jit`` where they apply: on a CPU
    backend whose XLA knows them (probed once per set), else ``{}`` (the defaults), so
    a jaxlib that renamed an option still runs, compiling as before."""
    if not options or jax.default_backend() != "cpu":
        return {}
    if options not in _ACCEPTED:
        try:
            jax.jit(lambda x: x + 1.0, compiler_options=dict(options)).lower(1.0).compile()
            _ACCEPTED[options] = True
        except Exception:  # noqa: BLE001  (XLA reports an unknown option as a runtime error)
            _ACCEPTED[options] = False
    return dict(options) if _ACCEPTED[options] else {}



def call_float64(solve: Callable, params: SyncParams, *arrays, static: tuple = (), batched: bool = False,
                 devices: int = 1, check: bool = True, compile_with: tuple = ()):
    """THE float64 entry point of the sync-game solvers: ``solve(params, *arrays, *static)``
    jitted once per ``(solve, static, batched)`` and run inside ``jax.enable_x64`` on
    float64 params and arrays, blocking until done.

    ``static``: hashable arguments that fix the program (options dataclasses, leader
    tuples, grid sizes). ``batched``: vmap over a leading axis of ``params`` (and of
    ``arrays``); ``devices`` (batched only; 0 = all, see
    :func:`jaxtwin.core.sharding.sharded_call`) spreads the points over devices.

    Concrete ``params`` are checked first (:func:`validate_params`: ``ConfigError``
    naming the field). ``check=False`` skips that, to see how the solvers themselves
    report non-finite params (``Result.NOT_FINITE`` per point, never a raise).
    ``compile_with``: XLA options of the program (:data:`QUICK_COMPILE`, :data:`LEAN_COMPILE`;
    :func:`compiler_options`); with ``devices`` not 1 the sharded program compiles with the
    defaults.
    """
    if check:
        check_if_concrete(validate_params, params)
    sharded = batched and devices != 1
    if sharded:   # jax takes compiler options on the top-level jit only: sharded_call's
        compile_with = ()
    key = (solve, static, batched, len(arrays), compile_with)
    if key not in _FLOAT64_CACHE:
        fn = lambda p, *a: solve(p, *a, *static)  # noqa: E731
        _FLOAT64_CACHE[key] = jax.jit(jax.vmap(fn) if batched else fn, compiler_options=compiler_options(compile_with))
    fn = _FLOAT64_CACHE[key]
    if sharded:
        fn = sharded_call(fn, devices)
    with jax.enable_x64(True):
        arrays = tuple(jnp.asarray(a, jnp.float64) for a in arrays)
        return jax.block_until_ready(fn(as_float64(params), *arrays))
