"""The pieces of ``python -m benchmarks gpu`` (:mod:`benchmarks.gpu`), each run in its
own process so a time guard can stop it: ``python -m benchmarks.gpu_pieces PIECE
--budget S [--quick]``.

A piece picks its sizes from the device it finds: ``gpu`` sizes on an accelerator,
``cpu`` sizes (scaled down, to check the code runs, not GPU figures) on a CPU, and
``quick`` (smallest) with ``--quick``. It prints ``DEVICE {json}`` first, then one
``FIGURE {json}`` line per measurement as soon as it has it (so a piece stopped by
the guard keeps what it measured), and checks its own soft ``--budget`` before every
step, skipping what would not fit (said in a figure's note).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Callable

import numpy as np

TARGETS = {"env": ">= 1e9 env steps/s", "coevodt": "< 15 s", "civic": "< 180 s"}
"""Issue 13's GPU targets, by piece."""


class Clock:
    """The piece's soft budget: seconds used, and whether a step of ``estimate`` s still fits."""

    def __init__(self, budget_s: float):
        self.t0, self.budget_s = time.perf_counter(), budget_s

    def used(self) -> float:
        return time.perf_counter() - self.t0

    def fits(self, estimate_s: float) -> bool:
        return self.used() + estimate_s <= self.budget_s


def emit(piece: str, name: str, value, unit: str, *, target: str = "-", met: bool | None = None,
         table: bool = True, **detail) -> dict:
    """Print one ``FIGURE`` line (``table=False``: JSON only, not the summary table)."""
    fig = dict(piece=piece, name=name, value=value, unit=unit, target=target, met=met, table=table, **detail)
    print("FIGURE " + json.dumps(fig, default=float), flush=True)
    return fig


def skipped(clock: Clock, piece: str, what: str) -> dict:
    """Say in the table that ``what`` was not measured because it would not fit the budget."""
    return emit(piece, what, None, "", note=f"skipped by the time guard ({clock.used():.0f} s of "
                f"{clock.budget_s:.0f} s used)")


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of ``fn()`` (which must block until its result is ready)."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# ------------------------------------------------------------------ CoEvoEnv
def piece_env(scale: str, clock: Clock) -> None:
    """CoEvoEnv random rollouts (the batch-major path of ``benchmarks env``), 50 steps per episode,
    growing the batch 4x while the next size fits the budget."""
    import jax

    from benchmarks.env import HORIZON, make_fast_rollout_sums

    sizes = {"gpu": [2**20, 2**22, 2**24], "cpu": [2**14, 2**16, 2**18], "quick": [2**12, 2**14]}[scale]
    key = jax.random.key(1)
    for i, n in enumerate(sizes):
        fn = make_fast_rollout_sums(n)
        first = timed(lambda: jax.block_until_ready(fn(key)))
        best = min(timed(lambda: jax.block_until_ready(fn(key))) for _ in range(3))
        rate = n * HORIZON / best
        emit("env", f"CoEvoEnv steps/s, {n:,} episodes x {HORIZON} steps", rate, "env steps/s",
             target=TARGETS["env"], met=rate >= 1e9, episodes=n, steady_s=best, compile_s=max(first - best, 0.0))
        # the next size: a compilation like this one, 4x the work in each of its 4 calls
        if i + 1 < len(sizes) and not clock.fits(max(first - best, 0.0) + 16 * best + 2):
            skipped(clock, "env", f"sizes from {sizes[i + 1]:,} episodes")
            return


# ------------------------------------------------------------------ Co-EvoDT
def coevodt_config(scale: str):
    """The 3-mode x 10-run study: the default (paper) config on a GPU, reduced episodes/LSTM epochs on a CPU."""
    import dataclasses

    import jax

    from benchmarks.coevodt import bench_config
    from jaxtwin.coevodt.experiments import CoEvoDTConfig

    devices = 0 if jax.device_count() > 1 else 1  # the runs spread over every device, as --devices 0
    if scale == "gpu":
        return CoEvoDTConfig(mode="all", runs=10, devices=devices)
    runs = 10 if scale == "cpu" else 2
    return dataclasses.replace(bench_config(20, 1, True, "all", runs), devices=devices)


def piece_coevodt(scale: str, clock: Clock) -> None:
    """``jaxtwin coevodt --mode all --runs 10``'s work: every mode's runs trained and evaluated
    (``train_mode``; no CSVs or figures), cold (compilation included) then warm; then the
    whole ``experiments.run`` (CSVs, bootstrap CIs, figures) into a temporary folder, warm."""
    import tempfile

    from jaxtwin.coevodt import experiments

    cfg = coevodt_config(scale)
    conf = dict(modes=list(cfg.modes()), runs=cfg.runs, episodes=cfg.episodes, lstm_epochs=cfg.forecast.epochs,
                pop_size=cfg.pop_size, default_size=scale == "gpu")

    def all_modes():
        cache = {}
        return {m: experiments.train_mode(cfg, m, progress=False, setup_cache=cache) for m in cfg.modes()}

    label = f"Co-EvoDT {len(cfg.modes())} modes x {cfg.runs} runs"
    cold = timed(all_modes)
    emit("coevodt", f"{label}, cold (compile included)", cold, "s", target=TARGETS["coevodt"], met=cold < 15,
         config=conf)
    if not clock.fits(min(cold, 20.0) + 2):  # the warm pass is the cold one without compiling
        skipped(clock, "coevodt", f"{label}, warm")
        return
    warm = timed(all_modes)
    emit("coevodt", f"{label}, warm (compiled)", warm, "s", target=TARGETS["coevodt"], met=warm < 15,
         config=conf, compile_s_estimate=max(cold - warm, 0.0))
    if not clock.fits(warm + 15):  # + CSVs, bootstrap resamples and matplotlib figures
        skipped(clock, "coevodt", f"{label} + CSVs and figures")
        return
    with tempfile.TemporaryDirectory() as tmp:
        whole = timed(lambda: experiments.run(cfg, tmp, progress=False))
    emit("coevodt", f"{label} + CSVs and figures (experiments.run), warm", whole, "s", target=TARGETS["coevodt"],
         met=whole < 15, config=conf)


# ------------------------------------------------------------------ CIVIC
def civic_config(scale: str):
    """The coop experiment's config: as shipped on a GPU (3 x 3 scenarios, 3 training seeds,
    1M steps); one MSP count, one horizon and a few PPO updates on a CPU."""
    import dataclasses

    from jaxtwin.civic.agents import AgentConfig
    from jaxtwin.civic.experiments import CivicConfig

    cfg = CivicConfig()
    if scale != "gpu":
        agent = AgentConfig(total_timesteps=cfg.agent.num_envs * cfg.agent.num_steps * (8 if scale == "cpu" else 2),
                            chunks=1)
        cfg = dataclasses.replace(cfg, msps=cfg.msps[:1], horizons=cfg.horizons[:1], agent=agent)
    return cfg


def piece_civic(scale: str, clock: Clock) -> None:
    """The coop experiment exactly as ``jaxtwin civic experiment coop`` runs it, one MSP count
    at a time: the study of :func:`jaxtwin.civic.experiments.coop_study` on the engine (per MSP
    count one shape group: DRL and DRL-GCP each one vmapped training of horizons x training
    seeds, then every policy's evaluation), compile included, no output files; stops early
    (and says so) when the next MSP count would not fit."""
    import dataclasses

    from jaxtwin.civic.experiments import coop_study
    from jaxtwin.civic.sweep import ADAPTER
    from jaxtwin.core import engine

    cfg = civic_config(scale)
    pcfg = cfg.agent.ppo()
    learners = len(cfg.horizons) * cfg.train_seeds
    total, done, compiles = 0.0, 0, engine.compilations()
    for M in cfg.msps:
        if done and not clock.fits(total / done + 5):
            break
        t0 = time.perf_counter()
        rows, _ = engine.run(coop_study(dataclasses.replace(cfg, msps=(M,))), ADAPTER, None, progress=False)
        r = time.perf_counter() - t0
        drl = [row["episode_return"] for row in rows if str(row["policy"]).startswith("DRL")]
        total, done = total + r, done + 1
        emit("civic", f"coop M{M}: DRL and DRL-GCP, {learners} learners each, and the evaluation", r, "s",
             table=False, env_steps=2 * learners * pcfg.num_updates * pcfg.batch_size,
             finite=bool(np.all(np.isfinite(drl))))
    n = len(cfg.msps)
    label = (f"CIVIC coop experiment, {n * len(cfg.horizons)} scenario(s) x 2 agents x {cfg.train_seeds} seeds "
             f"in {2 * n} training programs, {pcfg.total_timesteps:,} env steps each, with the evaluation")
    detail = dict(msp_counts_done=done, msp_counts=n, compilations=engine.compilations() - compiles,
                  env_steps_per_s=done * 2 * learners * pcfg.num_updates * pcfg.batch_size / total if total else None,
                  num_envs=pcfg.num_envs, num_steps=pcfg.num_steps)
    if done == n:
        emit("civic", label + " (compile + run)", total, "s", target=TARGETS["civic"], met=total < 180, **detail)
    else:
        emit("civic", label + f": only {done} of {n} MSP counts fit the time guard", total, "s",
             target=TARGETS["civic"], met=None, projection_s=total / done * n if done else None,
             note="incomplete: the projection is from the MSP counts done, not a measurement", **detail)


# ------------------------------------------------------------------ PPO throughput, sweep
def piece_ppo(scale: str, clock: Clock) -> None:
    """PPO training throughput on CIVIC (3 MSPs, T = 100; the experiment's 2x128 agent, 16 minibatches
    per epoch) at growing ``num_envs``."""
    from benchmarks.ppo_throughput import measure
    from jaxtwin.civic.agents import AgentConfig
    from jaxtwin.civic.env import CivicEnv

    env = CivicEnv(3, 1, 100, cooperative=True)
    sizes = {"gpu": [1024, 4096, 16384], "cpu": [64, 256], "quick": [32]}[scale]
    steps, updates = 64, 2
    for i, n in enumerate(sizes):
        cfg = AgentConfig(num_envs=n, num_steps=steps, minibatch_size=n * steps // 16,
                          total_timesteps=n * steps * updates).ppo()
        r = measure(cfg, env, updates)
        emit("ppo", f"PPO env steps/s, CIVIC, {n:,} envs x {steps} steps", r["env_steps_per_s"], "env steps/s",
             num_envs=n, compile_s=r["compile_s"], s_per_update=r["s_per_update"], finite=r["finite"])
        # the next size: a compilation like this one and two calls of 4x the work
        if i + 1 < len(sizes) and not clock.fits(r["compile_s"] + 8 * r["run_s"] + 2):
            skipped(clock, "ppo", f"sizes from {sizes[i + 1]:,} envs")
            return


def piece_sweep(scale: str, clock: Clock) -> None:
    """The study engine on CIVIC's budget x threshold grid against a loop over points
    (``benchmarks sweep``), more seeds on a GPU."""
    from benchmarks import sweep

    argv = {"gpu": ["--seeds", "1024"], "cpu": ["--seeds", "64"],
            "quick": ["--seeds", "8", "--budget-points", "2", "--thresholds", "0.8,0.9", "--horizon", "20"]}[scale]
    res = sweep.main(argv)
    emit("sweep", f"study engine, {res['config']['points']} points x {res['config']['policies']} policies x "
         f"{res['config']['seeds']} seeds, steady", res["jaxtwin_s"], "s", ratio_vs_loop=res["ratio"],
         loop_s=res["reference_s"], engine_cold_s=res["engine_cold_s"], cold_ratio=res["cold_ratio"])


PIECES = {"env": piece_env, "coevodt": piece_coevodt, "civic": piece_civic, "ppo": piece_ppo,
          "sweep": piece_sweep}


def device_record() -> dict:
    """The JAX device this process runs on, in words."""
    import jax

    d = jax.devices()[0]
    return dict(platform=d.platform, device_kind=getattr(d, "device_kind", str(d)), count=jax.device_count())


def main(argv: list[str] | None = None) -> int:
    """Run one piece at the sizes its device calls for."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_pieces")
    p.add_argument("piece", choices=list(PIECES))
    p.add_argument("--budget", type=float, default=math.inf, help="soft time budget in seconds")
    p.add_argument("--quick", action="store_true", help="smallest sizes, whatever the device")
    ns = p.parse_args(argv)
    from jaxtwin.core.sharding import prepare_devices

    prepare_devices(0)  # a CPU-only host: one device per core (what the CLIs' --devices 0 does)
    dev = device_record()
    scale = "quick" if ns.quick else "gpu" if dev["platform"] not in ("cpu",) else "cpu"
    print("DEVICE " + json.dumps(dict(dev, scale=scale)), flush=True)
    PIECES[ns.piece](scale, Clock(ns.budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
