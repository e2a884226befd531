"""Generic replicator dynamics (jaxtwin.syncgame.replicator) against nashpy's
``replicator_dynamics`` (scipy odeint) and closed forms on hawk-dove,
rock-paper-scissors and a coordination game; vmap; the model's UAV replicator
as one instance."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.syncgame.model import replicator_field, uav_utility
from jaxtwin.syncgame.params import as_float64, default_params
from jaxtwin.syncgame.replicator import replicator_dynamics, replicator_vector_field
from jaxtwin.syncgame.results import Result

nashpy = pytest.importorskip("nashpy")

V, C = 2.0, 3.0
HAWK_DOVE = np.array([[(V - C) / 2, V], [0.0, V / 2]])          # ESS: hawks at V/C
RPS = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
COORDINATION = np.array([[2.0, 0.0], [0.0, 1.0]])              # unstable interior point at 1/3
GAMES = {"hawk_dove": (HAWK_DOVE, [0.1, 0.9]), "rps": (RPS, [0.5, 0.3, 0.2]),
         "coordination_up": (COORDINATION, [0.4, 0.6]), "coordination_down": (COORDINATION, [0.3, 0.7])}
TS = np.linspace(0.0, 20.0, 201)


@jax.jit
def _path(A, x0, ts):
    return replicator_dynamics(A, x0, ts)


def _solve(A, x0, ts=TS):
    with jax.enable_x64(True):
        return jax.tree.map(np.asarray, _path(jnp.asarray(A), jnp.asarray(x0, jnp.float64), jnp.asarray(ts)))


@pytest.mark.parametrize("name", sorted(GAMES))
def test_matches_nashpy(name):
    A, x0 = GAMES[name]
    got = _solve(A, x0)
    want = nashpy.Game(A).replicator_dynamics(y0=np.array(x0), timepoints=TS)
    assert got.result == Result.CONVERGED
    # both integrators at ~1e-8 local tolerance: measured max differences 6e-8 (rps) to 3.5e-7
    np.testing.assert_allclose(got.xs, want, atol=2e-6, rtol=0)
    np.testing.assert_allclose(got.xs.sum(axis=1), 1.0, atol=1e-9)


def test_hawk_dove_closed_form_and_ess():
    """Two strategies: dx/dt = x (1 - x) ((A x)_0 - (A x)_1) = x (1 - x) (V - C x) / 2, whose
    solution is implicit: x^(1/V) (1-x)^(1/(C-V)) / |V - C x|^(C/(V (C-V))) = const * e^(t/2)."""
    got = _solve(HAWK_DOVE, [0.1, 0.9])
    x = got.xs[:, 0]

    def g(x):
        return np.log(x) / V + np.log(1 - x) / (C - V) - C / (V * (C - V)) * np.log(np.abs(V - C * x))

    # the error in x this implies, (g(x) - g(x0) - t/2) / g'(x): measured 1.6e-8 (rtol 1e-8 integration)
    x_err = (g(x) - g(x[0]) - TS / 2) * x * (1 - x) * (V - C * x)
    assert np.abs(x_err).max() < 1e-7
    assert abs(x[-1] - V / C) < 1e-3                               # measured 7.0e-4 at t = 20


def test_rps_conserves_product_of_shares():
    """Zero-sum RPS: x1 x2 x3 is a constant of motion (closed orbits around (1/3, 1/3, 1/3))."""
    got = _solve(RPS, [0.5, 0.3, 0.2])                              # ~5 periods on [0, 20]
    prod = got.xs.prod(axis=1)
    np.testing.assert_allclose(prod, prod[0], rtol=1e-6)
    assert got.xs[:, 0].max() - got.xs[:, 0].min() > 0.2           # it does cycle


def test_coordination_goes_to_the_pure_strategy_on_its_side():
    up, down = _solve(COORDINATION, [0.4, 0.6]), _solve(COORDINATION, [0.3, 0.7])
    assert up.xs[-1, 0] > 0.999 and down.xs[-1, 0] < 0.001
    # starting on the unstable interior point (1/3, 2/3) stays there
    rest = _solve(COORDINATION, [1 / 3, 2 / 3])
    np.testing.assert_allclose(rest.xs, np.broadcast_to([1 / 3, 2 / 3], rest.xs.shape), atol=1e-9)


def test_vmaps_over_starts_and_payoff_matrices():
    x0s = np.array([[0.1, 0.9], [0.5, 0.5], [0.8, 0.2]])
    with jax.enable_x64(True):
        many = jax.jit(jax.vmap(lambda x0: replicator_dynamics(jnp.asarray(HAWK_DOVE), x0, jnp.asarray(TS))))(x0s)
        games = jnp.stack([jnp.asarray(HAWK_DOVE), jnp.asarray(COORDINATION)])
        per_game = jax.jit(jax.vmap(lambda A: replicator_dynamics(A, jnp.array([0.4, 0.6]), jnp.asarray(TS))))(games)
    for j, x0 in enumerate(x0s):
        np.testing.assert_allclose(many.xs[j], _solve(HAWK_DOVE, x0).xs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(per_game.xs[1], _solve(COORDINATION, [0.4, 0.6]).xs, rtol=1e-12, atol=1e-12)


def test_payoff_function_and_mutation_match_nashpy():
    """A fitness function gives the same path as its matrix; the replicator-mutator matches nashpy's."""
    Q = np.array([[0.9, 0.1], [0.05, 0.95]])
    with jax.enable_x64(True):
        A = jnp.asarray(HAWK_DOVE)
        x0, ts = jnp.array([0.1, 0.9]), jnp.asarray(TS)
        by_fn = jax.jit(lambda x0: replicator_dynamics(lambda x: A @ x, x0, ts))(x0)
        mutated = jax.jit(lambda x0: replicator_dynamics(A, x0, ts, mutation=jnp.asarray(Q)))(x0)
    np.testing.assert_allclose(by_fn.xs, _solve(HAWK_DOVE, [0.1, 0.9]).xs, rtol=1e-12, atol=1e-12)
    want = nashpy.Game(HAWK_DOVE).replicator_dynamics(y0=np.array([0.1, 0.9]), timepoints=TS, mutation_matrix=Q)
    np.testing.assert_allclose(mutated.xs, want, atol=2e-6, rtol=0)


def test_the_uav_replicator_is_an_instance():
    """The model's field is sigma times the generic one with the UAV utility as fitness (on the simplex)."""
    with jax.enable_x64(True):
        p = as_float64(default_params(4, sigma=0.7, c=(0.1, 0.2, 0.05, 0.3)))
        u = jnp.array([5.0, 12.0, 3.0, 20.0])
        for y in (jnp.array([0.1, 0.2, 0.3, 0.4]), jnp.array([0.7, 0.1, 0.1, 0.1])):
            generic = p.sigma * replicator_vector_field(lambda y: uav_utility(p, u, y), y)
            np.testing.assert_allclose(replicator_field(p, y, u), generic, rtol=1e-12, atol=1e-14)
