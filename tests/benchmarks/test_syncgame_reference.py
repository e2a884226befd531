"""The hand-derived solve_bvp reference of the sync game (benchmarks.reference.syncgame_scipy)
and the syncgame benchmark: Jacobian, boundary conditions, payoff, agreement with jaxtwin."""
import numpy as np
import pytest
from scipy.integrate import simpson

from benchmarks.reference.syncgame_scipy import (bvp_jacobian, bvp_rhs, default_params, instantaneous_payoff,
                                                 n_unknowns, params_from_jaxtwin, solve_nash_bvp)
from benchmarks.syncgame import errors, main
from jaxtwin.syncgame.nash import nash_equilibrium
from jaxtwin.syncgame.params import default_params as jaxtwin_params
from jaxtwin.syncgame.pmp import SolverOptions


@pytest.mark.parametrize("m", [2, 3])
def test_analytic_jacobian_matches_central_differences(m):
    p = default_params(delta=(0.1, 0.3, 0.5)[:m], c=np.linspace(0.1, 0.3, m), sigma=0.7)
    rng = np.random.default_rng(m)
    n, K = n_unknowns(m), 9
    v = np.zeros((n, K))
    v[:m] = rng.uniform(0, 60, (m, K))
    v[m:2 * m] = rng.dirichlet(np.ones(m), K).T
    v[2 * m:] = rng.normal(0, 2, (n - 2 * m, K))   # some controls clip at 0, some do not
    t = np.linspace(0, 50, K)
    jac = bvp_jacobian(t, v, p)
    eps = 1e-6
    fd = np.stack([(bvp_rhs(t, v + eps * e[:, None], p) - bvp_rhs(t, v - eps * e[:, None], p)) / (2 * eps)
                   for e in np.eye(n)], axis=1)
    np.testing.assert_allclose(jac, fd, atol=1e-6 * np.abs(jac).max(), rtol=0)


def test_solution_meets_boundary_conditions_and_payoff_quadrature():
    p = default_params()
    sol = solve_nash_bvp(p, tol=1e-6)
    assert sol.success, sol.result.message
    ts = np.linspace(0, p.T, 4001)
    z, u, lam = sol.sample(ts)
    np.testing.assert_allclose(z[0], np.concatenate([p.x0, p.y0]), atol=1e-12)
    np.testing.assert_allclose(lam[-1], 0.0, atol=1e-12)
    assert np.all((u >= 0) & (u <= p.u_max))
    np.testing.assert_allclose(z[:, 2:].sum(1), 1.0, atol=1e-8)   # shares stay on the simplex
    # the payoff carried as an extra BVP state equals a quadrature of e^{-rt} J on the paths
    integrand = np.exp(-p.r * ts) * instantaneous_payoff(p, z[:, :2].T, z[:, 2:].T, u.T)
    np.testing.assert_allclose(sol.payoffs, simpson(integrand, x=ts), rtol=1e-7)


def test_three_vsp_reference_agrees_with_jaxtwin():
    """M-VSP reference vs jaxtwin (n_grid = 101: its O(h^2) grid error bounds the difference)."""
    params = jaxtwin_params(3)
    sol = nash_equilibrium(params, SolverOptions(n_grid=101))
    assert bool(sol.converged)
    ref = solve_nash_bvp(params_from_jaxtwin(params), tol=1e-6)
    assert ref.success, ref.result.message
    err = errors(sol.ts, sol.states, sol.controls, sol.payoffs, ref)
    assert err["x"] < 0.06 and err["y"] < 5e-4 and err["u"] < 0.03 and err["payoff"] < 0.1, err


@pytest.mark.slow   # ~30 s of compilation; the benchmark itself is run by hand
def test_benchmark_quick_run_reports_matching_solutions(capsys):
    res = main(["--quick", "--points", "2", "--no-profile", "--devices", "1"])
    assert res["name"] == "syncgame" and res["config"]["points"] == 2
    assert res["jaxtwin_converged"] and res["reference_success"]
    assert res["jaxtwin_s"] > 0 and res["reference_s"] > 0 and res["compile_s"] >= 0
    # n_grid = 51: the grid error of jaxtwin is ~0.1 in x, ~0.04 in u
    assert res["max_abs_diff_by_quantity"]["u"] < 0.08 and res["max_abs_diff"] < 0.3
    # the reference runs at a tolerance no less accurate than jaxtwin, on every quantity
    assert all(res["reference_error"][q] <= res["jaxtwin_error"][q] for q in ("x", "y", "u", "payoff"))
    assert "RESULT " in capsys.readouterr().out
