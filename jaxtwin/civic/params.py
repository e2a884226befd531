"""CIVIC's environment parameters :class:`EnvParams` and their host-side check.

Both are re-exported by :mod:`jaxtwin.civic.env`. :func:`validate_params` raises
:class:`~jaxtwin.core.config.ConfigError` naming the field and its value, like
Co-EvoDT's. It runs on concrete parameters where they enter (the experiments
build them in ``civic.experiments.scenario_params``), never under ``jit``: the
leaves may be tracers there. Stacked (``vmap``-ed) parameters are checked
entry by entry.
"""
from __future__ import annotations

import math

import jax
import numpy as np
from flax import struct

from jaxtwin.civic import model as cm
from jaxtwin.core.config import ConfigError


@struct.dataclass
class EnvParams:
    """Every numeric constant of the CIVIC environment (spec defaults)."""

    room_table: cm.RoomTable = struct.field(default_factory=cm.default_room_table)
    constants: cm.ModelConstants = struct.field(default_factory=cm.ModelConstants)
    p_req: float = 0.8
    threshold: float = 0.85
    budget_factor: float = 0.8
    budget_scale: float = 1.0
    T_ref: float = 100.0   # steps the budget is sized for (spec v2: not the horizon)
    unbalanced_budgets: bool = False
    budget_weight_lo: float = 0.4
    budget_weight_hi: float = 1.6
    withdraw_ratio: float = math.inf
    stuck_limit: int = 5
    w_imm: float = 1.0
    w_fin: float = 0.1
    I_max: float = 1.0
    credit_unit: float = 1e-4
    episode_steps: int = 0   # episode length T below the env's horizon (0: the horizon): a mask, so
    #                          one program padded to the longest horizon runs several (spec §7.3)


MAX_POISSON_RATE = 10.0
"""Largest arrival/departure rate ``poisson_small_rate`` samples exactly in float32."""
_UNIT_PROBABILITIES = ("p_req", "threshold")                  # in (0, 1]
_POSITIVE = ("budget_factor", "budget_scale", "T_ref", "budget_weight_lo", "budget_weight_hi",
             "withdraw_ratio", "I_max", "credit_unit")        # > 0 (withdraw_ratio may be inf)
_NONNEGATIVE = ("w_imm", "w_fin")
_ROOM_RANGES = (("B_min", "B_max"), ("f_min", "f_max"), ("eps_min", "eps_max"),
                ("beta_min", "beta_max"))
_ROOM_UNIT = ("eps_min", "eps_max", "beta_min", "beta_max")  # accuracies in [0, 1]
_CONSTANT_DIVISORS = ("N_max", "SV_max", "U_max", "P_max", "O_max", "A_max")
_INT32_MAX = 2**31 - 1


def _fail(path: str, value, msg: str):
    raise ConfigError(f"EnvParams.{path}={value!r}: {msg}")


def _values(obj, name: str) -> np.ndarray:
    return np.asarray(getattr(obj, name), dtype=np.float64)


def _check_scalars(params) -> None:
    for name in params.__dataclass_fields__:
        if name in ("room_table", "constants"):
            continue
        v = _values(params, name)
        if np.any(np.isnan(v)) or (name != "withdraw_ratio" and not np.all(np.isfinite(v))):
            _fail(name, getattr(params, name), "must be finite")
    for name in _UNIT_PROBABILITIES:
        if not np.all((_values(params, name) > 0) & (_values(params, name) <= 1)):
            _fail(name, getattr(params, name), "must be in (0, 1]")
    for name in _POSITIVE:
        if not np.all(_values(params, name) > 0):
            _fail(name, getattr(params, name), "must be > 0")
    for name in _NONNEGATIVE:
        if not np.all(_values(params, name) >= 0):
            _fail(name, getattr(params, name), "must be >= 0")
    v = _values(params, "stuck_limit")
    if not np.all((v >= 0) & (v == np.round(v))):
        _fail("stuck_limit", params.stuck_limit, "must be an integer >= 0 (0: never terminate)")
    v = _values(params, "episode_steps")
    if not np.all((v >= 0) & (v == np.round(v))):
        _fail("episode_steps", params.episode_steps, "must be an integer >= 0 (0: the env's horizon)")
    if not np.all(np.isin(_values(params, "unbalanced_budgets"), (0.0, 1.0))):
        _fail("unbalanced_budgets", params.unbalanced_budgets, "must be a boolean")


def _check_room_table(table) -> None:
    for name in table.__dataclass_fields__:
        v = _values(table, name)
        if not np.all(np.isfinite(v)) or np.any(v < 0):
            _fail(f"room_table.{name}", getattr(table, name), "must be finite and >= 0")
        if v.shape[-1:] != _values(table, "B_min").shape[-1:] or v.shape[-1:] < (3,):
            _fail(f"room_table.{name}", getattr(table, name),
                  "must hold one entry per room type (at least 3, all fields alike)")
    for lo, hi in _ROOM_RANGES:
        if not np.all(_values(table, lo) <= _values(table, hi)):
            _fail(f"room_table.{lo}", getattr(table, lo), f"must be <= room_table.{hi}")
    for name in _ROOM_UNIT:
        if not np.all(_values(table, name) <= 1):
            _fail(f"room_table.{name}", getattr(table, name), "must be in [0, 1]")
    for name in ("B_min", "f_min"):   # bases of negative powers and ratios
        if not np.all(_values(table, name) > 0):
            _fail(f"room_table.{name}", getattr(table, name), "must be > 0")
    if not np.all(_values(table, "V_max") >= 1):
        _fail("room_table.V_max", table.V_max, "must be >= 1 (clients lie in 1..V_max)")
    for name in ("r_arr", "r_dep"):
        if not np.all(_values(table, name) <= MAX_POISSON_RATE):
            _fail(f"room_table.{name}", getattr(table, name),
                  f"must be <= {MAX_POISSON_RATE} (the Poisson sampler's exact range)")
    if not np.all(_values(table, "w_q") + _values(table, "w_f") + _values(table, "w_a") > 0):
        _fail("room_table.w_q", table.w_q, "w_q + w_f + w_a must be > 0")


def _check_constants(constants) -> None:
    for name in constants.__dataclass_fields__:
        if not np.all(np.isfinite(_values(constants, name))):
            _fail(f"constants.{name}", getattr(constants, name), "must be finite")
    for name in _CONSTANT_DIVISORS:
        if not np.all(_values(constants, name) > 0):
            _fail(f"constants.{name}", getattr(constants, name), "must be > 0 (a normaliser)")
    for name in ("K_comp", "K_net", "phi", "tau"):
        if not np.all(_values(constants, name) >= 0):
            _fail(f"constants.{name}", getattr(constants, name), "must be >= 0")


def _check_credit_range(params, env) -> None:
    """The initial budget in credit units must fit ``int32``. Bounded above, host-side
    in float64, by serving every expected request at the most expensive allocation
    (the cost grows in ``B``, ``f`` and ``beta``) instead of the myopic-optimal one."""
    p = jax.tree.map(lambda x: np.asarray(x, np.float64), params)
    r = cm.rooms_for_heads(p.room_table, np.asarray(env.types))
    cost = cm.head_cost(r.B_max, r.f_max, r.beta_max, (1.0 + r.V_max) / 2.0, r, p.constants)
    per_factor = p.budget_scale * p.p_req * p.T_ref * np.sum(cost)   # budget per unit budget_factor
    if p.budget_factor * per_factor / p.credit_unit >= _INT32_MAX:
        largest = np.nextafter(_INT32_MAX * p.credit_unit / per_factor, 0.0) if per_factor > 0 else np.inf
        _fail("budget_factor", params.budget_factor,
              f"too large for int32 credit bookkeeping at credit_unit={float(p.credit_unit):g}: the "
              f"initial budget (up to {p.budget_factor * per_factor:.6g}) may exceed 2**31-1 credit "
              f"units; the largest budget_factor accepted for this scenario is {largest:.6g} "
              "(or raise EnvParams.credit_unit, a Python API field)")


def validate_params(params, env=None):
    """Check concrete CIVIC parameters; raise ``ConfigError`` naming the field and value.

    With ``env`` (a :class:`~jaxtwin.civic.env.CivicEnv`) and one scenario's
    (unstacked) parameters, also check that the initial budget counted in
    integer credit units fits ``int32`` (a too small ``credit_unit`` would
    wrap around). Returns ``params``.
    """
    _check_scalars(params)
    _check_room_table(params.room_table)
    _check_constants(params.constants)
    if env is not None and not np.all(_values(params, "episode_steps") <= env.horizon):
        _fail("episode_steps", params.episode_steps, f"must be <= the env's horizon {env.horizon}")
    if env is not None and np.ndim(params.p_req) == 0 and np.ndim(params.room_table.B_min) == 1:
        _check_credit_range(params, env)
    return params
