"""The shared damped Newton driver (jaxtwin.syncgame.newton) and the result codes
(jaxtwin.syncgame.results): backtracking, both line-search modes, projection,
non-finite starts, iteration limits, vmap; one enumeration with messages."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.syncgame.newton import armijo, max_abs, newton, norm
from jaxtwin.syncgame.results import Result, classify, message


def _atan(x):
    """F(x) = atan(x): Newton from |x0| > 1.39 diverges without damping."""
    F = jnp.arctan(x)
    return F, -F * (1.0 + x * x), jnp.sum(x)


def _solve(x0, **kw):
    kw = dict(tol=1e-12, max_iter=40) | kw
    return jax.jit(lambda x: newton(_atan, x, **kw))(jnp.asarray(x0))


@pytest.mark.parametrize("mode", ["every_trial", "residual_only"])
def test_backtracking_converges_where_plain_newton_diverges(mode):
    kw = {} if mode == "every_trial" else dict(residual=lambda x: jnp.arctan(x))
    res = _solve([10.0], **kw)
    assert int(res.result) == Result.CONVERGED and bool(res.converged)
    assert float(res.residual) <= 1e-12 and abs(float(res.value[0])) <= 1e-12
    # from x0 = 10 the full step lands at -138.6; three halvings give -8.58, the first accepted trial
    one = _solve([10.0], max_iter=1 if mode == "residual_only" else 5, **kw)
    assert abs(float(one.value[0]) - (10.0 - 0.125 * np.arctan(10.0) * 101.0)) < 1e-4
    plain = _solve([10.0], max_halvings=0, max_iter=8, **kw)
    assert not bool(plain.converged) and abs(float(plain.value[0])) > 1e3


def test_every_trial_mode_counts_linearisations_and_keeps_aux():
    # the first linearisation is at x0 itself; quadratic convergence from 0.5 takes a handful
    res = _solve([0.5])
    assert 3 <= int(res.iterations) <= 7
    np.testing.assert_allclose(res.aux, res.value.sum())
    at_start = _solve([0.0])
    assert int(at_start.iterations) == 1 and float(at_start.residual) == 0.0


def test_every_trial_mode_traces_linearise_once_under_jit_and_vmap():
    """linearise's Python runs once per solve (its jaxpr gives the loop's shapes and is
    replayed in the body), also when it closes over traced values; results are those of
    the plain problem."""
    calls = []

    def shifted(x, c):
        def lin(v):
            calls.append(1)
            F, step, aux = _atan(v - c)
            return F, step, aux
        return newton(lin, x, tol=1e-12, max_iter=40)

    res = jax.jit(jax.vmap(shifted))(jnp.array([[10.0], [0.5]]), jnp.array([1.0, -2.0]))
    assert len(calls) == 1
    np.testing.assert_allclose(res.value[:, 0], [1.0, -2.0], atol=1e-12)
    assert int(res.iterations[0]) == int(_solve([9.0]).iterations)


def test_non_finite_start_stops_at_once():
    for kw, its in (({}, 1), (dict(residual=lambda x: jnp.arctan(x)), 0)):
        res = _solve([jnp.nan], **kw)
        assert int(res.result) == Result.NOT_FINITE and int(res.iterations) == its
        assert float(res.residual) == np.inf


def test_iteration_limit_gives_max_iter():
    res = _solve([10.0], max_iter=2)
    assert int(res.result) == Result.MAX_ITER and int(res.iterations) == 2


def test_projection_keeps_iterates_in_the_box():
    """Projected Newton on F(x) = x - 3 clipped to [0, 1]: the trial is projected, so the
    iterate stays at the bound 1 (and the residual there, 2, is what is reported)."""
    lin = lambda x: (x - 3.0, -(x - 3.0), None)  # noqa: E731
    res = newton(lin, jnp.array([0.2]), tol=1e-10, max_iter=4, max_halvings=0,
                 project=lambda x: jnp.clip(x, 0.0, 1.0))
    assert float(res.value[0]) == 1.0 and float(res.residual) == 2.0
    assert int(res.result) == Result.MAX_ITER


def test_vmap_equals_one_at_a_time():
    x0s = jnp.array([[10.0, -3.0], [0.5, 2.0], [-20.0, 0.1]])
    batched = jax.jit(jax.vmap(lambda x: newton(_atan, x, tol=1e-12, max_iter=40)))(x0s)
    for j in range(3):
        one = _solve(x0s[j])
        np.testing.assert_array_equal(batched.value[j], one.value)
        assert int(batched.iterations[j]) == int(one.iterations)


def test_merit_helpers():
    F = jnp.array([3.0, -4.0])
    assert float(norm(F)) == 5.0 and float(max_abs(F)) == 4.0
    assert float(norm(jnp.array([jnp.nan]))) == np.inf and float(max_abs(jnp.array([jnp.inf]))) == np.inf
    assert bool(armijo(jnp.array([4.99]), F, 1.0)) and not bool(armijo(jnp.array([4.9996]), F, 1.0))


def test_result_codes_have_messages_and_one_precedence():
    assert [int(r) for r in Result] == [0, 1, 2, 3]
    for r in Result:
        assert isinstance(message(r), str) and message(int(r)) == message(jnp.int32(r))
    assert list(message(np.array([0, 3]))) == [message(0), message(3)]
    with pytest.raises(ValueError, match="not a jaxtwin.syncgame.results.Result"):
        message(7)
    codes = [int(classify(jnp.float32(r), 1e-8, fin, ok)) for r, fin, ok in
             ((1e-9, True, True), (1e-3, True, True), (1e-9, False, True), (jnp.inf, True, True),
              (1e-9, True, False), (jnp.nan, False, False))]
    assert codes == [Result.CONVERGED, Result.MAX_ITER, Result.NOT_FINITE, Result.NOT_FINITE,
                     Result.ODE_FAILED, Result.ODE_FAILED]
