"""PPO training throughput on CIVIC (or the toy env): environment steps per
second of whole PPO updates (rollout + GAE + epochs of minibatch Adam steps),
compile time reported separately, for several ``num_envs``.

    python -m benchmarks.ppo_throughput [--num-envs 64 256] [--updates 2]
        [--n-msps 2] [--horizon 20] [--non-cooperative] [--env civic|toy]

Prints a table and a final ``RESULT {json}`` line (``jaxtwin_s`` = seconds per
update at the largest ``num_envs``). No reference implementation yet.
"""
from __future__ import annotations

import argparse
import json
import time

import jax

from benchmarks.common import device_name, print_table
from jaxtwin.learn.ppo import PPOConfig, make_train_chunks


def make_env(name: str, n_msps: int, heads_per_msp: int, horizon: int, cooperative: bool):
    """The benchmarked environment."""
    if name == "toy":
        from jaxtwin.core.toy_env import PointEnv
        return PointEnv(dim=2)
    from jaxtwin.civic.env import CivicEnv
    return CivicEnv(n_msps=n_msps, heads_per_msp=heads_per_msp, horizon=horizon,
                    cooperative=cooperative)


def measure(config: PPOConfig, env, updates: int, seed: int = 0) -> dict:
    """Compile seconds and steady-state seconds of ``updates`` PPO updates."""
    init, run_updates = make_train_chunks(config, env)
    runner = jax.block_until_ready(init(jax.random.PRNGKey(seed)))
    t0 = time.perf_counter()
    compiled = run_updates.lower(runner, updates).compile()
    compile_s = time.perf_counter() - t0
    runner, _ = jax.block_until_ready(compiled(runner))  # warm-up (first execution)
    t0 = time.perf_counter()
    _, metrics = jax.block_until_ready(compiled(runner))
    run_s = time.perf_counter() - t0
    finite = all(bool(jax.numpy.all(jax.numpy.isfinite(v))) for v in metrics.values())
    steps = updates * config.batch_size
    return dict(num_envs=config.num_envs, compile_s=compile_s, run_s=run_s,
                s_per_update=run_s / updates, env_steps_per_s=steps / run_s,
                grad_steps_per_s=updates * config.update_epochs * config.num_minibatches / run_s,
                finite=finite)


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the RESULT dict."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.ppo_throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", choices=["civic", "toy"], default="civic")
    p.add_argument("--num-envs", type=int, nargs="+", default=[64, 256])
    p.add_argument("--num-steps", type=int, default=128)
    p.add_argument("--minibatch-size", type=int, default=128)
    p.add_argument("--update-epochs", type=int, default=4)
    p.add_argument("--updates", type=int, default=2, help="updates per timed call")
    p.add_argument("--n-msps", type=int, default=2)
    p.add_argument("--heads-per-msp", type=int, default=1)
    p.add_argument("--horizon", type=int, default=20)
    p.add_argument("--non-cooperative", action="store_true")
    ns = p.parse_args(argv)

    env = make_env(ns.env, ns.n_msps, ns.heads_per_msp, ns.horizon, not ns.non_cooperative)
    rows, results = [], []
    for n in ns.num_envs:
        cfg = PPOConfig(num_envs=n, num_steps=ns.num_steps, minibatch_size=ns.minibatch_size,
                        update_epochs=ns.update_epochs,
                        total_timesteps=n * ns.num_steps * ns.updates)
        r = measure(cfg, env, ns.updates)
        results.append(r)
        rows.append([n, cfg.batch_size, r["compile_s"], r["s_per_update"], r["env_steps_per_s"],
                     r["grad_steps_per_s"], r["finite"]])
    print(f"PPO throughput on {ns.env} ({device_name()}); {ns.updates} updates per timed call")
    print_table(["num_envs", "steps/update", "compile_s", "s/update", "env_steps/s",
                 "grad_steps/s", "finite"], rows)
    config = dict(env=ns.env, n_msps=ns.n_msps, heads_per_msp=ns.heads_per_msp,
                  horizon=ns.horizon, cooperative=not ns.non_cooperative,
                  num_steps=ns.num_steps, minibatch_size=ns.minibatch_size,
                  update_epochs=ns.update_epochs, updates=ns.updates, num_envs=ns.num_envs)
    result = dict(name="ppo_throughput", jaxtwin_s=results[-1]["s_per_update"],
                  device=device_name(), config=config, runs=results)
    print("RESULT " + json.dumps(result))
    return result


if __name__ == "__main__":
    main()
