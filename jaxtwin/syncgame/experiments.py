"""Sync-game experiments (spec ``syncgame.md`` §6): trajectories, ESS,
sensitivity studies, payoff comparison (the steps of :data:`STEPS`; the
config's ``command`` picks one or ``all``). ``jaxtwin syncgame <command> --out DIR``.

Outputs (tidy CSVs, one row per observation; PNGs; ``config.json``):

* ``trajectories_{2,4}vsp.csv``: ``t, vsp, x, y, u`` of the open-loop Nash paths;
  ``trajectories_{2,4}vsp.png``.
* ``ess.csv``: ``t, y1_0, y1`` replicator paths under the Nash plateau controls
  from ``y_1(0) = 0.1 .. 0.9`` plus a perturbed rest point (``y1_0 = -1`` marks
  it); ``ess.png``.
* ``sensitivity_<study>.csv``: ``study, value, vsp, u_plateau, y_plateau,
  y_rest, x_plateau, payoff, y_settle_time, residual, converged, iterations``;
  plateau = mean over ``t in [0.4T, 0.6T]``; ``y_rest`` = the replicator's rest
  point under the plateau controls; ``y_settle_time`` = first time after which
  every share stays within 0.01 of its plateau; one PNG per study.
* ``findings.csv``: the seed's directional findings, reproduced or not, with numbers.
* ``compare.csv``: ``scheme, vsp, role, payoff, residual`` for simultaneous,
  Stackelberg and static Stackelberg; ``compare.png``.
* ``summary.json``: residuals, convergence flags, timings.

Every solver call runs in float64 (``jax.enable_x64`` around tracing and execution);
each sensitivity study is ONE jitted ``vmap`` over its grid (grids are padded to a
common length so all studies share one compilation), solved by 4th-order
collocation (:mod:`jaxtwin.syncgame.collocation`; ``--sens-solver pmp`` for the
forward-backward sweep solver the trajectories and comparison use).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.core import sharding
from jaxtwin.core.artifacts import all_exist, write_csv, write_json
from jaxtwin.core.plotting import fmt_values
from jaxtwin.core.progress import progress_bar
from jaxtwin.core.config import ConfigError, record_config, require_choice, require_int, require_positive
from jaxtwin.syncgame import figures
from jaxtwin.syncgame.collocation import CollocationOptions, nash_collocation
from jaxtwin.syncgame.nash import nash_equilibrium
from jaxtwin.syncgame.params import EXTRA_VSP_DELTAS, as_float64, default_params, stack_params
from jaxtwin.syncgame.pmp import SolverOptions, resolve_substeps
from jaxtwin.syncgame.replicator import replicator_rest_point, simulate_replicator
from jaxtwin.syncgame.stackelberg import stackelberg_equilibrium
from jaxtwin.syncgame.static import static_stackelberg_equilibrium

# Sensitivity grids on the 4-VSP base (VSP index k = 1 is the focal "VSP k").
FOCAL = 1
STUDIES: dict[str, tuple[float, ...]] = {
    "sigma": (0.1, 0.25, 0.5, 1.0, 2.0, 4.0),
    "delta_k": (0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45),
    "r": (0.01, 0.03, 0.05, 0.1, 0.15, 0.2),
    "N": (60.0, 80.0, 100.0, 120.0, 140.0, 160.0),
    "p_k": (0.5, 1.0, 2.0, 3.0, 4.0, 6.0),
    "s": (0.06, 0.08, 0.1, 0.12, 0.14, 0.16),
    "w3": (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
}


@dataclasses.dataclass(frozen=True)
class SyncGameConfig:
    """Options of every sync-game experiment."""

    command: str = dataclasses.field(default="all", metadata={"help": "which step of STEPS to run, or all"})
    T: float = dataclasses.field(default=50.0, metadata={"help": "horizon T"})
    n_grid: int = dataclasses.field(default=201, metadata={"help": "time-grid nodes for trajectories/compare"})
    sens_n_grid: int = dataclasses.field(default=101, metadata={"help": "time-grid nodes for the sensitivity studies"})
    sens_solver: str = dataclasses.field(default="collocation", metadata={"help": "sensitivity studies' Nash solver: collocation (4th order, graded mesh; syncgame.collocation) or pmp (forward-backward sweep, Newton; syncgame.nash)"})
    tol: float = dataclasses.field(default=1e-8, metadata={"help": "fixed-point tolerance (max |Phi(u)-u|)"})
    max_iter: int = dataclasses.field(default=60, metadata={"help": "max Newton iterations"})
    linear_solver: str = dataclasses.field(default="dense", metadata={"help": "Newton linear solver: dense or gmres"})
    studies: tuple[str, ...] = dataclasses.field(default=tuple(STUDIES), metadata={"help": "sensitivity studies to run"})
    max_grid_points: int = dataclasses.field(default=0, metadata={"help": "if > 0, keep only this many (evenly spread) values of each sensitivity grid"})
    compare_n_vsp: int = dataclasses.field(default=3, metadata={"help": "VSPs in the payoff comparison (1 leader + the rest followers)"})
    leader: int = dataclasses.field(default=0, metadata={"help": "index of the Stackelberg leader"})
    ess_horizon: float = dataclasses.field(default=40.0, metadata={"help": "time span of the ESS runs"})
    devices: int = dataclasses.field(default=1, metadata={"help": "sensitivity sweeps: " + sharding.DEVICES_HELP})

    def __post_init__(self):
        require_choice(self, "command", COMMANDS)
        require_positive(self, "T", "tol", "ess_horizon")
        require_int(self, "n_grid", minimum=5)
        require_int(self, "sens_n_grid", minimum=5)
        require_int(self, "max_iter", minimum=1)
        require_int(self, "max_grid_points", minimum=0)
        require_int(self, "compare_n_vsp", minimum=2)
        require_int(self, "leader", minimum=0)
        require_choice(self, "linear_solver", ("dense", "gmres"))
        require_choice(self, "sens_solver", ("collocation", "pmp"))
        sharding.require_devices(self, "devices")
        if self.compare_n_vsp > 4:
            raise ConfigError(f"SyncGameConfig.compare_n_vsp={self.compare_n_vsp!r}: must be in [2, 4]")
        if self.leader >= self.compare_n_vsp:
            raise ConfigError(f"SyncGameConfig.leader={self.leader!r}: must be < compare_n_vsp={self.compare_n_vsp}")
        for s in self.studies:
            if s not in STUDIES:
                raise ConfigError(f"SyncGameConfig.studies={self.studies!r}: unknown study {s!r}; valid: {tuple(STUDIES)}")

    def collocation_options(self) -> CollocationOptions:
        """The sensitivity studies' collocation settings (graded mesh, 9-node start)."""
        return CollocationOptions(n_grid=self.sens_n_grid, tol=self.tol, max_iter=self.max_iter,
                                  grading=0.7, coarse_grid=9)

    def options(self, n_grid: int) -> SolverOptions:
        return SolverOptions(n_grid=n_grid, tol=self.tol, max_iter=self.max_iter, linear_solver=self.linear_solver)


# ------------------------------------------------------------------ helpers
def plateau_mean(ts: np.ndarray, values: np.ndarray, T: float, axis: int = 0) -> np.ndarray:
    """Time average of ``values`` (nodes ``ts`` along ``axis``) over ``[0.4T, 0.6T]``,
    by linear interpolation on 41 even points: independent of where the nodes lie
    (uniform for the sweep solver, graded for collocation)."""
    t_eval = np.linspace(0.4 * T, 0.6 * T, 41)
    # row k of the identity interpolated = node k's weight at each evaluation point
    weights = np.stack([np.interp(t_eval, ts, e) for e in np.eye(ts.shape[0])]).mean(axis=1)
    return np.tensordot(weights, np.moveaxis(values, axis, 0), axes=1)


def _settle_time(ts: np.ndarray, y: np.ndarray, target: np.ndarray, tol: float = 0.01) -> float:
    """First time from which every share stays within ``tol`` of ``target`` up to 0.6 T (NaN if never)."""
    window = ts <= 0.6 * ts[-1]
    far = np.any(np.abs(y[window] - target) > tol, axis=1)
    if not far.any():
        return 0.0
    last = np.nonzero(far)[0][-1]
    return float(ts[window][last + 1]) if last + 1 < window.sum() else float("nan")


def _trajectory_rows(sol) -> list[dict]:
    ts = np.asarray(sol.ts)
    z, u = np.asarray(sol.states), np.asarray(sol.controls)
    m = u.shape[1]
    return [dict(t=ts[k], vsp=i + 1, x=z[k, i], y=z[k, m + i], u=u[k, i]) for k in range(ts.size) for i in range(m)]


def _rest_points(stacked_params, u: np.ndarray) -> np.ndarray:
    """Replicator rest point for each parameter set under its constant controls ``u``."""
    with jax.enable_x64(True):
        return np.asarray(jax.jit(jax.vmap(replicator_rest_point))(as_float64(stacked_params), jnp.asarray(u)))


def _nash(params, cfg: SyncGameConfig, n_grid: int, batched: bool = False):
    return nash_equilibrium(params, cfg.options(n_grid), batched=batched, devices=cfg.devices)


# ------------------------------------------------------------ experiments
def run_trajectories(cfg: SyncGameConfig, out: Path, summary: dict, *, overwrite: bool, progress: bool) -> None:
    """Open-loop Nash trajectories of the 2- and 4-VSP games."""
    for m in (2, 4):
        csv, png = out / f"trajectories_{m}vsp.csv", out / f"trajectories_{m}vsp.png"
        if all_exist([csv, png]) and not overwrite:
            continue
        t0 = time.perf_counter()
        sol = _nash(default_params(m, T=cfg.T), cfg, cfg.n_grid)
        summary[f"trajectories_{m}vsp"] = dict(residual=float(sol.residual), converged=bool(sol.converged),
                                               iterations=int(sol.iterations), payoffs=np.asarray(sol.payoffs).tolist(),
                                               seconds=time.perf_counter() - t0)
        write_csv(csv, _trajectory_rows(sol))
        figures.trajectories(png, sol, f"Open-loop Nash trajectories, {m} VSPs "
                                       f"(δ = {fmt_values(np.asarray(default_params(m).delta))}, T = {cfg.T:g})")


def run_ess(cfg: SyncGameConfig, out: Path, summary: dict, *, overwrite: bool, progress: bool) -> None:
    """Replicator from y_1(0) = 0.1..0.9 (and a perturbed rest point) under the
    2-VSP Nash plateau controls, DT values fixed there as in the seed."""
    csv, png = out / "ess.csv", out / "ess.png"
    if all_exist([csv, png]) and not overwrite:
        return
    params = default_params(2, T=cfg.T)
    sol = _nash(params, cfg, cfg.n_grid)
    ts = np.asarray(sol.ts)
    u_plateau = plateau_mean(ts, np.asarray(sol.controls), cfg.T)
    with jax.enable_x64(True):
        p64 = as_float64(params)
        u = jnp.asarray(u_plateau)
        rest = np.asarray(replicator_rest_point(p64, u))
        starts = [np.array([a, 1 - a]) for a in np.round(np.arange(0.1, 0.95, 0.1), 2)]
        starts.append(rest + np.array([0.05, -0.05]))
        t_eval = jnp.linspace(0.0, cfg.ess_horizon, 201)
        paths = np.asarray(jax.jit(jax.vmap(lambda y0: simulate_replicator(p64, u, y0, t_eval)))(jnp.asarray(np.stack(starts))))
    labels = [float(s[0]) for s in starts[:-1]] + [-1.0]
    rows = [dict(t=float(t), y1_0=lab, y1=float(paths[j, k, 0])) for j, lab in enumerate(labels) for k, t in enumerate(np.asarray(t_eval))]
    write_csv(csv, rows)
    final_err = float(np.abs(paths[:, -1, :] - rest).max())
    summary["ess"] = dict(u_plateau=u_plateau.tolist(), rest_point=rest.tolist(), max_final_distance=final_err)
    figures.ess(png, np.asarray(t_eval), paths, labels, rest, u_plateau)


# How each study moves the 4-VSP base: (params, value) -> params.
_STUDY_UPDATES = {
    "sigma": lambda p, v: p.replace(sigma=jnp.asarray(v, p.sigma.dtype)),
    "delta_k": lambda p, v: p.replace(delta=p.delta.at[FOCAL].set(v)),
    "r": lambda p, v: p.replace(r=jnp.asarray(v, p.r.dtype)),
    "N": lambda p, v: p.replace(N=jnp.asarray(v, p.N.dtype)),
    "p_k": lambda p, v: p.replace(p=p.p.at[FOCAL].set(v)),
    "s": lambda p, v: p.replace(s=jnp.asarray(v, p.s.dtype)),
    "w3": lambda p, v: p.replace(w=p.w.at[2].set(v)),
}


def study_params(name: str, values, T: float):
    """Params for one sensitivity study on the 4-VSP base, one per value."""
    if name not in _STUDY_UPDATES:
        raise ValueError(f"unknown study {name!r}; valid: {tuple(_STUDY_UPDATES)}")
    base = default_params(4, T=T)
    return [_STUDY_UPDATES[name](base, v) for v in values]


def _grid(cfg: SyncGameConfig, name: str) -> tuple[float, ...]:
    vals = STUDIES[name]
    if cfg.max_grid_points and cfg.max_grid_points < len(vals):
        idx = np.unique(np.round(np.linspace(0, len(vals) - 1, cfg.max_grid_points)).astype(int))
        vals = tuple(vals[i] for i in idx)
    return vals


def run_sensitivity(cfg: SyncGameConfig, out: Path, summary: dict, *, overwrite: bool, progress: bool) -> None:
    """Each study: ONE vmapped, jitted Nash solve over its (padded) grid."""
    pad = max(len(_grid(cfg, n)) for n in cfg.studies)
    todo = [n for n in cfg.studies
            if overwrite or not all_exist([out / f"sensitivity_{n}.csv", out / f"sensitivity_{n}.png"])]
    t_all = time.perf_counter()
    bar = progress_bar(len(todo), "sensitivity", enabled=progress, unit="study")
    for name in todo:
        vals = _grid(cfg, name)
        plist = study_params(name, vals, cfg.T)
        plist = plist + [plist[-1]] * (pad - len(plist))   # one compilation for all studies
        t0 = time.perf_counter()
        stacked = stack_params(plist)
        if cfg.sens_solver == "collocation":
            sol = nash_collocation(stacked, cfg.collocation_options(), batched=True, devices=cfg.devices)
        else:
            sol = _nash(stacked, cfg, cfg.sens_n_grid, batched=True)
        secs = time.perf_counter() - t0
        ts = np.asarray(sol.ts[0])
        u_plat = plateau_mean(ts, np.asarray(sol.controls), cfg.T, axis=1)
        y_rest = _rest_points(stacked, u_plat)
        rows = []
        for j, v in enumerate(vals):
            z = np.asarray(sol.states[j])
            m = u_plat.shape[1]
            z_plat = plateau_mean(ts, z, cfg.T)
            y_plat = z_plat[m:]
            settle = _settle_time(ts, z[:, m:], y_plat)
            for i in range(m):
                rows.append(dict(study=name, value=v, vsp=i + 1, u_plateau=u_plat[j, i], y_plateau=y_plat[i],
                                 y_rest=y_rest[j, i], x_plateau=z_plat[i], payoff=float(sol.payoffs[j, i]),
                                 y_settle_time=settle,
                                 residual=float(sol.residual[j]), converged=bool(sol.converged[j]),
                                 iterations=int(sol.iterations[j])))
        write_csv(out / f"sensitivity_{name}.csv", rows)
        figures.study(out / f"sensitivity_{name}.png", name, rows, FOCAL)
        summary.setdefault("sensitivity", {})[name] = dict(
            max_residual=float(np.max(np.asarray(sol.residual)[: len(vals)])),
            all_converged=bool(np.all(np.asarray(sol.converged)[: len(vals)])),
            max_iterations=int(np.max(np.asarray(sol.iterations))), seconds=secs, solver=cfg.sens_solver,
            **({"substeps": resolve_substeps(stacked, cfg.options(cfg.sens_n_grid)).substeps}
               if cfg.sens_solver == "pmp" else {}))
        bar.update(1)
    if todo:
        summary["sensitivity_wall_seconds"] = time.perf_counter() - t_all
    _write_findings(cfg, out)


def _load_study(out: Path, name: str, column: str | None = None):
    """``(values, u_plateau, y_plateau, y_settle_time)`` arrays ``[value, vsp]`` of
    one finished study, or just ``column`` when given."""
    from jaxtwin.core.artifacts import read_csv

    rows = read_csv(out / f"sensitivity_{name}.csv")
    vals = sorted({float(r["value"]) for r in rows})
    m = max(int(r["vsp"]) for r in rows)
    get = lambda key: np.array([[float(next(r[key] for r in rows if float(r["value"]) == v and int(r["vsp"]) == i + 1))  # noqa: E731
                                  for i in range(m)] for v in vals])
    if column is not None:
        return get(column)
    return np.array(vals), get("u_plateau"), get("y_plateau"), get("y_settle_time")


def _write_findings(cfg: SyncGameConfig, out: Path) -> None:
    """Check the seed's directional findings against the finished studies."""
    k = FOCAL
    rows = []

    def add(finding, ok, evidence):
        rows.append(dict(finding=finding, reproduced=bool(ok), evidence=evidence))

    have = {n for n in STUDIES if (out / f"sensitivity_{n}.csv").exists()}
    fmt = lambda a: np.array2string(np.asarray(a), precision=3, separator=" ")  # noqa: E731
    if "sigma" in have:
        v, u, y, settle = _load_study(out, "sigma")
        y_rest = _load_study(out, "sigma", "y_rest")
        # NaN = not settled before 0.6 T: slower than any point that settled
        ranked = np.where(np.isnan(settle[:, 0]), np.inf, settle[:, 0])
        faster = np.all((np.diff(ranked) < 0) | ((np.diff(ranked) <= 1e-9) & np.isfinite(ranked[1:])))
        add("higher sigma speeds population convergence", faster,
            f"sigma={fmt(v)} settle_time(|y-y_plateau|<0.01; nan = not by 0.6T)={fmt(settle[:, 0])}")
        spread = y_rest.max(0) - y_rest.min(0)
        add("higher sigma leaves the replicator rest point unchanged (within 0.01)", np.all(spread < 0.01),
            f"rest-point y under the plateau controls, range over sigma per VSP: {fmt(spread)}; "
            f"plateau u range: {fmt(u.max(0) - u.min(0))}; mean y over [0.4T,0.6T] range: {fmt(y.max(0) - y.min(0))}")
    if "delta_k" in have:
        v, u, y, _ = _load_study(out, "delta_k")
        others = [i for i in range(u.shape[1]) if i != k]
        add("raising delta_k raises u_k", np.all(np.diff(u[:, k]) > 0), f"delta_k={fmt(v)} u_k={fmt(u[:, k])}")
        add("raising delta_k raises y_k", np.all(np.diff(y[:, k]) > 0), f"y_k={fmt(y[:, k])}")
        add("raising delta_k lowers the other u", np.all(np.diff(u[:, others], axis=0) < 0), f"u_others first->last={fmt(u[0, others])}->{fmt(u[-1, others])}")
        add("raising delta_k lowers the other y", np.all(np.diff(y[:, others], axis=0) < 0), f"y_others first->last={fmt(y[0, others])}->{fmt(y[-1, others])}")
    if "r" in have:
        v, u, y, _ = _load_study(out, "r")
        add("raising r lowers all u", np.all(np.diff(u, axis=0) < 0), f"r={fmt(v)} u first->last={fmt(u[0])}->{fmt(u[-1])}")
    if "N" in have:
        v, u, y, _ = _load_study(out, "N")
        add("raising N raises all u", np.all(np.diff(u, axis=0) > 0), f"N={fmt(v)} u first->last={fmt(u[0])}->{fmt(u[-1])}")
    if "p_k" in have:
        v, u, y, _ = _load_study(out, "p_k")
        add("raising p_k raises u_k", np.all(np.diff(u[:, k]) > 0), f"p_k={fmt(v)} u_k={fmt(u[:, k])}")
    if "s" in have:
        v, u, y, _ = _load_study(out, "s")
        add("raising s lowers u_k", np.all(np.diff(u[:, k]) < 0), f"s={fmt(v)} u_k={fmt(u[:, k])}")
    if "w3" in have:
        v, u, y, _ = _load_study(out, "w3")
        inc = np.all(np.diff(u[:, k]) > 0)
        slope = np.diff(u[:, k]) / np.diff(np.log(v))     # du_k / dlog(w3)
        sat = inc and slope[-1] < 0.5 * slope.max()
        add("raising w3 raises u_k", inc, f"w3={fmt(v)} u_k={fmt(u[:, k])}")
        add("u_k saturates in w3 (du_k/dlog w3 at the top < half its max)", sat, f"du_k/dlog(w3)={fmt(slope)}")
    if rows:
        write_csv(out / "findings.csv", rows)


def run_compare(cfg: SyncGameConfig, out: Path, summary: dict, *, overwrite: bool, progress: bool) -> None:
    """Discounted payoffs: simultaneous vs Stackelberg vs static Stackelberg."""
    csv, png = out / "compare.csv", out / "compare.png"
    if all_exist([csv, png]) and not overwrite:
        return
    params = default_params(cfg.compare_n_vsp, T=cfg.T)
    opts = cfg.options(cfg.n_grid)
    t0 = time.perf_counter()
    nash = nash_equilibrium(params, opts)
    st = stackelberg_equilibrium(params, (cfg.leader,), opts)
    static = static_stackelberg_equilibrium(params, (cfg.leader,), n_grid=cfg.n_grid)
    rows = []
    m = cfg.compare_n_vsp
    for scheme, sol, res in (("simultaneous", nash, nash.residual), ("stackelberg", st, st.residual),
                             ("static_stackelberg", static, static.residual)):
        for i in range(m):
            rows.append(dict(scheme=scheme, vsp=i + 1, role="leader" if i == cfg.leader else "follower",
                             payoff=float(sol.payoffs[i]), residual=float(res)))
    write_csv(csv, rows)
    summary["compare"] = dict(nash_residual=float(nash.residual), stackelberg_residual=float(st.residual),
                              stackelberg_converged=bool(st.converged), nash_converged=bool(nash.converged),
                              static_residual=float(static.residual), static_controls=np.asarray(static.controls).tolist(),
                              seconds=time.perf_counter() - t0)
    figures.compare(png, rows, m, cfg.leader)


# step name -> step(cfg, out, summary, *, overwrite, progress); `all` runs them in this order
STEPS = {"trajectories": run_trajectories, "ess": run_ess, "sensitivity": run_sensitivity,
         "compare": run_compare}
COMMANDS = (*STEPS, "all")


def run(config: SyncGameConfig, out_dir, *, overwrite: bool = False, progress: bool = True) -> dict:
    """Run ``config.command`` (one step of :data:`STEPS`, or ``all``), writing results under
    ``out_dir``; returns the summary (also in ``summary.json``)."""
    out = Path(out_dir)
    # steps and sensitivity studies are pieces of one study: they share a folder when the
    # other options agree
    record_config(out, config, overwrite=overwrite, ignore=("command", "studies"),
                  extra_vsp_deltas=EXTRA_VSP_DELTAS, focal_vsp=FOCAL + 1,
                  studies={n: _grid(config, n) for n in config.studies})
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name, step in STEPS.items():
        if config.command in (name, "all"):
            step(config, out, summary, overwrite=overwrite, progress=progress)
            write_json(summary_path, summary)
    return summary
