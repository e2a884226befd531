"""Sizes refused up front: a CIVIC run whose PPO update or evaluation cannot fit the memory
ends in one error line naming the estimate, the memory and the option, before anything is
written or compiled; the estimates follow XLA's own count."""
import jax
import pytest

from jaxtwin.cli import main
from jaxtwin.core.memory import available_bytes
from jaxtwin.civic.agents import AgentConfig
from jaxtwin.civic.baselines import make_baseline
from jaxtwin.civic.env import CivicEnv
from jaxtwin.civic.evaluate import policy_metrics
from jaxtwin.civic.experiments import EXPERIMENTS, CivicConfig
from jaxtwin.civic.sizes import command_needs, evaluation_bytes, ppo_bytes
from jaxtwin.learn import ppo
from tests.helpers import xla_bytes

HUGE_PPO = ["--agent.num-envs", "1000000", "--agent.num-steps", "1000", "--agent.total-timesteps",
            "1000000000", "--agent.minibatch-size", "1000"]   # 1e9 transitions: about 1.3 TB


@pytest.mark.parametrize("argv, option", [
    (["civic", "train", *HUGE_PPO], "--agent.num-envs, --agent.num-steps or --train-seeds"),
    (["civic", "experiment", "adapt", *HUGE_PPO], "--agent.num-envs, --agent.num-steps or --train-seeds"),
    (["civic", "evaluate", "--eval-episodes", "10000000"], "--eval-episodes"),   # Myopic-GCP's grid: 5.2 TB
    (["civic", "experiment", "noncoop", "--eval-episodes", "10000000"], "--eval-episodes"),
])
def test_cli_refuses_a_run_that_cannot_fit(tmp_path, capsys, argv, option):
    out = tmp_path / "out"
    assert main([*argv, "--no-progress", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err + captured.out, captured
    assert err.startswith(f"error: civic {argv[1]}")
    gb = float(err.split("needs about ")[1].split(" GB")[0].replace(",", ""))
    assert gb > 1000 and f"more than the {available_bytes() / 1e9:.3g} GB of " in err, err
    assert err.endswith(f"; lower {option}"), err
    assert not out.exists() or not any(out.rglob("*"))   # nothing written (evaluate: not even a load attempt)


def test_defaults_fit_and_name_their_programs():
    cfg = CivicConfig()
    for command in ("train", "evaluate", *EXPERIMENTS):
        needs = command_needs(cfg, command)
        assert needs and all(0 < n.nbytes < min(available_bytes(), 1e9) for n in needs), (command, needs)
    assert [n.option for n in command_needs(cfg, "train")] == ["--agent.num-envs, --agent.num-steps or --train-seeds"]
    assert [n.option for n in command_needs(cfg, "evaluate")] == ["--eval-episodes"]


def test_ppo_estimate_follows_xla_memory_analysis():
    """64 environments x 256 steps, 2 MSPs (cooperative): the critic's activations on the final
    observations and the batch copies (measured 1.94e7 bytes, the estimate 1.11 times that)."""
    env = CivicEnv(2, 1, 8, cooperative=True)
    agent = AgentConfig(total_timesteps=64 * 256, num_envs=64, num_steps=256, minibatch_size=64, chunks=1)
    init, run_updates = ppo.make_train_chunks(agent.ppo(), env, env.default_params)
    runner = jax.eval_shape(init, jax.random.PRNGKey(0))
    xla = xla_bytes(jax.jit(run_updates, static_argnums=1).lower(runner, 1).compile())
    assert 1.0 < ppo_bytes(2, 1, True, agent) / xla < 1.3, (ppo_bytes(2, 1, True, agent), xla)


def test_evaluation_estimate_follows_xla_memory_analysis():
    """64 episodes of Myopic-Optimal on 2 MSPs: the allocation grid per Head and lane
    (measured 2.22e7 bytes, the estimate 1.01 times that)."""
    env = CivicEnv(2, 1, 8, cooperative=False)
    keys = jax.random.split(jax.random.PRNGKey(0), 64)
    run = jax.jit(policy_metrics(env, [make_baseline("Myopic-Optimal", env)]))
    xla = xla_bytes(run.lower(keys, env.default_params).compile())
    est = evaluation_bytes(2, ("Myopic-Optimal",), 64, devices=1)
    assert 1.0 < est / xla < 1.3, (est, xla)


HUGE_PPO_GRID = [a for kv in zip(HUGE_PPO[::2], HUGE_PPO[1::2])
                 for a in ("--grid", f"{kv[0][2:].replace('-', '_')}={kv[1]}")]   # the same agent, as study axes


@pytest.mark.parametrize("argv, option", [
    (["--grid", "threshold=0.8,0.9", "--seeds", "10000000", "--policies", "Myopic-GCP"], "--chunk or --seeds"),
    (["--grid", "threshold=0.8,0.9", "--policies", "DRL-GCP", *HUGE_PPO_GRID], "--chunk, train_seeds or agent.num_envs"),
])
def test_sweep_refuses_a_chunk_that_cannot_fit(tmp_path, capsys, argv, option):
    """The engine asks each group's runner for its chunk's size before claiming the folder."""
    out = tmp_path / "sweep"
    assert main(["sweep", "civic", *argv, "--no-progress", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err + captured.out, captured
    assert err.startswith("error: civic sweep: ") and err.endswith(f"; lower {option}"), err
    assert not out.exists() or not any(out.rglob("*"))   # nothing written, the folder not claimed
