"""CIVIC (spec ``civic.md``) as a plain NumPy single environment, and a thin
``gymnasium.Env`` around it for Stable-Baselines3 — the usual way this problem
is simulated and trained today, used only for agreement checks and timing.

* :class:`CivicNumpy` — one episode at a time, one step at a time, NumPy arrays
  over Heads and a Python loop over MSPs for the GCP; no gymnasium needed.
* :class:`CivicGymEnv` — ``gymnasium.Env`` subclass (only when gymnasium is
  installed; otherwise constructing it raises ``ImportError``).

It is an independent implementation of the spec's tables and formulas (it
does not import jaxtwin) and makes the same readings as ``jaxtwin.civic.env``
so the two can be compared step for step: the same observation vector, action
layout and projection, reward, integer credit units (``ceil`` of a Head's cost,
``floor`` of a donation), all-or-nothing budgets, GCP covering in MSP order,
stuck counter and early end. Physics is computed in float64; the action
projection and the donation product are done in float32 like jaxtwin so both
round/floor to the same integers.

Random draws: ``reset``/``step`` draw with the env's own ``numpy.random``
generator, or take them from ``draws`` (``reset``: ``clients``, ``eps``,
``requests``; ``step``: ``arrivals``, ``departures``, ``requests`` of the next
step) so a test can feed both implementations the same numbers.
"""
from __future__ import annotations

import math

import numpy as np

ROOM_TABLE = {
    #            Library  Arena   Gallery   (spec §1, seed Table III)
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
"""Per-room-type parameters, rows Library, Arena, Gallery."""

CONSTANTS = dict(N_max=100.0, SV_max=100.0, U_max=10.0, P_max=1e5, O_max=100.0, A_max=10.0,
                 e0=0.65, e1=0.368, e2=1.23e-3, e3=0.85, e4=1.23e-3,
                 j1=36.13, j2=-1.66e-2, j3=11.62, j4=-6.07e-3,
                 K_comp=0.01, K_net=0.01, phi=0.1, tau=1.0)
"""General constants (spec §1, seed Table IV)."""

HEAD_TYPE_CYCLE = (0, 1, 2, 0, 2, 1, 2, 0, 0)
BETA_STEP = 0.05


class Rooms:
    """The room table gathered per Head: attribute ``x`` is a float64 array ``(H,)``."""

    def __init__(self, types):
        for k, v in ROOM_TABLE.items():
            setattr(self, k, np.asarray(v, np.float64)[types])


def _minmax(x, lo, hi):
    span = hi - lo
    small = np.abs(span) < 1e-12
    return np.where(small, 1.0, (x - lo) / np.where(small, 1.0, span))


def qope(B, r: Rooms):
    """``w_sigma ssim(B) + w_eta vmaf(B)/100`` (spec §2)."""
    c = CONSTANTS
    ssim = np.maximum(c["e0"], 1.0 - (c["e1"] + c["e2"] * r.omega) * B ** (-(c["e3"] + c["e4"] * r.omega)))
    vmaf = np.minimum(100.0, c["j1"] + c["j2"] * r.omega + c["j3"] * B + c["j4"] * r.omega * B)
    return r.w_sigma * ssim + r.w_eta * vmaf / 100.0


def dt_accuracy(eps, beta, tau):
    """``3 / (1/eps + 1/beta + 1/tau)``, 0 if any term is 0."""
    eps, beta = np.asarray(eps, np.float64), np.asarray(beta, np.float64)
    zero = (eps == 0) | (beta == 0) | (tau == 0)
    with np.errstate(divide="ignore"):
        a = 3.0 / (1.0 / np.where(zero, 1.0, eps) + 1.0 / np.where(zero, 1.0, beta) + 1.0 / tau)
    return np.where(zero, 0.0, a)


def normalisation_bounds(r: Rooms) -> dict:
    """The min-max bounds of ``Q``, ``F`` and ``A`` (constants of the room table)."""
    tau = CONSTANTS["tau"]
    return dict(q=(qope(r.B_min, r), qope(r.B_max, r)), f=(r.f_min, r.f_max),
                a=(dt_accuracy(r.eps_min, r.beta_min, tau), dt_accuracy(r.eps_max, r.beta_max, tau)))


def immersion(B, f, beta, eps, r: Rooms, bounds: dict | None = None):
    """Normalised immersion ``I`` of each Head (spec §2); ``bounds`` from
    :func:`normalisation_bounds` (computed if not given)."""
    bounds = normalisation_bounds(r) if bounds is None else bounds
    q = _minmax(qope(B, r), *bounds["q"])
    fr = _minmax(f, *bounds["f"])
    a = _minmax(dt_accuracy(eps, beta, CONSTANTS["tau"]), *bounds["a"])
    return (r.w_q * q + r.w_f * fr + r.w_a * a) / (r.w_q + r.w_f + r.w_a)


def head_cost(B, f, beta, C, r: Rooms):
    """Cost of serving each Head with ``C`` clients at ``(B, f, beta)`` (spec §3)."""
    c = CONSTANTS
    comp = (r.P_v / c["P_max"] + r.O_v / c["O_max"] + r.A_v / c["A_max"]
            + r.N_d / c["N_max"] + r.SV_d / c["SV_max"] + r.U_d / c["U_max"])
    net = B + c["phi"] * r.B_min * beta
    C = np.asarray(C, np.float64)
    shared = 1.0 - r.iota * (1.0 - (C / r.V_max) ** r.Lambda)
    s_comp = (f / r.f_min) ** r.kappa_comp * C ** r.theta_comp * shared
    s_net = (f / r.f_min) ** r.kappa_net * C ** r.theta_net * shared
    return c["K_comp"] * comp * s_comp + c["K_net"] * net * s_net


def efficiency_score(I, thr):
    """Reward shaping ``phi(I)`` (spec §5)."""
    return np.where(I < thr, -1.0, np.where(I <= 1.1 * thr, 1.5, 0.5 - np.minimum(0.3, (I - thr) / thr)))


def myopic_optimal_cost(r: Rooms, eps, C, thr):
    """Per Head: cost of the cheapest grid allocation with ``I >= thr`` (else the
    highest ``I``, ties to the cheapest), by enumerating the full grid."""
    out = np.empty(len(r.B_min))
    for h in range(len(out)):
        rh = Rooms.__new__(Rooms)
        rh.__dict__ = {k: v[h] for k, v in r.__dict__.items()}
        B = np.arange(rh.B_min, rh.B_max + 0.5)
        f = np.arange(rh.f_min, rh.f_max + 0.5)
        n_beta = int(round((rh.beta_max - rh.beta_min) / BETA_STEP)) + 1
        beta = rh.beta_min + BETA_STEP * np.arange(n_beta)
        Bg, fg, bg = np.meshgrid(B, f, beta, indexing="ij")
        I = immersion(Bg, fg, bg, eps[h], rh).ravel()
        cost = head_cost(Bg, fg, bg, float(C[h]), rh).ravel()
        ok = I >= thr
        if ok.any():
            out[h] = cost[ok].min()
        else:
            out[h] = cost[I >= I.max()].min()
    return out


class CivicNumpy:
    """One CIVIC episode at a time in NumPy (spec §4-5, jaxtwin's readings).

    Same arguments and defaults as ``jaxtwin.civic.env.CivicEnv`` plus its
    ``EnvParams`` fields; ``unbalanced_budgets=None`` means "as ``cooperative``".
    """

    def __init__(self, n_msps: int = 3, heads_per_msp: int = 1, horizon: int = 100,
                 cooperative: bool = True, *, p_req: float = 0.8, threshold: float = 0.85,
                 budget_factor: float = 0.8, budget_scale: float = 1.0, T_ref: float = 100.0,
                 unbalanced_budgets: bool | None = None, withdraw_ratio: float = math.inf,
                 stuck_limit: int = 5, w_imm: float = 1.0, w_fin: float = 0.1, I_max: float = 1.0,
                 credit_unit: float = 1e-4, seed: int | None = None):
        self.n_msps, self.heads_per_msp, self.horizon = n_msps, heads_per_msp, horizon
        self.cooperative = bool(cooperative)
        self.n_heads = H = n_msps * heads_per_msp
        self.p_req, self.threshold = p_req, threshold
        self.withdraw_ratio, self.stuck_limit = withdraw_ratio, stuck_limit
        self.w_imm, self.w_fin, self.I_max, self.credit_unit = w_imm, w_fin, I_max, credit_unit
        self.types = np.asarray([HEAD_TYPE_CYCLE[i % len(HEAD_TYPE_CYCLE)] for i in range(H)])
        self.owner = np.arange(H) // heads_per_msp
        self.rooms = r = Rooms(self.types)
        self.bounds = normalisation_bounds(r)
        self.v_max_int = r.V_max.astype(np.int64)
        # float32 projection constants, as jaxtwin maps the action
        self._lo32 = {k: getattr(r, k).astype(np.float32) for k in ("B_min", "f_min", "beta_min")}
        self._span32 = {"B": (r.B_max - r.B_min).astype(np.float32),
                        "f": (r.f_max - r.f_min).astype(np.float32)}
        self.beta_levels = np.round((r.beta_max - r.beta_min) / BETA_STEP).astype(np.int64) + 1
        self.action_size = 3 * H + (n_msps if self.cooperative else 0)
        self.obs_size = 2 * n_msps + 2 * H + 1 + (2 if self.cooperative else 0)
        unbalanced = self.cooperative if unbalanced_budgets is None else unbalanced_budgets
        c_mean = (1.0 + r.V_max) / 2.0
        eps_mean = (r.eps_min + r.eps_max) / 2.0
        cost = myopic_optimal_cost(r, eps_mean, c_mean, threshold)
        # spec v2: the budget covers the requests expected in T_ref steps, whatever the horizon
        total_units = math.floor(budget_factor * budget_scale * p_req * T_ref * cost.sum() / credit_unit)
        w = np.linspace(0.4, 1.6, n_msps) if unbalanced else np.ones(n_msps)
        self.initial_budget = np.floor(total_units * w / w.sum()).astype(np.int64)
        self.rng = np.random.default_rng(seed)
        self.state: dict = {}

    # ------------------------------------------------------------ helpers
    def msp_sum(self, x):
        """Sum a per-Head array into per-MSP totals."""
        return np.bincount(self.owner, weights=x, minlength=self.n_msps)

    def decode_action(self, action):
        """Project a flat action onto the admissible sets: ``(B, f, beta_index, beta, delta)``."""
        a = np.asarray(action, np.float32).reshape(-1)
        if a.shape != (self.action_size,):
            raise ValueError(f"CivicNumpy action: expected shape ({self.action_size},), got {a.shape}")
        H = self.n_heads
        a = np.clip(a, -1.0, 1.0)  # +-inf -> +-1
        a[np.isnan(a)] = -1.0       # NaN -> the minimum
        u = (a + np.float32(1.0)) / np.float32(2.0)
        B = np.round(self._lo32["B_min"] + u[:H] * self._span32["B"]).astype(np.float64)
        f = np.round(self._lo32["f_min"] + u[H:2 * H] * self._span32["f"]).astype(np.float64)
        k = np.round(u[2 * H:3 * H] * (self.beta_levels - 1).astype(np.float32)).astype(np.int64)
        beta = self.rooms.beta_min + BETA_STEP * k
        delta = u[3 * H:] if self.cooperative else np.zeros(self.n_msps, np.float32)
        return B, f, k, beta, delta

    def settle(self, budget, gcp, deposited, withdrawn, cost_units, delta):
        """Budget rule and GCP in integer credit units (spec §4.4-4.5).

        Returns ``(served_msp, paid, budget', gcp', deposited', withdrawn')``.
        """
        budget = [int(b) for b in budget]
        cost_units = [int(c) for c in cost_units]
        deficit = [max(c - b, 0) for c, b in zip(cost_units, budget)]
        M = self.n_msps
        if not self.cooperative:
            served = [d == 0 for d in deficit]
            paid = [c if s else 0 for c, s in zip(cost_units, served)]
            return (np.asarray(served), np.asarray(paid), np.asarray(budget) - np.asarray(paid),
                    int(gcp), np.asarray(deposited), np.asarray(withdrawn))
        pool = int(gcp)
        dep, wd = [int(x) for x in deposited], [int(x) for x in withdrawn]
        served, paid, new_budget, donations, taken = [], [], [], [], []
        for m in range(M):
            w = deficit[m]
            ratio_ok = math.isinf(self.withdraw_ratio) or \
                np.float32(wd[m] + w) <= np.float32(self.withdraw_ratio) * np.float32(dep[m])
            covered = w > 0 and pool >= w and ratio_ok
            if covered:
                pool -= w
            ok = w == 0 or covered
            p = cost_units[m] if ok else 0
            t = w if covered else 0
            surplus = budget[m] - (p - t)  # a covered MSP spends its whole budget
            # float32 product as in jaxtwin, so both floor to the same unit
            d = int(np.floor(np.float32(min(max(float(delta[m]), 0.0), 1.0)) * np.float32(surplus)))
            d = min(max(d, 0), surplus)
            served.append(ok)
            paid.append(p)
            taken.append(t)
            donations.append(d)
            new_budget.append(surplus - d)
        dep = [a + b for a, b in zip(dep, donations)]
        wd = [a + b for a, b in zip(wd, taken)]
        return (np.asarray(served), np.asarray(paid), np.asarray(new_budget),
                pool + sum(donations), np.asarray(dep), np.asarray(wd))

    def observation(self):
        """Flat float32 observation in ``[0, 1]`` (spec §5, jaxtwin's layout)."""
        s = self.state
        r = self.rooms
        expected = max(self.p_req * self.horizon * self.heads_per_msp, 1e-9)
        parts = [s["budget"] / np.maximum(s["initial_budget"], 1),
                 np.minimum(s["n_fulfilled"] / expected, 1.0),
                 s["clients"] / r.V_max,
                 s["requests"].astype(np.float64),
                 [s["t"] / self.horizon]]
        if self.cooperative:
            parts += [[s["gcp"] / max(int(s["initial_budget"].sum()), 1)],
                      [min(s["stuck"] / max(self.stuck_limit, 1), 1.0)]]
        return np.clip(np.concatenate(parts), 0.0, 1.0).astype(np.float32)

    # ------------------------------------------------------------ dynamics
    def reset(self, seed: int | None = None, draws: dict | None = None):
        """New episode; returns the observation. ``draws``: ``clients``, ``eps``, ``requests``."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        r, H, M = self.rooms, self.n_heads, self.n_msps
        if draws is None:
            clients = self.rng.integers(1, self.v_max_int + 1)
            eps = self.rng.uniform(r.eps_min, r.eps_max)
            requests = self.rng.random(H) < self.p_req
        else:
            clients, eps, requests = draws["clients"], draws["eps"], draws["requests"]
        z = np.zeros(M, np.int64)
        self.state = dict(
            t=0, clients=np.asarray(clients, np.int64), requests=np.asarray(requests, bool),
            eps=np.asarray(eps, np.float64), budget=self.initial_budget.copy(),
            initial_budget=self.initial_budget.copy(), gcp=0, spent=0, deposited=z.copy(),
            withdrawn=z.copy(), stuck=0, n_requests=z.copy(), n_served=z.copy(),
            n_fulfilled=z.copy(), n_msp_fulfilled=z.copy(), served_clients=0,
            requested_clients=0, bonus_count=0, immersion_sum=0.0, cost_sum=0.0)
        return self.observation()

    def step(self, action, draws: dict | None = None):
        """Serve the current requests, then draw the next clients and requests.

        Returns ``(obs, reward, terminated, truncated, info)`` (no auto-reset).
        ``draws``: ``arrivals``, ``departures`` (ints per Head) and ``requests``
        (bools per Head) of the next step.
        """
        s, r = self.state, self.rooms
        B, f, _, beta, delta = self.decode_action(action)
        active = s["requests"]
        C = s["clients"].astype(np.float64)
        I = immersion(B, f, beta, s["eps"], r, self.bounds)
        cost = head_cost(B, f, beta, C, r)
        cost_units = np.where(active, np.ceil(cost / self.credit_unit), 0.0).astype(np.int64)
        served_msp, paid, budget, gcp, deposited, withdrawn = self.settle(
            s["budget"], s["gcp"], s["deposited"], s["withdrawn"],
            self.msp_sum(cost_units).astype(np.int64), delta)
        served = active & served_msp[self.owner]
        fulfilled = served & (I >= self.threshold)
        n_active_m = self.msp_sum(active).astype(np.int64)
        n_served_m = self.msp_sum(served).astype(np.int64)
        n_fulfilled_m = self.msp_sum(fulfilled).astype(np.int64)
        L = (n_active_m > 0) & (n_fulfilled_m == n_active_m)
        bonus = served & (I > 0) & (I <= self.I_max)
        score = np.where(served, efficiency_score(I, self.threshold), -1.0)
        reward = self.w_imm * float(np.sum(np.where(active, score, 0.0)))
        any_served = bool(served.any())
        stuck = 0 if any_served else (s["stuck"] + 1 if active.any() else s["stuck"])
        t = s["t"] + 1
        truncated = t >= self.horizon
        terminated = self.stuck_limit > 0 and stuck >= self.stuck_limit and not truncated
        bonus_count = s["bonus_count"] + int(bonus.sum())
        if truncated:
            reward += self.w_fin * bonus_count
        if draws is None:
            arrivals = self.rng.poisson(r.r_arr)
            departures = self.rng.poisson(r.r_dep)
            requests = self.rng.random(self.n_heads) < self.p_req
        else:
            arrivals, departures, requests = draws["arrivals"], draws["departures"], draws["requests"]
        clients = s["clients"]
        self.state = dict(
            t=t, clients=np.clip(clients + np.asarray(arrivals) - np.asarray(departures), 1, self.v_max_int),
            requests=np.asarray(requests, bool), eps=s["eps"], budget=budget,
            initial_budget=s["initial_budget"], gcp=gcp, spent=s["spent"] + int(paid.sum()),
            deposited=deposited, withdrawn=withdrawn, stuck=stuck,
            n_requests=s["n_requests"] + n_active_m, n_served=s["n_served"] + n_served_m,
            n_fulfilled=s["n_fulfilled"] + n_fulfilled_m,
            n_msp_fulfilled=s["n_msp_fulfilled"] + L,
            served_clients=s["served_clients"] + int(clients[served].sum()),
            requested_clients=s["requested_clients"] + int(clients[active].sum()),
            bonus_count=bonus_count,
            immersion_sum=s["immersion_sum"] + float(I[served].sum()),
            cost_sum=s["cost_sum"] + float(cost[served].sum()))
        info = {"served": int(served.sum()), "requests": int(active.sum()),
                "fulfilled": int(fulfilled.sum()), "cost": float(cost[served].sum())}
        return self.observation(), float(np.float32(reward)), bool(terminated), bool(truncated), info

    def credit_total(self) -> int:
        """``sum(budget) + GCP + spent`` (equals ``sum(initial_budget)``)."""
        s = self.state
        return int(np.sum(s["budget"])) + int(s["gcp"]) + int(s["spent"])


try:  # the gymnasium wrapper is optional: the core above needs only NumPy
    import gymnasium as _gym
    from gymnasium import spaces as _spaces
except ImportError:  # pragma: no cover - exercised where gymnasium is absent
    _gym = None


if _gym is not None:
    class CivicGymEnv(_gym.Env):
        """``gymnasium.Env`` over :class:`CivicNumpy` (keyword arguments are passed on)."""

        metadata = {"render_modes": []}

        def __init__(self, **kwargs):
            super().__init__()
            self.core = CivicNumpy(**kwargs)
            self.action_space = _spaces.Box(-1.0, 1.0, (self.core.action_size,), np.float32)
            self.observation_space = _spaces.Box(0.0, 1.0, (self.core.obs_size,), np.float32)

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            """Start an episode; ``options={"draws": ...}`` feeds the random draws."""
            super().reset(seed=seed)
            if seed is not None:
                self.core.rng = np.random.default_rng(seed)
            return self.core.reset(draws=(options or {}).get("draws")), {}

        def step(self, action):
            """One step: ``(obs, reward, terminated, truncated, info)``."""
            return self.core.step(action)
else:
    class CivicGymEnv:  # type: ignore[no-redef]
        """Placeholder: gymnasium is not installed."""

        def __init__(self, **kwargs):
            raise ImportError("CivicGymEnv needs gymnasium: pip install 'jaxtwin[bench]'")
