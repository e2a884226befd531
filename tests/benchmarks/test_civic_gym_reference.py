"""The NumPy CIVIC reference (benchmarks/reference/civic_gym.py) agrees with
jaxtwin's CivicEnv: tables, formulas, budget/GCP rule and whole episodes fed
the same random draws. Needs only NumPy + jaxtwin (gymnasium is optional)."""
import math

import numpy as np
import pytest

from benchmarks.civic import (check_formulas, check_settle, check_statistics, check_tables,
                              check_trajectories)
from benchmarks.reference.civic_gym import CivicNumpy
from jaxtwin.civic.env import CivicEnv


def test_tables_and_formulas_agree():
    check_tables()
    out = check_formulas(n=400)
    assert out["immersion_float64"] < 1e-10 and out["cost_rel_float64"] < 1e-10


def test_budget_and_gcp_rule_identical():
    assert check_settle(n=15, n_msps=3) == 60


@pytest.mark.parametrize("n_msps,heads_per_msp,horizon,cooperative",
                         [(2, 2, 25, True), (3, 1, 20, False)])
def test_episodes_agree_step_for_step(n_msps, heads_per_msp, horizon, cooperative):
    env = CivicEnv(n_msps, heads_per_msp, horizon, cooperative=cooperative)
    # budgets sized for the horizon (T_ref = T) so that they bind within these short episodes
    ref = CivicNumpy(n_msps, heads_per_msp, horizon, cooperative, T_ref=float(horizon))
    params = env.default_params.replace(T_ref=float(horizon))
    worst = check_trajectories(env, params, ref, n_episodes=3, seed=3)
    assert worst["steps"] == 3 * horizon
    assert worst["obs"] < 1e-5 and worst["money_units"] <= 3 * env.n_heads
    # the all-or-nothing drop and (cooperative) GCP withdrawals were exercised
    assert worst["dropped"] > 0
    assert (worst["withdrawals"] > 0) == cooperative


@pytest.mark.slow  # ~15 s of compilation; the benchmark's default run performs it at full size
def test_random_policy_statistics_agree():
    env = CivicEnv(2, 1, 30, cooperative=True)
    ref = CivicNumpy(2, 1, 30, True)
    stats = check_statistics(env, env.default_params, ref, n_jax=500, n_numpy=60)
    assert set(stats) == {"return", "completion", "fulfilled_of_requests", "cost", "length"}


def test_numpy_env_conserves_credit_and_survives_bad_actions():
    ref = CivicNumpy(3, 1, 40, True, seed=0)
    ref.reset()
    total = int(ref.initial_budget.sum())
    rng = np.random.default_rng(0)
    bad = [np.full(ref.action_size, np.nan), np.full(ref.action_size, np.inf),
           np.full(ref.action_size, -np.inf), np.full(ref.action_size, 7.0)]
    for t in range(40):
        a = bad[t % 4] if t % 5 == 0 else rng.uniform(-1, 1, ref.action_size)
        obs, reward, term, trunc, _ = ref.step(a)
        assert np.all(np.isfinite(obs)) and np.all((obs >= 0) & (obs <= 1)) and math.isfinite(reward)
        assert ref.credit_total() == total
        if term or trunc:
            ref.reset()
    with pytest.raises(ValueError, match="action"):
        ref.step(np.zeros(ref.action_size + 1))


def test_gymnasium_wrapper():
    gym = pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    from benchmarks.reference.civic_gym import CivicGymEnv

    env = CivicGymEnv(n_msps=2, horizon=10, cooperative=True)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert isinstance(env, gym.Env) and obs.shape == env.observation_space.shape
