"""The sync game on the study engine (:mod:`jaxtwin.core.engine`): any grid over
the game's constants, solved per point by each scheme in one vmapped float64
program per scheme.

Schemes: ``nash`` (open-loop Nash by collocation, :mod:`jaxtwin.syncgame.collocation`,
with the replicator rest point under its plateau controls), ``stackelberg``
(open-loop Stackelberg, leader ``leader``, by collocation from the Nash solution,
:mod:`jaxtwin.syncgame.stackelberg_collocation`) and ``static``
(static Stackelberg in constants). Each row carries ``residual``, ``converged``
and ``iterations``; a solve that did not converge is kept and marked, never
hidden (the CLI report counts them).

Fields: the scalars ``a, b, N, d, s, sigma, r, T, u_max``; ``c, p, rho, xbar,
x0, D`` set for every VSP; ``delta_k`` and ``p_k`` for the focal VSP ``k = 2``
(as in the paper's sensitivity studies); the payoff weights ``w1..w4``. Shape
fields: ``n_vsp`` (2-4, spec defaults), ``n_grid`` (collocation nodes),
``leader``. No seeds: the solves are deterministic.
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.core.memory import Need, lanes_per_device
from jaxtwin.core.study import AxisField
from jaxtwin.syncgame.checks import REST_POINT_TOL
from jaxtwin.syncgame.collocation import CollocationOptions, solve_nash_collocation
from jaxtwin.syncgame.params import call_float64, default_params, validate_params
from jaxtwin.syncgame.results import Result
from jaxtwin.syncgame.replicator import replicator_field, replicator_rest_point
from jaxtwin.syncgame.sizes import collocation_bytes, stackelberg_collocation_bytes, static_bytes
from jaxtwin.syncgame.stackelberg import split_roles
from jaxtwin.syncgame.stackelberg_collocation import stackelberg_collocation
from jaxtwin.syncgame.static import static_stackelberg

FOCAL = 1
SCHEMES = ("nash", "stackelberg", "static")
_SCALARS = ("a", "b", "N", "d", "s", "sigma", "r", "T", "u_max")
_PER_VSP = ("c", "p", "rho", "xbar", "x0", "D")
SHAPE_FIELDS = {
    "n_vsp": AxisField("n_vsp", int, 4, "shape", "VSPs (2-4, spec defaults)"),
    "n_grid": AxisField("n_grid", int, 101, "shape", "collocation nodes on [0, T]"),
    "leader": AxisField("leader", int, 0, "shape", "Stackelberg leader (VSP index from 0)"),
}


def _param_fields() -> dict[str, AxisField]:
    base = default_params(4)
    out = {n: AxisField(n, float, float(getattr(base, n))) for n in _SCALARS}
    out.update({n: AxisField(n, float, float(getattr(base, n)[0]), help="every VSP") for n in _PER_VSP})
    out["delta_k"] = AxisField("delta_k", float, float(base.delta[FOCAL]), help="decay rate of VSP 2")
    out["p_k"] = AxisField("p_k", float, float(base.p[FOCAL]), help="data price of VSP 2")
    out.update({f"w{i + 1}": AxisField(f"w{i + 1}", float, float(base.w[i]), help="payoff weight")
                for i in range(4)})
    return out


def _with(params, values: Mapping[str, Any]):
    for name, v in values.items():
        if name in _SCALARS:
            params = params.replace(**{name: jnp.asarray(v, params.r.dtype)})
        elif name in _PER_VSP:
            params = params.replace(**{name: jnp.full_like(getattr(params, name), v)})
        elif name in ("delta_k", "p_k"):
            field = name[:-2]
            params = params.replace(**{field: getattr(params, field).at[FOCAL].set(v)})
        else:   # w1..w4
            params = params.replace(w=params.w.at[int(name[1]) - 1].set(v))
    return params


def _nash(params, opts: CollocationOptions):
    sol = solve_nash_collocation(params, opts)
    # the plateau as in the sensitivity studies (experiments.plateau_mean): the time average
    # over [0.4T, 0.6T], by linear interpolation on 41 points
    t_eval = jnp.linspace(0.4 * params.T, 0.6 * params.T, 41)
    u_plat = jax.vmap(lambda u: jnp.interp(t_eval, sol.ts, u).mean(), in_axes=1)(sol.controls)
    y = replicator_rest_point(params, u_plat)
    rest_res = jnp.maximum(jnp.max(jnp.abs(replicator_field(params, y, u_plat))), jnp.abs(jnp.sum(y) - 1.0))
    return dict(payoffs=sol.payoffs, residual=sol.residual, converged=sol.converged & (rest_res <= REST_POINT_TOL),
                iterations=sol.iterations, u_plateau=u_plat, y_rest=y, rest_residual=rest_res)


def _static(params, leaders, n_grid: int):
    sol = static_stackelberg(params, leaders, n_grid)
    return dict(payoffs=sol.payoffs, residual=sol.residual, converged=sol.result == Result.CONVERGED,
                iterations=jnp.asarray(0), u_constant=sol.controls)


class Runner:
    """One (n_vsp, n_grid, leader) group: each scheme one vmapped float64 program."""

    def __init__(self, shape: Mapping[str, Any], schemes: tuple[str, ...], devices: int):
        self.m, self.policies, self.devices = shape["n_vsp"], schemes, devices
        if not 0 <= shape["leader"] < self.m:
            from jaxtwin.core.config import ConfigError
            raise ConfigError(f"study field leader={shape['leader']}: must be a VSP index in [0, {self.m})")
        self.base = default_params(self.m)
        self.leaders, _ = split_roles(self.m, (shape["leader"],))
        self.copts = CollocationOptions(n_grid=shape["n_grid"], tol=1e-9, grading=0.7, coarse_grid=9)
        self.n_grid = shape["n_grid"]
        per = [f"{k}_vsp{i + 1}" for k in ("payoff", "u_plateau", "y_rest", "u_constant") for i in range(self.m)]
        self.metrics = ("payoff_total", *per[:self.m], "residual", "converged", "iterations",
                        *per[self.m:], "rest_residual")

    def needs(self, chunk: int) -> list[Need]:
        """Peak bytes of each scheme's program on ``chunk`` points (engine: checked before any work)."""
        one = {"nash": collocation_bytes(self.m, self.n_grid),
               "stackelberg": stackelberg_collocation_bytes(self.m, len(self.leaders), self.n_grid),
               "static": static_bytes(self.m, self.n_grid)}
        lanes = lanes_per_device(chunk, self.devices)
        return [Need(lanes * one[s], f"syncgame sweep: the {s} solves of {chunk} points ({self.m} VSPs, "
                     f"{self.n_grid} nodes)", "--chunk or n_grid") for s in self.policies]

    def params(self, values: Mapping[str, Any]):
        """The spec defaults for ``n_vsp`` VSPs with ``values``, checked (``ConfigError`` names the field)."""
        return validate_params(_with(self.base, values))

    def _solve(self, scheme: str, stacked):
        if scheme == "nash":
            return call_float64(_nash, stacked, static=(self.copts,), batched=True, devices=self.devices)
        if scheme == "stackelberg":
            sol = stackelberg_collocation(stacked, self.leaders, self.copts, batched=True, devices=self.devices)
            return dict(payoffs=sol.payoffs, residual=sol.residual, converged=sol.converged,
                        iterations=sol.iterations)
        return call_float64(_static, stacked, static=(self.leaders, self.n_grid), batched=True,
                            devices=self.devices)

    def __call__(self, stacked, keys) -> dict[str, np.ndarray]:
        n = np.asarray(stacked.r).shape[0]
        out = {m: np.full((n, len(self.policies), 1), np.nan) for m in self.metrics}
        for j, scheme in enumerate(self.policies):
            res = jax.tree.map(np.asarray, self._solve(scheme, stacked))
            out["payoff_total"][:, j, 0] = res["payoffs"].sum(-1)
            for name, arr in res.items():
                if arr.ndim == 2:
                    for i in range(self.m):
                        key = "payoff" if name == "payoffs" else name
                        out[f"{key}_vsp{i + 1}"][:, j, 0] = arr[:, i]
                else:
                    out[name][:, j, 0] = arr
        out["converged"] = out["converged"] > 0.5
        return out


class SyncGameAdapter:
    """The study engine's view of the sync game (see the module doc)."""

    system = "syncgame"
    policy_label = "scheme"
    seed_label = "seed"
    stochastic = False
    default_seeds = 1
    plot_metrics = ("payoff_total", "payoff_vsp2", "y_rest_vsp2")
    metric_labels = {"payoff_total": "total discounted payoff", "payoff_vsp2": "discounted payoff of VSP 2",
                     "y_rest_vsp2": "UAV share of VSP 2 at the rest point"}

    def __init__(self):
        self.fields = {**SHAPE_FIELDS, **_param_fields()}

    def policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """The three schemes."""
        return SCHEMES

    def default_policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """All three schemes."""
        return SCHEMES

    def keys(self, seed: int, n: int):
        """No randomness: a placeholder the runner ignores."""
        return None

    def group(self, shape, fixed_params, policies, n_seeds, devices) -> Runner:
        """The runner of one (n_vsp, n_grid, leader) group."""
        return Runner(shape, policies, devices)


ADAPTER = SyncGameAdapter()
