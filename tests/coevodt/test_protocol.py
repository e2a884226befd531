"""The one-run Co-EvoDT protocol: config checks, one vmapped program per mode, learning."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtwin.core.config import ConfigError
from jaxtwin.coevodt.env import EnvParams
from jaxtwin.coevodt.protocol import Protocol, ProtocolConfig, convergence
from jaxtwin.coevodt.forecast import ForecastConfig

TINY_FC = ForecastConfig(window=4, epochs=2, batch_size=32, online_every=5)
TINY = ProtocolConfig(episodes=20, episode_len=12, baseline_episodes=10, eval_episodes=4, pop_size=3,
                      evolve_freq=10, eval_per_member=2, tournament_k=2, n_replace=1,
                      convergence_window=5, forecast=TINY_FC)


@pytest.mark.parametrize("change, field", [
    (dict(episodes=25), "episodes"),                 # not a multiple of evolve_freq
    (dict(episodes=150, evolve_freq=15), "evolve_freq"),  # blocks of online_every=10 do not nest
    (dict(tournament_k=9), "tournament_k"),
    (dict(n_replace=8), "n_replace"),
    (dict(convergence_window=150), "convergence_window"),
    (dict(episode_len=8), "episode_len"),
    (dict(gamma=1.5), "gamma"),
    (dict(policy_hidden=(64, 0)), "policy_hidden"),
    (dict(max_grad_norm=-1.0), "max_grad_norm"),
    # one window per fine-tune: v2 holds part of them out for early stopping
    (dict(episodes=20, evolve_freq=1, convergence_window=5, episode_len=9,
          forecast=ForecastConfig(online_every=1)), "forecast.online_every"),
])
def test_bad_configs_name_the_field(change, field):
    with pytest.raises(ConfigError, match=f"ProtocolConfig.{field}"):
        ProtocolConfig(**change)


def test_bad_mode():
    with pytest.raises(ConfigError, match="mode"):
        Protocol(ProtocolConfig(), "Offline")


def test_convergence_definition():
    r = jnp.concatenate([jnp.zeros(10), jnp.full(5, 1.0), jnp.full(5, 1.0005)])
    delta, ok = convergence(r, 5, 1e-3)
    assert abs(float(delta) - 0.0005) < 1e-6 and bool(ok)
    delta, ok = convergence(r, 10, 1e-3)
    assert not bool(ok)


def test_lstm_init_is_pytorch_uniform():
    from jaxtwin.nets.forecaster import LSTMForecaster
    params = LSTMForecaster(16).init(jax.random.key(0), jnp.zeros((1, 8)))
    leaves = jax.tree.leaves(params)
    assert all(float(jnp.abs(x).max()) <= 0.25 for x in leaves)  # 1/sqrt(16)
    assert float(jnp.std(jnp.concatenate([x.ravel() for x in leaves]))) > 0.1


@pytest.fixture(scope="module")
def online_runs():
    proto = Protocol(TINY, "Online")
    run = jax.jit(jax.vmap(proto.run, in_axes=(0, None)))
    # the CLI's PRNG (CoEvoDTConfig.prng_impl): the program compiles faster than with threefry
    keys = jnp.stack([jax.random.key(s, impl="unsafe_rbg") for s in (1, 2)])
    return proto, run, keys, run(keys, EnvParams())


def test_online_run_shapes_bounds_and_phases(online_runs):
    proto, _, _, out = online_runs
    assert out["baseline"]["qoe"].shape == (2, 10) and out["trained"]["cost"].shape == (2, 4)
    tr = out["train"]
    assert tr["episode_return"].shape == (2, 20, 3) and tr["member"].shape == (2, 20, 3)
    assert np.all((np.asarray(tr["member"]) >= 0) & (np.asarray(tr["member"]) < 3))
    # evolution after group 1 only (the seed skips it after the last episode)
    scores = np.asarray(tr["evolution_scores"])
    assert scores.shape == (2, 2, 3, 3)
    assert np.all(np.isfinite(scores[:, 0])) and np.all(np.isnan(scores[:, 1]))
    assert out["forecast"]["rmse"].shape == (2, 5) and np.all(np.isfinite(out["forecast"]["rmse"]))
    assert np.all((np.asarray(out["trained"]["qoe"]) >= 0) & (np.asarray(out["trained"]["qoe"]) <= 1))
    best = np.asarray(out["best"])
    np.testing.assert_array_equal(best, np.argmax(np.asarray(out["final_scores"]), axis=-1))
    trace = out["greedy_trace"]
    assert trace["load"].shape == (2, 12) and np.all(np.asarray(trace["load"]) <= 2.0)
    # greedy evaluation with deterministic policies: cost takes only the discrete action levels
    costs = np.asarray(out["trained"]["cost"])
    assert np.all(np.isfinite(costs))


def test_tiny_training_already_beats_random(online_runs):
    """Even 20 episodes move the greedy champions well below the random baseline's latency."""
    out = online_runs[3]
    assert float(np.mean(out["trained"]["latency"])) < float(np.mean(out["baseline"]["latency"])) - 0.05


def test_run_is_deterministic_and_runs_differ(online_runs):
    _, run, keys, out = online_runs
    again = run(keys, EnvParams())
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(again)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(out["train"]["qoe"][0], out["train"]["qoe"][1])


def test_online_finetune_moves_the_forecaster(online_runs):
    """Online fine-tunes after every block (PretrainOnly has no fine-tune in its program at all)."""
    out = online_runs[3]
    start, end = jax.tree.leaves(out["forecaster_start"]), jax.tree.leaves(out["forecaster_end"])
    assert not all(np.allclose(a, b) for a, b in zip(start, end))
    np.testing.assert_array_equal(out["forecaster_start"].lo, out["forecaster_end"].lo)


@pytest.mark.slow
def test_training_beats_random_actions():
    """NoPred, 2 runs x 40 episodes: the greedy champions cut latency and raise QoE vs random."""
    cfg = ProtocolConfig(episodes=40, episode_len=20, baseline_episodes=20, eval_episodes=10, pop_size=4,
                         evolve_freq=20, convergence_window=10, forecast=ForecastConfig(online_every=10))
    out = jax.jit(jax.vmap(Protocol(cfg, "NoPred").run, in_axes=(0, None)))(
        jnp.stack([jax.random.key(s) for s in (11, 12)]), EnvParams())
    base = {m: float(np.mean(out["baseline"][m])) for m in ("qoe", "latency")}
    trained = {m: float(np.mean(out["trained"][m])) for m in ("qoe", "latency")}
    assert trained["latency"] < base["latency"] - 0.05, (base, trained)
    assert trained["qoe"] > base["qoe"] + 0.03, (base, trained)
