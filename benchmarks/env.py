"""CoEvoEnv random rollouts: jaxtwin vs (a) a per-step Python/NumPy loop like the
seed's code and (b) NumPy vectorised over episodes (PCG64 bits, ziggurat normals).
Reports env steps per second for 1e3..1e6 parallel episodes, wall time (best of
repeats) and process CPU time (robust to other jobs on a shared machine),
compile time separately. Implementations are checked to agree first.

jaxtwin rows (same model functions, ``coevo.step_with_noise``):

* ``ctr`` (headline): ``benchmarks.batch_major.batch_major_rollout`` with
  ``discrete_normal_sampler`` — one fused counter-mode Threefry-2x32-20 kernel
  per step for all episodes (``benchmarks.prng``), Box–Muller normals;
* ``ctr-erfinv``: the same with ``jax.random.normal``'s erf-inverse transform;
* ``bm`` (batch-major jax.random): one ``jax.random.normal`` + ``randint`` call of
  shape ``[4|3, n]`` per step (default threefry2x32 key);
* ``ep`` (per-episode jax.random): the gymnax-style path — a key per episode,
  ``vmap`` over episodes of ``env.step_env`` + ``Discrete.sample`` (before issue 5).

    python -m benchmarks env [--sizes 1000 10000 100000 1000000] [--loop-episodes 200]
"""
from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks.batch_major import batch_major_rollout, discrete_normal_sampler
from benchmarks.common import print_result, print_table, time_call
from benchmarks.reference.coevo_numpy import run_per_step, run_vectorised, step_numpy
from jaxtwin.coevodt.env import (N_ACTIONS, N_AGENTS, NOISE_NAMES, CoEvoEnv, EnvState,
                                initial_state, step_with_noise)

HORIZON = 50
PRNG = {
    "ctr": "benchmarks.prng counter-mode Threefry-2x32-20 (batch-major), Box-Muller normals",
    "ctr-erfinv": "benchmarks.prng counter-mode Threefry-2x32-20 (batch-major), erfinv normals",
    "bm": "jax.random threefry2x32 key, one normal/randint call per step",
    "ep": "jax.random threefry2x32 key per episode (split per step)",
    "numpy": "NumPy PCG64, ziggurat normals",
}


def make_rollout_sums(n_episodes: int, horizon: int = HORIZON, per_episode: bool = False):
    """Per-episode path (gymnax style): jitted ``key -> f32[3]`` sums of (QoE, latency,
    cost) over ``n_episodes`` random episodes (``f32[n_episodes, 3]`` with ``per_episode``)."""
    env = CoEvoEnv(horizon)
    params = env.default_params
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


def _coevo_step(params):
    """One episode's transition with explicit ``(action int32[3], noise f32[4])``; out = (QoE, latency, cost)."""
    def step(state, sample):
        action, noise = sample
        nxt, _, info = step_with_noise(state, action, noise, params)
        return nxt, jnp.stack([info["qoe"], info["latency"], info["cost"]])
    return step


def _initial_states(key, n, params):
    return jax.vmap(initial_state, (0, None))(jax.random.split(key, n), params)


def make_fast_rollout_sums(n_episodes: int, horizon: int = HORIZON, per_episode: bool = False,
                           normal_method: str = "box_muller"):
    """Batch-major path (``benchmarks.batch_major.batch_major_rollout`` + ``discrete_normal_sampler``):
    jitted ``key -> f32[3]`` sums (``f32[n_episodes, 3]`` with ``per_episode``)."""
    params = CoEvoEnv(horizon).default_params

    def run(key):
        k_init, k_steps = jax.random.split(key)
        sampler = discrete_normal_sampler(k_steps, n_episodes, N_ACTIONS, N_AGENTS, len(NOISE_NAMES),
                                          normal_method)
        _, out = batch_major_rollout(
            _coevo_step(params), _initial_states(k_init, n_episodes, params), sampler, horizon,
            summarize=None if per_episode else (lambda o: o.sum(0)))
        return out.sum(0)

    return jax.jit(run)


def make_batch_major_jax_random_sums(n_episodes: int, horizon: int = HORIZON):
    """Batch-major layout with plain ``jax.random`` draws (one call per step for all episodes)."""
    params = CoEvoEnv(horizon).default_params

    def run(key):
        k_init, k_steps = jax.random.split(key)
        step_keys = jax.random.split(k_steps, horizon)

        def sample(t):
            ka, kz = jax.random.split(step_keys[t])
            return (jax.random.randint(ka, (N_AGENTS, n_episodes), 0, N_ACTIONS),
                    jax.random.normal(kz, (len(NOISE_NAMES), n_episodes)))

        _, out = batch_major_rollout(_coevo_step(params), _initial_states(k_init, n_episodes, params),
                                     sample, horizon, summarize=lambda o: o.sum(0))
        return out.sum(0)

    return jax.jit(run)


def time_both(fn, repeats: int) -> tuple[float, float]:
    """``(best wall s, best process CPU s)`` over ``repeats`` calls (call once before to compile)."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        wall, cpu = min(wall, time.perf_counter() - w0), min(cpu, time.process_time() - c0)
    return wall, cpu


def statistical_agreement(per_ep: np.ndarray, n_chk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """Mean QoE/latency/cost of jaxtwin's per-episode means vs NumPy's; within 5 standard
    errors of the difference (from the spread of per-episode means)."""
    j = per_ep.mean(0)
    r = run_vectorised(n_chk, seed=0) / (n_chk * HORIZON)
    tol = 5 * np.sqrt(2) * per_ep.std(0, ddof=1) / np.sqrt(n_chk)
    return j, r, tol, bool(np.all(np.abs(j - r) < tol))


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
        nxt, _, info = step_with_noise(state, jnp.asarray(a), jnp.asarray(z, jnp.float32), CoEvoEnv().default_params)
        got = (nxt.virality, nxt.load, nxt.capacity, info["qoe"], info["latency"], info["cost"])
        worst = max(worst, max(abs(float(g) - float(r)) for g, r in zip(got, ref)))
    return worst


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the RESULT dict (largest size, batch-major path)."""
    p = argparse.ArgumentParser(prog="python -m benchmarks env", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    p.add_argument("--loop-episodes", type=int, default=200, help="episodes timed in the per-step loop")
    p.add_argument("--slow-max", type=int, default=100_000,
                   help="largest size timed for the two jax.random rows (per-episode 1e6 takes minutes)")
    p.add_argument("--repeats", type=int, default=3, help="timed calls per cell (best kept)")
    ns = p.parse_args(argv)
    print(f"load average at start: {np.round(os.getloadavg(), 2).tolist()} ({os.cpu_count()} cores)")

    diff = check_agreement()
    assert diff < 1e-5, f"jaxtwin and the NumPy reference disagree on one step by {diff}"
    print(f"agreement: one-step max |diff| = {diff:.2e}")
    # statistical agreement of the random baseline (different RNGs)
    n_chk = 4000
    for name, make in (("ctr", make_fast_rollout_sums),
                       ("ctr-erfinv", lambda n, **kw: make_fast_rollout_sums(n, normal_method="erfinv", **kw)),
                       ("ep", make_rollout_sums)):
        per_ep = np.asarray(make(n_chk, per_episode=True)(jax.random.key(0))) / HORIZON
        j, r, tol, ok = statistical_agreement(per_ep, n_chk)
        print(f"agreement ({name}): mean QoE/latency/cost jaxtwin {np.round(j, 4).tolist()} vs NumPy "
              f"{np.round(r, 4).tolist()} (|diff| {np.round(np.abs(j - r), 4).tolist()}, "
              f"tolerance 5 s.e. {np.round(tol, 4).tolist()})")
        assert ok, (name, j, r, tol)

    loop_s = time_call(lambda: run_per_step(ns.loop_episodes), repeats=1)
    loop_rate = ns.loop_episodes * HORIZON / loop_s
    rows, last = [], {}
    for n in ns.sizes:
        steps = n * HORIZON
        cells = {"ctr": make_fast_rollout_sums(n),
                 "ctr-erfinv": make_fast_rollout_sums(n, normal_method="erfinv")}
        if n <= ns.slow_max:
            cells["bm"] = make_batch_major_jax_random_sums(n)
            cells["ep"] = make_rollout_sums(n)
        key = jax.random.key(1)
        compile_s = {}
        for k, fn in cells.items():
            t0 = time.perf_counter()
            jax.block_until_ready(fn(key))
            compile_s[k] = time.perf_counter() - t0
        timings = {}
        # interleave the implementations, best of repeats, so load spikes hit all alike
        for _ in range(ns.repeats):
            for k, fn in cells.items():
                w, c = time_both(lambda: fn(key), 1)
                timings[k] = tuple(map(min, zip(timings.get(k, (np.inf, np.inf)), (w, c))))
            w, c = time_both(lambda: run_vectorised(n, seed=1), 1)
            timings["numpy"] = tuple(map(min, zip(timings.get("numpy", (np.inf, np.inf)), (w, c))))
        for k, (w, c) in timings.items():
            if k != "numpy":
                compile_s[k] = max(compile_s[k] - w, 0.0)
        nw, nc = timings["numpy"]
        for k in ("ctr", "ctr-erfinv", "bm", "ep", "numpy"):
            if k not in timings:
                rows.append([n, k, PRNG[k], "skipped (--slow-max)", "", "", "", "", ""])
                continue
            w, c = timings[k]
            rows.append([n, k, PRNG[k], steps / w, steps / c, nw / w, nc / c,
                         (steps / w) / loop_rate, compile_s.get(k, 0.0)])
        cw, cc = timings["ctr"]
        last = dict(n=n, jax_s=cw, jax_cpu_s=cc, vec_s=nw, vec_cpu_s=nc, compile_s=compile_s["ctr"], steps=steps,
                    per_episode_s=timings["ep"][0] if "ep" in timings else None)
    print(f"per-step Python/NumPy loop ({PRNG['numpy']}): {loop_rate:.4g} steps/s "
          f"({ns.loop_episodes} episodes)")
    print_table(["episodes", "path", "PRNG", "wall steps/s", "CPU steps/s", "x numpy-vec (wall)",
                 "x numpy-vec (CPU)", "x loop (wall)", "compile s"], rows)
    print(f"load average at end: {np.round(os.getloadavg(), 2).tolist()}")
    # headline: largest size, batch-major path; reference = the per-step loop for the same steps
    return print_result(
        "env", last["jax_s"], last["steps"] / loop_rate,
        config=dict(episodes=last["n"], horizon=HORIZON),
        ratio_vs_numpy_vectorised=last["vec_s"] / last["jax_s"],
        ratio_vs_numpy_vectorised_cpu=last["vec_cpu_s"] / last["jax_cpu_s"],
        compile_s=last["compile_s"], jaxtwin_prng=PRNG["ctr"], reference_prng=PRNG["numpy"],
        per_episode_jax_random_s=last["per_episode_s"], load_average=list(os.getloadavg()),
        reference="per-step Python/NumPy loop (extrapolated from --loop-episodes)",
    )


if __name__ == "__main__":
    main()
