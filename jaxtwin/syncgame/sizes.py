"""Memory the sync-game solvers allocate, estimated from their sizes, so that an
experiment too large for the machine is refused before anything compiles
(:func:`require_steps_fit`, through :func:`jaxtwin.core.memory.require_fits`).

The estimates follow what the compiled programs hold at their peak, and were
checked against XLA's own count (``jit(...).lower(...).compile().memory_analysis()``,
temp bytes, float64, CPU; measured on 2 and 3-4 VSPs, 51 to 401 nodes, T = 50 and
2000, up to 20 substeps: every estimate within -4%..+12% of XLA's, GMRES +33%):

* Sweep solver, dense Newton step (:func:`jaxtwin.syncgame.pmp.solve_fixed_point`):
  ``jax.jacfwd`` pushes one tangent per unknown (``n = n_grid * M``) through the
  forward solve, whose dense output (Tsit5: 9 values per state entry per step) is
  allocated for diffrax's ``max_steps = 4 * substeps * n_grid + 16`` steps. So
  ``8 n (4 substeps n_grid + 16) 9 d`` bytes, ``d`` the entries of the densely saved
  solves (``3M`` for Nash), plus the ``n x n`` Jacobian and its LU. ``substeps``
  grows with ``T sigma / n_grid`` (:func:`~jaxtwin.syncgame.pmp.resolve_substeps`),
  so this is ``O(n_grid * T)``: the term behind ``--T 1e6`` failing in XLA.
  Stackelberg: ``n = n_grid (M + |L||F| 2M)``, ``d = 3M + (|L| + |F|) 2M``.
* Sweep solver, GMRES step: about 5 forward solves and ``krylov_dim + 4`` vectors of ``n``.
* Collocation: per node, about 7 blocks of ``n^2`` float64 (the Jacobian blocks of
  the field at nodes and midpoints, ``A``, ``B`` and the Riccati solves), ``n`` the
  unknowns per node: ``2M + 2M^2`` for Nash (XLA's count on 2-4 VSPs at 201 nodes:
  -14%..-23% of this), ``2M (1 + |F| + |L| + |L||F|)`` for Stackelberg (about 12
  blocks). Linear in ``n_grid``, independent of ``T``.
* Static Stackelberg: the 41-point leader search, about 16 state copies of
  ``n_grid * 3M`` float64 per point.

Batched (sensitivity) solves multiply by the points per device (all points on a
CPU, whose devices share the host's memory).
"""
from __future__ import annotations

from jaxtwin.core.memory import Need, lanes_per_device, require_all_fit
from jaxtwin.syncgame.params import default_params, stack_params
from jaxtwin.syncgame.pmp import SolverOptions, resolve_substeps

F64 = 8
TSIT5_DENSE = 9   # dense output per state entry per step: y0, y1 and the 7 stages
STATIC_SEARCH = 41  # static.static_stackelberg's n_search


def _sweep_bytes(n: int, dense_dim: int, opts: SolverOptions) -> float:
    """Peak bytes of one sweep-solver solve with ``n`` unknowns (module doc)."""
    max_steps = 4 * opts.substeps * opts.n_grid + 16
    one_solve = max_steps * TSIT5_DENSE * dense_dim * F64
    if opts.linear_solver == "gmres":
        return 5 * one_solve + (opts.krylov_dim + 4) * n * F64
    return n * one_solve + 2 * n * n * F64


def nash_sweep_bytes(params, opts: SolverOptions) -> float:
    """Peak bytes of :func:`~jaxtwin.syncgame.nash.nash_equilibrium` on one point of ``params``."""
    m = params.n_vsp
    return _sweep_bytes(opts.n_grid * m, 3 * m, resolve_substeps(params, opts))


def stackelberg_bytes(params, n_leaders: int, opts: SolverOptions) -> float:
    """Peak bytes of :func:`~jaxtwin.syncgame.stackelberg.stackelberg_equilibrium` (one point)."""
    m = params.n_vsp
    n_followers = m - n_leaders
    n = opts.n_grid * (m + n_leaders * n_followers * 2 * m)
    return _sweep_bytes(n, 3 * m + (n_leaders + n_followers) * 2 * m, resolve_substeps(params, opts))


def collocation_bytes(m: int, n_grid: int) -> float:
    """Peak bytes of :func:`~jaxtwin.syncgame.collocation.nash_collocation` on one point."""
    return 7 * n_grid * (2 * m + 2 * m * m) ** 2 * F64


def stackelberg_collocation_bytes(m: int, n_leaders: int, n_grid: int) -> float:
    """Peak bytes of :func:`~jaxtwin.syncgame.stackelberg_collocation.stackelberg_collocation` (one point)."""
    n_followers = m - n_leaders
    n = 2 * m * (1 + n_followers + n_leaders + n_leaders * n_followers)
    # 12 blocks, not Nash's 7: the field's Jacobian also holds the |L| + 1 lanes of the leaders'
    # affine reconstruction (XLA's count on 3 VSPs, 201 nodes: 25.6 MB; this: 25.0 MB)
    return 12 * n_grid * n ** 2 * F64


def static_bytes(m: int, n_grid: int) -> float:
    """Peak bytes of :func:`~jaxtwin.syncgame.static.static_stackelberg_equilibrium`."""
    return 16 * STATIC_SEARCH * n_grid * 3 * m * F64


def step_bytes(cfg, step: str) -> Need:
    """``Need(bytes, what, options)``: the largest solve of experiment ``step`` under ``cfg``
    (a :class:`~jaxtwin.syncgame.experiments.SyncGameConfig`) and the options driving it."""
    opts, colloc = cfg.options(cfg.n_grid), cfg.solver == "collocation"
    options = "--n-grid" if colloc else "--T or --n-grid"   # collocation's memory does not grow with T
    if step in ("trajectories", "ess"):
        sizes = [collocation_bytes(m, cfg.n_grid) if colloc else nash_sweep_bytes(default_params(m, T=cfg.T), opts)
                 for m in ((2, 4) if step == "trajectories" else (2,))]
        return Need(max(sizes), f"syncgame {step}: the open-loop Nash solve ({cfg.solver_label(cfg.n_grid)})", options)
    if step == "compare":
        m, p = cfg.compare_n_vsp, default_params(cfg.compare_n_vsp, T=cfg.T)
        sizes = {"open-loop Nash": collocation_bytes(m, cfg.n_grid) if colloc else nash_sweep_bytes(p, opts),
                 "open-loop Stackelberg": (stackelberg_collocation_bytes(m, 1, cfg.n_grid) if colloc
                                           else stackelberg_bytes(p, 1, opts)),
                 "static Stackelberg": static_bytes(m, cfg.n_grid)}
        what = max(sizes, key=sizes.get)
        return Need(sizes[what], f"syncgame compare: the {what} solve", options)
    if step == "sensitivity":
        from jaxtwin.syncgame.experiments import _grid, sensitivity_batch, study_params

        grids = {n: _grid(cfg, n) for n in cfg.studies}
        points = sensitivity_batch(cfg)
        per_device = lanes_per_device(points, cfg.devices)
        if cfg.solver == "collocation":
            one, options = collocation_bytes(4, cfg.sens_n_grid), "--sens-n-grid"
        else:   # the substeps of the fastest sigma of any study
            every = stack_params([p for n, g in grids.items() for p in study_params(n, g, cfg.T)])
            one, options = nash_sweep_bytes(every, cfg.options(cfg.sens_n_grid)), "--T or --sens-n-grid"
        return Need(per_device * one, f"syncgame sensitivity: one vmapped {cfg.solver} solve of {per_device} "
                                      f"4-VSP grid points{'' if per_device == points else ' per device'}", options)
    raise ValueError(f"unknown step {step!r}")


def require_steps_fit(cfg, steps) -> None:
    """:func:`jaxtwin.core.memory.require_all_fit` for the experiment steps in ``steps``."""
    require_all_fit(step_bytes(cfg, step) for step in steps)


__all__ = ["collocation_bytes", "nash_sweep_bytes", "require_steps_fit", "stackelberg_bytes",
           "stackelberg_collocation_bytes", "static_bytes", "step_bytes"]
