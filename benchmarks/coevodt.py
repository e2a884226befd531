"""The whole Co-EvoDT protocol (spec coevodt §4: random baseline, LSTM pretraining,
MARL with co-evolution and Online fine-tuning, final greedy evaluation):
jaxtwin (every run of a mode in one vmapped program, called once per evolution
group, as ``jaxtwin coevodt`` runs it) vs a straightforward PyTorch
implementation (:mod:`benchmarks.reference.coevo_torch`: Python loops over
runs, episodes, steps, agents and members). Same hyperparameters; the size is
reduced (fewer training episodes and LSTM epochs) so the reference finishes in
minutes. Reported per run: reference = its total / its runs; jaxtwin = one run
alone, ``--runs`` runs vmapped on one device (total / runs), and the same runs
sharded over ``--devices`` devices (the headline is the faster of the two;
on a CPU-only host the CPU is split into one device per core, which is what
``jaxtwin coevodt --devices 0`` does). Wall time and process CPU time are both
reported: the CPU-time ratio is the speed-up per core used. Compile time
separately.

Before timing, the two are checked to agree on what is deterministic (one env
step, policy log-probs, LSTM forecasts, one REINFORCE update, the evolution
operators given the same choices) and, statistically, on the random-baseline
metrics.

    python -m benchmarks coevodt [--runs 10] [--episodes 80] [--mode Online] [--quick]
                                 [--torch-threads N] [--devices 0]

The reference is timed at 1 torch thread and at all available threads
(:mod:`benchmarks.threads`); both are printed and the ratios divide by the
faster. ``--torch-threads N`` times only ``N`` threads.
"""
from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import threads
from benchmarks.common import print_result, print_table, time_jax

METRICS = ("qoe", "latency", "cost")


# ------------------------------------------------------------------ configs
def bench_config(episodes: int, lstm_epochs: int, quick: bool, mode: str, runs: int):
    """The experiment config timed by both implementations (spec defaults unless reduced)."""
    from jaxtwin.coevodt.experiments import CoEvoDTConfig
    from jaxtwin.coevodt.forecast import ForecastConfig

    if quick:
        fc = ForecastConfig(epochs=lstm_epochs, online_every=5)
        return CoEvoDTConfig(mode=mode, runs=runs, episodes=episodes, evolve_freq=10, baseline_episodes=40,
                             eval_episodes=10, pop_size=4, convergence_window=5, forecast=fc)
    return CoEvoDTConfig(mode=mode, runs=runs, episodes=episodes,
                         convergence_window=min(20, episodes // 2),
                         forecast=ForecastConfig(epochs=lstm_epochs))


# ------------------------------------------------------------------ agreement
def check_deterministic_agreement(pcfg) -> dict[str, float]:
    """Max abs differences between jaxtwin and the torch reference on identical inputs.

    Raises ``AssertionError`` naming the piece that disagrees.
    """
    import torch

    from benchmarks.reference import coevo_torch as ref
    from jaxtwin.coevodt.env import EnvParams, EnvState, step_with_noise
    from jaxtwin.learn.evolution import evolve_population, tournament_select
    from jaxtwin.learn.reinforce import make_optimizer, normalised_returns, reinforce_loss, reinforce_step
    from jaxtwin.nets.forecaster import LSTMForecaster
    from jaxtwin.nets.policy import PolicyNet, init_population, log_prob

    rng = np.random.default_rng(7)
    out = {}

    # one env step: same state, action, noise
    params, worst = EnvParams(), 0.0
    step = jax.jit(step_with_noise)
    for _ in range(50):
        v, l, q = rng.uniform(size=3)
        c = rng.uniform(0.1, 1.5)
        a = rng.integers(0, 3, size=3)
        z = rng.standard_normal(4).astype(np.float32)
        (v2, l2, c2, _), r, (qoe, lat, cost) = ref.env_step((v, l, c, q), a.astype(float), z.astype(float))
        st = EnvState(jnp.float32(v), jnp.float32(l), jnp.float32(c), jnp.float32(q), jnp.int32(0))
        nxt, rew, info = step(st, jnp.asarray(a), jnp.asarray(z), params)
        got = np.array([nxt.virality, nxt.load, nxt.capacity, info["qoe"], info["latency"], info["cost"], *rew])
        want = np.array([v2, l2, c2, qoe, lat, cost, r, r, r])
        worst = max(worst, float(np.abs(got - want).max()))
    out["env_step"] = worst
    assert worst < 1e-5, f"env step: jaxtwin vs reference differ by {worst:.3g} (same state/action/noise)"

    # policy log-probs with jaxtwin's weights copied into torch
    obs_dim = 6
    net = PolicyNet(hidden=tuple(pcfg.policy_hidden))
    jparams = jax.jit(net.init)(jax.random.key(1), jnp.zeros((obs_dim,)))
    tnet = ref.policy_from_flax(jparams, obs_dim, pcfg.policy_hidden)
    obs = rng.uniform(size=(pcfg.episode_len, obs_dim)).astype(np.float32)
    actions = rng.integers(0, 3, size=pcfg.episode_len)
    lp_j = np.asarray(jax.jit(lambda p, o, a: log_prob(net, p, o, a))(jparams, jnp.asarray(obs), jnp.asarray(actions)))
    with torch.no_grad():
        lp_t = torch.log_softmax(tnet(torch.from_numpy(obs)), -1)[torch.arange(len(actions)),
                                                                   torch.from_numpy(actions)].numpy()
    out["policy_log_prob"] = float(np.abs(lp_j - lp_t).max())
    assert out["policy_log_prob"] < 1e-5, f"policy log-probs differ by {out['policy_log_prob']:.3g}"

    # LSTM forecaster with copied weights
    fnet = LSTMForecaster(pcfg.forecast.hidden)
    windows = rng.uniform(size=(32, pcfg.forecast.window)).astype(np.float32)
    fparams = jax.jit(fnet.init)(jax.random.key(2), jnp.asarray(windows[:1]))
    tf = ref.forecaster_from_flax(fparams, pcfg.forecast.hidden)
    with torch.no_grad():
        f_t = tf(torch.from_numpy(windows)).numpy()
    out["lstm_forecast"] = float(np.abs(np.asarray(jax.jit(fnet.apply)(fparams, jnp.asarray(windows))) - f_t).max())
    assert out["lstm_forecast"] < 1e-5, f"LSTM forecasts differ by {out['lstm_forecast']:.3g}"

    # one REINFORCE update on the same trajectory: normalised returns, gradient, new weights
    rewards = rng.normal(size=pcfg.episode_len).astype(np.float32)
    w_j = np.asarray(jax.jit(normalised_returns, static_argnums=1)(jnp.asarray(rewards), pcfg.gamma))
    w_t = ref.normalised_returns(rewards, pcfg.gamma).numpy()
    out["normalised_returns"] = float(np.abs(w_j - w_t).max())
    assert out["normalised_returns"] < 1e-4, f"normalised returns differ by {out['normalised_returns']:.3g}"
    grads_j = jax.jit(jax.grad(reinforce_loss, argnums=1), static_argnums=0)(net, jparams, jnp.asarray(obs), jnp.asarray(actions),
                                                  jnp.asarray(w_j))
    opt = make_optimizer(pcfg.policy_lr, pcfg.adam_b1, pcfg.adam_b2, pcfg.adam_eps, pcfg.max_grad_norm)
    new_j, _, _ = jax.jit(reinforce_step, static_argnums=(0, 1, 7))(
        net, opt, jparams, jax.jit(opt.init)(jparams), jnp.asarray(obs), jnp.asarray(actions), jnp.asarray(rewards),
        pcfg.gamma)
    topt = ref.make_adam(tnet.parameters(), pcfg)
    logits = tnet(torch.from_numpy(obs))
    lps = torch.distributions.Categorical(logits=logits).log_prob(torch.from_numpy(actions))
    ref.reinforce_update(tnet, topt, lps, rewards, pcfg.gamma, pcfg.max_grad_norm)
    linears = [m for m in tnet.net if isinstance(m, torch.nn.Linear)]
    g_err = p_err = 0.0
    for i, lin in enumerate(linears):
        gj, pj = grads_j["params"][f"Dense_{i}"], new_j["params"][f"Dense_{i}"]
        g_err = max(g_err, float(np.abs(np.asarray(gj["kernel"]).T - lin.weight.grad.numpy()).max()),
                    float(np.abs(np.asarray(gj["bias"]) - lin.bias.grad.numpy()).max()))
        p_err = max(p_err, float(np.abs(np.asarray(pj["kernel"]).T - lin.weight.detach().numpy()).max()),
                    float(np.abs(np.asarray(pj["bias"]) - lin.bias.detach().numpy()).max()))
    out["reinforce_grad"], out["reinforce_params"] = g_err, p_err
    assert g_err < 1e-5, f"REINFORCE gradients differ by {g_err:.3g}"
    assert p_err < 1e-5, f"weights after one Adam REINFORCE step differ by {p_err:.3g}"

    # evolution given the same choices: tournament entrants and mutation noise replayed from jaxtwin's keys
    pop_size, k, n_rep, std = pcfg.pop_size, pcfg.tournament_k, pcfg.n_replace, pcfg.mutation_std
    pop = jax.jit(init_population, static_argnums=(1, 2, 3))(jax.random.key(3), net, obs_dim, (pop_size,))
    scores = jnp.asarray(rng.normal(size=pop_size).astype(np.float32))
    key = jax.random.key(4)
    evolve = jax.jit(lambda key, pop, states, scores: evolve_population(
        key, pop, states, scores, opt, tournament_k=k, n_replace=n_rep, mutation_std=std))
    new_pop, _, slots = evolve(key, pop, jax.jit(jax.vmap(opt.init))(pop), scores)
    template = jax.tree.map(lambda x: x[0], pop)

    @jax.jit
    def replay_choices(key):
        """jaxtwin's own draws inside ``evolve_population``: winners, tournament entrants, mutation noise."""
        key_sel, key_mut = jax.random.split(key)
        winners = tournament_select(key_sel, scores, k, 2 * n_rep)
        entrants = jax.vmap(lambda kk: jax.random.choice(kk, pop_size, (k,), replace=False))(
            jax.random.split(key_sel, 2 * n_rep))

        def noise_for(kc):
            leaves, treedef = jax.tree.flatten(template)
            return jax.tree.unflatten(treedef, [jax.random.normal(kk, x.shape, x.dtype)
                                                for x, kk in zip(leaves, jax.random.split(kc, len(leaves)))])
        return winners, entrants, jax.vmap(noise_for)(jax.random.split(key_mut, n_rep))

    winners_j, entrants, noise = jax.tree.map(np.asarray, replay_choices(key))
    winners_t = [ref.tournament_winner(np.asarray(scores), e) for e in entrants]
    assert list(winners_j) == winners_t, f"tournament winners differ: jaxtwin {winners_j}, reference {winners_t}"
    slots_t = ref.weakest(np.asarray(scores), n_rep)
    assert list(np.asarray(slots)) == list(slots_t), f"replaced slots differ: {np.asarray(slots)} vs {slots_t}"
    pop_np, new_np = jax.tree.map(np.asarray, pop), jax.tree.map(np.asarray, new_pop)
    members = [ref.policy_from_flax(jax.tree.map(lambda x: x[m], pop_np), obs_dim, pcfg.policy_hidden)
               for m in range(pop_size)]
    c_err = 0.0
    parents = winners_j.reshape(n_rep, 2)
    for c in range(n_rep):
        noise_t = []
        for i in range(len(linears)):
            layer = noise["params"][f"Dense_{i}"]
            noise_t += [torch.from_numpy(layer["kernel"][c].T.copy()), torch.from_numpy(layer["bias"][c].copy())]
        child_t = ref.child_params(members[parents[c, 0]], members[parents[c, 1]], noise_t, std)
        child_j = jax.tree.map(lambda x: x[int(slots_t[c])], new_np)
        for i in range(len(linears)):
            c_err = max(c_err,
                        float(np.abs(child_j["params"][f"Dense_{i}"]["kernel"].T - child_t[2 * i].numpy()).max()),
                        float(np.abs(child_j["params"][f"Dense_{i}"]["bias"] - child_t[2 * i + 1].numpy()).max()))
    out["evolution_child"] = c_err
    assert c_err < 1e-6, f"evolution children (same parents and noise) differ by {c_err:.3g}"
    return out


def check_baseline_agreement(jax_baseline: dict, ref_baseline: dict) -> list[list]:
    """Random-baseline per-episode means of both within 5 standard errors of their difference."""
    rows = []
    for m in METRICS:
        a, b = np.ravel(jax_baseline[m]), np.ravel(ref_baseline[m])
        tol = 5 * np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
        rows.append([m, float(a.mean()), float(b.mean()), float(abs(a.mean() - b.mean())), float(tol)])
        assert abs(a.mean() - b.mean()) < tol, (
            f"random baseline {m}: jaxtwin {a.mean():.4f} ({a.size} episodes) vs reference {b.mean():.4f} "
            f"({b.size} episodes) differ by more than 5 standard errors ({tol:.4f})")
    return rows


# ------------------------------------------------------------------ timing
def make_jaxtwin_runner(cfg, mode: str, devices: int = 1):
    """``fn(keys) -> final`` running every run of ``keys`` as the experiment does (setup, one call
    per evolution group, finish), the runs sharded over ``devices`` devices when more than one
    (:mod:`jaxtwin.core.sharding`, as ``jaxtwin coevodt --devices``). ``fn.phases`` holds the
    phase times and ``fn.cpu_s`` the process CPU time of the fastest call so far (the first
    includes compilation, so it never stays the fastest)."""
    from jaxtwin.core import sharding
    from jaxtwin.coevodt.experiments import _compiled, _compiled_sharded

    if devices == 1:
        setup, group, finish = _compiled(cfg.protocol(), mode)
        place, env, host = (lambda t: t), cfg.env, (lambda t, n: t)
    else:
        mesh = sharding.batch_mesh(devices)
        setup, group, finish = _compiled_sharded(cfg.protocol(), mode, mesh)
        place, env = (lambda t: sharding.shard_batch(t, mesh)[0]), sharding.replicate(cfg.env, mesh)
        host = sharding.unshard

    def fn(keys):
        t0, c0 = time.perf_counter(), time.process_time()
        carry, report = setup(place(keys), env)
        jax.block_until_ready(carry)
        t1 = time.perf_counter()
        for g in range(cfg.n_groups):
            carry, _ = group(carry, jnp.asarray(g, jnp.int32), env)
        jax.block_until_ready(carry)
        t2 = time.perf_counter()
        final = finish(carry, env)
        jax.block_until_ready(final)
        phases = dict(setup=t1 - t0, train=t2 - t1, final=time.perf_counter() - t2)
        if not fn.phases or sum(phases.values()) < sum(fn.phases.values()):
            fn.phases, fn.cpu_s = phases, time.process_time() - c0  # the call time_jax reports
            fn.result = host(dict(report, **final), len(keys))
        return final

    fn.phases, fn.cpu_s, fn.result = {}, None, None
    return fn


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark; returns the RESULT dict."""
    p = argparse.ArgumentParser(prog="python -m benchmarks coevodt", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10, help="jaxtwin runs vmapped (the paper's N_RUNS=10)")
    p.add_argument("--ref-runs", type=int, default=None, help="reference runs, one after another (default 1)")
    p.add_argument("--episodes", type=int, default=None, help="MARL training episodes (default 80; paper 200)")
    p.add_argument("--lstm-epochs", type=int, default=None, help="LSTM pretraining epochs (default 5; paper 20)")
    p.add_argument("--mode", default="Online", choices=("NoPred", "PretrainOnly", "Online"))
    p.add_argument("--torch-threads", type=int, default=None, help=threads.THREADS_HELP)
    p.add_argument("--devices", type=int, default=0,
                   help="devices the vmapped runs are also sharded over (0: all; on a CPU-only host the CPU "
                        "is split into one device per core, as `jaxtwin coevodt --devices 0` does); 1: skip")
    p.add_argument("--skip-single", action="store_true", help="do not time jaxtwin with one run alone")
    p.add_argument("--quick", action="store_true", help="tiny sizes (< 60 s), for a smoke check")
    ns = p.parse_args(argv)
    try:
        settings = threads.thread_settings(ns.torch_threads)
    except ValueError as err:
        p.error(str(err))

    from jaxtwin.core import sharding

    sharding.prepare_devices(ns.devices)  # before any JAX work (no-op if a backend is up)
    n_devices = min(ns.runs, len(sharding.select_devices(ns.devices)))

    import torch

    from benchmarks.reference import coevo_torch as ref
    from jaxtwin.coevodt.experiments import run_keys

    episodes = ns.episodes or (20 if ns.quick else 80)
    lstm_epochs = ns.lstm_epochs or (1 if ns.quick else 5)
    ref_runs = ns.ref_runs or 1
    skip_single = ns.skip_single or ns.quick
    cfg = bench_config(episodes, lstm_epochs, ns.quick, ns.mode, ns.runs)
    pcfg = cfg.protocol()
    load_start = os.getloadavg()

    diffs = check_deterministic_agreement(pcfg)
    print("agreement (max |jaxtwin - reference| on identical inputs): "
          + ", ".join(f"{k} {v:.1e}" for k, v in diffs.items()))

    # reference: runs one after another, seeds 42, 43, ..., at each thread setting; the fastest counts
    fastest, ref_timings = threads.time_at_threads(
        lambda: [ref.run_protocol(pcfg, ns.mode, cfg.seed + r) for r in range(ref_runs)], settings,
        set_threads=torch.set_num_threads, get_threads=torch.get_num_threads)
    ref_results = fastest["result"]
    ref_per_run, ref_cpu_per_run = fastest["wall_s"] / ref_runs, fastest["cpu_s"] / ref_runs

    # jaxtwin: all runs vmapped, sharded over the devices, and one run alone
    runner = make_jaxtwin_runner(cfg, ns.mode)
    keys = run_keys(cfg)
    compile_s, jax_total = time_jax(runner, keys, repeats=2)
    phases_vmapped, jax_result = dict(runner.phases), runner.result
    jax_per_run, jax_cpu_per_run = jax_total / ns.runs, runner.cpu_s / ns.runs
    sharded = None
    if n_devices > 1:
        runner_sh = make_jaxtwin_runner(cfg, ns.mode, n_devices)
        c_sh, s_sh = time_jax(runner_sh, keys, repeats=2)
        sharded = dict(compile_s=c_sh, per_run=s_sh / ns.runs, cpu_per_run=runner_sh.cpu_s / ns.runs,
                       phases=dict(runner_sh.phases))
        # the same programs partitioned: equal up to float32 rounding where XLA fuses a reduction
        # differently (as the multi-device tests document), not just statistically
        worst = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                    for a, b in zip(jax.tree.leaves(jax_result["trained"]), jax.tree.leaves(runner_sh.result["trained"])))
        assert worst <= 1e-5, f"runs sharded over {n_devices} devices differ from one device by {worst:.3g}"
        print(f"sharded over {n_devices} devices: trained metrics equal to one device's (max |diff| {worst:.1e})")
    single = None
    if not skip_single:
        runner1 = make_jaxtwin_runner(cfg, ns.mode)
        c1, s1 = time_jax(runner1, keys[:1], repeats=2)
        single = dict(compile_s=c1, steady_s=s1, phases=dict(runner1.phases))

    base_rows = check_baseline_agreement(
        jax_result["baseline"], {m: np.concatenate([r["baseline"][m] for r in ref_results]) for m in METRICS})
    load_end = os.getloadavg()

    print(f"\nconfig: mode={ns.mode}, episodes={cfg.episodes}, episode_len={cfg.episode_len}, "
          f"baseline={cfg.baseline_episodes}, eval={cfg.eval_episodes}, pop={cfg.pop_size}, "
          f"evolve_freq={cfg.evolve_freq}, lstm_epochs={cfg.forecast.epochs}; "
          f"{ref.episodes_per_run(pcfg, ns.mode)} env episodes per run")
    print("reference per run, by torch threads: " + threads.describe(ref_timings, fastest, per=ref_runs))
    print(f"load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end ({os.cpu_count()} cores)")
    if max(load_start[0], load_end[0]) > (os.cpu_count() or 1):
        print("warning: the machine is oversubscribed: every figure here is slowed by other jobs, the "
              "reference's multi-threaded setting most")
    print()
    print("random baseline (per-episode means):")
    print_table(["metric", "jaxtwin", "reference", "|diff|", "tolerance (5 SE)"], base_rows)
    print()
    trained = [[m, float(np.mean(jax_result["trained"][m])),
                float(np.mean([r["trained"][m].mean() for r in ref_results]))] for m in METRICS]
    print("trained, greedy evaluation (informative, not asserted: few episodes, different RNG streams):")
    print_table(["metric", f"jaxtwin ({ns.runs} runs)", f"reference ({ref_runs} runs)"], trained)
    print()

    rows = [[f"reference (torch, {fastest['threads']} thread(s), {ref_runs} run(s) in a loop)", ref_per_run,
             ref_cpu_per_run, "-", 1.0, 1.0]]
    if single is not None:
        rows.append(["jaxtwin, 1 run alone", single["steady_s"], "-", single["compile_s"],
                     ref_per_run / single["steady_s"], "-"])
    rows.append([f"jaxtwin, {ns.runs} runs vmapped (total/{ns.runs})", jax_per_run, jax_cpu_per_run, compile_s,
                 ref_per_run / jax_per_run, ref_cpu_per_run / jax_cpu_per_run])
    if sharded is not None:
        rows.append([f"jaxtwin, {ns.runs} runs sharded over {n_devices} devices", sharded["per_run"],
                     sharded["cpu_per_run"], sharded["compile_s"], ref_per_run / sharded["per_run"],
                     ref_cpu_per_run / sharded["cpu_per_run"]])
    print_table(["implementation", "s per run", "CPU s per run", "compile s", "speed-up (wall)",
                 "speed-up (CPU s)"], rows)
    tm = {k: float(np.mean([r["timing"][k] for r in ref_results])) for k in ref_results[0]["timing"]}
    print("\nwhere the time goes, per run (s):")
    print("  reference: " + ", ".join(f"{k} {v:.2f}" for k, v in tm.items()))
    print(f"  jaxtwin {ns.runs} runs vmapped (whole call, not per run): "
          + ", ".join(f"{k} {v:.2f}" for k, v in phases_vmapped.items()))
    if single is not None:
        print("  jaxtwin 1 run: " + ", ".join(f"{k} {v:.2f}" for k, v in single["phases"].items()))
    if sharded is not None:
        print(f"  jaxtwin {ns.runs} runs on {n_devices} devices (whole call): "
              + ", ".join(f"{k} {v:.2f}" for k, v in sharded["phases"].items()))

    config = dict(mode=ns.mode, runs=ns.runs, ref_runs=ref_runs, episodes=cfg.episodes,
                  episode_len=cfg.episode_len, baseline_episodes=cfg.baseline_episodes,
                  eval_episodes=cfg.eval_episodes, pop_size=cfg.pop_size, evolve_freq=cfg.evolve_freq,
                  lstm_epochs=cfg.forecast.epochs, quick=ns.quick)
    # headline: the faster way jaxtwin runs the protocol here (one device, or sharded over the devices)
    one = dict(compile_s=compile_s, per_run=jax_per_run, cpu_per_run=jax_cpu_per_run)
    head = sharded if sharded and sharded["per_run"] < jax_per_run else one
    return print_result(
        "coevodt", head["per_run"], ref_per_run, config, compile_s=head["compile_s"],
        devices=n_devices if head is sharded else 1,
        ratio_cpu_s=ref_cpu_per_run / head["cpu_per_run"], jaxtwin_cpu_s=head["cpu_per_run"],
        reference_cpu_s=ref_cpu_per_run, one_device_s=jax_per_run, ratio_one_device=ref_per_run / jax_per_run,
        single_run_s=None if single is None else single["steady_s"],
        single_run_compile_s=None if single is None else single["compile_s"],
        ratio_single_run=None if single is None else ref_per_run / single["steady_s"],
        torch_threads=fastest["threads"], **threads.record(ref_timings, fastest, per=ref_runs),
        loadavg=[round(load_start[0], 2), round(load_end[0], 2)],
        agreement=diffs, reference="PyTorch, per-step Python loops, runs one after another",
    )


if __name__ == "__main__":
    main()
