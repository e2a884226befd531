"""``python -m benchmarks sweep``: the study engine against a Python loop over points.

The study is CIVIC's ``budget_factor x threshold`` grid with every baseline over
``--seeds`` episodes (the issue's 9 x 4 points by default). The reference loop
calls the same jitted single-point evaluation
(:func:`jaxtwin.civic.evaluate.make_evaluator`, compiled once before timing)
point by point; jaxtwin runs the study through :func:`jaxtwin.core.engine.run`,
cold (compile included, what ``jaxtwin sweep`` costs) and then its compiled
group program alone (steady). Both produce the same per-episode metrics (checked
here, exactly). Ratios: loop steady / engine steady, and loop (with its one
compile) / engine cold.
"""
from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from benchmarks.common import print_result, print_table, time_call


def main(argv: list[str] | None = None) -> dict:
    """Time the engine and the loop on the same study and print the ratios; returns the RESULT dict."""
    from jaxtwin.civic.baselines import BASELINE_NAMES, make_baseline
    from jaxtwin.civic.env import CivicEnv
    from jaxtwin.civic.evaluate import make_evaluator
    from jaxtwin.civic.sweep import ADAPTER
    from jaxtwin.core import engine
    from jaxtwin.core.study import Study

    p = argparse.ArgumentParser(prog="python -m benchmarks sweep")
    p.add_argument("--budget-points", type=int, default=9)
    p.add_argument("--thresholds", default="0.7,0.8,0.85,0.9")
    p.add_argument("--seeds", type=int, default=64)
    p.add_argument("--horizon", type=int, default=100)
    p.add_argument("--n-msps", type=int, default=3)
    ns = p.parse_args(argv)
    budgets = tuple(float(v) for v in np.linspace(0.4, 1.2, ns.budget_points))
    thresholds = tuple(float(v) for v in ns.thresholds.split(","))
    study = Study("civic", (("budget_factor", budgets), ("threshold", thresholds)),
                  fixed=(("horizon", ns.horizon), ("n_msps", ns.n_msps)), policies=("all",), seeds=ns.seeds)
    c0 = engine.compilations()
    t0 = time.perf_counter()
    rows, _ = engine.run(study, ADAPTER, None, progress=False)
    cold = time.perf_counter() - t0
    compiles = engine.compilations() - c0
    _, points, groups = engine.plan(study, ADAPTER)
    (group,) = groups
    stacked = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *group.params)
    keys = ADAPTER.keys(0, ns.seeds)
    jax.block_until_ready(group.runner(stacked, keys))           # compile the steady program
    steady = time_call(lambda: jax.block_until_ready(group.runner(stacked, keys)), repeats=2)

    env = CivicEnv(ns.n_msps, 1, ns.horizon, cooperative=True)
    ev = make_evaluator(env, [make_baseline(n, env) for n in BASELINE_NAMES])
    t0 = time.perf_counter()
    first = jax.block_until_ready(ev(keys, group.params[0]))     # its one compilation + one point
    loop_first = time.perf_counter() - t0

    def loop():
        return [jax.block_until_ready(ev(keys, params)) for params in group.params]

    loop_s = time_call(loop, repeats=1)
    ref = loop()
    got = np.asarray([r["episode_return"] for r in rows]).reshape(len(points), len(BASELINE_NAMES), ns.seeds)
    want = np.stack([np.asarray(m["episode_return"]) for m in ref])
    if not np.array_equal(got, want):
        raise SystemExit(f"engine and loop disagree: max |diff| {np.max(np.abs(got - want))}")
    del first
    n = len(points)
    print_table(["what", "seconds", "per point (ms)"],
                [["engine cold (compile + run)", cold, 1e3 * cold / n],
                 ["engine steady (compiled group program)", steady, 1e3 * steady / n],
                 ["loop steady (jitted point x %d)" % n, loop_s, 1e3 * loop_s / n],
                 ["loop incl. its compile", loop_s + loop_first, 1e3 * (loop_s + loop_first) / n]])
    return print_result("sweep_civic_steady", steady, loop_s, dict(points=n, policies=len(BASELINE_NAMES),
                                                                  seeds=ns.seeds, horizon=ns.horizon),
                        engine_cold_s=cold, engine_compilations=compiles, loop_with_compile_s=loop_s + loop_first,
                        cold_ratio=(loop_s + loop_first) / cold)
