"""The PyTorch reference of the Co-EvoDT protocol: it agrees with jaxtwin on every
deterministic piece, reproduces the spec's random baseline, and runs end to end."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from benchmarks.coevodt import check_baseline_agreement, check_deterministic_agreement  # noqa: E402
from benchmarks.reference import coevo_torch as ref  # noqa: E402
from jaxtwin.coevodt.protocol import ProtocolConfig  # noqa: E402
from jaxtwin.coevodt.forecast import ForecastConfig  # noqa: E402

TINY = ProtocolConfig(episodes=4, episode_len=12, baseline_episodes=10, eval_episodes=3, pop_size=3,
                      evolve_freq=2, eval_per_member=1, tournament_k=2, n_replace=1, convergence_window=2,
                      forecast=ForecastConfig(window=4, epochs=1, batch_size=32, online_every=2))


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny torch ops on a shared 2-core machine: extra intra-op threads only contend."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_deterministic_pieces_agree_with_jaxtwin():
    diffs = check_deterministic_agreement(TINY)
    assert set(diffs) == {"env_step", "policy_log_prob", "lstm_forecast", "normalised_returns",
                          "reinforce_grad", "reinforce_params", "evolution_child"}


def test_random_baseline_matches_spec_sanity_figures():
    # spec §1: uniform-random actions give QoE ~0.17, latency ~0.72, cost ~0.089
    cfg = ProtocolConfig()
    rng = np.random.default_rng(0)
    eps = [ref.play_episode(rng, cfg, ref.random_chooser(rng), None) for _ in range(300)]
    means = {m: np.mean([e[m] for e in eps]) for m in ("qoe", "latency", "cost")}
    assert abs(means["qoe"] - 0.17) < 0.02
    assert abs(means["latency"] - 0.72) < 0.03
    assert abs(means["cost"] - 0.089) < 0.002


def test_baseline_check_rejects_a_shifted_metric():
    rng = np.random.default_rng(1)
    a = {m: rng.normal(0.5, 0.01, 200) for m in ("qoe", "latency", "cost")}
    b = dict(a, cost=a["cost"] + 0.05)
    check_baseline_agreement(a, dict(a))
    with pytest.raises(AssertionError, match="cost"):
        check_baseline_agreement(a, b)


def test_evolution_replaces_weakest_with_fresh_optimisers():
    torch.manual_seed(0)
    pops = [[ref.PolicyMLP(6) for _ in range(TINY.pop_size)] for _ in range(3)]
    opts = [[ref.make_adam(n.parameters(), TINY) for n in pop] for pop in pops]
    for pop, op in zip(pops, opts):  # give every survivor an Adam state
        for net, opt in zip(pop, op):
            net(torch.zeros(6)).sum().backward()
            opt.step()
    scores = np.array([[0.3, -1.0, 0.5]] * 3)
    before = [[id(n) for n in pop] for pop in pops]
    ref.evolve(pops, opts, scores, TINY, 6, np.random.default_rng(0))
    for a in range(3):
        assert id(pops[a][1]) != before[a][1] and not opts[a][1].state  # weakest: new child, fresh Adam
        assert [id(pops[a][m]) for m in (0, 2)] == [before[a][m] for m in (0, 2)]
        assert all(opts[a][m].state for m in (0, 2))


@pytest.mark.parametrize("mode", ["NoPred", "Online"])
def test_protocol_runs_end_to_end_and_is_deterministic(mode):
    a = ref.run_protocol(TINY, mode, seed=3)
    b = ref.run_protocol(TINY, mode, seed=3)
    assert a["mean_reward"].shape == (TINY.episodes,)
    assert a["trained"]["qoe"].shape == (TINY.eval_episodes,)
    assert a["final_scores"].shape == (3, TINY.pop_size)
    np.testing.assert_array_equal(a["mean_reward"], b["mean_reward"])
    np.testing.assert_array_equal(a["trained"]["cost"], b["trained"]["cost"])
    assert (a["forecast"] is None) == (mode == "NoPred")
    if mode == "Online":
        assert set(a["forecast"]["rmse"]) == {"lstm", "naive", "ar1", "exp_smoothing"}
        assert all(np.isfinite(v) for v in a["forecast"]["rmse"].values())
    assert ref.episodes_per_run(TINY, mode) == 10 + 4 + 2 * 3 * 3 + 3


def test_bad_mode_is_rejected():
    with pytest.raises(ValueError, match="mode"):
        ref.run_protocol(TINY, "Offline", seed=0)
