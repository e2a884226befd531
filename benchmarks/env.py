"""CoEvoEnv random rollouts: jaxtwin (jit + vmap over episodes, scan over steps)
vs (a) a per-step Python/NumPy loop like the seed's code and (b) NumPy
vectorised over episodes. Reports env steps per second for 1e3..1e6 parallel
episodes; compile time separately. Implementations are checked to agree first.

    python -m benchmarks env [--sizes 1000 10000 100000 1000000] [--loop-episodes 200]
"""
from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.common import print_result, print_table, time_call, time_jax
from benchmarks.reference.coevo_numpy import run_per_step, run_vectorised, step_numpy
from jaxtwin.envs.coevo import CoEvoEnv, EnvState, step_with_noise

HORIZON = 50


def make_rollout_sums(n_episodes: int, horizon: int = HORIZON, per_episode: bool = False):
    """Jitted ``key -> f32[3]`` sums of (QoE, latency, cost) over ``n_episodes`` random
    episodes (``f32[n_episodes, 3]`` with ``per_episode``)."""
    env = CoEvoEnv(horizon)
    params = env.default_params()
    space = env.action_space(params)

    def episode(key):
        k0, ks = jax.random.split(key)
        _, state = env.reset(k0, params)

        def step(carry, k):
            state, sums = carry
            ka, ke = jax.random.split(k)
            _, state, _, _, _, info = env.step_env(ke, state, space.sample(ka), params)
            return (state, sums + jnp.stack([info["qoe"], info["latency"], info["cost"]])), None

        (_, sums), _ = jax.lax.scan(step, (state, jnp.zeros(3)), jax.random.split(ks, horizon))
        return sums

    def run(key):
        sums = jax.vmap(episode)(jax.random.split(key, n_episodes))
        return sums if per_episode else sums.sum(0)

    return jax.jit(run)


def check_agreement() -> float:
    """Max abs difference of one step (same state, action, noise) between jaxtwin and NumPy."""
    rng = np.random.default_rng(1)
    worst = 0.0
    for _ in range(50):
        v, l, q = rng.uniform(size=3)
        c = rng.uniform(0.1, 1.5)
        a = rng.integers(0, 3, size=3)
        z = rng.standard_normal(4)
        ref = step_numpy(v, l, c, q, a.astype(float), z)
        state = EnvState(jnp.float32(v), jnp.float32(l), jnp.float32(c), jnp.float32(q), jnp.int32(0))
        nxt, _, info = step_with_noise(state, jnp.asarray(a), jnp.asarray(z, jnp.float32), CoEvoEnv().default_params())
        got = (nxt.virality, nxt.load, nxt.capacity, info["qoe"], info["latency"], info["cost"])
        worst = max(worst, max(abs(float(g) - float(r)) for g, r in zip(got, ref)))
    return worst


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the RESULT dict (largest size)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks env", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    p.add_argument("--loop-episodes", type=int, default=200, help="episodes timed in the per-step loop")
    ns = p.parse_args(argv)

    diff = check_agreement()
    assert diff < 1e-5, f"jaxtwin and the NumPy reference disagree on one step by {diff}"
    # statistical agreement of the random baseline (different RNGs): within 5 standard
    # errors of the difference, from the spread of per-episode means
    n_chk = 4000
    per_ep = np.asarray(make_rollout_sums(n_chk, per_episode=True)(jax.random.key(0))) / HORIZON
    j = per_ep.mean(0)
    r = run_vectorised(n_chk, seed=0) / (n_chk * HORIZON)
    tol = 5 * np.sqrt(2) * per_ep.std(0, ddof=1) / np.sqrt(n_chk)
    print(f"agreement: one-step max |diff| = {diff:.2e}; mean QoE/latency/cost "
          f"jaxtwin {np.round(j, 4).tolist()} vs NumPy {np.round(r, 4).tolist()} (tolerance {np.round(tol, 4).tolist()})")
    assert np.all(np.abs(j - r) < tol), (j, r, tol)

    loop_s = time_call(lambda: run_per_step(ns.loop_episodes), repeats=1)
    loop_rate = ns.loop_episodes * HORIZON / loop_s
    rows, last = [], None
    for n in ns.sizes:
        fn = make_rollout_sums(n)
        compile_s, jax_s = time_jax(fn, jax.random.key(1), repeats=3)
        vec_s = time_call(lambda: run_vectorised(n, seed=1), repeats=1)
        steps = n * HORIZON
        rows.append([n, steps / jax_s, steps / vec_s, loop_rate, (steps / jax_s) / (steps / vec_s),
                     (steps / jax_s) / loop_rate, compile_s])
        last = dict(n=n, jax_s=jax_s, vec_s=vec_s, compile_s=compile_s, steps=steps)
    print_table(["episodes", "jaxtwin steps/s", "numpy-vec steps/s", "per-step loop steps/s",
                 "x numpy-vec", "x loop", "compile s"], rows)
    # headline: largest size; reference = the per-step loop time for the same number of steps
    return print_result(
        "env", last["jax_s"], last["steps"] / loop_rate,
        config=dict(episodes=last["n"], horizon=HORIZON),
        ratio_vs_numpy_vectorised=last["vec_s"] / last["jax_s"], compile_s=last["compile_s"],
        reference="per-step Python/NumPy loop (extrapolated from --loop-episodes)",
    )


if __name__ == "__main__":
    main()
