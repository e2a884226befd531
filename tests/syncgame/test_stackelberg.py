"""Stackelberg differential game (spec §3), static baseline (spec §4) and the
followers' no-deviation check (spec §5)."""
import jax
import numpy as np
import pytest

from jaxtwin.syncgame.direct import verify_equilibrium
from jaxtwin.syncgame.nash import nash_equilibrium
from jaxtwin.syncgame.params import default_params
from jaxtwin.syncgame.pmp import SolverOptions
from jaxtwin.syncgame.stackelberg import split_roles, stackelberg_equilibrium
from jaxtwin.syncgame.results import Result
from jaxtwin.syncgame.static import STATIC_TOL, static_stackelberg_equilibrium

OPTS = SolverOptions(n_grid=51)
P = default_params()


@pytest.fixture(scope="module")
def solutions():
    return (nash_equilibrium(P, OPTS), stackelberg_equilibrium(P, (0,), OPTS),
            static_stackelberg_equilibrium(P, (0,), n_grid=51))


def test_stackelberg_converges(solutions):
    _, st, _ = solutions
    assert bool(st.converged) and float(st.residual) < OPTS.tol
    # boundary conditions of the augmented problem
    np.testing.assert_allclose(st.follower_costates[-1], 0.0, atol=1e-12)
    np.testing.assert_allclose(st.leader_state_costates[-1], 0.0, atol=1e-12)
    np.testing.assert_allclose(st.leader_costate_costates[0], 0.0, atol=1e-12)


def test_leader_advantage_is_tiny_in_this_model(solutions):
    # Under the spec model the leader's gain over Nash is O(1e-5) of its payoff,
    # below this grid's discretisation error (it flips sign between n_grid=51
    # and 101); the experiment resolves it on finer grids. Here: paths differ,
    # payoffs agree to 1e-4 relative.
    nash, st, _ = solutions
    assert abs(float(st.payoffs[0]) / float(nash.payoffs[0]) - 1.0) < 1e-4
    assert np.abs(np.asarray(st.controls[:, 0] - nash.controls[:, 0])).max() > 1e-3


def test_static_not_better_than_dynamic(solutions):
    nash, st, static = solutions
    assert float(static.residual) <= STATIC_TOL and int(static.result) == Result.CONVERGED
    assert int(st.result) == Result.CONVERGED
    assert np.all(np.asarray(static.payoffs) <= np.asarray(nash.payoffs) + 1e-9)
    assert np.all(np.asarray(static.payoffs) <= np.asarray(st.payoffs) + 1e-9)


def test_follower_has_no_profitable_deviation(solutions):
    _, st, _ = solutions
    check = verify_equilibrium(P, st.ts, st.controls, (1,), steps=100, learning_rate=0.05)
    assert float(check.gain[0]) < 1e-5 * abs(float(check.equilibrium_payoff[0]))


def test_roles_validation():
    assert split_roles(3, (0,)) == ((0,), (1, 2))
    with pytest.raises(ValueError, match="leaders"):
        split_roles(2, (0, 1))
    with pytest.raises(ValueError, match="leaders"):
        split_roles(2, (5,))
