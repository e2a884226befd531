"""Open-loop Nash (spec §2): convergence, regime, vmap, agreement with scipy's solve_bvp,
and the direct method finds no profitable unilateral deviation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.reference.syncgame_scipy import params_from_jaxtwin, solve_nash_bvp
from jaxtwin.syncgame.direct import verify_equilibrium
from jaxtwin.core.config import ConfigError
from jaxtwin.syncgame.params import call_float64, default_params, stack_params
from jaxtwin.syncgame.nash import nash_equilibrium, solve_nash
from jaxtwin.syncgame.pmp import SolverOptions, resolve_substeps
from jaxtwin.syncgame.results import Result

OPTS = SolverOptions(n_grid=101)


@pytest.fixture(scope="module")
def batch():
    """Defaults, a higher-sigma variant and a NaN point, solved in ONE vmapped call (past the
    entry point's params check, which refuses the NaN point: test_entry_point_refuses_nan_params)."""
    base = default_params()
    params = stack_params([base, default_params(sigma=1.0), base.replace(rho=base.rho.at[0].set(jnp.nan))])
    # what nash_equilibrium calls (resolve_substeps(params, OPTS) is OPTS here), without its check
    assert resolve_substeps(params, OPTS) == OPTS
    return params, call_float64(solve_nash, params, static=(OPTS,), batched=True, check=False)


def test_entry_point_refuses_nan_params(batch):
    params, _ = batch
    with pytest.raises(ConfigError, match=r"(?s)SyncParams\.rho=.*must be finite"):
        nash_equilibrium(params, OPTS, batched=True)


def test_converges_with_small_residual(batch):
    _, sol = batch
    assert np.all(np.asarray(sol.converged[:2]))
    assert np.max(np.asarray(sol.residual[:2])) < OPTS.tol
    assert np.all(np.asarray(sol.iterations[:2]) < 20)
    assert np.all(np.asarray(sol.result[:2]) == Result.CONVERGED)
    assert sol.states.dtype == jnp.float64


def test_nan_params_are_flagged_not_finite(batch):
    """A NaN rho leaves the fixed-point map finite (the maximiser maps a NaN to 0) but not
    the costates and payoffs: the point is reported NOT_FINITE, never converged."""
    _, sol = batch
    assert not np.all(np.isfinite(np.asarray(sol.payoffs[2])))
    assert not bool(sol.converged[2]) and int(sol.result[2]) == Result.NOT_FINITE


def test_regime_of_spec(batch):
    params, sol = batch
    ts = np.asarray(sol.ts[0])
    z, u = np.asarray(sol.states[0]), np.asarray(sol.controls[0])
    x, y = z[:, :2], z[:, 2:]
    plateau = (ts > 15) & (ts < 35)
    # DT values rise from x0 = 1 toward xbar = 50; the faster-decaying VSP 2 stays below it
    assert np.all(x[plateau] > 30) and np.all(x[plateau] < 50)
    assert x[plateau, 1].max() < x[plateau, 0].min()
    # VSP 2 syncs more and its UAV share rises from 0.5 to about 0.83
    assert np.all(u[plateau, 1] > u[plateau, 0])
    assert abs(y[plateau, 1].mean() - 0.83) < 0.01
    assert np.all(np.diff(y[ts < 10, 1]) > 0)
    # no control at a bound on the plateau
    assert np.all((u[plateau] > 0.5) & (u[plateau] < 39.5))


def test_rest_point_independent_of_sigma(batch):
    _, sol = batch
    ts = np.asarray(sol.ts[0])
    mid = np.argmin(np.abs(ts - 25.0))
    y = np.asarray(sol.states[:, mid, 2:])
    np.testing.assert_allclose(y[0], y[1], atol=5e-3)


def test_costates_satisfy_terminal_condition(batch):
    _, sol = batch
    np.testing.assert_allclose(sol.costates[:2, -1], 0.0, atol=1e-12)


def test_direct_method_finds_no_profitable_deviation(batch):
    params, sol = batch
    p0 = jax.tree.map(lambda a: a[0], params)
    check = verify_equilibrium(p0, sol.ts[0], sol.controls[0], (0, 1), steps=150, learning_rate=0.05)
    gain = np.asarray(check.gain)
    assert np.all(gain >= -1e-9)
    # tolerance: 1e-5 of the payoff's size (the PMP path is the continuous-time optimum
    # sampled on the grid, not the exact optimum of the discretised payoff)
    assert np.all(gain < 1e-5 * np.abs(np.asarray(check.equilibrium_payoff)))
    # and the check can fail: from a perturbed path it finds a large gain
    bad = np.asarray(sol.controls[0]).copy()
    bad[:, 0] *= 0.7
    check_bad = verify_equilibrium(p0, sol.ts[0], bad, (0, 1), steps=150, learning_rate=0.05)
    assert float(check_bad.gain[0]) > 1.0


@pytest.mark.parametrize("b", [0, 1])
def test_agrees_with_scipy_solve_bvp(batch, b):
    """The hand-derived PMP boundary-value problem (benchmarks.reference.syncgame_scipy)
    solved by solve_bvp at tol 1e-6 (~1e-7 of the exact paths) agrees with the PMP
    solution. The bounds are the grid's discretisation error: controls are piecewise
    linear on n_grid = 101 nodes, an O(h^2) error (it quarters when n_grid doubles)."""
    params, sol = batch
    ref = solve_nash_bvp(params_from_jaxtwin(jax.tree.map(lambda a: a[b], params)), tol=1e-6)
    assert ref.success, ref.result.message
    z, u, lam = ref.sample(np.asarray(sol.ts[b]))
    np.testing.assert_allclose(np.asarray(sol.states[b])[:, :2], z[:, :2], atol=0.05, rtol=0)   # x ~ 40
    np.testing.assert_allclose(np.asarray(sol.states[b])[:, 2:], z[:, 2:], atol=4e-4, rtol=0)   # y in (0, 1)
    np.testing.assert_allclose(np.asarray(sol.controls[b]), u, atol=0.02, rtol=0)              # u ~ 10
    np.testing.assert_allclose(np.asarray(sol.costates[b]), lam, atol=0.3, rtol=0)             # |lam| <= 212
    np.testing.assert_allclose(np.asarray(sol.payoffs[b]), ref.payoffs, atol=0.06, rtol=0)     # ~ -150
