"""Open-loop Stackelberg by collocation (jaxtwin.syncgame.stackelberg_collocation): the
one-pass field equals the per-leader construction of jaxtwin.syncgame.stackelberg,
convergence from the Nash start with every boundary condition, 4th order under mesh
refinement, agreement with the sweep solver, and the followers' no-deviation check
(spec §5) on the collocation paths."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.syncgame import stackelberg_collocation as SC
from jaxtwin.syncgame.collocation import CollocationOptions, nash_collocation
from jaxtwin.syncgame.direct import verify_equilibrium
from jaxtwin.syncgame.model import state_field
from jaxtwin.syncgame.params import as_float64, default_params
from jaxtwin.syncgame.pmp import costate_field, maximise_controls, maximise_quadratic
from jaxtwin.syncgame.results import Result
from jaxtwin.syncgame.stackelberg import leader_hamiltonian

P = default_params()
OPTS = CollocationOptions(n_grid=51, tol=1e-9, grading=0.7)


@pytest.fixture(scope="module")
def solutions():
    return nash_collocation(P, OPTS), SC.stackelberg_collocation(P, (0,), OPTS)


def _reference_field(p, leaders, followers, Y):
    """u~ and G from the per-leader definitions the sweep solver uses (no affine reconstruction)."""
    m = p.n_vsp
    fol = jnp.array(followers)
    z, mu_lam, lam_f, mu_z = SC.split_unknowns(Y, m, len(leaders), len(followers))
    u = jnp.zeros(m).at[fol].set(maximise_controls(p, z, lam_f, jnp.zeros(m), players=fol))
    for i, l in enumerate(leaders):
        u = u.at[l].set(maximise_quadratic(
            lambda ul: leader_hamiltonian(p, l, fol, z, lam_f, mu_z[i], mu_lam[i], u.at[l].set(ul)), u[l], p.u_max))
    grads = [jax.grad(leader_hamiltonian, argnums=(3, 4))(p, l, fol, z, lam_f, mu_z[i], mu_lam[i], u)
             for i, l in enumerate(leaders)]
    dz, dlam = jnp.stack([g[0] for g in grads]), jnp.stack([g[1] for g in grads])
    G = SC.join_unknowns(state_field(p, z, u), p.r * mu_lam - dlam, costate_field(p, z, lam_f, u, players=fol),
                         p.r * mu_z - dz)
    return u, G


def test_field_equals_the_per_leader_construction():
    """Two leaders of four VSPs (so the affine reconstruction over e_k is exercised), random
    points with controls inside and at both bounds (u_max = 12)."""
    leaders, followers = (0, 2), (1, 3)
    with jax.enable_x64(True):
        p = as_float64(default_params(4, u_max=12.0))
        k = jax.random.split(jax.random.key(5), 3)
        n = 8 * (1 + 2 + 2 + 4)
        z = jnp.concatenate([jax.random.uniform(k[0], (12, 4), jnp.float64, 0.0, 60.0),
                             jax.random.dirichlet(k[1], jnp.ones(4), (12,), jnp.float64)], axis=1)
        Y = jnp.concatenate([z, jax.random.normal(k[2], (12, n - 8), jnp.float64) * 20.0], axis=1)
        got = jax.jit(jax.vmap(lambda y: SC.controls_and_field(p, leaders, followers, y)))(Y)
        want = jax.jit(jax.vmap(lambda y: _reference_field(p, leaders, followers, y)))(Y)
    u, G = map(np.asarray, got)
    u_ref, G_ref = map(np.asarray, want)
    assert np.any(u[:, [0, 2]] == 0.0) and np.any(u[:, [0, 2]] == 12.0) and np.any((u > 0) & (u < 12))
    np.testing.assert_allclose(u, u_ref, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(G, G_ref, rtol=1e-11, atol=1e-8)


def test_converges_from_nash_with_every_boundary_condition(solutions):
    nash, st = solutions
    assert bool(st.converged) and int(st.result) == Result.CONVERGED and float(st.residual) < OPTS.tol
    assert int(st.iterations) <= 4          # the Nash start leaves only Newton's quadratic tail
    np.testing.assert_allclose(st.states[0], [1.0, 1.0, 0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(st.leader_costate_costates[0], 0.0, atol=1e-12)       # mu^lam(0) = 0
    np.testing.assert_allclose(st.follower_costates[-1], 0.0, atol=1e-12)            # lambda_F(T) = 0
    np.testing.assert_allclose(st.leader_state_costates[-1], 0.0, atol=1e-12)        # mu^z(T) = 0
    # the leader moves its path and gains; the follower loses (payoffs are O(100-200))
    assert np.abs(np.asarray(st.controls[:, 0] - nash.controls[:, 0])).max() > 1e-2
    assert float(st.payoffs[0] - nash.payoffs[0]) > 1e-3 and float(st.payoffs[1] - nash.payoffs[1]) < -1e-2


def test_fourth_order_in_the_leaders_gain():
    """The leader's gain over Nash (what the comparison reports) converges at 4th order:
    halving h divides its change by ~16 (26 -> 51 -> 101 graded nodes)."""
    gains = []
    for n in (26, 51, 101):
        opts = OPTS if n == 51 else CollocationOptions(n_grid=n, tol=OPTS.tol, grading=0.7)   # 51: the fixture's program
        gains.append(float(SC.stackelberg_collocation(P, (0,), opts).payoffs[0] - nash_collocation(P, opts).payoffs[0]))
    ratio = (gains[0] - gains[1]) / (gains[1] - gains[2])
    assert 10.0 < ratio < 24.0, gains
    assert abs(gains[2] - gains[1]) < 1e-3 * abs(gains[2]), gains


def test_follower_has_no_profitable_deviation(solutions):
    """The direct method (spec §5) on the collocation paths (piecewise linear between the
    graded nodes): the follower cannot gain more than 1e-5 of its payoff."""
    _, st = solutions
    check = verify_equilibrium(P, st.ts, st.controls, (1,), steps=100, learning_rate=0.05)
    assert float(check.gain[0]) < 1e-5 * abs(float(check.equilibrium_payoff[0]))
