"""CIVIC model (spec ``civic.md`` §1-3): room-type table as data, pure formulas.

Room types (Library, Arena, Gallery) are rows of a :class:`RoomTable` whose
fields are arrays with one entry per type; a Head's parameters are the table
indexed by the Head's type (:func:`rooms_for_heads`), so no formula branches on
the type. Every function here is pure, broadcasts over leading axes and is
jittable.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxtwin.core.config import ConfigError

ROOM_NAMES = ("Library", "Arena", "Gallery")
"""Row order of the default :class:`RoomTable`."""

HEAD_TYPE_CYCLE = (0, 1, 2, 0, 2, 1, 2, 0, 0)
"""Room types assigned to Heads in order (Lib, Arena, Gal, Lib, Gal, Arena, Gal, Lib, Lib), cycling."""

BETA_STEP = 0.05
"""Spacing of the behavioural-accuracy grid."""


@struct.dataclass
class RoomTable:
    """Per-room-type parameters (seed Table III); each field has shape ``(n_types,)``
    (or, once indexed by :func:`rooms_for_heads`, ``(n_heads,)``)."""

    B_min: jnp.ndarray
    B_max: jnp.ndarray
    f_min: jnp.ndarray
    f_max: jnp.ndarray
    eps_min: jnp.ndarray
    eps_max: jnp.ndarray
    beta_min: jnp.ndarray
    beta_max: jnp.ndarray
    omega: jnp.ndarray
    kappa_comp: jnp.ndarray
    kappa_net: jnp.ndarray
    w_sigma: jnp.ndarray
    w_eta: jnp.ndarray
    theta_comp: jnp.ndarray
    theta_net: jnp.ndarray
    Lambda: jnp.ndarray
    iota: jnp.ndarray
    P_v: jnp.ndarray
    O_v: jnp.ndarray
    A_v: jnp.ndarray
    N_d: jnp.ndarray
    SV_d: jnp.ndarray
    U_d: jnp.ndarray
    V_max: jnp.ndarray
    w_q: jnp.ndarray
    w_f: jnp.ndarray
    w_a: jnp.ndarray
    r_arr: jnp.ndarray
    r_dep: jnp.ndarray


_TABLE_ROWS = {
    #            Library  Arena   Gallery
    "B_min":      (20.0,   30.0,   25.0),
    "B_max":      (25.0,   50.0,   35.0),
    "f_min":      (30.0,   60.0,   30.0),
    "f_max":      (60.0,  120.0,   60.0),
    "eps_min":    (0.6,    0.5,    0.8),
    "eps_max":    (1.0,    1.0,    1.0),
    "beta_min":   (0.5,    0.5,    0.3),
    "beta_max":   (1.0,    1.0,    1.0),
    "omega":      (400.0, 720.0,  400.0),
    "kappa_comp": (1.1,    1.1,    1.1),
    "kappa_net":  (0.5,    0.5,    0.5),
    "w_sigma":    (0.5,    0.3,    0.7),
    "w_eta":      (0.5,    0.7,    0.3),
    "theta_comp": (0.7,    0.85,   0.7),
    "theta_net":  (0.9,    0.85,   0.8),
    "Lambda":     (0.8,    0.8,    0.7),
    "iota":       (0.6,    0.5,    0.8),
    "P_v":        (2e5,    5e5,    3e5),
    "O_v":        (50.0,  200.0,   20.0),
    "A_v":        (5.0,    30.0,   15.0),
    "N_d":        (50.0,  200.0,   30.0),
    "SV_d":       (30.0,  100.0,   20.0),
    "U_d":        (2.0,    10.0,    1.0),
    "V_max":      (10.0,  100.0,   10.0),
    "w_q":        (0.33,   0.33,   0.33),
    "w_f":        (0.33,   0.33,   0.33),
    "w_a":        (0.33,   0.33,   0.33),
    "r_arr":      (0.4,    0.4,    0.4),
    "r_dep":      (0.7,    0.7,    0.7),
}


def default_room_table() -> RoomTable:
    """The seed's Table III as a :class:`RoomTable` (rows Library, Arena, Gallery)."""
    return RoomTable(**{k: jnp.asarray(v, jnp.float32) for k, v in _TABLE_ROWS.items()})


def room_table_rows() -> dict[str, tuple[float, ...]]:
    """The default table as plain Python numbers (for tests and documentation)."""
    return {k: tuple(v) for k, v in _TABLE_ROWS.items()}


@struct.dataclass
class ModelConstants:
    """General constants (seed Table IV)."""

    N_max: float = 100.0
    SV_max: float = 100.0
    U_max: float = 10.0
    P_max: float = 1e5
    O_max: float = 100.0
    A_max: float = 10.0
    e0: float = 0.65
    e1: float = 0.368
    e2: float = 1.23e-3
    e3: float = 0.85
    e4: float = 1.23e-3
    j1: float = 36.13
    j2: float = -1.66e-2
    j3: float = 11.62
    j4: float = -6.07e-3
    K_comp: float = 0.01
    K_net: float = 0.01
    phi: float = 0.1
    tau: float = 1.0


def head_types(n_heads: int) -> jnp.ndarray:
    """Room-type index of each of ``n_heads`` Heads, cycling :data:`HEAD_TYPE_CYCLE`."""
    return jnp.asarray([HEAD_TYPE_CYCLE[i % len(HEAD_TYPE_CYCLE)] for i in range(n_heads)], jnp.int32)


def rooms_for_heads(table: RoomTable, types: jnp.ndarray) -> RoomTable:
    """Gather the table rows of each Head's type: every field becomes ``(n_heads,)``."""
    return RoomTable(**{k: getattr(table, k)[types] for k in _TABLE_ROWS})


def beta_levels(room: RoomTable) -> jnp.ndarray:
    """Number of behavioural-accuracy grid levels ``beta_min, beta_min+0.05, ..., beta_max``."""
    return jnp.round((room.beta_max - room.beta_min) / BETA_STEP).astype(jnp.int32) + 1


# ----------------------------------------------------------------- immersion
def ssim(B, omega, c: ModelConstants):
    """``max(e0, 1 - (e1 + e2 omega) B^-(e3 + e4 omega))``."""
    return jnp.maximum(c.e0, 1.0 - (c.e1 + c.e2 * omega) * B ** (-(c.e3 + c.e4 * omega)))


def vmaf(B, omega, c: ModelConstants):
    """``min(100, j1 + j2 omega + j3 B + j4 omega B)`` (0..100)."""
    return jnp.minimum(100.0, c.j1 + c.j2 * omega + c.j3 * B + c.j4 * omega * B)


def qope(B, room: RoomTable, c: ModelConstants):
    """Quality of perceptual experience ``w_sigma ssim + w_eta vmaf/100`` [fixed: VMAF to 0..1]."""
    return room.w_sigma * ssim(B, room.omega, c) + room.w_eta * vmaf(B, room.omega, c) / 100.0


def _minmax(x, lo, hi):
    """``(x - lo)/(hi - lo)``; a range below 1e-12 gives 1 (nothing to normalise)."""
    span = hi - lo
    small = jnp.abs(span) < 1e-12
    return jnp.where(small, 1.0, (x - lo) / jnp.where(small, 1.0, span))


def qope_normalised(B, room: RoomTable, c: ModelConstants):
    """``Q^ = (Q(B) - Q(B_min)) / (Q(B_max) - Q(B_min))``."""
    return _minmax(qope(B, room, c), qope(room.B_min, room, c), qope(room.B_max, room, c))


def frame_rate_normalised(f, room: RoomTable):
    """``F^ = (f - f_min) / (f_max - f_min)``."""
    return _minmax(f, room.f_min, room.f_max)


def dt_accuracy(eps, beta, tau):
    """Harmonic mean ``3 / (1/eps + 1/beta + 1/tau)``; 0 when any term is 0."""
    zero = (eps == 0) | (beta == 0) | (tau == 0)
    safe = lambda x: jnp.where(zero, 1.0, x)  # noqa: E731 - keeps the untaken branch finite
    return jnp.where(zero, 0.0, 3.0 / (1.0 / safe(eps) + 1.0 / safe(beta) + 1.0 / safe(tau)))


def dt_accuracy_normalised(eps, beta, room: RoomTable, c: ModelConstants):
    """``A^`` min-max normalised between ``A(eps_min, beta_min, tau)`` and ``A(eps_max, beta_max, tau)``."""
    lo = dt_accuracy(room.eps_min, room.beta_min, c.tau)
    hi = dt_accuracy(room.eps_max, room.beta_max, c.tau)
    return _minmax(dt_accuracy(eps, beta, c.tau), lo, hi)


def immersion(B, f, beta, eps, room: RoomTable, c: ModelConstants):
    """``I = (w_q Q^ + w_f F^ + w_a A^) / (w_q + w_f + w_a)`` [fixed: weights normalised]."""
    total = room.w_q * qope_normalised(B, room, c) + room.w_f * frame_rate_normalised(f, room) \
        + room.w_a * dt_accuracy_normalised(eps, beta, room, c)
    return total / (room.w_q + room.w_f + room.w_a)


# ------------------------------------------------------------ resources/cost
def resource_scale(f, C, f_min, kappa, theta, iota, Lambda, V_max):
    """``(f/f_min)^kappa * C^theta * (1 - iota (1 - (C/V_max)^Lambda))``."""
    return (f / f_min) ** kappa * C ** theta * (1.0 - iota * (1.0 - (C / V_max) ** Lambda))


def base_compute(room: RoomTable, c: ModelConstants):
    """``(Comp_b^VE, Comp_b^DT)``: normalised VE and DT compute bases."""
    ve = room.P_v / c.P_max + room.O_v / c.O_max + room.A_v / c.A_max
    dt = room.N_d / c.N_max + room.SV_d / c.SV_max + room.U_d / c.U_max
    return ve, dt


def base_network(B, beta, room: RoomTable, c: ModelConstants):
    """``(Net_b^VE, Net_b^DT) = (B, phi B_min beta)`` [fixed: VE network base is B]."""
    return B, c.phi * room.B_min * beta


def head_cost(B, f, beta, C, room: RoomTable, c: ModelConstants):
    """Cost of serving one Head with ``C`` clients at allocation ``(B, f, beta)``."""
    comp_ve, comp_dt = base_compute(room, c)
    net_ve, net_dt = base_network(B, beta, room, c)
    s_comp = resource_scale(f, C, room.f_min, room.kappa_comp, room.theta_comp,
                            room.iota, room.Lambda, room.V_max)
    s_net = resource_scale(f, C, room.f_min, room.kappa_net, room.theta_net,
                           room.iota, room.Lambda, room.V_max)
    return c.K_comp * (comp_ve + comp_dt) * s_comp + c.K_net * (net_ve + net_dt) * s_net


def efficiency_score(I, threshold):
    """Reward shaping ``phi(I)``: 1.5 in ``[thr, 1.1 thr]``, ``0.5 - min(0.3, (I-thr)/thr)``
    above, -1 below the threshold."""
    return jnp.where(
        I < threshold, -1.0,
        jnp.where(I <= 1.1 * threshold, 1.5, 0.5 - jnp.minimum(0.3, (I - threshold) / threshold)))


# ------------------------------------------------------- myopic optimisation
def _expand(room: RoomTable, n: int) -> RoomTable:
    """Append ``n`` trailing unit axes to every field so it broadcasts over grids."""
    return RoomTable(**{k: getattr(room, k)[(...,) + (None,) * n] for k in _TABLE_ROWS})


_GRID_AXES = (("B", 1.0), ("f", 1.0), ("beta", BETA_STEP))


def grid_sizes(table: RoomTable) -> tuple[int, int, int]:
    """Static padded grid sizes ``(n_B, n_f, n_beta)``: the largest over the table's types
    (host side: the table must be concrete)."""
    return tuple(int(np.max(np.round((np.asarray(getattr(table, f"{ax}_max"))
                                      - np.asarray(getattr(table, f"{ax}_min"))) / step))) + 1
                 for ax, step in _GRID_AXES)


def require_grid_covers(table: RoomTable, sizes: tuple[int, int, int]) -> None:
    """``ConfigError`` naming the field when ``table`` needs more grid points than ``sizes``
    (a :func:`myopic_optimal` grid of that size would skip admissible allocations)."""
    for (ax, _), need, have in zip(_GRID_AXES, grid_sizes(table), sizes):
        if need > have:
            raise ConfigError(
                f"RoomTable.{ax}_max={np.asarray(getattr(table, f'{ax}_max')).tolist()}: the "
                f"{ax} range needs {need} grid points but the grid was sized for {have}; size it "
                f"from this table (e.g. make_baseline(name, env, params))")


def myopic_optimal(room: RoomTable, eps, C, threshold, c: ModelConstants,
                   sizes: tuple[int, int, int]):
    """Cheapest allocation with ``I >= threshold`` per Head (else the highest ``I``,
    ties to the cheapest), by enumerating the full ``B x f x beta`` grid at once.

    ``room``, ``eps``, ``C`` carry a leading Head axis (or none). Immersion and
    cost are evaluated on every grid point; the per-axis terms are computed on
    the 1-D grids and combined by broadcasting, which is exact because ``I`` is
    a weighted sum of a ``B``-, an ``f``- and a ``beta``-term and the cost is
    ``a(f) + (Net_VE(B) + Net_DT(beta)) b(f)``. Returns ``(B, f, beta_index,
    beta, immersion, cost, feasible)`` per Head.
    """
    n_b, n_f, n_beta = sizes
    r1 = _expand(room, 1)
    B = r1.B_min + jnp.arange(n_b, dtype=jnp.float32)
    f = r1.f_min + jnp.arange(n_f, dtype=jnp.float32)
    k = jnp.arange(n_beta, dtype=jnp.int32)
    beta = r1.beta_min + BETA_STEP * k
    e = jnp.asarray(eps, jnp.float32)[..., None]
    cc = jnp.asarray(C, jnp.float32)[..., None]
    w_sum = room.w_q + room.w_f + room.w_a
    i_b = r1.w_q * qope_normalised(B, r1, c) / w_sum[..., None]
    i_f = r1.w_f * frame_rate_normalised(f, r1) / w_sum[..., None]
    i_beta = r1.w_a * dt_accuracy_normalised(e, beta, r1, c) / w_sum[..., None]
    comp_ve, comp_dt = base_compute(r1, c)
    s_comp = resource_scale(f, cc, r1.f_min, r1.kappa_comp, r1.theta_comp, r1.iota, r1.Lambda, r1.V_max)
    s_net = resource_scale(f, cc, r1.f_min, r1.kappa_net, r1.theta_net, r1.iota, r1.Lambda, r1.V_max)
    a_f = c.K_comp * (comp_ve + comp_dt) * s_comp            # (..., n_f)
    b_f = c.K_net * s_net                                     # (..., n_f)
    net_ve, net_dt = base_network(B, beta, r1, c)             # (..., n_b), (..., n_beta)
    I = i_b[..., :, None, None] + i_f[..., None, :, None] + i_beta[..., None, None, :]
    cost = a_f[..., None, :, None] + (net_ve[..., :, None, None] + net_dt[..., None, None, :]) \
        * b_f[..., None, :, None]
    valid = (B <= r1.B_max)[..., :, None, None] & (f <= r1.f_max)[..., None, :, None] \
        & (k < beta_levels(room)[..., None])[..., None, None, :]
    shape = I.shape
    lead = shape[:-3]
    flat = lambda x: jnp.broadcast_to(x, shape).reshape(lead + (-1,))  # noqa: E731
    I_f, cost_f, valid_f = flat(I), flat(cost), flat(valid)
    feasible = valid_f & (I_f >= threshold)
    any_feasible = jnp.any(feasible, axis=-1)
    cheapest = jnp.argmin(jnp.where(feasible, cost_f, jnp.inf), axis=-1)
    best_I = jnp.max(jnp.where(valid_f, I_f, -jnp.inf), axis=-1)
    at_best = valid_f & (I_f >= best_I[..., None])
    best_idx = jnp.argmin(jnp.where(at_best, cost_f, jnp.inf), axis=-1)
    idx = jnp.where(any_feasible, cheapest, best_idx)
    i_b_idx, i_f_idx, i_k_idx = idx // (n_f * n_beta), (idx // n_beta) % n_f, idx % n_beta
    pick = lambda x, i: jnp.take_along_axis(x, i[..., None], axis=-1)[..., 0]  # noqa: E731
    beta_index = i_k_idx.astype(jnp.int32)
    return (pick(B, i_b_idx), pick(f, i_f_idx), beta_index, pick(beta, beta_index),
            pick(I_f, idx), pick(cost_f, idx), any_feasible)
