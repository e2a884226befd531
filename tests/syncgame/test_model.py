"""Model terms (spec §1) vs hand-computed values; replicator invariants."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxtwin.syncgame.model import (discounted_payoff, dt_value_rate, incentive_pool, instantaneous_payoff,
                                 payoff_terms, replicator_field, state_field, uav_utility)
from jaxtwin.core.config import ConfigError
from jaxtwin.syncgame.params import as_float64, default_params, make_params, stack_params, validate_params
from jaxtwin.syncgame.replicator import replicator_rest_point, simulate, simulate_replicator, time_grid

P = default_params()
X = jnp.array([10.0, 20.0])
Y = jnp.array([0.4, 0.6])
U = jnp.array([5.0, 8.0])
Z = jnp.concatenate([X, Y])


def test_incentive_pool_and_utility():
    # R = (a*delta + b) * u * D = (0.1+0.1)*5*10, (0.3+0.1)*8*10
    np.testing.assert_allclose(incentive_pool(P, U), [10.0, 32.0], rtol=1e-6)
    # pi = R/(N y) - c = 10/40 - 0.1, 32/60 - 0.1
    np.testing.assert_allclose(uav_utility(P, U, Y), [0.15, 32 / 60 - 0.1], rtol=1e-6)


def test_dt_value_rate():
    np.testing.assert_allclose(dt_value_rate(P, X, U), [5 - 1.0, 8 - 6.0], rtol=1e-6)


def test_replicator_field_hand_value_and_division_free_form():
    # g = R/N - c y = (0.06, 0.26), S = 0.32; dy = 0.5*(g - y S)
    np.testing.assert_allclose(replicator_field(P, Y, U), [-0.034, 0.034], rtol=1e-5)
    pi = uav_utility(P, U, Y)
    np.testing.assert_allclose(replicator_field(P, Y, U), 0.5 * Y * (pi - jnp.dot(Y, pi)), rtol=1e-5)
    np.testing.assert_allclose(state_field(P, Z, U), [4.0, 2.0, -0.034, 0.034], rtol=1e-5)


def test_payoff_terms_hand_values():
    terms = np.asarray(payoff_terms(P, Z, U))
    np.testing.assert_allclose(terms[0], [4.0, 6.0], rtol=1e-6)                        # w1 p d N y
    np.testing.assert_allclose(terms[1], [0.2 * math.exp(0.1) * 10, 0.2 * math.exp(0.3) * 20], rtol=1e-6)
    np.testing.assert_allclose(terms[2], [-80.0, -45.0], rtol=1e-6)                   # -w3 (x - xbar)^2
    np.testing.assert_allclose(terms[3], [-0.5, -2.0], rtol=1e-6)                     # -w4 (D s u - N d y)^2
    np.testing.assert_allclose(instantaneous_payoff(P, Z, U), [-74.289658164, -35.600564769], rtol=1e-6)


def test_discounted_payoff_of_constant_integrand():
    # constant J: int_0^T e^{-rt} J dt = J (1 - e^{-rT}) / r
    ts = jnp.linspace(0.0, 50.0, 2001)
    zs = jnp.broadcast_to(Z, (2001, 4))
    us = jnp.broadcast_to(U, (2001, 2))
    expected = np.asarray(instantaneous_payoff(P, Z, U)) * (1 - math.exp(-2.5)) / 0.05
    np.testing.assert_allclose(discounted_payoff(P, ts, zs, us), expected, rtol=1e-5)


def test_params_validation_names_field():
    with pytest.raises(ConfigError, match="delta"):
        make_params((0.1, -0.3))
    with pytest.raises(ConfigError, match="y0"):
        make_params((0.1, 0.3), y0=(0.7, 0.7))
    with pytest.raises(ConfigError, match="w"):
        make_params((0.1, 0.3), w=(1.0, 0.2, 0.05, 0.0))
    with pytest.raises(ConfigError, match="at least 2"):
        make_params((0.1,))
    with pytest.raises(ConfigError, match="n_vsp=5"):
        default_params(5)
    validate_params(stack_params([P, P]))   # batched params are fine
    assert default_params(4).n_vsp == 4


def test_rest_point_equal_costs_is_pool_share():
    u = jnp.array([5.0, 15.0])
    r = np.asarray(incentive_pool(P, u))
    np.testing.assert_allclose(replicator_rest_point(P, u), r / r.sum(), rtol=1e-9)
    y = replicator_rest_point(P, u)
    np.testing.assert_allclose(replicator_field(P, y, u), 0.0, atol=1e-7)


def test_rest_point_without_root_is_nan_not_a_raise():
    """No interior rest point (a VSP at u = 0 with costs that leave no root in the bracket, or
    NaN controls from a failed solve): NaN, where optimistix's Bisection would raise even with
    throw=False; a valid point in the same vmapped batch is unchanged."""
    with jax.enable_x64(True):   # as the experiments call it (in float32 the bracket's end is 0/0)
        p = as_float64(P)
        us = jnp.array([[0.0, 0.0], [jnp.nan, 1.0], [5.0, 15.0]])
        ys = np.asarray(jax.vmap(lambda u: replicator_rest_point(p, u))(us))
        assert np.all(np.isnan(ys[:2]))
        np.testing.assert_array_equal(ys[2], np.asarray(replicator_rest_point(p, us[2])))


_field = jax.jit(replicator_field)
_sim = jax.jit(lambda p, us: simulate(p, time_grid(p.T, 41), us).states)
_P4 = default_params(4, T=10.0)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=4, max_size=4),
       st.lists(st.floats(0.0, 40.0), min_size=4, max_size=4))
def test_replicator_field_tangent_to_simplex(ys, us):
    y = jnp.array(ys) / sum(ys)
    dy = _field(_P4, y, jnp.array(us))
    assert abs(float(jnp.sum(dy))) < 1e-5 * (1 + float(jnp.max(jnp.abs(dy))))


@settings(max_examples=20, deadline=None)
@given(st.lists(st.floats(0.01, 1.0), min_size=4, max_size=4), st.integers(0, 2**31 - 1))
def test_replicator_keeps_shares_on_simplex(ys, seed):
    y0 = np.array(ys) / sum(ys)
    us = jax.random.uniform(jax.random.PRNGKey(seed), (41, 4), maxval=40.0)
    states = np.asarray(_sim(_P4.replace(y0=jnp.asarray(y0, jnp.float32)), us))
    y = states[:, 4:]
    np.testing.assert_allclose(y.sum(axis=1), 1.0, atol=1e-4)
    assert y.min() > -1e-6


def test_ess_from_every_interior_start_and_after_perturbation():
    u = jnp.array([5.0, 15.0])
    y_star = np.asarray(replicator_rest_point(P, u))
    ts = jnp.linspace(0.0, 80.0, 5)
    starts = [jnp.array([y1, 1 - y1]) for y1 in np.arange(0.1, 1.0, 0.1)]
    finals = jax.vmap(lambda y0: simulate_replicator(P, u, y0, ts)[-1])(jnp.stack(starts))
    np.testing.assert_allclose(finals, np.broadcast_to(y_star, finals.shape), atol=1e-4)
    # perturbation of the rest point decays back to it
    pert = y_star + np.array([0.05, -0.05])
    back = simulate_replicator(P, u, jnp.asarray(pert, jnp.float32), ts)
    assert np.abs(np.asarray(back[-1]) - y_star).max() < 1e-4 < np.abs(pert - y_star).max()
