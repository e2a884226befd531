"""CivicEnv: projection, budget rule, GCP, credit conservation, determinism, params validation."""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxtwin.civic.env import CivicEnv, credit_total, poisson_small_rate, validate_params
from jaxtwin.core.config import ConfigError

ENV = CivicEnv(n_msps=3, heads_per_msp=2, horizon=6, cooperative=True)
PARAMS = ENV.default_params
STEP = jax.jit(ENV.step_env)
RESET = jax.jit(ENV.reset_env)
DECODE = jax.jit(ENV.decode_action)


def test_shapes_and_spaces():
    obs, state = RESET(jax.random.PRNGKey(0), PARAMS)
    assert ENV.action_size == 3 * 6 + 3
    assert obs.shape == (ENV.obs_size,) == (2 * 3 + 2 * 6 + 1 + 2,)
    assert bool(ENV.observation_space(PARAMS).contains(obs))
    assert ENV.action_space(PARAMS).sample(jax.random.PRNGKey(1)).shape == (ENV.action_size,)
    noncoop = CivicEnv(2, 1, 5, cooperative=False)
    assert noncoop.action_size == 6 and noncoop.obs_size == 2 * 2 + 2 * 2 + 1
    assert noncoop.default_params.unbalanced_budgets is False


def test_constructor_rejects_bad_shapes():
    with pytest.raises(ConfigError, match="n_msps"):
        CivicEnv(n_msps=0)
    with pytest.raises(ConfigError, match="horizon"):
        CivicEnv(horizon=2.5)


def test_projection_nan_inf_out_of_range():
    H = ENV.n_heads
    a = jnp.concatenate([
        jnp.asarray([jnp.nan, jnp.inf, -jnp.inf, 5.0, -7.0, 0.0]),       # B
        jnp.asarray([jnp.nan, 2.0, 0.999, -1.0, 1.0, 0.1]),              # f
        jnp.asarray([jnp.nan, 1.0, -1.0, 0.0, 0.31, jnp.inf]),           # beta
        jnp.asarray([jnp.nan, 3.0, 0.2])])                               # delta
    al = DECODE(a, PARAMS)
    # heads are Lib, Arena, Gal, Lib, Gal, Arena
    assert al.B.tolist() == [20.0, 50.0, 25.0, 25.0, 25.0, 40.0]
    assert al.f.tolist() == [30.0, 120.0, 60.0, 30.0, 60.0, 93.0]
    assert al.beta_index.tolist() == [0, 10, 0, 5, 9, 10]
    np.testing.assert_allclose(al.beta, [0.5, 1.0, 0.3, 0.75, 0.75, 1.0], atol=1e-6)
    np.testing.assert_allclose(al.delta, [0.0, 1.0, 0.6], atol=1e-6)
    for x in (al.B, al.f, al.beta, al.delta):
        assert bool(jnp.all(jnp.isfinite(x)))
    assert al.B.shape == (H,)


def test_encode_decode_roundtrip():
    r = ENV.rooms(PARAMS)
    B = r.B_min + jnp.asarray([1, 7, 3, 5, 10, 20.0])
    f = r.f_min + jnp.asarray([0, 60, 30, 17, 29, 1.0])
    k = jnp.asarray([3, 10, 14, 0, 7, 2])
    al = DECODE(ENV.encode_allocation(B, f, k, 0.25, PARAMS), PARAMS)
    assert al.B.tolist() == B.tolist() and al.f.tolist() == f.tolist()
    assert al.beta_index.tolist() == k.tolist()
    np.testing.assert_allclose(al.delta, 0.25, atol=1e-6)


def test_wrong_action_shape_is_rejected():
    _, state = RESET(jax.random.PRNGKey(0), PARAMS)
    with pytest.raises(ValueError, match="action"):
        ENV.step_env(jax.random.PRNGKey(0), state, jnp.zeros(5), PARAMS)


def test_nan_action_never_propagates():
    obs, state = RESET(jax.random.PRNGKey(0), PARAMS)
    obs, state, reward, *_ = STEP(jax.random.PRNGKey(1), state, jnp.full((ENV.action_size,), jnp.nan), PARAMS)
    assert bool(jnp.all(jnp.isfinite(obs))) and bool(jnp.isfinite(reward))
    assert bool(jnp.isfinite(state.immersion_sum)) and bool(jnp.isfinite(state.cost_sum))


def _settle(env, budget, gcp, cost, delta, params, deposited=None, withdrawn=None):
    m = len(budget)
    dep = jnp.zeros(m, jnp.int32) if deposited is None else jnp.asarray(deposited, jnp.int32)
    wd = jnp.zeros(m, jnp.int32) if withdrawn is None else jnp.asarray(withdrawn, jnp.int32)
    return env.settle(jnp.asarray(budget, jnp.int32), jnp.asarray(gcp, jnp.int32), dep, wd,
                      jnp.asarray(cost, jnp.int32), jnp.asarray(cost) > 0,
                      jnp.asarray(delta, jnp.float32), params)


def test_all_or_nothing_noncooperative():
    env = CivicEnv(3, 1, 5, cooperative=False)
    served, paid, budget, gcp, _, _ = _settle(env, [100, 50, 70], 0, [100, 51, 0], [0, 0, 0], env.default_params)
    assert served.tolist() == [True, False, True]
    assert paid.tolist() == [100, 0, 0]
    assert budget.tolist() == [0, 50, 70]   # the dropping MSP keeps its budget
    assert int(gcp) == 0


def test_all_or_nothing_in_the_env_drops_every_head_of_the_msp():
    env = CivicEnv(1, 2, 4, cooperative=False)
    p = env.default_params
    _, state = jax.jit(env.reset_env)(jax.random.PRNGKey(0), p)
    state = state.replace(requests=jnp.asarray([True, True]), clients=jnp.asarray([10, 100]))
    max_action = jnp.ones(env.action_size)
    full = 1.0
    from jaxtwin.civic import model as cm
    r = env.rooms(p)
    cost = cm.head_cost(r.B_max, r.f_max, r.beta_max, jnp.asarray([10.0, 100.0]), r, p.constants)
    units = np.ceil(np.asarray(cost) / p.credit_unit).astype(int)
    # budget covers the first Head alone but not both: nothing is served, nothing paid
    state = state.replace(budget=jnp.asarray([units[0] + 5], jnp.int32),
                          initial_budget=jnp.asarray([units[0] + 5], jnp.int32))
    step = jax.jit(env.step_env)
    _, s2, reward, *_ = step(jax.random.PRNGKey(1), state, max_action * full, p)
    assert int(s2.n_served[0]) == 0 and int(s2.n_requests[0]) == 2
    assert int(s2.budget[0]) == units[0] + 5 and int(s2.spent) == 0
    assert float(reward) == -2.0
    # with both affordable, both are served and the exact sum is paid
    state = state.replace(budget=jnp.asarray([units.sum()], jnp.int32))
    _, s3, *_ = step(jax.random.PRNGKey(1), state, max_action, p)
    assert int(s3.n_served[0]) == 2 and int(s3.budget[0]) == 0 and int(s3.spent) == units.sum()


def test_gcp_covers_deficits_in_msp_order_then_collects_surplus():
    env = CivicEnv(4, 1, 5, cooperative=True)
    p = env.default_params
    # deficits: m0 30, m1 50, m2 10, m3 surplus 40; pool 60 -> m0 covered (pool 30),
    # m1 not (50 > 30), m2 covered (pool 20); m3 donates floor(0.5*40) = 20 -> pool 40
    served, paid, budget, gcp, dep, wd = _settle(
        env, [10, 10, 10, 50], 60, [40, 60, 20, 10], [1.0, 1.0, 1.0, 0.5], p)
    assert served.tolist() == [True, False, True, True]
    assert paid.tolist() == [40, 0, 20, 10]
    assert budget.tolist() == [0, 0, 0, 20]       # m1 kept 10 but donated all (delta 1)
    assert wd.tolist() == [30, 0, 10, 0]
    assert dep.tolist() == [0, 10, 0, 20]
    assert int(gcp) == 60 - 30 - 10 + 10 + 20
    total_before = 10 + 10 + 10 + 50 + 60
    assert int(jnp.sum(budget) + gcp + jnp.sum(paid)) == total_before


def test_withdraw_ratio_limit():
    env = CivicEnv(2, 1, 5, cooperative=True)
    p = env.default_params.replace(withdraw_ratio=1.2)
    # m0 deposited 100, withdrew 90: may take up to 120 in total -> 30 ok, 31 not
    ok = _settle(env, [0, 0], 1000, [30, 0], [0, 0], p, deposited=[100, 0], withdrawn=[90, 0])
    no = _settle(env, [0, 0], 1000, [31, 0], [0, 0], p, deposited=[100, 0], withdrawn=[90, 0])
    assert ok[0].tolist() == [True, True] and no[0].tolist() == [False, True]
    # without deposits nothing can be withdrawn under a finite ratio; unlimited allows it
    assert _settle(env, [0, 0], 1000, [5, 0], [0, 0], p)[0].tolist() == [False, True]
    unlimited = env.default_params
    assert math.isinf(unlimited.withdraw_ratio)
    assert _settle(env, [0, 0], 1000, [5, 0], [0, 0], unlimited)[0].tolist() == [True, True]


ACTIONS = st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32),
                   min_size=ENV.action_size * 6, max_size=ENV.action_size * 6)


def _episode(key, actions, params):
    obs, state = ENV.reset_env(key, params)

    def body(state, xs):
        k, a = xs
        obs, s, r, te, tr, _ = ENV.step_env(k, state, a, params)
        return s, (credit_total(s), jnp.min(s.budget), s.gcp, r, jnp.all(jnp.isfinite(obs)))

    keys = jax.random.split(key, actions.shape[0])
    state, out = jax.lax.scan(body, state, (keys, actions))
    return jnp.sum(state.initial_budget), out


EPISODE = jax.jit(_episode)


@settings(max_examples=25, deadline=None)
@given(actions=ACTIONS, seed=st.integers(0, 2**31 - 1),
       budget_factor=st.sampled_from([0.05, 0.3, 0.8]), ratio=st.sampled_from([1.0, 1.6, math.inf]))
def test_credit_conservation_and_nonnegative_budgets(actions, seed, budget_factor, ratio):
    p = PARAMS.replace(budget_factor=budget_factor, withdraw_ratio=ratio)
    a = jnp.asarray(np.asarray(actions, np.float32).reshape(6, ENV.action_size))
    initial, (totals, min_budget, gcp, rewards, finite) = EPISODE(jax.random.PRNGKey(seed), a, p)
    assert np.all(np.asarray(totals) == int(initial))      # exact, integer credit units
    assert np.all(np.asarray(min_budget) >= 0) and np.all(np.asarray(gcp) >= 0)
    assert np.all(np.isfinite(np.asarray(rewards))) and bool(jnp.all(finite))


def test_determinism():
    a = jax.random.uniform(jax.random.PRNGKey(5), (6, ENV.action_size), minval=-1, maxval=1)
    out1 = EPISODE(jax.random.PRNGKey(9), a, PARAMS)
    out2 = EPISODE(jax.random.PRNGKey(9), a, PARAMS)
    for x, y in zip(jax.tree.leaves(out1), jax.tree.leaves(out2)):
        np.testing.assert_array_equal(x, y)


def test_horizon_truncates_and_stuck_terminates():
    env = CivicEnv(1, 1, 4, cooperative=True)
    p = env.default_params.replace(p_req=1.0, stuck_limit=2)
    _, state = jax.jit(env.reset_env)(jax.random.PRNGKey(0), p)
    step = jax.jit(env.step_env)
    a = jnp.ones(env.action_size)
    broke = state.replace(budget=jnp.zeros(1, jnp.int32))
    _, s1, _, te1, tr1, _ = step(jax.random.PRNGKey(1), broke, a, p)
    assert int(s1.stuck) == 1 and not bool(te1) and not bool(tr1)
    _, s2, _, te2, _, _ = step(jax.random.PRNGKey(2), s1, a, p)
    assert bool(te2)
    # with money the horizon ends by truncation with the terminal bonus
    s, trs = state, []
    for i in range(4):
        _, s, r, te, tr, _ = step(jax.random.PRNGKey(10 + i), s, a, p)
        trs.append(bool(tr))
    assert trs == [False, False, False, True]
    served_ok = int(s.bonus_count)
    assert served_ok == 4


def test_auto_reset_puts_final_observation():
    env = CivicEnv(1, 1, 2, cooperative=False)
    p = env.default_params
    obs, state = jax.jit(env.reset)(jax.random.PRNGKey(0), p)
    a = jnp.zeros(env.action_size)
    step = jax.jit(env.step)
    _, state, *_ = step(jax.random.PRNGKey(1), state, a, p)
    obs2, state2, _, te, tr, info = step(jax.random.PRNGKey(2), state, a, p)
    assert bool(tr) and int(state2.t) == 0
    assert float(info["final_observation"][-1]) == 1.0 and float(obs2[-1]) == 0.0


def test_poisson_sampler_moments():
    x = poisson_small_rate(jax.random.PRNGKey(0), jnp.full((200_000,), 0.7))
    assert abs(float(x.mean()) - 0.7) < 0.01 and abs(float(x.var()) - 0.7) < 0.02


def test_budgets_split():
    env = CivicEnv(4, 1, 10, cooperative=True)
    p = env.default_params
    budgets = jax.jit(env.initial_budgets)
    b = np.asarray(budgets(p), np.float64)
    np.testing.assert_allclose(b / b.sum(), np.linspace(0.4, 1.6, 4) / np.linspace(0.4, 1.6, 4).sum(), atol=1e-6)
    eq = np.asarray(budgets(p.replace(unbalanced_budgets=False)))
    assert eq.max() - eq.min() <= 1


# ------------------------------------------------------------ params validation
@pytest.mark.parametrize("change, named", [
    (dict(p_req=-0.5), "p_req=-0.5"), (dict(p_req=float("nan")), "p_req=nan"),
    (dict(credit_unit=0.0), "credit_unit=0.0"), (dict(budget_factor=-1.0), "budget_factor=-1.0"),
    (dict(threshold=1.5), "threshold=1.5"), (dict(stuck_limit=2.5), "stuck_limit=2.5"),
    (dict(stuck_limit=-1), "stuck_limit=-1"), (dict(withdraw_ratio=0.0), "withdraw_ratio=0.0"),
    (dict(withdraw_ratio=float("nan")), "withdraw_ratio=nan"), (dict(w_fin=math.inf), "w_fin=inf"),
    (dict(budget_weight_lo=0.0), "budget_weight_lo=0.0"), (dict(unbalanced_budgets=2), "unbalanced_budgets=2"),
])
def test_bad_params_raise_naming_field_and_value(change, named):
    with pytest.raises(ConfigError, match=re.escape(f"EnvParams.{named}:")):
        validate_params(PARAMS.replace(**change))


def _table(**rows):
    return PARAMS.replace(room_table=PARAMS.room_table.replace(
        **{k: jnp.asarray(v, jnp.float32) for k, v in rows.items()}))


@pytest.mark.parametrize("params, named", [
    (_table(B_min=(30.0, 30.0, 40.0)), "room_table.B_min"),           # above B_max for Gallery
    (_table(r_arr=(0.4, 11.0, 0.4)), "room_table.r_arr"),             # beyond the Poisson sampler
    (_table(eps_max=(1.0, 1.2, 1.0)), "room_table.eps_max"),
    (_table(V_max=(10.0, 0.5, 10.0)), "room_table.V_max"),
    (_table(omega=(400.0, math.nan, 400.0)), "room_table.omega"),
    (_table(w_q=(0.33, 0.33)), "room_table.w_q"),                     # one entry per room type
    (PARAMS.replace(constants=PARAMS.constants.replace(P_max=0.0)), "constants.P_max"),
])
def test_bad_room_table_and_constants_are_named(params, named):
    with pytest.raises(ConfigError, match=re.escape(f"EnvParams.{named}=")):
        validate_params(params)


SCALARS = {  # field -> (valid values, invalid values)
    "p_req": (st.floats(1e-6, 1.0), st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0001))),
    "threshold": (st.floats(1e-6, 1.0), st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0001))),
    "budget_factor": (st.floats(1e-6, 10.0), st.floats(max_value=0.0)),
    "credit_unit": (st.floats(1e-4, 1.0), st.floats(max_value=0.0)),
    "w_imm": (st.floats(0.0, 1e3), st.floats(max_value=-1e-9)),
}


@settings(max_examples=60, deadline=None)
@given(data=st.data(), field=st.sampled_from(sorted(SCALARS)))
def test_validation_property(data, field):
    """Valid values pass (with the env's int32 budget check too); invalid ones (NaN and
    infinities included) raise naming the field."""
    good, bad = SCALARS[field]
    ok = PARAMS.replace(**{field: data.draw(good, label="good")})
    assert validate_params(ok, ENV) is ok
    value = data.draw(st.one_of(bad, st.just(math.nan), st.just(-math.inf)), label="bad")
    with pytest.raises(ConfigError, match=re.escape(f"EnvParams.{field}=")):
        validate_params(PARAMS.replace(**{field: value}))


def test_credit_unit_too_small_for_int32_is_rejected():
    tiny = PARAMS.replace(credit_unit=1e-9)
    # what it would do: the integer budgets wrap around instead of holding the total
    budgets = jax.jit(ENV.initial_budgets)
    wanted = float(np.asarray(budgets(PARAMS), np.float64).sum()) * (1e-4 / 1e-9)
    assert abs(np.asarray(budgets(tiny), np.int64).sum() - wanted) > 0.01 * wanted
    with pytest.raises(ConfigError, match=r"EnvParams.budget_factor=0.8: too large for int32 credit "
                                          r"bookkeeping at credit_unit=1e-09.*largest budget_factor accepted"):
        validate_params(tiny, ENV)
    validate_params(tiny)   # without the env only the per-field checks run


def test_budget_factor_boundary_for_int32_credits():
    """Issue 11: the largest budget_factor the message names is accepted and conserves credits
    exactly in int32; the next float up is refused (no silent saturation)."""
    with pytest.raises(ConfigError) as err:
        validate_params(PARAMS.replace(budget_factor=1e9), ENV)
    largest = float(re.search(r"largest budget_factor accepted for this scenario is (\S+) ", str(err.value))[1])
    at = PARAMS.replace(budget_factor=largest * (1 - 1e-5))   # the message rounds to 6 digits
    validate_params(at, ENV)
    budgets = np.asarray(jax.jit(ENV.initial_budgets)(at), np.int64)
    assert budgets.min() > 0 and budgets.sum() < 2**31 - 1
    wanted = float(np.asarray(ENV.initial_budgets(PARAMS), np.float64).sum()) * largest / 0.8
    assert abs(budgets.sum() - wanted) < 1e-3 * wanted      # held, not saturated
    from jaxtwin.civic.baselines import make_baseline
    from jaxtwin.civic.evaluate import make_evaluator

    m = make_evaluator(ENV, [make_baseline("Max-GCP", ENV)])(jax.random.split(jax.random.PRNGKey(0), 4), at)
    assert np.all(np.asarray(m["credit_error"]) == 0)        # budget + pool + spent conserved exactly
    with pytest.raises(ConfigError, match="budget_factor"):
        validate_params(PARAMS.replace(budget_factor=largest * (1 + 1e-5)), ENV)
    with pytest.raises(ConfigError, match="EnvParams.budget_factor"):   # reset checks given params too
        ENV.reset(jax.random.PRNGKey(0), PARAMS.replace(budget_factor=largest * 2))


def test_stacked_params_checked_entry_by_entry_and_experiments_validate():
    stack = lambda *ps: jax.tree.map(lambda *x: jnp.stack([jnp.asarray(v) for v in x]), *ps)  # noqa: E731
    validate_params(stack(PARAMS, PARAMS.replace(p_req=0.5)))
    with pytest.raises(ConfigError, match="EnvParams.p_req"):
        validate_params(stack(PARAMS, PARAMS.replace(p_req=-0.5)))
    from jaxtwin.civic.experiments import CivicConfig, scenario_params
    with pytest.raises(ConfigError, match=re.escape("EnvParams.p_req=-0.5")):
        scenario_params(ENV, CivicConfig(), p_req=-0.5)
    assert scenario_params(ENV, CivicConfig()).p_req == CivicConfig().p_req


def test_budgets_do_not_grow_with_the_horizon():
    """Spec v2: budgets are sized for T_ref steps, so 100-, 150- and 200-step episodes start with
    the same budget; T_ref = T gives the v1 sizing, which grows with the horizon."""
    budgets = {T: np.asarray(CivicEnv(3, 1, T, cooperative=True).initial_budgets(
        CivicEnv(3, 1, T, cooperative=True).default_params)) for T in (100, 150, 200)}
    np.testing.assert_array_equal(budgets[100], budgets[150])
    np.testing.assert_array_equal(budgets[100], budgets[200])
    v1 = {T: CivicEnv(3, 1, T, cooperative=True).initial_budgets(
        CivicEnv(3, 1, T, cooperative=True).default_params.replace(T_ref=float(T))) for T in (100, 200)}
    np.testing.assert_array_equal(v1[100], budgets[100])
    assert abs(int(np.sum(v1[200])) / int(np.sum(v1[100])) - 2.0) < 1e-6
    with pytest.raises(ConfigError, match=r"EnvParams.T_ref=0.0: must be > 0"):
        validate_params(PARAMS.replace(T_ref=0.0))
