"""Open-loop Nash by Hermite–Simpson collocation (jaxtwin.syncgame.collocation): the block
Riccati solve equals a dense solve, convergence, 4th-order accuracy against a tight
solve_bvp, agreement with the sweep (PMP) solver, 4 VSPs, vmap, non-finite params."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.reference.syncgame_scipy import params_from_jaxtwin, solve_nash_bvp
from benchmarks.syncgame import errors
from jaxtwin.core.config import ConfigError
from jaxtwin.syncgame import collocation as C
from jaxtwin.syncgame.collocation import CollocationOptions, nash_collocation
from jaxtwin.syncgame.nash import nash_equilibrium
from jaxtwin.syncgame.params import as_float64, call_float64, default_params, stack_params
from jaxtwin.syncgame.pmp import SolverOptions
from jaxtwin.syncgame.replicator import time_grid
from jaxtwin.syncgame.results import Result

# FINE starts Newton from a 9-node solve (the benchmark's setting), COARSE from the simulated guess
COARSE, FINE = CollocationOptions(n_grid=26), CollocationOptions(n_grid=51, coarse_grid=9)


@pytest.fixture(scope="module")
def truth():
    """solve_bvp at tol 1e-8 on the 2-VSP defaults (its own error ~1e-7 in x, far below ours)."""
    ref = solve_nash_bvp(params_from_jaxtwin(default_params()), tol=1e-8)
    assert ref.success, ref.result.message
    return ref


@pytest.fixture(scope="module")
def coarse():
    return nash_collocation(default_params(), COARSE)


@pytest.fixture(scope="module")
def fine():
    return nash_collocation(default_params(), FINE)


def test_riccati_block_solve_equals_dense_solve():
    """On 6 nodes at a non-solution point (guess + random costates, so the clip is
    exercised on both sides): the blocks assemble to jacfwd of the global residual,
    and the Riccati step solves J dY = -F as a dense solve does."""
    params = default_params(u_max=12.0)
    with jax.enable_x64(True):
        p = as_float64(params)

        @jax.jit   # one program (op by op, the setup alone compiled ~120 primitives)
        def both(key):
            ts = time_grid(p.T, 6)
            Y = C.initial_guess(p, ts).at[:, 4:].set(jax.random.normal(key, (6, 8), jnp.float64) * 3.0)
            F, step = C.newton_direction(p, ts, Y)
            _, A, B = C.residuals_and_blocks(p, ts, Y)
            J_dense = jax.jacfwd(lambda v: C.collocation_residuals(p, ts, v.reshape(Y.shape)))(Y.reshape(-1))
            u = jax.vmap(lambda y: C.pointwise_controls(p, y))(Y)
            return F, step, C.assemble_jacobian(A, B, 4), J_dense, C.collocation_residuals(p, ts, Y), u

        F, step, J_blocks, J_dense, F_direct, u = both(jax.random.key(0))
        u = np.asarray(u)
    assert np.any(np.asarray(u) == 0.0) and np.any(np.asarray(u) == 12.0) and np.any((u > 0) & (u < 12))
    np.testing.assert_allclose(F, F_direct, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(J_blocks, J_dense, rtol=1e-10, atol=1e-10)
    dense_step = np.linalg.solve(np.asarray(J_dense), -np.asarray(F))
    assert np.linalg.cond(np.asarray(J_dense)) < 1e8
    np.testing.assert_allclose(np.asarray(step).reshape(-1), dense_step, rtol=1e-9, atol=1e-9)


def test_field_matches_pmp_definitions():
    """The vectorised maximiser and costate field equal jaxtwin.syncgame.pmp's per-player
    ones (maximise_controls, costate_field, hamiltonian) at random (z, lambda), with
    controls inside and at both bounds; 4 VSPs so the indexing is not 2x2-special."""
    from jaxtwin.syncgame.pmp import costate_field, hamiltonian, maximise_controls
    params = default_params(4)
    with jax.enable_x64(True):
        p = as_float64(params)
        keys = jax.random.split(jax.random.key(3), 3)
        z = jnp.concatenate([jax.random.uniform(keys[0], (16, 4), jnp.float64, 0.0, 60.0),
                             jax.random.dirichlet(keys[1], jnp.ones(4), (16,), jnp.float64)], axis=1)
        lam = jax.random.normal(keys[2], (16, 4, 8), jnp.float64) * 20.0
        Y = jnp.concatenate([z, lam.reshape(16, -1)], axis=1)

        @jax.jit
        def both(Y, z, lam):
            u = jax.vmap(lambda y: C.pointwise_controls(p, y))(Y)
            u_ref = jax.vmap(lambda z, l: maximise_controls(p, z, l, jnp.zeros(4)))(z, lam)
            G = jax.vmap(lambda y: C.bvp_field(p, y))(Y)
            G_ref = jax.vmap(lambda z, l, u: jnp.concatenate([C.state_field(p, z, u), costate_field(p, z, l, u).reshape(-1)]))(z, lam, u_ref)
            H = jax.vmap(lambda z, l, u: C.hamiltonians(p, z, l, u))(z, lam, u_ref)
            H_ref = jax.vmap(lambda z, l, u: jnp.stack([hamiltonian(p, i, z, l[i], u) for i in range(4)]))(z, lam, u_ref)
            return u, u_ref, G, G_ref, H, H_ref

        u, u_ref, G, G_ref, H, H_ref = map(np.asarray, both(Y, z, lam))
    assert np.any(u == 0.0) and np.any(u == 40.0) and np.any((u > 0) & (u < 40))
    np.testing.assert_allclose(u, u_ref, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(G, G_ref, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(H, H_ref, rtol=1e-12, atol=1e-9)


def test_converges_at_the_2vsp_default(coarse, fine):
    for sol in (coarse, fine):
        assert bool(sol.converged) and int(sol.result) == Result.CONVERGED
        assert float(sol.residual) < FINE.tol and int(sol.iterations) < 15
        assert sol.states.dtype == jnp.float64
        np.testing.assert_allclose(sol.costates[-1], 0.0, atol=1e-12)          # lambda(T) = 0
        np.testing.assert_allclose(sol.states[0], [1.0, 1.0, 0.5, 0.5], atol=1e-12)
        np.testing.assert_allclose(np.asarray(sol.states)[:, 2:].sum(1), 1.0, atol=1e-10)
    # the 9-node starting solve leaves only the quadratic tail to the 51-node Newton
    assert int(fine.iterations) <= 3 < int(coarse.iterations)


def test_fourth_order_against_tight_solve_bvp(coarse, fine, truth):
    """Halving h (26 -> 51 nodes) divides every error by ~16 (measured 15.5 in x,
    16.3 in u, 15.6 in y, 15.4 in payoffs); 51 nodes are within 1e-3 of solve_bvp
    in x (measured 5.1e-4; the sweep solver at 101 nodes is 0.028 off)."""
    e26 = errors(coarse.ts, coarse.states, coarse.controls, coarse.payoffs, truth)
    e51 = errors(fine.ts, fine.states, fine.controls, fine.payoffs, truth)
    for q in ("x", "y", "u", "payoff"):
        assert 12.0 < e26[q] / e51[q] < 20.0, (q, e26, e51)
    assert e51["x"] < 1e-3 and e51["y"] < 1e-5 and e51["u"] < 3e-4 and e51["payoff"] < 0.04, e51


def test_agrees_with_sweep_solver(fine, truth):
    """The PMP sweep solver (2nd order) at 101 nodes differs from collocation by no
    more than its own measured error against solve_bvp (plus collocation's)."""
    pmp = nash_equilibrium(default_params(), SolverOptions(n_grid=101))
    assert bool(pmp.converged)
    e_pmp = errors(pmp.ts, pmp.states, pmp.controls, pmp.payoffs, truth)
    e_col = errors(fine.ts, fine.states, fine.controls, fine.payoffs, truth)
    # compare on the 51 common nodes (every other node of the 101 grid)
    d = dict(x=np.abs(pmp.states[::2, :2] - fine.states[:, :2]).max(), y=np.abs(pmp.states[::2, 2:] - fine.states[:, 2:]).max(),
             u=np.abs(pmp.controls[::2] - fine.controls).max(), payoff=np.abs(pmp.payoffs - fine.payoffs).max())
    for q in d:
        assert d[q] <= e_pmp[q] + e_col[q] + 1e-12, (q, d, e_pmp, e_col)
    assert d["x"] > 10 * e_col["x"]      # the difference is the sweep solver's error, not ours


def test_graded_grid_crowds_both_ends():
    ts = np.asarray(C.collocation_grid(50.0, 31, 0.7))
    h = np.diff(ts)
    assert ts[0] == 0.0 and abs(ts[-1] - 50.0) < 1e-12 and np.all(h > 0)
    assert h[0] < 0.35 * h[15] and h[-1] < 0.35 * h[15]          # ends ~ (1-a)/(1+a) of the middle


def test_four_vsps_converge_on_a_graded_grid():
    """4 VSPs on 26 graded nodes (a = 0.7): converges and stays close to solve_bvp
    (measured on 2 VSPs at this grid: x 1.3e-3, y 7e-6, u 3e-4 over the delta_k sweep)."""
    params = default_params(4)
    sol = nash_collocation(params, CollocationOptions(n_grid=26, grading=0.7))
    assert bool(sol.converged) and float(sol.residual) < COARSE.tol
    ref = solve_nash_bvp(params_from_jaxtwin(params), tol=1e-6)
    assert ref.success
    err = errors(sol.ts, sol.states, sol.controls, sol.payoffs, ref)
    assert err["x"] < 0.01 and err["y"] < 1e-4 and err["u"] < 3e-3, err


def test_vmapped_batch_equals_points_and_flags_nan(coarse):
    base = default_params()
    bad = base.replace(rho=base.rho.at[0].set(jnp.nan))
    points = [base, default_params(sigma=2.0, delta=(0.1, 0.45)), bad]
    # past the entry point's params check (which refuses the NaN point), as nash_collocation calls it
    sol = call_float64(C.solve_nash_collocation, stack_params(points), static=(COARSE,), batched=True, check=False)
    with pytest.raises(ConfigError, match=r"SyncParams\.rho"):
        nash_collocation(stack_params(points), COARSE, batched=True)
    np.testing.assert_array_equal(np.asarray(sol.converged), [True, True, False])
    assert int(sol.result[2]) == Result.NOT_FINITE and not np.isfinite(float(sol.residual[2]))
    assert int(sol.iterations[2]) == 0           # stops at the non-finite start, no wasted iterations
    for j in (0, 1):
        one = coarse if j == 0 else nash_collocation(points[j], COARSE)
        for got, want in zip(jax.tree.map(lambda a: a[j], sol), one):
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    single_bad = call_float64(C.solve_nash_collocation, bad, static=(COARSE,), check=False)
    assert not bool(single_bad.converged) and int(single_bad.result) == Result.NOT_FINITE


def test_options_are_validated():
    from jaxtwin.core.config import ConfigError
    with pytest.raises(ConfigError, match="n_grid"):
        CollocationOptions(n_grid=2)
    with pytest.raises(ConfigError, match="tol"):
        CollocationOptions(tol=0.0)
