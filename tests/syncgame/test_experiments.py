"""Tiny end-to-end runs of the sync-game CLI; config validation; resume; notebook."""
import json

import pytest

from jaxtwin.cli import main
from jaxtwin.core.artifacts import read_csv
from jaxtwin.core.config import ConfigError
from jaxtwin.syncgame.experiments import SyncGameConfig

TINY = ["--n-grid", "21", "--sens-n-grid", "21", "--max-grid-points", "2", "--T", "10", "--no-progress"]


def test_cli_sensitivity_and_resume(tmp_path):
    out = tmp_path / "sg"
    assert main(["syncgame", "sensitivity", "--out", str(out), "--studies", "r", "N", *TINY]) == 0
    rows = read_csv(out / "sensitivity_r.csv")
    assert {r["study"] for r in rows} == {"r"} and len(rows) == 2 * 4
    assert all(r["converged"] == "True" for r in rows)
    assert max(float(r["residual"]) for r in rows) < 1e-8
    assert (out / "sensitivity_N.png").exists() and (out / "findings.csv").exists()
    findings = read_csv(out / "findings.csv")
    assert {f["finding"] for f in findings} == {"raising r lowers all u", "raising N raises all u"}
    # resume: finished studies are skipped (files untouched)
    mtime = (out / "sensitivity_r.csv").stat().st_mtime_ns
    assert main(["syncgame", "sensitivity", "--out", str(out), "--studies", "r", *TINY]) == 0
    assert (out / "sensitivity_r.csv").stat().st_mtime_ns == mtime
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["n_grid"] == 21 and cfg["config"]["command"] == "sensitivity" and "environment" in cfg
    assert cfg["studies"] == {"r": [0.01, 0.2]}  # the grid this run used, beside the config


def test_cli_trajectories_and_ess(tmp_path):
    out = tmp_path / "sg"
    assert main(["syncgame", "trajectories", "--out", str(out), *TINY]) == 0
    rows = read_csv(out / "trajectories_4vsp.csv")
    assert len(rows) == 21 * 4 and set(rows[0]) == {"t", "vsp", "x", "y", "u"}
    assert (out / "trajectories_2vsp.png").exists()
    assert main(["syncgame", "ess", "--out", str(out), *TINY]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ess"]["max_final_distance"] < 1e-3
    assert summary["trajectories_2vsp"]["converged"]


def test_bad_config_is_rejected(capsys):
    assert main(["syncgame", "ess", "--out", "/tmp/never", "--n-grid", "2"]) == 2
    assert "SyncGameConfig.n_grid" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="studies"):
        SyncGameConfig(studies=("bogus",))
    with pytest.raises(ConfigError, match="leader"):
        SyncGameConfig(leader=3, compare_n_vsp=3)


def test_notebook_runs(run_notebook):
    nb = run_notebook("syncgame.ipynb", timeout=300)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any(o.get("output_type") == "display_data" for o in outputs)


def test_sensitivity_solvers_agree_to_the_sweep_solvers_grid_error(tmp_path):
    """Collocation (default) and the forward-backward sweep solver give the same plateaus.

    The sweep solver is second order in the grid step: on this 21-node grid its
    plateau controls are off by 0.016 (measured against collocation; 0.0011 on 81
    nodes, the 16x of O(h^2) for h/4), its shares by 1.1e-4. Bounds: 3x those."""
    rows = {}
    for solver in ("collocation", "pmp"):
        out = tmp_path / solver
        assert main(["syncgame", "sensitivity", "--out", str(out), "--studies", "r", "--solver", solver, *TINY]) == 0
        rows[solver] = read_csv(out / "sensitivity_r.csv")
        assert all(r["converged"] == "True" for r in rows[solver])
    for a, b in zip(rows["collocation"], rows["pmp"]):
        assert (a["value"], a["vsp"]) == (b["value"], b["vsp"])
        assert abs(float(a["u_plateau"]) - float(b["u_plateau"])) < 0.05
        assert abs(float(a["y_plateau"]) - float(b["y_plateau"])) < 3.5e-4


def test_plateau_mean_is_the_window_average_whatever_the_nodes():
    import numpy as np

    from jaxtwin.syncgame.experiments import plateau_mean

    for ts in (np.linspace(0, 50, 11), np.array([0, 3, 19, 21, 24, 29.5, 33, 50.0])):
        lin = np.stack([2 * ts + 1, -ts], axis=1)          # exact under linear interpolation
        np.testing.assert_allclose(plateau_mean(ts, lin, 50.0), [2 * 25 + 1, -25], rtol=1e-12)
        batch = np.stack([lin, 3 * lin])                    # nodes on axis 1
        np.testing.assert_allclose(plateau_mean(ts, batch, 50.0, axis=1), [[51, -25], [153, -75]], rtol=1e-12)


def test_settle_time_by_hand():
    import jax
    import numpy as np

    from jaxtwin.syncgame.paths import settle_time

    ts = np.linspace(0.0, 10.0, 11)                          # window: t <= 6
    y = np.stack([np.where(ts < 3, 0.5, 0.2), np.full(11, 0.8)], axis=1)
    assert settle_time(ts, y, np.array([0.2, 0.8])) == 3.0  # within 0.01 from t = 3 on
    assert settle_time(ts, y, np.array([0.5, 0.8])) != settle_time(ts, y, np.array([0.5, 0.8]))  # NaN: not by 0.6 T
    assert settle_time(ts, y, np.array([0.205, 0.8])) == 3.0  # tol 0.01 is inclusive
    assert settle_time(ts, np.full((11, 2), 0.3), np.array([0.3, 0.3])) == 0.0
    with jax.enable_x64(True):                               # the same traced (the sweep's Nash metrics)
        assert float(jax.jit(settle_time)(ts, y, np.array([0.2, 0.8]))) == 3.0


def test_sensitivity_studies_share_one_program_and_rerun_as_sweeps(tmp_path):
    """Each study is an engine study; a 6- and a 7-point grid run one compiled program
    (padded), and a study's study.toml under `jaxtwin sweep` writes the same results.csv."""
    from jaxtwin.core import engine
    from jaxtwin.core.study import load_study
    from jaxtwin.syncgame import sweep

    out = tmp_path / "sg"
    args = ["syncgame", "sensitivity", "--out", str(out), "--sens-n-grid", "21", "--T", "10", "--no-progress"]
    assert main([*args, "--studies", "delta_k"]) == 0
    before = engine.compilations()
    assert main([*args, "--studies", "r"]) == 0
    assert engine.compilations() == before
    assert len(read_csv(out / "sensitivity_delta_k.csv")) == 7 * 4 and len(read_csv(out / "sensitivity_r.csv")) == 6 * 4
    study = load_study(out / "sensitivity" / "r" / "study.toml")
    assert dict(study.fixed) == {"T": 10.0, "n_grid": 21, "tol": 1e-8, "max_iter": 60}
    engine.run(study, sweep.ADAPTER, tmp_path / "again", progress=False)
    assert (tmp_path / "again" / "results.csv").read_bytes() == (out / "sensitivity" / "r" / "results.csv").read_bytes()


@pytest.mark.slow   # ~60 s; the default run checks the same at solver level (test_collocation.py::test_agrees_with_sweep_solver)
def test_trajectories_by_collocation_agree_with_the_sweep_solver_to_its_grid_error():
    """The 2-VSP trajectories as `trajectories` computes them (collocation, 201 graded nodes)
    against the sweep solver (`--solver pmp`) on 51 and 101 nodes.

    Both solve the same boundary-value problem to residual 1e-8, which moves the paths by
    far less than 1e-6; what separates them is discretisation. Collocation is 4th order
    (at 201 graded nodes within ~1e-5 of solve_bvp in x), the sweep 2nd order, so the
    difference must be the sweep's own grid error: its Richardson estimate
    (4/3) |z_51 - z_101| at the common nodes, to 10% (measured: 0.2-0.4%, 0.092 in x,
    2.4e-4 in y, 0.037 in u at 51 nodes), and it must shrink 4x from 51 to 101 nodes
    (measured 3.99-4.03)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from jaxtwin.syncgame import collocation as C
    from jaxtwin.syncgame.nash import nash_equilibrium
    from jaxtwin.syncgame.params import as_float64, default_params
    from jaxtwin.syncgame.pmp import SolverOptions

    cfg = SyncGameConfig()
    params = default_params(2, T=cfg.T)
    col = C.nash_collocation(params, cfg.collocation_options(cfg.n_grid))
    assert bool(col.converged) and col.ts.shape == (201,)
    sweep = {n: nash_equilibrium(params, SolverOptions(n_grid=n)) for n in (51, 101)}
    with jax.enable_x64(True):       # collocation's paths at the sweep's nodes, by its own 4th-order interpolant
        p = as_float64(params)
        Y = jnp.concatenate([col.states, col.costates.reshape(col.states.shape[0], -1)], axis=1)
        at = {n: np.asarray(C.hermite_interpolate(p, col.ts, Y, s.ts)) for n, s in sweep.items()}
        u_at = {n: np.asarray(jax.vmap(lambda y: C.pointwise_controls(p, y))(jnp.asarray(a))) for n, a in at.items()}
    algebraic = 1e-6      # what the residual tolerances can move a path by, generously
    for q, col_paths, sweep_paths in (
            ("x", {n: a[:, :2] for n, a in at.items()}, {n: np.asarray(s.states)[:, :2] for n, s in sweep.items()}),
            ("y", {n: a[:, 2:4] for n, a in at.items()}, {n: np.asarray(s.states)[:, 2:] for n, s in sweep.items()}),
            ("u", u_at, {n: np.asarray(s.controls) for n, s in sweep.items()})):
        assert all(bool(s.converged) for s in sweep.values())
        d = {n: np.abs(col_paths[n] - sweep_paths[n]).max() for n in sweep}
        richardson = 4.0 / 3.0 * np.abs(sweep_paths[51] - sweep_paths[101][::2]).max()
        assert abs(d[51] - richardson) <= 0.1 * richardson + algebraic, (q, d, richardson)
        assert 3.5 < d[51] / d[101] < 4.5, (q, d)
