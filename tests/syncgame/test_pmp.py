"""Costates and maximiser by autodiff vs hand-derived formulas (2-VSP case)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.reference.syncgame_scipy import costate_rhs, maximiser, params_from_jaxtwin
from jaxtwin.core.config import ConfigError
from jaxtwin.syncgame.params import default_params
from jaxtwin.syncgame.pmp import SolverOptions, costate_field, maximise_controls, solve_fixed_point


def _hand_costate_rhs(p, z, lam, u):
    """dlambda_i/dt = r lambda_i - dH_i/dz, differentiated by hand (benchmarks.reference)."""
    q = params_from_jaxtwin(p)
    return costate_rhs(q, z[:2, None], z[2:, None], lam[..., None], u[:, None])[..., 0]


def _hand_maximiser(p, z, lam, u):
    """The clipped maximiser, by hand (it depends on neither x nor the other players' u)."""
    return maximiser(params_from_jaxtwin(p), z[2:, None], lam[..., None])[:, 0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_costate_dynamics_match_hand_formula(seed):
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        p = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), default_params(sigma=0.7, c=(0.1, 0.3)))
        z = np.concatenate([rng.uniform(0, 60, 2), rng.dirichlet([1, 1])])
        lam = rng.normal(0, 3, (2, 4))
        u = rng.uniform(0, 40, 2)
        got = costate_field(p, jnp.asarray(z), jnp.asarray(lam), jnp.asarray(u))
        np.testing.assert_allclose(got, _hand_costate_rhs(p, z, lam, u), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_maximiser_matches_hand_formula_and_clips(seed):
    rng = np.random.default_rng(seed)
    with jax.enable_x64(True):
        p = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), default_params())
        z = np.concatenate([rng.uniform(0, 60, 2), rng.dirichlet([1, 1])])
        lam = rng.normal(0, 30, (2, 4))   # large: some maximisers hit a bound
        u = rng.uniform(0, 40, 2)
        got = maximise_controls(p, jnp.asarray(z), jnp.asarray(lam), jnp.asarray(u))
        np.testing.assert_allclose(got, _hand_maximiser(p, z, lam, u), rtol=1e-10, atol=1e-10)


def test_maximiser_maps_nan_to_admissible():
    p = default_params()
    got = maximise_controls(p, jnp.array([1.0, 1.0, 0.5, 0.5]), jnp.full((2, 4), jnp.nan), jnp.zeros(2))
    assert np.all(np.isfinite(got)) and np.all((got >= 0) & (got <= 40))


def test_fixed_point_solvers_on_linear_map():
    # v = A v + b with a strongly expanding A: the plain iteration diverges, Newton needs one step
    A = jnp.array([[3.0, 1.0], [0.0, -2.0]])
    b = jnp.array([1.0, 2.0])
    phi = lambda v: (A @ v + b, jnp.sum(v))  # noqa: E731
    exact = np.linalg.solve(np.eye(2) - np.asarray(A), np.asarray(b))
    for ls in ("dense", "gmres"):
        res = solve_fixed_point(phi, jnp.zeros(2), SolverOptions(linear_solver=ls, tol=1e-5))
        assert bool(res.converged) and int(res.iterations) <= 3
        np.testing.assert_allclose(res.value, exact, rtol=1e-5)
        np.testing.assert_allclose(res.aux, exact.sum(), rtol=1e-5)
    res = solve_fixed_point(phi, jnp.zeros(2), SolverOptions(method="sweep", relaxation=0.5, max_iter=50))
    assert not bool(res.converged)


def test_solver_options_validation():
    with pytest.raises(ConfigError, match="SolverOptions.method"):
        SolverOptions(method="bogus")
    with pytest.raises(ConfigError, match="SolverOptions.relaxation"):
        SolverOptions(relaxation=0.0)
