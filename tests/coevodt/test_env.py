"""CoEvoEnv: equations vs hand-computed values, invariants, bad inputs, determinism, random baseline."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from jaxtwin.core.config import ConfigError
from jaxtwin.core.rollout import batch_rollout, random_policy
from jaxtwin.coevodt.env import (CoEvoEnv, EnvParams, EnvState, project_action, step_with_noise,
                                validate_params)

ENV = CoEvoEnv()
P = EnvParams()


def _state(v=0.4, l=0.6, c=0.5, q=0.7, t=3):
    f = lambda x: jnp.asarray(x, jnp.float32)
    return EnvState(virality=f(v), load=f(l), capacity=f(c), quality=f(q), time=jnp.asarray(t, jnp.int32))


def test_one_step_matches_hand_computation():
    z = jnp.array([1.0, -2.0, 0.5, -1.0])  # standard normals: e_v, e_l, e_lat, e_q
    nxt, reward, info = step_with_noise(_state(), jnp.array([2, 1, 0]), z, P)
    promo, infra, engage = 0.05 * 2, 0.08 * 1, 0.02 * (0 - 1)
    v = 0.4 * (1 + 0.02 * 1.0) + promo * (1 - 0.2 * (1 - 0.5))              # 0.498
    c = 0.98 * 0.5 + infra                                                  # 0.57
    l = 0.6 + 0.5 * (v + engage) - infra + 0.01 * -2.0                      # 0.739
    lat = 0.5 * (l / c + 0.01 * 0.5)
    qoe = 0.7 - 0.6 * lat + 0.05 * -1.0
    cost = 0.8 * infra + 0.5 * promo
    r = 1.1 * qoe - 0.9 * cost - 0.15 * lat - 0.6 * promo
    np.testing.assert_allclose([nxt.virality, nxt.capacity, nxt.load, nxt.quality], [v, c, l, 0.7], rtol=1e-6)
    np.testing.assert_allclose([info["latency"], info["qoe"], info["cost"]], [lat, qoe, cost], rtol=1e-5)
    np.testing.assert_allclose(reward, [r, r, r], rtol=1e-5)
    assert int(nxt.time) == 4


def test_clipping_and_per_agent_weights():
    params = P.replace(w_qoe=(1.0, 0.0, 2.0), w_cost=(0.0, 1.0, 0.0), w_latency=(0.0, 0.0, 0.0),
                       w_promo=(0.0, 0.0, 0.0))
    z = jnp.array([100.0, 200.0, 0.0, 0.0])  # huge noise drives v and l to their upper clips
    nxt, reward, info = step_with_noise(_state(c=1.49), jnp.array([2, 2, 2]), z, params)
    assert float(nxt.virality) == 1.0 and float(nxt.load) == 2.0 and float(nxt.capacity) == 1.5
    np.testing.assert_allclose(reward, [info["qoe"], -info["cost"], 2 * info["qoe"]], rtol=1e-6)


_step = jax.jit(lambda s, a, z: step_with_noise(s, a, z, P))


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=3, max_size=3),
       st.lists(st.floats(-6, 6, width=32), min_size=4, max_size=4),
       st.floats(0, 1), st.floats(0, 2), st.floats(0.1, 1.5), st.floats(0.01, 1))
def test_bounds_hold_under_arbitrary_traced_actions(action, z, q, l, c, v):
    nxt, reward, info = _step(_state(v=v, l=l, c=c, q=q), jnp.asarray(action, jnp.float32),
                              jnp.asarray(z, jnp.float32))
    f32 = np.float32  # the clip bounds as the float32 values the env compares against
    assert f32(0.01) <= nxt.virality <= f32(1.0)
    assert f32(0.1) <= nxt.capacity <= f32(1.5)
    assert 0.0 <= float(nxt.load) <= 2.0
    assert 0.0 <= float(info["latency"]) <= 2.0 and 0.0 <= float(info["qoe"]) <= 1.0
    assert np.all(np.isfinite(np.asarray(reward)))


def test_projection_of_traced_actions():
    np.testing.assert_array_equal(project_action(jnp.array([jnp.nan, 1.6, -3.0])), [0, 2, 0])
    np.testing.assert_array_equal(project_action(jnp.array([7.0, 0.4, jnp.inf])), [2, 0, 2])


@pytest.mark.parametrize("action, msg", [
    (np.array([0, 1, 3]), r"action\[2\] \(user\)"),
    (np.array([0.5, 1, 1]), r"action\[0\] \(content\)"),
    (np.array([0, np.nan, 1]), r"action\[1\] \(infra\)"),
    (np.array([0, 1]), "shape must be"),
])
def test_concrete_bad_actions_are_rejected(action, msg):
    obs, state = ENV.reset(jax.random.key(0))
    with pytest.raises(ValueError, match=msg):
        ENV.step(jax.random.key(1), state, action)


@pytest.mark.parametrize("change, field", [
    (dict(alpha_p=-0.1), "alpha_p"), (dict(capacity_min=2.0), "capacity_min"),
    (dict(w_qoe=(1.0, 1.0)), "w_qoe"), (dict(qoe_noise_std=float("nan")), "qoe_noise_std"),
    (dict(capacity_decay=1.5), "capacity_decay"),
])
def test_bad_params_are_rejected(change, field):
    with pytest.raises(ConfigError, match=f"EnvParams.{field}"):
        validate_params(P.replace(**change))


NONFINITE = st.sampled_from([float("nan"), float("inf"), float("-inf")])
NEGATIVE = st.floats(max_value=-1e-6, allow_nan=False, allow_infinity=False)
_PAIRS = {"virality_min": "virality_max", "capacity_min": "capacity_max"}


def _out_of_domain(field):
    """Values of ``field`` outside its domain (every other field at its default)."""
    if field.startswith("w_"):
        return st.one_of(st.tuples(NONFINITE, st.just(1.0), st.just(1.0)),
                         st.lists(st.floats(-2, 2), min_size=1, max_size=5).filter(lambda w: len(w) != 3).map(tuple))
    bad = {
        "virality_min": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, max_value=1e6)),
        "virality_max": st.floats(max_value=0.01, min_value=-1e6),
        "capacity_min": st.one_of(st.floats(max_value=0.0, min_value=-1e6), st.floats(min_value=0.5 + 1e-6, max_value=1e6)),
        "capacity_max": st.floats(max_value=0.5 - 1e-6, min_value=-1e6),
        "capacity_init": st.one_of(st.floats(max_value=0.1 - 1e-6, min_value=-1e6), st.floats(min_value=1.5 + 1e-6, max_value=1e6)),
        "capacity_decay": st.one_of(st.floats(max_value=0.0, min_value=-1e6), st.floats(min_value=1.0 + 1e-6, max_value=1e6)),
        "load_max": st.floats(max_value=0.0, min_value=-1e6),
        "latency_max": st.floats(max_value=0.0, min_value=-1e6),
    }.get(field, NEGATIVE)
    return st.one_of(NONFINITE, bad)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(tuple(EnvParams.__dataclass_fields__)).flatmap(lambda f: st.tuples(st.just(f), _out_of_domain(f))))
def test_out_of_domain_params_are_refused_naming_the_field(field_value):
    """Every field, non-finite or out of its domain: reset and step refuse it (ConfigError
    naming the field; a bound's message names the field it is compared with too)."""
    field, value = field_value
    bad = P.replace(**{field: value})
    with pytest.raises(ConfigError, match=r"^EnvParams\.") as err:
        ENV.reset(jax.random.key(0), bad)
    assert field in str(err.value)
    with pytest.raises(ConfigError, match=r"^EnvParams\."):
        ENV.step(jax.random.key(1), _state(), np.array([0, 1, 2]), bad)


@pytest.mark.parametrize("change", [dict(load_gain=float("nan")), dict(capacity_init=float("nan")),
                                    dict(alpha_p=-5.0), dict(capacity_decay=5.0)])
def test_issue_examples_refused_outside_jit_but_not_traced(change):
    """The issue's examples: refused by reset outside jit; under jit the params are tracers
    and unchecked (no cost in compiled code)."""
    bad = P.replace(**change)
    with pytest.raises(ConfigError, match=f"EnvParams.{next(iter(change))}"):
        ENV.reset(jax.random.key(0), bad)
    obs, _ = jax.jit(ENV.reset)(jax.random.key(0), bad)
    assert obs.shape == (5,)


def test_stacked_params_checked_entry_by_entry():
    stacked = jax.tree.map(lambda *x: np.stack([np.asarray(v, np.float64) for v in x]), P, P.replace(capacity_decay=2.0))
    with pytest.raises(ConfigError, match="capacity_decay"):
        validate_params(stacked)
    validate_params(jax.tree.map(lambda *x: np.stack(x), P, P))


def test_bad_episode_len():
    with pytest.raises(ConfigError, match="episode_len"):
        CoEvoEnv(0)


def test_reset_spaces_and_auto_reset():
    env = CoEvoEnv(episode_len=3)
    obs, state = env.reset(jax.random.key(0))
    assert obs.shape == (5,) and float(obs[2]) == 0.5 and float(obs[4]) == 0.0
    assert bool(env.observation_space().contains(obs))
    for t in range(3):
        obs, state, reward, term, trunc, info = env.step(jax.random.key(t + 1), state, np.array([1, 1, 1]))
        assert reward.shape == (3,) and not bool(term)
    assert bool(trunc) and int(state.time) == 0 and float(info["final_observation"][4]) == 1.0


def test_determinism_and_vmap_over_params():
    keys = jax.random.split(jax.random.key(3), 4)
    run = jax.jit(lambda p: batch_rollout(ENV, random_policy(ENV, p), keys, p, 10)["reward"])
    np.testing.assert_array_equal(run(P), run(P))
    params = jax.tree.map(lambda *x: jnp.asarray(x, jnp.float32), P, P.replace(alpha_i=0.0))
    out = jax.vmap(run)(params)
    np.testing.assert_allclose(out[0], run(P), rtol=1e-6)
    assert not np.allclose(out[0], out[1])


def test_random_baseline_matches_spec_sanity_figures():
    """500 uniform-random episodes; spec: QoE ~0.17, latency ~0.72, cost ~0.089.

    Tolerance = rounding of the quoted figure (half a unit of its last digit)
    + 3 standard errors of the mean of 500 per-episode means.
    """
    env = CoEvoEnv(50)
    traj = jax.jit(lambda k: batch_rollout(env, random_policy(env, P), jax.random.split(k, 500), P, 50))(
        jax.random.key(2024))
    for metric, target, half_unit in (("qoe", 0.17, 0.005), ("latency", 0.72, 0.005), ("cost", 0.089, 0.0005)):
        per_episode = np.asarray(traj["info"][metric]).mean(axis=1)
        se = per_episode.std(ddof=1) / np.sqrt(per_episode.size)
        assert abs(per_episode.mean() - target) <= half_unit + 3 * se, (metric, per_episode.mean(), se)
    cost_std = np.asarray(traj["info"]["cost"]).mean(axis=1).std()
    assert abs(cost_std - 0.008) < 0.001


def test_gymnax_attributes_and_multidiscrete_actions():
    """A gymnax env: name, num_actions = choices per agent, one {0,1,2} choice per agent."""
    from jaxtwin.core.spaces import MultiDiscrete
    space = ENV.action_space()
    assert isinstance(space, MultiDiscrete) and space.shape == (3,) and space.n == 3
    assert ENV.name == "CoEvoDT" and ENV.num_actions == 3
    assert bool(space.contains(jnp.array([0, 1, 2]))) and not bool(space.contains(jnp.array([0, 1, 3])))
