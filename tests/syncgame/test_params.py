"""SyncParams at the API boundary: every field out of its domain or not finite is refused,
naming the field, by the float64 solver entry points (before anything compiles) and by
validate_params; traced params are not checked."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxtwin.core.concrete import check_if_concrete, is_concrete
from jaxtwin.core.config import ConfigError
from jaxtwin.syncgame.collocation import CollocationOptions, nash_collocation
from jaxtwin.syncgame.nash import nash_equilibrium
from jaxtwin.syncgame.params import PER_VSP, SCALARS, default_params, stack_params, validate_params
from jaxtwin.syncgame.stackelberg import stackelberg_equilibrium
from jaxtwin.syncgame.static import static_stackelberg_equilibrium

P = jax.tree.map(lambda v: np.asarray(v, np.float64), default_params())
POSITIVE = ("delta", "D", "N", "d", "s", "sigma", "T", "u_max")
NONFINITE = st.sampled_from([np.nan, np.inf, -np.inf])


def _bad_value(field):
    """Strategy: (index or None, bad value) for ``field`` with every other field at its default."""
    if field == "y0":   # off the simplex: a share <= 0 (shares still summing to 1), or a wrong sum
        off = st.floats(min_value=-10.0, max_value=0.0).map(lambda a: np.array([a, 1.0 - a]))
        wrong_sum = st.floats(min_value=0.01, max_value=10.0).filter(lambda b: abs(b - 0.5) > 1e-3).map(
            lambda b: np.array([0.5, b]))
        return st.one_of(off, wrong_sum, NONFINITE.map(lambda v: np.array([v, 0.5])))
    if field == "w":
        neg = st.tuples(st.integers(0, 3), st.floats(max_value=-1e-6, min_value=-1e6))
        w4 = st.tuples(st.just(3), st.just(0.0))
        return st.one_of(neg, w4, st.tuples(st.integers(0, 3), NONFINITE))
    bound = (st.floats(max_value=0.0, min_value=-1e6) if field in POSITIVE
             else st.floats(max_value=-1e-6, min_value=-1e6))
    index = st.integers(0, 1) if field in PER_VSP else st.none()
    return st.tuples(index, st.one_of(bound, NONFINITE))


def _with(field, spec):
    if field == "y0":
        return P.replace(y0=spec)
    i, v = spec
    arr = np.array(getattr(P, field), np.float64)
    if i is None:
        arr = np.float64(v)
    else:
        arr[i] = v
    return P.replace(**{field: arr})


@settings(max_examples=80, deadline=None)
@given(st.sampled_from(PER_VSP + SCALARS + ("w",)).flatmap(lambda f: st.tuples(st.just(f), _bad_value(f))))
def test_out_of_domain_field_is_refused_by_entry_points(field_spec):
    field, spec = field_spec
    bad = _with(field, spec)
    with pytest.raises(ConfigError, match=rf"^SyncParams\.{field}="):
        validate_params(bad)
    with pytest.raises(ConfigError, match=rf"^SyncParams\.{field}="):
        nash_collocation(bad, CollocationOptions(n_grid=5))


@pytest.mark.parametrize("solve", [
    lambda p: nash_equilibrium(p),
    lambda p: nash_collocation(stack_params([p, p]), batched=True),
    lambda p: stackelberg_equilibrium(p, (0,)),
    lambda p: static_stackelberg_equilibrium(p, (0,)),
])
def test_every_entry_point_checks(solve):
    """NaN sigma would also break the substep count: the params check names it first."""
    with pytest.raises(ConfigError, match=r"SyncParams\.sigma=\[?nan.*: must be finite"):
        solve(P.replace(sigma=np.float64(np.nan)))


def test_traced_params_are_not_checked():
    bad = P.replace(r=np.float64(-1.0))
    seen = []
    jax.jit(lambda p: seen.append(is_concrete(p)) or check_if_concrete(validate_params, p).r)(bad)
    assert seen == [False]
    assert is_concrete(bad) and is_concrete({"a": jnp.ones(2), "b": 1.0})
