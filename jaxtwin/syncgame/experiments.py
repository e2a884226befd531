"""Sync-game experiments (spec ``syncgame.md`` §6): trajectories, ESS,
sensitivity studies, payoff comparison (the steps of :data:`STEPS`; the
config's ``command`` picks one or ``all``). ``jaxtwin syncgame <command> --out DIR``.

Outputs (tidy CSVs, one row per observation; PNGs; ``config.json``):

* ``trajectories_{2,4}vsp.csv``: ``t, vsp, x, y, u`` of the open-loop Nash paths at the
  solver's nodes (graded toward both ends for collocation); ``trajectories_{2,4}vsp.png``.
* ``ess.csv``: ``t, y1_0, y1`` replicator paths under the Nash plateau controls
  from ``y_1(0) = 0.1 .. 0.9`` plus a perturbed rest point (``y1_0 = -1`` marks
  it); ``ess.png``.
* ``sensitivity_<study>.csv``: ``study, value, vsp, u_plateau, y_plateau,
  y_rest, x_plateau, payoff, y_settle_time, residual, converged, iterations``;
  plateau = mean over ``t in [0.4T, 0.6T]``; ``y_rest`` = the replicator's rest
  point under the plateau controls; ``y_settle_time`` = first time after which
  every share stays within 0.01 of its plateau; one PNG per study. Each study is
  a declared study on the engine (:func:`sensitivity_study`), whose files
  (``results.csv``, ``summary.csv``, ``study.toml``, plots) are under
  ``sensitivity/<study>/``.
* ``findings.csv``: the seed's directional findings, reproduced or not, with numbers
  (:mod:`jaxtwin.syncgame.findings`).
* ``compare.csv``: ``scheme, vsp, role, payoff, residual`` for simultaneous,
  Stackelberg and static Stackelberg; ``compare.png``.
* ``summary.json``: residuals, convergence flags, timings (and ``warnings``).

Every solve must converge (every grid point of a study), else the step raises
:class:`~jaxtwin.core.errors.ResultError` and writes none of its tables (a sensitivity
study's engine record keeps its rows, marked ``converged`` False), unless ``allow_unconverged``
keeps the results, marked (:mod:`jaxtwin.syncgame.checks`). Sizes that cannot fit in
memory are refused before anything compiles (:mod:`jaxtwin.syncgame.sizes`).

Every solver call runs in float64; each sensitivity study is ONE jitted ``vmap`` over its
grid (padded to a common length: one compilation for all). Every Nash and Stackelberg
solve is collocation (:mod:`~jaxtwin.syncgame.collocation`,
:mod:`~jaxtwin.syncgame.stackelberg_collocation`), or with ``--solver pmp`` the sweep
solver (:mod:`~jaxtwin.syncgame.nash`, :mod:`~jaxtwin.syncgame.stackelberg`).
"""
from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np

from jaxtwin.core import engine, sharding
from jaxtwin.core.artifacts import all_exist, write_csv, write_json
from jaxtwin.core.progress import progress_bar
from jaxtwin.core.study import Study
from jaxtwin.core.config import ConfigError, record_config, require_choice, require_int, require_positive
from jaxtwin.syncgame import figures, sweep as syncgame_sweep
from jaxtwin.syncgame.checks import REST_POINT_TOL, check_kept_results, require_converged
from jaxtwin.syncgame.collocation import CollocationOptions, nash_collocation
from jaxtwin.syncgame.findings import write_findings
from jaxtwin.syncgame.nash import nash_equilibrium
from jaxtwin.syncgame.params import EXTRA_VSP_DELTAS, QUICK_COMPILE, call_float64, default_params
from jaxtwin.syncgame.pmp import SolverOptions
from jaxtwin.syncgame.paths import plateau_mean, rest_point, settle_time  # noqa: F401 (public here)
from jaxtwin.syncgame.replicator import simulate_replicator
from jaxtwin.syncgame.results import Result
from jaxtwin.syncgame.sizes import require_steps_fit
from jaxtwin.syncgame.stackelberg import stackelberg_equilibrium
from jaxtwin.syncgame.stackelberg_collocation import stackelberg_collocation
from jaxtwin.syncgame.static import STATIC_TOL, static_stackelberg_equilibrium

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
    solver: str = dataclasses.field(default="collocation", metadata={"help": "solver of every Nash and Stackelberg solve: collocation (4th order, graded mesh; syncgame.collocation, syncgame.stackelberg_collocation) or pmp (forward-backward sweep, Newton; syncgame.nash, syncgame.stackelberg)"})
    tol: float = dataclasses.field(default=1e-8, metadata={"help": "convergence tolerance of every solve: max |collocation residual| (pmp: max |Phi(u)-u|)"})
    max_iter: int = dataclasses.field(default=60, metadata={"help": "max Newton iterations"})
    allow_unconverged: bool = dataclasses.field(default=False, metadata={"help": "keep the results of a solve that did not converge (marked converged=false in the CSVs and summary.json, with a warning on stderr) instead of stopping with an error"})
    linear_solver: str = dataclasses.field(default="dense", metadata={"help": "pmp solver's Newton linear solve: dense or gmres"})
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
        require_choice(self, "solver", ("collocation", "pmp"))
        sharding.require_devices(self, "devices")
        if self.compare_n_vsp > 4:
            raise ConfigError(f"SyncGameConfig.compare_n_vsp={self.compare_n_vsp!r}: must be in [2, 4]")
        if self.leader >= self.compare_n_vsp:
            raise ConfigError(f"SyncGameConfig.leader={self.leader!r}: must be < compare_n_vsp={self.compare_n_vsp}")
        for s in self.studies:
            if s not in STUDIES:
                raise ConfigError(f"SyncGameConfig.studies={self.studies!r}: unknown study {s!r}; valid: {tuple(STUDIES)}")

    def collocation_options(self, n_grid: int, batched: bool = False) -> CollocationOptions:
        """Every collocation solve's settings on ``n_grid`` nodes: graded mesh; a batch starts
        from a 9-node solve (6-7 fine Newton steps down to 2 for every point), a single solve
        from the simulated guess (it runs in ms; the coarse solve doubles what compiles)."""
        return CollocationOptions(n_grid=n_grid, tol=self.tol, max_iter=self.max_iter, grading=0.7,
                                  coarse_grid=9 if batched else 0)

    def options(self, n_grid: int) -> SolverOptions:
        """Every sweep-solver (``solver = pmp``) solve's settings on ``n_grid`` nodes."""
        return SolverOptions(n_grid=n_grid, tol=self.tol, max_iter=self.max_iter, linear_solver=self.linear_solver)

    def solver_label(self, n_grid: int) -> str:
        """How reports name the solver of a solve on ``n_grid`` nodes."""
        return f"{'collocation' if self.solver == 'collocation' else 'sweep solver'}, n_grid={n_grid}"


# ------------------------------------------------------------------ helpers
def _trajectory_rows(sol, flags: bool) -> list[dict]:
    """One row per node and VSP; with ``flags`` (``allow_unconverged``) the solve's
    ``converged`` and ``residual`` on every row."""
    ts = np.asarray(sol.ts)
    z, u = np.asarray(sol.states), np.asarray(sol.controls)
    m = u.shape[1]
    extra = dict(converged=bool(sol.converged), residual=float(sol.residual)) if flags else {}
    return [dict(t=ts[k], vsp=i + 1, x=z[k, i], y=z[k, m + i], u=u[k, i], **extra)
            for k in range(ts.size) for i in range(m)]


def _nash(params, cfg: SyncGameConfig, n_grid: int, batched: bool = False):
    """Open-loop Nash by ``cfg.solver`` on ``n_grid`` nodes."""
    if cfg.solver == "collocation":
        return nash_collocation(params, cfg.collocation_options(n_grid, batched), batched=batched, devices=cfg.devices)
    return nash_equilibrium(params, cfg.options(n_grid), batched=batched, devices=cfg.devices)


def _stackelberg(params, cfg: SyncGameConfig):
    """Open-loop Stackelberg with leader ``cfg.leader`` by ``cfg.solver`` on ``cfg.n_grid`` nodes."""
    if cfg.solver == "collocation":
        return stackelberg_collocation(params, (cfg.leader,), cfg.collocation_options(cfg.n_grid))
    return stackelberg_equilibrium(params, (cfg.leader,), cfg.options(cfg.n_grid))


def _replicator_paths(params, u, starts, t_eval):
    """UAV shares under the constant ``u`` from each of ``starts``, saved at ``t_eval``."""
    return jax.vmap(lambda y0: simulate_replicator(params, u, y0, t_eval))(starts)


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
        require_converged(cfg, summary, "trajectories", f"the {m}-VSP open-loop Nash solve "
                          f"({cfg.solver_label(cfg.n_grid)})", sol.residual, sol.converged, tol=cfg.tol,
                          result=sol.result, stale=(csv, png))
        write_csv(csv, _trajectory_rows(sol, cfg.allow_unconverged))
        figures.trajectories(png, sol, np.asarray(default_params(m).delta), cfg.T)


def run_ess(cfg: SyncGameConfig, out: Path, summary: dict, *, overwrite: bool, progress: bool) -> None:
    """Replicator from y_1(0) = 0.1..0.9 (and a perturbed rest point) under the
    2-VSP Nash plateau controls, DT values fixed there as in the seed."""
    csv, png = out / "ess.csv", out / "ess.png"
    if all_exist([csv, png]) and not overwrite:
        return
    params = default_params(2, T=cfg.T)
    sol = _nash(params, cfg, cfg.n_grid)
    summary["ess"] = dict(nash_residual=float(sol.residual), nash_converged=bool(sol.converged))
    ok = require_converged(cfg, summary, "ess", "the 2-VSP open-loop Nash solve behind the plateau controls "
                           f"({cfg.solver_label(cfg.n_grid)})", sol.residual, sol.converged, tol=cfg.tol,
                           result=sol.result, stale=(csv, png))
    ts = np.asarray(sol.ts)
    u_plateau = plateau_mean(ts, np.asarray(sol.controls), cfg.T)
    rest, rest_res = (np.asarray(a) for a in call_float64(rest_point, params, u_plateau, check=False))
    starts = [np.array([a, 1 - a]) for a in np.round(np.arange(0.1, 0.95, 0.1), 2)]
    starts.append(rest + np.array([0.05, -0.05]))
    t_eval = np.linspace(0.0, cfg.ess_horizon, 201)
    paths = np.asarray(call_float64(_replicator_paths, params, u_plateau, np.stack(starts), t_eval,
                                    check=False, compile_with=QUICK_COMPILE))
    labels = [float(s[0]) for s in starts[:-1]] + [-1.0]
    rest_res = float(rest_res)
    summary["ess"]["rest_point_residual"] = rest_res
    ok &= require_converged(cfg, summary, "ess", "the replicator rest point under the plateau controls (bisection)",
                            rest_res, rest_res <= REST_POINT_TOL, tol=REST_POINT_TOL, stale=(csv, png),
                            fixed_iterations=True)
    path_ok = np.all(np.isfinite(paths), axis=(1, 2))
    require_converged(cfg, summary, "ess", "the replicator paths (adaptive Tsit5, at most 100000 steps)", None,
                      path_ok, tol=None, labels=[f"y1_0={lab:g}" for lab in labels], what="starts",
                      stale=(csv, png), fixed_iterations=True)
    flags = lambda j: dict(converged=bool(ok and path_ok[j]), residual=float(sol.residual)) if cfg.allow_unconverged else {}  # noqa: E731
    rows = [dict(t=float(t), y1_0=lab, y1=float(paths[j, k, 0]), **flags(j))
            for j, lab in enumerate(labels) for k, t in enumerate(t_eval)]
    write_csv(csv, rows)
    final_err = float(np.abs(paths[:, -1, :] - rest).max())
    summary["ess"].update(u_plateau=u_plateau.tolist(), rest_point=rest.tolist(), max_final_distance=final_err)
    figures.ess(png, np.asarray(t_eval), paths, labels, rest, u_plateau)


def study_params(name: str, values, T: float):
    """Params for one sensitivity study on the 4-VSP base, one per value."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; valid: {tuple(STUDIES)}")
    return [syncgame_sweep.point_params(default_params(4, T=T), {name: v}) for v in values]


def _grid(cfg: SyncGameConfig, name: str) -> tuple[float, ...]:
    vals = STUDIES[name]
    if cfg.max_grid_points and cfg.max_grid_points < len(vals):
        idx = np.unique(np.round(np.linspace(0, len(vals) - 1, cfg.max_grid_points)).astype(int))
        vals = tuple(vals[i] for i in idx)
    return vals


def sensitivity_batch(cfg: SyncGameConfig) -> int:
    """Points per compiled sensitivity solve: the longest grid of ANY study, so that every
    study, alone or with others, runs the same program."""
    return max(len(_grid(cfg, n)) for n in STUDIES)


def sensitivity_study(cfg: SyncGameConfig, name: str) -> Study:
    """Sensitivity study ``name`` as a declared study on the engine: its grid as the one
    axis, the Nash scheme, and as ``fixed`` every field where ``cfg`` departs from the
    sweep's defaults (horizon, nodes, solver settings), so its ``study.toml`` reruns it
    under ``jaxtwin sweep syncgame --study``."""
    mine = dict(T=cfg.T, n_grid=cfg.sens_n_grid, solver=cfg.solver, tol=cfg.tol, max_iter=cfg.max_iter,
                linear_solver=cfg.linear_solver)
    spec = syncgame_sweep.ADAPTER.fields
    fixed = tuple((n, v) for n, v in mine.items() if v != spec[n].default)
    return Study("syncgame", ((name, _grid(cfg, name)),), fixed=fixed, policies=("nash",), devices=cfg.devices)


def _study_rows(name: str, results: list[dict], m: int) -> list[dict]:
    """One row per grid value and VSP (see the module doc for the columns) from the engine's rows."""
    return [dict(study=name, value=r[name], vsp=i + 1,
                 **{k: r[f"{k}_vsp{i + 1}"] for k in ("u_plateau", "y_plateau", "y_rest", "x_plateau", "payoff")},
                 y_settle_time=r["y_settle_time"], residual=r["residual"], converged=r["converged"],
                 iterations=r["iterations"])
            for r in results for i in range(m)]


def _check_study(cfg: SyncGameConfig, summary: dict, name: str, results: list[dict], seconds: float,
                 stale: tuple[Path, ...]) -> None:
    """Record study ``name``'s residuals in ``summary``; every grid point's solve and rest
    point must converge (:func:`~jaxtwin.syncgame.checks.require_converged`)."""
    col = lambda k: np.asarray([r[k] for r in results])  # noqa: E731
    solved, rest_res = col("solve_converged").astype(bool), col("rest_residual").astype(float)
    summary.setdefault("sensitivity", {})[name] = dict(
        max_residual=float(col("residual").max()), all_converged=bool(col("converged").all()),
        unconverged_points=int((~solved).sum()), max_iterations=int(col("iterations").max()),
        max_rest_point_residual=float(rest_res.max()), seconds=seconds, solver=cfg.solver)
    labels = [f"{name}={r[name]:g}" for r in results]
    require_converged(cfg, summary, "sensitivity", f"study {name}: the 4-VSP Nash solves "
                      f"({cfg.solver_label(cfg.sens_n_grid)})", col("residual"), solved, tol=cfg.tol,
                      result=col("result").astype(int), labels=labels, stale=stale)
    require_converged(cfg, summary, "sensitivity", f"study {name}: the replicator rest points under the plateau "
                      "controls (bisection)", rest_res, rest_res <= REST_POINT_TOL, tol=REST_POINT_TOL,
                      labels=labels, stale=stale, fixed_iterations=True)


def run_sensitivity(cfg: SyncGameConfig, out: Path, summary: dict, *, overwrite: bool, progress: bool) -> None:
    """Each study the engine's study :func:`sensitivity_study` (its files under
    ``sensitivity/<study>/``), all of them one compiled program (padded to
    :func:`sensitivity_batch` points); then ``sensitivity_<study>.csv`` and ``.png`` from its rows."""
    pad = sensitivity_batch(cfg)
    todo = [n for n in cfg.studies
            if overwrite or not all_exist([out / f"sensitivity_{n}.csv", out / f"sensitivity_{n}.png"])]
    t_all = time.perf_counter()
    bar = progress_bar(len(todo), "sensitivity", enabled=progress, unit="study")
    for name in todo:
        csv, png = out / f"sensitivity_{name}.csv", out / f"sensitivity_{name}.png"
        t0 = time.perf_counter()
        results, _ = engine.run(sensitivity_study(cfg, name), syncgame_sweep.ADAPTER, out / "sensitivity" / name,
                                overwrite=overwrite, progress=False, pad_to=pad)
        _check_study(cfg, summary, name, results, time.perf_counter() - t0, (csv, png, out / "findings.csv"))
        rows = _study_rows(name, results, 4)
        write_csv(csv, rows)
        figures.study(png, name, rows, FOCAL)
        bar.update(1)
    if todo:
        summary["sensitivity_wall_seconds"] = time.perf_counter() - t_all
    write_findings(out, tuple(STUDIES), FOCAL)


def run_compare(cfg: SyncGameConfig, out: Path, summary: dict, *, overwrite: bool, progress: bool) -> None:
    """Discounted payoffs: simultaneous vs Stackelberg vs static Stackelberg."""
    csv, png = out / "compare.csv", out / "compare.png"
    if all_exist([csv, png]) and not overwrite:
        return
    params = default_params(cfg.compare_n_vsp, T=cfg.T)
    m, how = cfg.compare_n_vsp, cfg.solver_label(cfg.n_grid)
    t0 = time.perf_counter()
    entry = summary["compare"] = {}
    schemes = []
    for scheme, key, solve, what, tol in (
            ("simultaneous", "nash", lambda: _nash(params, cfg, cfg.n_grid), f"open-loop Nash ({how})", cfg.tol),
            ("stackelberg", "stackelberg", lambda: _stackelberg(params, cfg),
             f"open-loop Stackelberg, leader VSP {cfg.leader + 1} ({how})", cfg.tol),
            ("static_stackelberg", "static",
             lambda: static_stackelberg_equilibrium(params, (cfg.leader,), n_grid=cfg.n_grid),
             f"static Stackelberg in constants, leader VSP {cfg.leader + 1} (n_grid={cfg.n_grid})", STATIC_TOL)):
        t_solve = time.perf_counter()
        sol = solve()
        converged = int(sol.result) == Result.CONVERGED
        entry.update({f"{key}_residual": float(sol.residual), f"{key}_converged": converged,
                      f"{key}_seconds": time.perf_counter() - t_solve})
        ok = require_converged(cfg, summary, "compare", f"the {m}-VSP {what} solve",
                               sol.residual, converged, tol=tol, result=sol.result, stale=(csv, png),
                               fixed_iterations=scheme == "static_stackelberg")
        schemes.append((scheme, sol, ok))
    flags = lambda ok: dict(converged=ok) if cfg.allow_unconverged else {}  # noqa: E731
    rows = [dict(scheme=scheme, vsp=i + 1, role="leader" if i == cfg.leader else "follower",
                 payoff=float(sol.payoffs[i]), residual=float(sol.residual), **flags(ok))
            for scheme, sol, ok in schemes for i in range(m)]
    write_csv(csv, rows)
    static = schemes[-1][1]
    entry.update(static_controls=np.asarray(static.controls).tolist(), seconds=time.perf_counter() - t0)
    figures.compare(png, rows, m, cfg.leader)


# step name -> step(cfg, out, summary, *, overwrite, progress); `all` runs them in this order
STEPS = {"trajectories": run_trajectories, "ess": run_ess, "sensitivity": run_sensitivity,
         "compare": run_compare}
COMMANDS = (*STEPS, "all")


def run(config: SyncGameConfig, out_dir, *, overwrite: bool = False, progress: bool = True) -> dict:
    """Run ``config.command`` (one step of :data:`STEPS`, or ``all``), writing results under
    ``out_dir``; returns the summary (also in ``summary.json``). Steps too large for the
    memory are refused first (``ConfigError``); an unconverged solve raises ``ResultError``
    unless ``allow_unconverged`` (:mod:`jaxtwin.syncgame.checks`)."""
    require_steps_fit(config, [name for name in STEPS if config.command in (name, "all")])   # before compiling
    out = Path(out_dir)
    # steps and studies share a folder when the other options agree (kept unconverged results are marked)
    record_config(out, config, overwrite=overwrite, ignore=("command", "studies", "allow_unconverged"),
                  extra_vsp_deltas=EXTRA_VSP_DELTAS, focal_vsp=FOCAL + 1,
                  studies={n: _grid(config, n) for n in config.studies})
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    for name, step in STEPS.items():
        if config.command in (name, "all"):
            if not overwrite:
                check_kept_results(config, summary, name)   # kept unconverged results, reused only with the flag
            try:
                step(config, out, summary, overwrite=overwrite, progress=progress)
            finally:   # a failed solve's residual is recorded too (its step wrote no results)
                write_json(summary_path, summary)
    return summary
