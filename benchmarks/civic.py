"""CIVIC: env steps/s and PPO training env-steps/s, jaxtwin vs the usual stack —
a NumPy single-environment ``gymnasium.Env`` of the spec
(:mod:`benchmarks.reference.civic_gym`) trained with Stable-Baselines3 PPO
(:mod:`benchmarks.civic_sb3`), timed at 1 torch thread and at all available
threads; ratios divide by the faster (``--torch-threads N``: only ``N``).

Steps, in order:

1. Agreement: the room table and constants are the same numbers; immersion
   and cost agree on random allocations; the budget/GCP rule agrees exactly on
   random integer inputs; whole episodes agree step for step when the NumPy env
   is fed jaxtwin's own random draws (client arrivals/departures, requests);
   a random policy's episode metrics agree statistically with each env using
   its own RNG. Any disagreement stops the benchmark with a message.
2. Env throughput: jaxtwin ``vmap`` over 1e2..1e5 environments, ``scan`` over
   steps, random actions, auto-reset; vs the gymnasium env stepped in a Python
   loop (one env) and SB3's ``DummyVecEnv``.
3. PPO training: jaxtwin ``make_train`` with the CIVIC experiment's agent
   (32 envs x 64 steps, minibatch 128, 4 epochs, 2x128 tanh actor and critic,
   gamma 0.97, lambda 0.95, clip 0.2, lr 3e-4, grad-norm 0.5) vs SB3 PPO with
   the same hyperparameters and the same 2048 transitions per update, for the
   same number of env steps. Compile time is reported separately. The default
   run also splits each trainer's time into rollout and gradient updates.

    python -m benchmarks.civic [--quick] [--msps 3] [--horizon 100] [--ppo-updates 32]
        [--sizes 100 1000 10000 100000] [--loop-steps 20000] [--non-cooperative] [--torch-threads N]

The machine may be shared: the load average is printed with every figure.
``--quick`` is a smoke run (2 PPO updates, one env size): its ratios are
dominated by start-up and not representative; use the default run for figures.
"""
from __future__ import annotations

import argparse
import math
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import threads
from benchmarks.common import print_result, print_table, time_jax
from benchmarks.reference.civic_gym import CONSTANTS, ROOM_TABLE, CivicNumpy
from jaxtwin.civic import model as cm
from jaxtwin.civic.env import CivicEnv, poisson_small_rate
from jaxtwin.civic.agents import AgentConfig
from jaxtwin.learn.ppo import PPOConfig, make_train

AGENT = AgentConfig()
"""The CIVIC experiment's agent; both trainers use its PPO hyperparameters."""
_PPO = AGENT.ppo()
MINIBATCH, EPOCHS, LR = _PPO.minibatch_size, _PPO.update_epochs, _PPO.lr
GAMMA, GAE_LAMBDA, CLIP, MAX_GRAD_NORM, VF_COEF = (_PPO.gamma, _PPO.gae_lambda, _PPO.clip_eps,
                                                   _PPO.max_grad_norm, _PPO.vf_coef)
HIDDEN, INIT_LOG_STD, ENT_COEF = _PPO.hidden, _PPO.init_log_std, _PPO.ent_coef
EXPERIMENT_ENVS, EXPERIMENT_STEPS = AGENT.num_envs, AGENT.num_steps


def load() -> str:
    """The 1/5/15-minute load averages, for the record."""
    return "load %.2f/%.2f/%.2f" % os.getloadavg()


def make_envs(n_msps: int, horizon: int, cooperative: bool, **numpy_kw):
    """``(jaxtwin env, its params, NumPy env)`` of the same scenario."""
    env = CivicEnv(n_msps, 1, horizon, cooperative=cooperative)
    params = env.default_params
    ref = CivicNumpy(n_msps, 1, horizon, cooperative, **numpy_kw)
    return env, params, ref


# ------------------------------------------------------------------ agreement
def check_tables() -> None:
    """The reference's room table and constants are the ones jaxtwin uses."""
    rows = cm.room_table_rows()
    for k, v in ROOM_TABLE.items():
        assert np.allclose(rows[k], v, rtol=0, atol=0), f"room table row {k}: jaxtwin {rows[k]} vs NumPy {v}"
    assert set(rows) == set(ROOM_TABLE), f"room table rows differ: {set(rows) ^ set(ROOM_TABLE)}"
    consts = cm.ModelConstants()
    for k, v in CONSTANTS.items():
        assert getattr(consts, k) == v, f"constant {k}: jaxtwin {getattr(consts, k)} vs NumPy {v}"


def check_formulas(n: int = 4000, seed: int = 0) -> dict:
    """Immersion and cost on random admissible allocations: jaxtwin's formulas in
    float64 (``jax.enable_x64``) must match the NumPy ones to 1e-10; in float32
    (what the env runs) to float32 rounding, amplified by the min-max
    normalisation's cancellation (1e-4 absolute on ``I``, 1e-5 relative on cost)."""
    from benchmarks.reference import civic_gym as ref

    rng = np.random.default_rng(seed)
    types = rng.integers(0, 3, n)
    r_np = ref.Rooms(types)
    B = np.round(rng.uniform(r_np.B_min, r_np.B_max))
    f = np.round(rng.uniform(r_np.f_min, r_np.f_max))
    levels = np.round((r_np.beta_max - r_np.beta_min) / ref.BETA_STEP).astype(int) + 1
    beta = r_np.beta_min + ref.BETA_STEP * rng.integers(0, levels)
    eps = rng.uniform(r_np.eps_min, r_np.eps_max)
    C = rng.integers(1, r_np.V_max.astype(int) + 1).astype(float)
    I_n = ref.immersion(B, f, beta, eps, r_np)
    cost_n = ref.head_cost(B, f, beta, C, r_np)
    c = cm.ModelConstants()
    out = {}
    for name, dtype in (("float64", jnp.float64), ("float32", jnp.float32)):
        with jax.enable_x64(dtype == jnp.float64):
            table = cm.RoomTable(**{k: jnp.asarray(v, dtype) for k, v in cm.room_table_rows().items()})
            r_jx = cm.rooms_for_heads(table, jnp.asarray(types, jnp.int32))
            x = lambda a: jnp.asarray(a, dtype)  # noqa: E731
            I_j = np.asarray(cm.immersion(x(B), x(f), x(beta), x(eps), r_jx, c), np.float64)
            cost_j = np.asarray(cm.head_cost(x(B), x(f), x(beta), x(C), r_jx, c), np.float64)
        out[f"immersion_{name}"] = float(np.max(np.abs(I_j - I_n)))
        out[f"cost_rel_{name}"] = float(np.max(np.abs(cost_j - cost_n) / np.abs(cost_n)))
    for key, tol in (("immersion_float64", 1e-10), ("cost_rel_float64", 1e-10),
                     ("immersion_float32", 1e-4), ("cost_rel_float32", 1e-5)):
        assert out[key] < tol, f"{key}: jaxtwin vs NumPy differ by {out[key]:.3g} (tolerance {tol:g})"
    return out


def check_settle(n: int = 300, seed: int = 0, n_msps: int = 4) -> int:
    """The budget/GCP rule on random integer inputs, with and without a withdrawal
    limit, in both settings: outputs must be identical. Returns the cases checked."""
    rng = np.random.default_rng(seed)
    cases = 0
    for cooperative in (True, False):
        for ratio in (math.inf, 1.2):
            env = CivicEnv(n_msps, 1, 10, cooperative=cooperative)
            params = env.default_params.replace(withdraw_ratio=ratio)
            ref = CivicNumpy(n_msps, 1, 10, cooperative, withdraw_ratio=ratio)
            settle = jax.jit(lambda *a: env.settle(*a, params))
            for _ in range(n):
                budget = rng.integers(0, 5000, n_msps)
                gcp = int(rng.integers(0, 8000))
                dep = rng.integers(0, 3000, n_msps)
                wd = rng.integers(0, 3000, n_msps)
                cost = rng.integers(0, 8000, n_msps) * (rng.random(n_msps) < 0.8)
                delta = rng.random(n_msps).astype(np.float32)
                delta[rng.random(n_msps) < 0.2] = 1.0
                got = settle(jnp.asarray(budget, jnp.int32), jnp.int32(gcp), jnp.asarray(dep, jnp.int32),
                             jnp.asarray(wd, jnp.int32), jnp.asarray(cost, jnp.int32),
                             jnp.asarray(cost > 0), jnp.asarray(delta))
                want = ref.settle(budget, gcp, dep, wd, cost, delta)
                for name, g, w in zip(("served", "paid", "budget", "gcp", "deposited", "withdrawn"), got, want):
                    assert np.array_equal(np.asarray(g), np.asarray(w)), (
                        f"settle ({'cooperative' if cooperative else 'non-cooperative'}, withdraw_ratio="
                        f"{ratio}) field {name}: jaxtwin {np.asarray(g)} vs NumPy {np.asarray(w)} for "
                        f"budget={budget} gcp={gcp} deposited={dep} withdrawn={wd} cost={cost} delta={delta}")
                cases += 1
    return cases


COUNTERS = ("stuck", "n_requests", "n_served", "n_fulfilled", "n_msp_fulfilled", "served_clients",
            "requested_clients", "bonus_count")
"""Integer episode counters both implementations keep (compared exactly)."""


def jaxtwin_episodes(env: CivicEnv, params, keys, actions):
    """Reset + ``horizon`` raw steps (``step_env``) per key with the given actions,
    returning per-step outputs and the random draws each step made."""
    T = actions.shape[1]

    def draws(key):
        # the key use of CivicEnv.step_env: split into (clients, requests); clients into (arr, dep)
        r = env.rooms(params)
        k_c, k_req = jax.random.split(key)
        k_arr, k_dep = jax.random.split(k_c)
        return dict(arrivals=poisson_small_rate(k_arr, r.r_arr), departures=poisson_small_rate(k_dep, r.r_dep),
                    requests=jax.random.bernoulli(k_req, params.p_req, (env.n_heads,)))

    def episode(key, acts):
        k0, ks = jax.random.split(key)
        obs0, s0 = env.reset_env(k0, params)

        def body(s, xs):
            k, a = xs
            obs, s2, reward, term, trunc, info = env.step_env(k, s, a, params)
            return s2, dict(obs=obs, reward=reward, terminated=term, truncated=trunc, budget=s2.budget,
                            gcp=s2.gcp, spent=s2.spent, clients=s2.clients, requests=s2.requests,
                            served=info["served"], fulfilled=info["fulfilled"], requested=info["requests"],
                            cost=info["cost"], draws=draws(k),
                            counters={k: getattr(s2, k) for k in COUNTERS}, immersion_sum=s2.immersion_sum)

        _, outs = jax.lax.scan(body, s0, (jax.random.split(ks, T), acts))
        return obs0, s0, outs

    return jax.tree.map(np.asarray, jax.jit(jax.vmap(episode))(keys, actions))


def check_trajectories(env: CivicEnv, params, ref: CivicNumpy, n_episodes: int = 12,
                       seed: int = 0) -> dict:
    """Whole episodes, NumPy fed jaxtwin's draws: every step's observation, reward,
    served/fulfilled counts, flags and credit balances must agree.

    Money is exact integers in both; a Head's cost is computed in float32 by
    jaxtwin and float64 here, so ``ceil(cost / unit)`` may differ by one unit
    when the cost lies within float32 rounding of a unit boundary: balances may
    drift by a few units (reported), everything else must be equal.
    """
    rng = np.random.default_rng(seed)
    T, A = env.horizon, env.action_size
    actions = rng.uniform(-1.0, 1.0, (n_episodes, T, A)).astype(np.float32)
    # every action entry is used, and a few out-of-range and non-finite entries test the projection
    actions[rng.random(actions.shape) < 0.02] = np.float32(3.0)
    actions[rng.random(actions.shape) < 0.01] = np.nan
    actions[:, ::7] = np.clip(actions[:, ::7] + 1.0, -1.0, 1.0)  # some richer steps (budgets run out)
    obs0, s0, out = jaxtwin_episodes(env, params, jax.random.split(jax.random.PRNGKey(seed), n_episodes),
                                     jnp.asarray(actions))
    worst = dict(obs=0.0, reward=0.0, cost_rel=0.0, money_units=0, steps=0, budget_init_units=0,
                 withdrawals=0, dropped=0, terminated=0)
    for e in range(n_episodes):
        budget_diff = np.abs(s0.initial_budget[e].astype(np.int64) - ref.initial_budget)
        worst["budget_init_units"] = max(worst["budget_init_units"], int(budget_diff.max()))
        assert np.all(budget_diff <= np.maximum(2, 2e-6 * ref.initial_budget)), (
            f"initial budgets: jaxtwin {s0.initial_budget[e]} vs NumPy {ref.initial_budget}")
        o = ref.reset(draws=dict(clients=s0.clients[e], eps=s0.eps[e], requests=s0.requests[e]))
        # start from jaxtwin's integer budgets (they differ by float32 rounding only, checked above)
        ref.state["budget"] = s0.budget[e].astype(np.int64)
        ref.state["initial_budget"] = s0.initial_budget[e].astype(np.int64)
        o = ref.observation()
        assert np.allclose(o, obs0[e], atol=1e-6), f"episode {e}: reset observations differ: {obs0[e]} vs {o}"
        for t in range(T):
            d = {k: v[e, t] for k, v in out["draws"].items()}
            clients_before = ref.state["clients"]
            withdrawn_before = int(np.sum(ref.state["withdrawn"]))
            o, reward, term, trunc, info = ref.step(actions[e, t], draws=d)
            where = f"episode {e} step {t}"
            want_clients = np.clip(clients_before + d["arrivals"] - d["departures"], 1, ref.v_max_int)
            assert np.array_equal(out["clients"][e, t], want_clients) and \
                np.array_equal(out["requests"][e, t], d["requests"]), (
                f"{where}: jaxtwin's next clients/requests are not the draws replayed from its key "
                "(CivicEnv.step_env's key use changed? update jaxtwin_episodes.draws)")
            for name, got, want in (("served", info["served"], out["served"][e, t]),
                                    ("fulfilled", info["fulfilled"], out["fulfilled"][e, t]),
                                    ("requests", info["requests"], out["requested"][e, t]),
                                    ("terminated", term, out["terminated"][e, t]),
                                    ("truncated", trunc, out["truncated"][e, t])):
                assert got == want, f"{where}: {name} NumPy {got} vs jaxtwin {want}"
            dr = abs(reward - float(out["reward"][e, t]))
            assert dr <= 1e-4 * max(1.0, abs(reward)), f"{where}: reward NumPy {reward} vs jaxtwin {out['reward'][e, t]}"
            cost_j = float(out["cost"][e, t])
            cost_rel = abs(info["cost"] - cost_j) / max(abs(cost_j), 1e-9)
            assert cost_rel < 1e-5, f"{where}: served cost NumPy {info['cost']} vs jaxtwin {cost_j}"
            for name in COUNTERS:
                got, want = np.asarray(ref.state[name]), out["counters"][name][e, t]
                assert np.array_equal(got, want), f"{where}: counter {name} NumPy {got} vs jaxtwin {want}"
            di = abs(ref.state["immersion_sum"] - float(out["immersion_sum"][e, t]))
            assert di <= 1e-4 * max(1.0, ref.state["immersion_sum"]), f"{where}: immersion sums differ by {di}"
            money = max(int(np.max(np.abs(ref.state["budget"] - out["budget"][e, t]))),
                        abs(int(ref.state["gcp"]) - int(out["gcp"][e, t])),
                        abs(int(ref.state["spent"]) - int(out["spent"][e, t])))
            assert money <= 3 * env.n_heads, f"{where}: credit balances differ by {money} units"
            assert ref.credit_total() == int(ref.state["initial_budget"].sum()), f"{where}: NumPy credit not conserved"
            do = float(np.max(np.abs(o - out["obs"][e, t])))
            assert do < 1e-5, f"{where}: observations differ by {do}: NumPy {o} vs jaxtwin {out['obs'][e, t]}"
            worst.update(obs=max(worst["obs"], do), reward=max(worst["reward"], dr),
                         cost_rel=max(worst["cost_rel"], cost_rel), money_units=max(worst["money_units"], money))
            worst["steps"] += 1
            # how often the rarer branches were exercised
            worst["withdrawals"] += int(np.sum(ref.state["withdrawn"])) > withdrawn_before
            worst["dropped"] += info["served"] < info["requests"]
            worst["terminated"] += bool(term)
    return worst


EPISODE_METRICS = ("return", "completion", "fulfilled_of_requests", "cost", "length")


def jaxtwin_random_metrics(env: CivicEnv, params, n_episodes: int, seed: int = 1) -> np.ndarray:
    """``(n_episodes, 5)`` metrics (:data:`EPISODE_METRICS`) of uniform-random episodes."""
    A, T = env.action_size, env.horizon

    def episode(key):
        k0, ks = jax.random.split(key)
        _, s = env.reset_env(k0, params)

        def body(carry, k):
            s, alive, acc = carry
            ka, ke = jax.random.split(k)
            a = jax.random.uniform(ka, (A,), minval=-1.0, maxval=1.0)
            _, s2, r, term, trunc, info = env.step_env(ke, s, a, params)
            x = jnp.stack([r, info["served"], info["fulfilled"], info["cost"], 1.0, info["requests"]])
            acc = acc + jnp.where(alive, x, 0.0)
            return (s2, alive & ~(term | trunc), acc), None

        (_, _, acc), _ = jax.lax.scan(body, (s, jnp.asarray(True), jnp.zeros(6)), jax.random.split(ks, T))
        req = jnp.maximum(acc[5], 1.0)
        return jnp.stack([acc[0], acc[1] / req, acc[2] / req, acc[3], acc[4]])

    return np.asarray(jax.jit(jax.vmap(episode))(jax.random.split(jax.random.PRNGKey(seed), n_episodes)))


def numpy_random_metrics(ref: CivicNumpy, n_episodes: int, seed: int = 1) -> np.ndarray:
    """The same metrics from the NumPy env with its own RNG."""
    rng = np.random.default_rng(seed)
    ref.rng = np.random.default_rng(seed + 1)
    rows = []
    for _ in range(n_episodes):
        ref.reset()
        acc = np.zeros(6)
        done = False
        while not done:
            _, r, term, trunc, info = ref.step(rng.uniform(-1.0, 1.0, ref.action_size))
            acc += (r, info["served"], info["fulfilled"], info["cost"], 1.0, info["requests"])
            done = term or trunc
        req = max(acc[5], 1.0)
        rows.append((acc[0], acc[1] / req, acc[2] / req, acc[3], acc[4]))
    return np.asarray(rows)


def check_statistics(env: CivicEnv, params, ref: CivicNumpy, n_jax: int = 4000,
                     n_numpy: int = 300) -> dict:
    """Random-policy episode metrics, each env with its own RNG: means within 5
    standard errors of their difference."""
    j = jaxtwin_random_metrics(env, params, n_jax)
    n = numpy_random_metrics(ref, n_numpy)
    se = np.sqrt(j.var(0, ddof=1) / n_jax + n.var(0, ddof=1) / n_numpy)
    diff = np.abs(j.mean(0) - n.mean(0))
    out = {m: (float(j.mean(0)[i]), float(n.mean(0)[i]), float(se[i])) for i, m in enumerate(EPISODE_METRICS)}
    for i, m in enumerate(EPISODE_METRICS):
        assert diff[i] <= 5 * se[i] + 1e-9, (
            f"random-policy mean {m}: jaxtwin {j.mean(0)[i]:.4g} vs NumPy {n.mean(0)[i]:.4g} "
            f"(difference {diff[i]:.3g} > 5 standard errors {5 * se[i]:.3g})")
    return out


def check_agreement(env: CivicEnv, params, ref: CivicNumpy, quick: bool = False) -> dict:
    """All agreement checks (assertions with messages); returns their figures."""
    check_tables()
    formulas = check_formulas(500 if quick else 4000)
    settle_cases = check_settle(20 if quick else 100)
    traj = check_trajectories(env, params, ref, n_episodes=2 if quick else 8)
    # the statistical check needs a few hundred NumPy episodes: default run only
    stats = None if quick else check_statistics(env, params, ref, n_jax=2000, n_numpy=150)
    return dict(formulas=formulas, settle_cases=settle_cases, trajectories=traj, statistics=stats)


# ------------------------------------------------------------------ env throughput
def make_random_steps(env: CivicEnv, params, n_envs: int, n_steps: int):
    """Jitted ``key -> total reward`` of ``n_envs`` auto-resetting envs stepped
    ``n_steps`` times with uniform-random actions."""
    A = env.action_size
    reset = jax.vmap(env.reset, in_axes=(0, None))
    step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def run(key):
        k0, ks = jax.random.split(key)
        _, states = reset(jax.random.split(k0, n_envs), params)

        def body(carry, k):
            states, total = carry
            ka, ke = jax.random.split(k)
            a = jax.random.uniform(ka, (n_envs, A), minval=-1.0, maxval=1.0)
            _, states, reward, _, _, _ = step(jax.random.split(ke, n_envs), states, a, params)
            return (states, total + jnp.sum(reward)), None

        (_, total), _ = jax.lax.scan(body, (states, jnp.zeros(())), jax.random.split(ks, n_steps))
        return total

    return jax.jit(run)


def gym_loop_rate(env_kw: dict, n_steps: int, seed: int = 0) -> float:
    """Steps/s of the gymnasium env in a plain Python loop, random actions, reset on done."""
    from benchmarks.reference.civic_gym import CivicGymEnv

    env = CivicGymEnv(seed=seed, **env_kw)
    actions = np.random.default_rng(seed).uniform(-1, 1, (n_steps, env.core.action_size)).astype(np.float32)
    env.reset(seed=seed)
    t0 = time.perf_counter()
    for a in actions:
        _, _, term, trunc, _ = env.step(a)
        if term or trunc:
            env.reset()
    return n_steps / (time.perf_counter() - t0)


# ------------------------------------------------------------------ PPO
def ppo_config(num_envs: int, num_steps: int, total: int, epochs: int = EPOCHS) -> PPOConfig:
    """The CIVIC experiment agent's PPO config (``AgentConfig.ppo()``) with another
    number of envs, rollout length, total steps or epochs."""
    return AgentConfig(num_envs=num_envs, num_steps=num_steps, total_timesteps=total,
                       update_epochs=epochs).ppo()


def jaxtwin_ppo(env: CivicEnv, params, cfg: PPOConfig, repeats: int = 2, seed: int = 0) -> dict:
    """Compile seconds and best wall seconds of a whole ``make_train`` run (after one
    untimed execution)."""
    train = jax.jit(make_train(cfg, env, params))
    key = jax.random.PRNGKey(seed)
    t0 = time.perf_counter()
    compiled = train.lower(key).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(key))  # first execution (allocation, thread-pool start) not timed
    best = math.inf
    for r in range(repeats):
        t0 = time.perf_counter()
        _, metrics = jax.block_until_ready(compiled(jax.random.PRNGKey(seed + r)))
        best = min(best, time.perf_counter() - t0)
    steps = cfg.num_updates * cfg.batch_size
    finite = all(bool(np.all(np.isfinite(np.asarray(v)))) for v in metrics.values())
    return dict(num_envs=cfg.num_envs, num_steps=cfg.num_steps, epochs=cfg.update_epochs, steps=steps,
                compile_s=compile_s, run_s=best, env_steps_per_s=steps / best, finite=finite,
                last_mean_return=float(np.asarray(metrics["mean_return"])[-1]), load=load())


# ------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the RESULT dict."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.civic", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--msps", type=int, default=3, help="MSPs (one Head each)")
    p.add_argument("--horizon", type=int, default=100, help="episode length T")
    p.add_argument("--non-cooperative", action="store_true", help="no GCP (DRL instead of DRL-GCP)")
    p.add_argument("--sizes", type=int, nargs="+", default=None, help="jaxtwin parallel envs (default 1e2..1e5)")
    p.add_argument("--loop-steps", type=int, default=None, help="steps timed in the gymnasium loop")
    p.add_argument("--ppo-updates", type=int, default=None,
                   help="PPO updates of 2048 env steps each, for both trainers (default 32; quick 2)")
    p.add_argument("--quick", action="store_true", help="small sizes (< 1 minute)")
    p.add_argument("--no-agreement", action="store_true", help="skip the agreement checks")
    p.add_argument("--torch-threads", type=int, default=None, help=threads.THREADS_HELP)
    ns = p.parse_args(argv)
    try:
        settings = threads.thread_settings(ns.torch_threads)
    except ValueError as err:
        p.error(str(err))
    from benchmarks import civic_sb3
    quick = ns.quick
    sizes = ns.sizes or ([1000] if quick else [100, 1000, 10_000, 100_000])
    loop_steps = ns.loop_steps or (2000 if quick else 20_000)
    updates = ns.ppo_updates or (2 if quick else 32)
    cooperative = not ns.non_cooperative
    env_kw = dict(n_msps=ns.msps, heads_per_msp=1, horizon=ns.horizon, cooperative=cooperative)
    env, params, ref = make_envs(ns.msps, ns.horizon, cooperative)
    print(f"CIVIC benchmark: {ns.msps} MSPs, T={ns.horizon}, {'cooperative' if cooperative else 'non-cooperative'}; "
          f"{jax.devices()[0].platform}, {os.cpu_count()} cores; {load()}")

    # 1. agreement
    if not ns.no_agreement:
        t0 = time.perf_counter()
        agree = check_agreement(env, params, ref, quick=quick)
        tr = agree["trajectories"]
        print(f"agreement ({time.perf_counter() - t0:.1f} s): tables equal; immersion max |diff| "
              f"{agree['formulas']['immersion_float64']:.1e} (float64) / {agree['formulas']['immersion_float32']:.1e} "
              f"(float32), cost max rel diff {agree['formulas']['cost_rel_float64']:.1e} / "
              f"{agree['formulas']['cost_rel_float32']:.1e}; "
              f"settle identical on {agree['settle_cases']} cases; {tr['steps']} steps fed the same draws agree "
              f"(obs {tr['obs']:.1e}, reward {tr['reward']:.1e}, balances within {tr['money_units']} credit units, "
              f"initial budgets within {tr['budget_init_units']}; steps with GCP withdrawals {tr['withdrawals']}, "
              f"with dropped requests {tr['dropped']}, steps flagged terminated {tr['terminated']})")
        if agree["statistics"]:
            print("random-policy means (jaxtwin, NumPy, s.e. of the difference): " + "; ".join(
                f"{m} {a:.4g} / {b:.4g} ({s:.2g})" for m, (a, b, s) in agree["statistics"].items()))

    # 2. env throughput
    loop_rate = gym_loop_rate(env_kw, loop_steps)
    vec_rate = civic_sb3.dummy_vec_rate(env_kw, EXPERIMENT_ENVS, loop_steps)
    print(f"gymnasium env, Python loop: {loop_rate:,.0f} steps/s; SB3 DummyVecEnv x{EXPERIMENT_ENVS}: "
          f"{vec_rate:,.0f} steps/s ({load()})")
    rows = []
    env_rate = {}
    for n in sizes:
        n_steps = ns.horizon if n * ns.horizon <= 2_000_000 else max(10, 2_000_000 // n)
        fn = make_random_steps(env, params, n, n_steps)
        compile_s, run_s = time_jax(fn, jax.random.PRNGKey(1), repeats=1 if n >= 100_000 else 2)
        rate = n * n_steps / run_s
        env_rate[n] = rate
        rows.append([n, n_steps, rate, rate / loop_rate, rate / vec_rate, compile_s, load()])
    print_table(["envs", "steps each", "jaxtwin steps/s", "x gym loop", "x DummyVecEnv", "compile s", "load"], rows)

    # 3. PPO training, same env steps. SB3 with 32 envs x 64 steps is the matched
    # configuration (and SB3's faster one); one env x 2048 steps is timed on fewer updates.
    total = updates * EXPERIMENT_ENVS * EXPERIMENT_STEPS
    # SB3 at each thread setting; the fastest is the reference, and times the single-env run
    fastest, sb3_timings = civic_sb3.sb3_ppo_at_threads(env_kw, total, EXPERIMENT_ENVS, settings)
    print("SB3 PPO (DummyVecEnv x%d, %d env steps) by torch threads: %s" % (
        EXPERIMENT_ENVS, total, threads.describe(sb3_timings, fastest)))
    sb3 = [fastest["result"]]
    if not quick:
        sb3.append(civic_sb3.sb3_ppo_with_threads(env_kw, max(1, updates // 8) * EXPERIMENT_ENVS * EXPERIMENT_STEPS,
                                                  1, fastest["threads"]))
    jx = [jaxtwin_ppo(env, params, ppo_config(EXPERIMENT_ENVS, EXPERIMENT_STEPS, total), repeats=2)]
    if not quick:
        big = 256
        jx.append(jaxtwin_ppo(env, params, ppo_config(big, EXPERIMENT_STEPS, max(total, big * EXPERIMENT_STEPS)),
                              repeats=1))
        one_epoch = jaxtwin_ppo(env, params, ppo_config(EXPERIMENT_ENVS, EXPERIMENT_STEPS, total, epochs=1))
    others = [t["result"] for t in sb3_timings if t is not fastest]  # printed, not the reference
    labels = (["(reference)"] + ["(slower setting)"] * len(others)
              + ["(at the reference's setting)"] * (len(sb3) - 1))
    rows = [[f"SB3 PPO, DummyVecEnv x{r['n_envs']}, {r['torch_threads']} thread(s) {label}", r["steps"],
             r["run_s"], r["env_steps_per_s"], "", f"{r['rollout_s']:.1f} / {r['update_s']:.1f}", r["load"]]
            for r, label in zip(sb3[:1] + others + sb3[1:], labels)]
    rows += [[f"jaxtwin PPO, {r['num_envs']} envs x {r['num_steps']}", r["steps"], r["run_s"], r["env_steps_per_s"],
              r["compile_s"], "", r["load"]] for r in jx]
    print(f"PPO training (2048 transitions/update unless more envs, minibatch {MINIBATCH}, {EPOCHS} epochs, "
          f"2x{HIDDEN[0]} tanh):")
    print_table(["trainer", "env steps", "seconds", "env steps/s", "compile s", "rollout / update s", "load"], rows)
    ref_run = sb3[0]
    head = jx[0]
    reference_s = ref_run["run_s"] * head["steps"] / ref_run["steps"]
    extra = {}
    if not quick:
        # t(E epochs) = rollout + E * epoch: two runs separate the two
        t1, t4 = one_epoch["run_s"], head["run_s"]
        epoch_s = (t4 - t1) / (EPOCHS - 1)
        rollout_s = t1 - epoch_s
        extra = dict(jaxtwin_rollout_s=rollout_s, jaxtwin_update_s=EPOCHS * epoch_s,
                     sb3_rollout_s=ref_run["rollout_s"], sb3_update_s=ref_run["update_s"],
                     jaxtwin_256_env_steps_per_s=jx[1]["env_steps_per_s"])
        grad_steps = head["steps"] // MINIBATCH * EPOCHS
        print(f"where jaxtwin's PPO time goes: rollout (env + policy) {rollout_s:.2f} s, "
              f"{EPOCHS} epochs of updates {EPOCHS * epoch_s:.2f} s ({grad_steps} Adam steps on {MINIBATCH} "
              f"transitions: {1e6 * EPOCHS * epoch_s / grad_steps:.0f} us each); SB3: rollout "
              f"{ref_run['rollout_s']:.1f} s, updates {ref_run['update_s']:.1f} s")
    largest = max(env_rate)
    return print_result(
        "civic", head["run_s"], reference_s,
        config=dict(n_msps=ns.msps, horizon=ns.horizon, cooperative=cooperative, ppo_env_steps=head["steps"],
                    jaxtwin_num_envs=EXPERIMENT_ENVS, num_steps=EXPERIMENT_STEPS, minibatch=MINIBATCH,
                    epochs=EPOCHS, hidden=list(HIDDEN), sb3_n_envs=ref_run["n_envs"], torch_threads=fastest["threads"],
                    env_throughput_envs=largest),
        compile_s=head["compile_s"], env_steps_per_s_jaxtwin=env_rate[largest],
        env_steps_per_s_reference=loop_rate, env_ratio=env_rate[largest] / loop_rate,
        ppo_env_steps_per_s_jaxtwin=head["env_steps_per_s"], ppo_env_steps_per_s_reference=ref_run["env_steps_per_s"],
        **({"ppo_env_steps_per_s_sb3_single_env": sb3[1]["env_steps_per_s"],
            "ratio_vs_sb3_single_env": head["env_steps_per_s"] / sb3[1]["env_steps_per_s"]} if len(sb3) > 1 else {}),
        **threads.record(sb3_timings, fastest),
        reference=f"SB3 PPO (torch, {fastest['threads']} thread(s), the fastest setting timed) on 32 NumPy "
                  "gymnasium envs in a DummyVecEnv, same 2048-step updates; env throughput: the gymnasium env's "
                  "Python step loop",
        loadavg=list(os.getloadavg()), **extra)


if __name__ == "__main__":
    main()
