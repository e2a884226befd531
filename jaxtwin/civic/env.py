"""CIVIC environment (spec ``civic.md`` §4-5): MSPs serve Heads under budgets,
optionally sharing a General Credit Pool (GCP).

One centralised agent acts for all Heads; the environment object holds only the
shape-fixing arguments (``n_msps``, ``heads_per_msp``, ``horizon``, ``cooperative``,
``observe_sla``), every number lives in :class:`EnvParams`.

Readings of the spec made here (documented so they can be checked):

* **Timing.** The state holds the clients ``C_t`` and request indicators of the
  coming step (the agent observes them before acting). ``step`` serves them,
  then draws ``C_{t+1} = clip(C_t + Poisson(r_arr) - Poisson(r_dep), 1, V_max)``
  and the next requests (``Bernoulli(p_req)``); ``reset`` draws
  ``C_0 ~ U{1..V_max}``, ``eps_h ~ U(eps_min, eps_max)`` and the first requests.
* **Action projection.** The action is a flat vector in ``[-1, 1]``:
  ``[B_1..B_H, f_1..f_H, beta_1..beta_H]`` then (cooperative) ``[delta_1..delta_M]``.
  Non-finite entries are replaced first (NaN -> -1, i.e. the minimum;
  +inf -> +1; -inf -> -1), everything is clipped to ``[-1, 1]`` and mapped
  affinely onto the ranges; ``B`` and ``f`` are rounded to the nearest integer,
  ``beta`` to the nearest 0.05 grid level, ``delta`` stays in ``[0, 1]``.
* **Exact credit bookkeeping.** Money is counted in integer *credit units* of
  ``params.credit_unit`` (default 1e-4) in ``int32``: a Head's cost is rounded
  up to whole units, donations ``D = floor(delta * S)``. Every transfer is an
  integer, so ``sum(budget) + GCP + spent == initial_total`` holds exactly.
* **All-or-nothing.** An MSP serves all its active Heads or none. A dropping MSP
  pays nothing and keeps its budget (its surplus is then its whole budget).
* **GCP.** Deficits ``W_m = [cost - budget]+`` are covered in MSP index order
  (a ``lax.scan``) while the pool holds ``>= W_m`` and the MSP's cumulative
  withdrawals stay ``<= withdraw_ratio x`` its cumulative deposits (``inf``: no
  limit). A covered MSP pays its whole budget plus ``W_m`` from the pool. Then
  each MSP donates ``floor(delta_m * S_m)`` of its surplus.
* **Stuck counter / early end.** A step is *stuck* when requests were active
  and none was served; the counter resets when something is served. The
  episode terminates when it reaches ``stuck_limit`` (``0`` disables it), in
  both settings; only the cooperative observation shows it.
* **Terminal bonus** ``w_fin * #(served with 0 < I <= I_max)`` is paid at the
  horizon step (truncation) only, as the seed writes it at ``t = T``.
* **Episode length** ``T``: ``params.episode_steps`` where set (``<= horizon``), else the
  ``horizon``; one program padded to the longest horizon runs several (a mask).
* **Budgets.** The initial total is ``budget_factor * budget_scale`` times the
  cost of serving every request expected in ``T_ref`` steps (``p_req * T_ref``
  per Head; spec v2: ``T_ref = 100`` whatever the horizon, so longer episodes
  must ration the same budget; ``T_ref = T`` is the v1 sizing) at the
  myopic-optimal allocation for the room's mean client count, which we take as
  the mean of the reset distribution ``(1 + V_max)/2``, and the mean SLA
  accuracy ``(eps_min + eps_max)/2``. Split equally, or (``unbalanced_budgets``)
  with weights ``linspace(0.4, 1.6, M)`` normalised.
* **Observation** ``fulfilled-so-far / expected`` counts Head-level fulfilled
  requests over the expected ``p_req * T * heads_per_msp`` of the MSP. ``observe_sla``
  (not in the spec) adds ``(eps - eps_min) / (eps_max - eps_min)`` per Head after the
  request indicators: what Myopic-Optimal knows and the spec's agent does not.

A gymnax environment (``core.env``; ``num_actions`` = :attr:`CivicEnv.action_size`);
:func:`validate_params` checks parameters host-side, naming the bad field.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxtwin.core.concrete import compiled_when_concrete
from jaxtwin.core.config import ConfigError
from jaxtwin.core.env import Environment
from jaxtwin.core.spaces import Box
from jaxtwin.civic import model as cm
from jaxtwin.civic.params import EnvParams, validate_params
from jaxtwin.civic.sampling import poisson_small_rate  # noqa: F401 - also public here


@struct.dataclass
class CivicState:
    """Environment state; money fields are integer credit units."""

    t: jnp.ndarray
    clients: jnp.ndarray          # (H,) int32, clients of the coming step
    requests: jnp.ndarray         # (H,) bool, active requests of the coming step
    eps: jnp.ndarray              # (H,) structural accuracy (SLA, held per episode)
    budget: jnp.ndarray           # (M,) int32
    initial_budget: jnp.ndarray   # (M,) int32
    gcp: jnp.ndarray              # int32
    spent: jnp.ndarray            # int32, cumulative spend
    deposited: jnp.ndarray        # (M,) int32, cumulative donations
    withdrawn: jnp.ndarray        # (M,) int32, cumulative GCP withdrawals
    stuck: jnp.ndarray            # int32
    n_requests: jnp.ndarray       # (M,) int32, Head-level requests so far
    n_served: jnp.ndarray         # (M,) int32, completed (served) requests
    n_fulfilled: jnp.ndarray      # (M,) int32, served with I >= threshold
    n_msp_fulfilled: jnp.ndarray  # (M,) int32, steps with L_m = 1
    served_clients: jnp.ndarray   # int32, sum of C over served requests
    requested_clients: jnp.ndarray  # int32, sum of C over all requests
    bonus_count: jnp.ndarray      # int32, served with 0 < I <= I_max
    immersion_sum: jnp.ndarray    # float, sum of I over served requests
    cost_sum: jnp.ndarray         # float, sum of (unrounded) costs paid


@struct.dataclass
class Allocation:
    """A projected action: per Head ``B, f, beta_index, beta``; per MSP ``delta``."""

    B: jnp.ndarray
    f: jnp.ndarray
    beta_index: jnp.ndarray
    beta: jnp.ndarray
    delta: jnp.ndarray


def _unit(x):
    """Sanitise an action entry: NaN -> -1 (minimum), +-inf -> +-1, clip to [-1, 1]."""
    x = jnp.nan_to_num(jnp.asarray(x, jnp.float32), nan=-1.0, posinf=1.0, neginf=-1.0)
    return (jnp.clip(x, -1.0, 1.0) + 1.0) / 2.0


class CivicEnv(Environment[CivicState, EnvParams]):
    """Centralised CIVIC allocation environment.

    Args:
        n_msps: number of MSPs ``M``.
        heads_per_msp: Heads per MSP (Head ``h`` belongs to MSP ``h // heads_per_msp``).
        horizon: episode length ``T``.
        cooperative: enable the GCP (adds ``delta`` actions and two observations).
        observe_sla: also observe each Head's SLA accuracy (module doc: Observation).
    """

    def __init__(self, n_msps: int = 3, heads_per_msp: int = 1, horizon: int = 100,
                 cooperative: bool = True, observe_sla: bool = False):
        for name, v in (("n_msps", n_msps), ("heads_per_msp", heads_per_msp), ("horizon", horizon)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"CivicEnv.{name}={v!r}: must be an integer >= 1")
        self.n_msps = n_msps
        self.heads_per_msp = heads_per_msp
        self.horizon = horizon
        self.cooperative = bool(cooperative)
        self.observe_sla = bool(observe_sla)
        self.n_heads = n_msps * heads_per_msp
        self.types = cm.head_types(self.n_heads)
        self.owner = jnp.arange(self.n_heads, dtype=jnp.int32) // heads_per_msp
        self.grid_sizes = cm.grid_sizes(cm.default_room_table())

    def _shape(self) -> tuple:
        return (self.n_msps, self.heads_per_msp, self.horizon, self.cooperative, self.observe_sla)

    def __eq__(self, other) -> bool:
        """Envs of the same shape arguments are interchangeable (so compiled programs are shared)."""
        return type(other) is type(self) and other._shape() == self._shape()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._shape()))

    # ------------------------------------------------------------- contract
    @property
    def name(self) -> str:
        """``"CIVIC-coop"`` (GCP on) or ``"CIVIC-noncoop"``."""
        return "CIVIC-coop" if self.cooperative else "CIVIC-noncoop"

    @property
    def default_params(self) -> EnvParams:
        """Spec defaults; unbalanced budgets in the cooperative setting."""
        return EnvParams(unbalanced_budgets=self.cooperative)

    @property
    def action_size(self) -> int:
        """Length of the flat action vector."""
        return 3 * self.n_heads + (self.n_msps if self.cooperative else 0)

    @property
    def obs_size(self) -> int:
        """Length of the flat observation vector."""
        return (2 * self.n_msps + (3 if self.observe_sla else 2) * self.n_heads + 1
                + (2 if self.cooperative else 0))

    def action_space(self, params: EnvParams | None = None) -> Box:
        """Flat Box in ``[-1, 1]`` (see the module doc for the layout)."""
        return Box(-1.0, 1.0, (self.action_size,))

    def observation_space(self, params: EnvParams | None = None) -> Box:
        """Flat Box in ``[0, 1]``."""
        return Box(0.0, 1.0, (self.obs_size,))

    # -------------------------------------------------------------- helpers
    def rooms(self, params: EnvParams) -> cm.RoomTable:
        """Per-Head room parameters (the table gathered by Head type)."""
        return cm.rooms_for_heads(params.room_table, self.types)

    def msp_sum(self, x):
        """Sum a per-Head array into a per-MSP array."""
        return jax.ops.segment_sum(x, self.owner, num_segments=self.n_msps)

    def decode_action(self, action, params: EnvParams) -> Allocation:
        """Project a flat action onto the admissible sets (module doc)."""
        action = jnp.asarray(action, jnp.float32)
        if action.shape != (self.action_size,):
            raise ValueError(f"CivicEnv action: expected shape ({self.action_size},), got {action.shape}")
        H = self.n_heads
        u = _unit(action)
        r = self.rooms(params)
        B = jnp.round(r.B_min + u[:H] * (r.B_max - r.B_min))
        f = jnp.round(r.f_min + u[H:2 * H] * (r.f_max - r.f_min))
        levels = cm.beta_levels(r)
        k = jnp.round(u[2 * H:3 * H] * (levels - 1)).astype(jnp.int32)
        beta = r.beta_min + cm.BETA_STEP * k
        delta = u[3 * H:] if self.cooperative else jnp.zeros((self.n_msps,), jnp.float32)
        return Allocation(B=B, f=f, beta_index=k, beta=beta, delta=delta)

    def encode_allocation(self, B, f, beta_index, delta, params: EnvParams):
        """Inverse of :meth:`decode_action`: admissible values -> flat action in ``[-1, 1]``."""
        r = self.rooms(params)
        span = lambda lo, hi: jnp.where(hi > lo, hi - lo, 1.0)  # noqa: E731
        levels = cm.beta_levels(r)
        parts = [
            2.0 * (B - r.B_min) / span(r.B_min, r.B_max) - 1.0,
            2.0 * (f - r.f_min) / span(r.f_min, r.f_max) - 1.0,
            2.0 * beta_index / jnp.maximum(levels - 1, 1) - 1.0,
        ]
        if self.cooperative:
            parts.append(2.0 * jnp.asarray(delta, jnp.float32) * jnp.ones((self.n_msps,)) - 1.0)
        return jnp.clip(jnp.concatenate([jnp.asarray(p, jnp.float32) for p in parts]), -1.0, 1.0)

    def initial_budgets(self, params: EnvParams):
        """Per-MSP initial budgets in credit units (module doc); concrete params run compiled."""
        return _initial_budgets(self, params)

    def _budgets(self, params: EnvParams):
        r = self.rooms(params)
        c_mean = (1.0 + r.V_max) / 2.0
        eps_mean = (r.eps_min + r.eps_max) / 2.0
        cost = cm.myopic_optimal(r, eps_mean, c_mean, params.threshold, params.constants,
                                 self.grid_sizes)[5]
        total = params.budget_factor * params.budget_scale * params.p_req * params.T_ref * jnp.sum(cost)
        total_units = jnp.floor(total / params.credit_unit)
        w = jnp.where(params.unbalanced_budgets,
                      jnp.linspace(params.budget_weight_lo, params.budget_weight_hi, self.n_msps),
                      jnp.ones((self.n_msps,)))
        w = w / jnp.sum(w)
        return jnp.floor(total_units * w).astype(jnp.int32)

    def _draw_requests(self, key, params):
        return jax.random.bernoulli(key, params.p_req, (self.n_heads,))

    def _draw_clients(self, key, clients, params):
        r = self.rooms(params)
        k_arr, k_dep = jax.random.split(key)
        arr = poisson_small_rate(k_arr, r.r_arr)
        dep = poisson_small_rate(k_dep, r.r_dep)
        return jnp.clip(clients + arr - dep, 1, r.V_max.astype(jnp.int32)).astype(jnp.int32)

    def get_obs(self, state: CivicState, params: EnvParams, key=None):
        """Flat observation (spec §5), every entry in ``[0, 1]`` (``key``: unused, gymnax's signature)."""
        r = self.rooms(params)
        init = jnp.maximum(state.initial_budget, 1)
        steps = self.episode_steps(params)
        expected = jnp.maximum(params.p_req * steps * self.heads_per_msp, 1e-9)
        parts = [
            state.budget.astype(jnp.float32) / init,
            jnp.minimum(state.n_fulfilled / expected, 1.0),
            state.clients / r.V_max,
            state.requests.astype(jnp.float32),
            jnp.reshape(state.t / steps, (1,)),
        ]
        if self.observe_sla:
            parts.insert(4, (state.eps - r.eps_min) / jnp.maximum(r.eps_max - r.eps_min, 1e-9))
        if self.cooperative:
            total = jnp.maximum(jnp.sum(state.initial_budget), 1)
            limit = jnp.maximum(params.stuck_limit, 1)
            parts += [jnp.reshape(state.gcp / total, (1,)),
                      jnp.reshape(jnp.minimum(state.stuck / limit, 1.0), (1,))]
        return jnp.clip(jnp.concatenate([jnp.asarray(p, jnp.float32) for p in parts]), 0.0, 1.0)

    def episode_steps(self, params: EnvParams) -> jax.Array:
        """The episode length ``T``: ``params.episode_steps`` where set, else the horizon."""
        return jnp.where(params.episode_steps > 0, params.episode_steps, self.horizon)

    # ----------------------------------------------------------- dynamics
    def check_params(self, params: EnvParams) -> None:
        """:func:`validate_params` with this env's shape: ``reset``/``step`` run it on concrete
        params given to them (zero cost under ``jit``)."""
        validate_params(params, self)

    def reset_env(self, key, params: EnvParams):
        """Fresh episode: clients, SLA accuracies, first requests, budgets."""
        k_c, k_eps, k_req = jax.random.split(key, 3)
        r = self.rooms(params)
        clients = jax.random.randint(k_c, (self.n_heads,), 1, r.V_max.astype(jnp.int32) + 1)
        eps = jax.random.uniform(k_eps, (self.n_heads,), minval=r.eps_min, maxval=r.eps_max)
        budget = self.initial_budgets(params)
        zi = jnp.zeros((self.n_msps,), jnp.int32)
        z = jnp.asarray(0, jnp.int32)
        state = CivicState(
            t=z, clients=clients.astype(jnp.int32), requests=self._draw_requests(k_req, params),
            eps=eps, budget=budget, initial_budget=budget, gcp=z, spent=z,
            deposited=zi, withdrawn=zi, stuck=z, n_requests=zi, n_served=zi, n_fulfilled=zi,
            n_msp_fulfilled=zi, served_clients=z, requested_clients=z, bonus_count=z,
            immersion_sum=jnp.asarray(0.0, jnp.float32), cost_sum=jnp.asarray(0.0, jnp.float32))
        return self.get_obs(state, params), state

    def settle(self, budget, gcp, deposited, withdrawn, cost_units, active_msp, delta, params):
        """Budget rule and GCP for one step, all in integer credit units.

        Returns ``(served_msp, paid, budget', gcp', deposited', withdrawn')``.
        ``served_msp[m]`` is False when MSP ``m`` had requests it could not pay for.
        """
        deficit = jnp.maximum(cost_units - budget, 0)
        if not self.cooperative:
            served = deficit == 0
            paid = jnp.where(served, cost_units, 0)
            return served, paid, budget - paid, gcp, deposited, withdrawn

        ratio = params.withdraw_ratio

        def cover(pool, xs):
            w, dep, wd = xs
            ratio_ok = jnp.isinf(ratio) | ((wd + w).astype(jnp.float32) <= ratio * dep.astype(jnp.float32))
            ok = (w > 0) & (pool >= w) & ratio_ok
            return pool - jnp.where(ok, w, 0), ok

        gcp_after, covered = jax.lax.scan(cover, gcp, (deficit, deposited, withdrawn))
        served = (deficit == 0) | covered
        paid = jnp.where(served, cost_units, 0)
        taken = jnp.where(covered, deficit, 0)
        surplus = budget - (paid - taken)   # a covered MSP spends its whole budget
        donation = jnp.floor(jnp.clip(delta, 0.0, 1.0) * surplus.astype(jnp.float32)).astype(jnp.int32)
        donation = jnp.clip(donation, 0, surplus)
        return (served, paid, surplus - donation, gcp_after + jnp.sum(donation),
                deposited + donation, withdrawn + taken)

    def step_env(self, key, state: CivicState, action, params: EnvParams):
        """Serve the current requests with the projected action, then advance clients and requests."""
        alloc = self.decode_action(action, params)
        r = self.rooms(params)
        c = params.constants
        active = state.requests
        C = state.clients.astype(jnp.float32)
        I = cm.immersion(alloc.B, alloc.f, alloc.beta, state.eps, r, c)
        cost = cm.head_cost(alloc.B, alloc.f, alloc.beta, C, r, c)
        cost_units = jnp.where(active, jnp.ceil(cost / params.credit_unit), 0.0).astype(jnp.int32)
        active_i = active.astype(jnp.int32)
        active_msp = self.msp_sum(active_i) > 0
        served_msp, paid, budget, gcp, deposited, withdrawn = self.settle(
            state.budget, state.gcp, state.deposited, state.withdrawn,
            self.msp_sum(cost_units), active_msp, alloc.delta, params)

        served = active & served_msp[self.owner]
        fulfilled = served & (I >= params.threshold)
        n_active_m = self.msp_sum(active_i)
        n_served_m = self.msp_sum(served.astype(jnp.int32))
        n_fulfilled_m = self.msp_sum(fulfilled.astype(jnp.int32))
        L = active_msp & (n_fulfilled_m == n_active_m)
        bonus = served & (I > 0) & (I <= params.I_max)

        score = jnp.where(served, cm.efficiency_score(I, params.threshold), -1.0)
        reward = params.w_imm * jnp.sum(jnp.where(active, score, 0.0))

        any_active = jnp.any(active)
        any_served = jnp.any(served)
        stuck = jnp.where(any_served, 0, jnp.where(any_active, state.stuck + 1, state.stuck))
        t = state.t + 1
        truncated_raw = t >= self.episode_steps(params)
        terminated = (params.stuck_limit > 0) & (stuck >= params.stuck_limit) & ~truncated_raw
        bonus_count = state.bonus_count + jnp.sum(bonus.astype(jnp.int32))
        reward = reward + jnp.where(truncated_raw, params.w_fin * bonus_count, 0.0)

        k_c, k_req = jax.random.split(key)
        new_state = CivicState(
            t=t, clients=self._draw_clients(k_c, state.clients, params),
            requests=self._draw_requests(k_req, params), eps=state.eps,
            budget=budget, initial_budget=state.initial_budget, gcp=gcp,
            spent=state.spent + jnp.sum(paid), deposited=deposited, withdrawn=withdrawn,
            stuck=stuck, n_requests=state.n_requests + n_active_m,
            n_served=state.n_served + n_served_m, n_fulfilled=state.n_fulfilled + n_fulfilled_m,
            n_msp_fulfilled=state.n_msp_fulfilled + L.astype(jnp.int32),
            served_clients=state.served_clients + jnp.sum(jnp.where(served, state.clients, 0)),
            requested_clients=state.requested_clients + jnp.sum(jnp.where(active, state.clients, 0)),
            bonus_count=bonus_count,
            immersion_sum=state.immersion_sum + jnp.sum(jnp.where(served, I, 0.0)),
            cost_sum=state.cost_sum + jnp.sum(jnp.where(served, cost, 0.0)),
        )
        info = {
            "served": jnp.sum(served.astype(jnp.int32)),
            "requests": jnp.sum(active_i),
            "fulfilled": jnp.sum(fulfilled.astype(jnp.int32)),
            "cost": jnp.sum(jnp.where(served, cost, 0.0)),
        }
        truncated = truncated_raw & ~terminated
        return (self.get_obs(new_state, params), new_state, reward.astype(jnp.float32),
                terminated, truncated, info)


def credit_total(state: CivicState):
    """``sum(budget) + GCP + spent`` in credit units (equals ``sum(initial_budget)``)."""
    return jnp.sum(state.budget) + state.gcp + state.spent


def default_params(cooperative: bool = True) -> EnvParams:
    """The spec's CIVIC constants, as ``CivicEnv(cooperative=...).default_params``
    gives them (unbalanced budgets in the cooperative setting)."""
    return EnvParams(unbalanced_budgets=cooperative)


_initial_budgets = compiled_when_concrete(lambda env, params: env._budgets(params), static_argnames=("env",))
