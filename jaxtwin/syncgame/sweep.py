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
fields: ``n_vsp`` (2-4, spec defaults), ``n_grid`` (nodes on ``[0, T]``),
``leader``, and the solver's settings ``solver`` (``collocation``, or ``pmp``: the
forward-backward sweep solver, :mod:`jaxtwin.syncgame.nash`), ``tol``, ``max_iter``
and ``linear_solver`` (pmp only). No seeds: the solves are deterministic.

Nash metrics beside the payoffs: per VSP the plateau (mean over ``[0.4T, 0.6T]``,
:func:`~jaxtwin.syncgame.paths.plateau_mean`) of the control, the data level and the
UAV share, the replicator rest point under the plateau controls and its residual,
and ``y_settle_time`` (:func:`~jaxtwin.syncgame.paths.settle_time`); ``converged``
needs the solve and the rest point (``solve_converged``: the solve alone; ``result``:
its :class:`~jaxtwin.syncgame.results.Result` code).
"""
from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.core.config import ConfigError
from jaxtwin.core.memory import Need, lanes_per_device
from jaxtwin.core.study import AxisField
from jaxtwin.syncgame.checks import REST_POINT_TOL
from jaxtwin.syncgame.collocation import CollocationOptions, solve_nash_collocation
from jaxtwin.syncgame.nash import solve_nash
from jaxtwin.syncgame.params import (LEAN_COMPILE, QUICK_COMPILE, call_float64, default_params, validate_params)
from jaxtwin.syncgame.paths import plateau_mean, rest_point, settle_time
from jaxtwin.syncgame.pmp import SolverOptions, resolve_substeps
from jaxtwin.syncgame.results import Result
from jaxtwin.syncgame.sizes import (collocation_bytes, nash_sweep_bytes, stackelberg_bytes,
                                    stackelberg_collocation_bytes, static_bytes)
from jaxtwin.syncgame.stackelberg import split_roles, stackelberg_equilibrium
from jaxtwin.syncgame.stackelberg_collocation import stackelberg_collocation
from jaxtwin.syncgame.static import static_stackelberg

FOCAL = 1
SCHEMES = ("nash", "stackelberg", "static")
SOLVERS = ("collocation", "pmp")
_SCALARS = ("a", "b", "N", "d", "s", "sigma", "r", "T", "u_max")
_PER_VSP = ("c", "p", "rho", "xbar", "x0", "D")
SHAPE_FIELDS = {
    "n_vsp": AxisField("n_vsp", int, 4, "shape", "VSPs (2-4, spec defaults)"),
    "n_grid": AxisField("n_grid", int, 101, "shape", "time-grid nodes on [0, T]"),
    "leader": AxisField("leader", int, 0, "shape", "Stackelberg leader (VSP index from 0)"),
    "solver": AxisField("solver", str, "collocation", "shape", "Nash and Stackelberg solver: collocation "
                        "(4th order, graded mesh) or pmp (forward-backward sweep, Newton)", SOLVERS),
    "tol": AxisField("tol", float, 1e-9, "shape",
                     "convergence: max |collocation residual| (pmp: max |Phi(u) - u|) below this"),
    "max_iter": AxisField("max_iter", int, 30, "shape", "max Newton iterations"),
    "linear_solver": AxisField("linear_solver", str, "dense", "shape", "pmp's Newton linear solve",
                               ("dense", "gmres")),
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


def point_params(params, values: Mapping[str, Any]):
    """``params`` with the study fields ``values`` set (unchecked; see the module doc for the fields)."""
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


def _nash(params, opts):
    """One Nash solve (collocation or pmp, by the type of ``opts``) and what the
    sensitivity studies read off it (module doc)."""
    sol = solve_nash_collocation(params, opts) if isinstance(opts, CollocationOptions) else solve_nash(params, opts)
    m = sol.controls.shape[1]
    u_plat, z_plat = plateau_mean(sol.ts, sol.controls, params.T), plateau_mean(sol.ts, sol.states, params.T)
    y, rest_res = rest_point(params, u_plat)
    return dict(payoffs=sol.payoffs, residual=sol.residual, converged=sol.converged & (rest_res <= REST_POINT_TOL),
                solve_converged=sol.converged, result=sol.result, iterations=sol.iterations, u_plateau=u_plat,
                x_plateau=z_plat[:m], y_plateau=z_plat[m:], y_settle_time=settle_time(sol.ts, sol.states[:, m:],
                                                                                      z_plat[m:]),
                y_rest=y, rest_residual=rest_res)


def _static(params, leaders, n_grid: int):
    sol = static_stackelberg(params, leaders, n_grid)
    return dict(payoffs=sol.payoffs, residual=sol.residual, converged=sol.result == Result.CONVERGED,
                result=sol.result, iterations=jnp.asarray(0), u_constant=sol.controls)


def _check_shape(shape: Mapping[str, Any]) -> None:
    """The shape fields' ranges (``ConfigError`` naming the field)."""
    limits = {"n_vsp": (2, 4), "n_grid": (5, None), "leader": (0, shape["n_vsp"] - 1), "max_iter": (1, None)}
    for name, (lo, hi) in limits.items():
        v = shape[name]
        if v < lo or (hi is not None and v > hi):
            raise ConfigError(f"study field {name}={v}: must be >= {lo}" + ("" if hi is None else f" and <= {hi}"))
    if not (np.isfinite(shape["tol"]) and shape["tol"] > 0):
        raise ConfigError(f"study field tol={shape['tol']}: must be finite and > 0")


class Runner:
    """One shape group: each scheme one vmapped float64 program."""

    def __init__(self, shape: Mapping[str, Any], schemes: tuple[str, ...], devices: int):
        _check_shape(shape)
        self.m, self.policies, self.devices = shape["n_vsp"], schemes, devices
        self.base = default_params(self.m)
        self.leaders, _ = split_roles(self.m, (shape["leader"],))
        self.n_grid, self.pmp = shape["n_grid"], shape["solver"] == "pmp"
        self.copts = CollocationOptions(n_grid=self.n_grid, tol=shape["tol"], max_iter=shape["max_iter"],
                                        grading=0.7, coarse_grid=9)
        # pmp: substeps for the fastest replicator of ANY point (params() raises them), so
        # every chunk of the group runs one program
        self.sopts = SolverOptions(n_grid=self.n_grid, tol=shape["tol"], max_iter=shape["max_iter"],
                                   linear_solver=shape["linear_solver"])
        per = [f"{k}_vsp{i + 1}" for k in ("payoff", "u_plateau", "x_plateau", "y_plateau", "y_rest", "u_constant")
               for i in range(self.m)]
        self.metrics = ("payoff_total", *per[:self.m], "residual", "converged", "iterations", *per[self.m:],
                        "y_settle_time", "rest_residual", "solve_converged", "result")

    def needs(self, chunk: int) -> list[Need]:
        """Peak bytes of each scheme's program on ``chunk`` points (engine: checked before any work)."""
        if self.pmp:
            one = {"nash": nash_sweep_bytes(self.base, self.sopts),
                   "stackelberg": stackelberg_bytes(self.base, len(self.leaders), self.sopts)}
        else:
            one = {"nash": collocation_bytes(self.m, self.n_grid),
                   "stackelberg": stackelberg_collocation_bytes(self.m, len(self.leaders), self.n_grid)}
        one["static"] = static_bytes(self.m, self.n_grid)
        lanes = lanes_per_device(chunk, self.devices)
        return [Need(lanes * one[s], f"syncgame sweep: the {s} solves of {chunk} points ({self.m} VSPs, "
                     f"{self.n_grid} nodes)", "--chunk or n_grid") for s in self.policies]

    def params(self, values: Mapping[str, Any]):
        """The spec defaults for ``n_vsp`` VSPs with ``values``, checked (``ConfigError`` names the field)."""
        params = validate_params(point_params(self.base, values))
        if self.pmp:
            self.sopts = resolve_substeps(params, self.sopts)
        return params

    def _solve(self, scheme: str, stacked):
        opts = self.sopts if self.pmp else self.copts
        if scheme == "nash":
            return call_float64(_nash, stacked, static=(opts,), batched=True, devices=self.devices,
                                compile_with=() if self.pmp else QUICK_COMPILE)
        if scheme == "stackelberg":
            solve = stackelberg_equilibrium if self.pmp else stackelberg_collocation
            sol = solve(stacked, self.leaders, opts, batched=True, devices=self.devices)
            return dict(payoffs=sol.payoffs, residual=sol.residual, converged=sol.converged,
                        iterations=sol.iterations, result=sol.result)
        return call_float64(_static, stacked, static=(self.leaders, self.n_grid), batched=True,
                            devices=self.devices, compile_with=LEAN_COMPILE)

    def __call__(self, stacked, keys) -> dict[str, np.ndarray]:
        n = np.asarray(stacked.r).shape[0]
        out = {m: np.full((n, len(self.policies), 1), np.nan) for m in self.metrics}
        out.update({m: np.zeros((n, len(self.policies), 1), int) for m in ("iterations", "result")})
        for j, scheme in enumerate(self.policies):
            res = jax.tree.map(np.asarray, self._solve(scheme, stacked))
            res.setdefault("solve_converged", res["converged"])
            out["payoff_total"][:, j, 0] = res["payoffs"].sum(-1)
            for name, arr in res.items():
                if arr.ndim == 2:
                    for i in range(self.m):
                        key = "payoff" if name == "payoffs" else name
                        out[f"{key}_vsp{i + 1}"][:, j, 0] = arr[:, i]
                else:
                    out[name][:, j, 0] = arr
        for flag in ("converged", "solve_converged"):
            out[flag] = out[flag] > 0.5
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
