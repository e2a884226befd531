"""CIVIC's figures: one function per experiment, drawing its PNGs from the
summary rows the experiment wrote (:mod:`jaxtwin.civic.experiments`)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jaxtwin.core.plotting import bar_plot, line_plot


def coop(out: Path, cfg, summary: list[dict], curves: dict, policies: tuple[str, ...]) -> None:
    """Per horizon, one bar chart per metric (MSP counts x policies); DRL-GCP training returns."""
    for T in cfg.horizons:
        cats = [f"{M} MSPs" for M in cfg.msps]
        for metric, label in (("completion_pct", "completion (%)"),
                              ("served_clients", "served clients"),
                              ("fulfillment_requests_pct", "fulfilled / requests (%)"),
                              ("total_cost", "total cost"), ("range", "range of completed per MSP")):
            groups = {}
            for pol in policies:
                rs = [next(r for r in summary if r["n_msps"] == M and r["horizon"] == T and r["policy"] == pol)
                      for M in cfg.msps]
                groups[pol] = ([r[f"{metric}_mean"] for r in rs], [r[f"{metric}_std"] for r in rs])
            bar_plot(out / f"coop_{metric}_T{T}.png", cats, groups, ylabel=label,
                     title=f"CIVIC cooperative: {label} by MSP count (T = {T} steps, {cfg.eval_episodes} "
                           "episodes per policy)", err_label="±1 std across episodes")
    series = {}
    for name, (m_solo, m_coop) in curves.items():
        if len(m_coop.get("mean_return", [])):
            series[f"{name} DRL-GCP"] = m_coop["mean_return"]
    if series:
        n = min(len(v) for v in series.values())
        line_plot(out / "coop_training_return.png", np.arange(n), {k: v[:n] for k, v in series.items()},
                  xlabel="PPO update", ylabel="mean return of episodes ended in the update",
                  title="CIVIC cooperative: DRL-GCP training return per scenario (M MSPs, T steps)")


def noncoop(out: Path, cfg, summary: list[dict], curves: dict, policies: tuple[str, ...]) -> None:
    """Training-return curves per scenario; per request count, mean immersion per MSP count and policy."""
    if curves and all(len(v) for v in curves.values()):
        n = min(len(v) for v in curves.values())
        line_plot(out / "noncoop_reward_convergence.png", np.arange(n), {k: v[:n] for k, v in curves.items()},
                  xlabel="PPO update", ylabel="mean return of episodes ended in the update",
                  title="CIVIC non-cooperative: DRL training return per scenario (M MSPs, N requests)")
    for N in cfg.noncoop_requests:
        groups = {}
        for pol in policies:
            rs = [next(r for r in summary if r["n_msps"] == M and r["requests_per_head"] == N and r["policy"] == pol)
                  for M in cfg.noncoop_msps]
            groups[pol] = ([r["mean_immersion_mean"] for r in rs], [r["mean_immersion_std"] for r in rs])
        bar_plot(out / f"noncoop_immersion_N{N}.png", [f"{M} MSPs" for M in cfg.noncoop_msps], groups,
                 ylabel="mean immersion of served requests",
                 title=f"CIVIC non-cooperative: immersion by MSP count (N_m = {N} requests per Head)",
                 err_label="±1 std across episodes")


def tolerance(out: Path, summary: list[dict], policies: tuple[str, ...]) -> None:
    """Mean immersion and served % against the load (requests trials) and the budget (budget trials)."""
    for mode, xkey in (("requests", "load_pct"), ("budget", "budget_pct")):
        for metric, label in (("mean_immersion", "mean immersion"), ("completion_pct", "served (%)")):
            series = {}
            for pol in policies:
                rs = sorted((r for r in summary if r["mode"] == mode and r["policy"] == pol), key=lambda r: r["trial"])
                series[pol] = [r[f"{metric}_mean"] for r in rs]
                xs = [r[xkey] for r in rs]
            line_plot(out / f"tolerance_{mode}_{metric}.png", xs, series,
                      xlabel="requests (% of base)" if mode == "requests" else "budget (% of base)", ylabel=label,
                      title=f"CIVIC tolerance: {label} as the {'load grows' if mode == 'requests' else 'budget shrinks'}"
                            " (means over episodes)")


def withdraw(out: Path, ratios: tuple[float, ...], summary: list[dict], policies: list[str]) -> None:
    """Served requests, served and failed clients against the withdraw-to-insert ratio (inf drawn rightmost)."""
    xs = [r if math.isfinite(r) else max(x for x in ratios if math.isfinite(x)) + 0.4 for r in ratios]
    for metric, label in (("served", "served requests"), ("served_clients", "served clients"),
                          ("failed_clients", "failed clients")):
        series = {n: [next(r for r in summary if r["ratio"] == float(q) and r["policy"] == n)[f"{metric}_mean"]
                      for q in ratios] for n in policies}
        line_plot(out / f"withdraw_{metric}.png", xs, series,
                  xlabel="withdraw-to-insert ratio (rightmost: no limit)", ylabel=label,
                  title=f"CIVIC withdrawal limit: {label} (means over episodes)")


def adapt(out: Path, rows: list[dict]) -> None:
    """Training return, evaluated cost and served shares per update, across the regime switch."""
    x = [r["update"] for r in rows]
    line_plot(out / "adapt_reward.png", x, {"DRL-GCP": [r["mean_return"] for r in rows]},
              xlabel="PPO update (regime switch at the middle)", ylabel="mean episode return",
              title="CIVIC adaptation: DRL-GCP training return across the switch")
    line_plot(out / "adapt_cost.png", x, {"DRL-GCP": [r["eval_total_cost"] for r in rows]},
              xlabel="PPO update (regime switch at the middle)", ylabel="total cost (deterministic policy)",
              title="CIVIC adaptation: episode cost across the switch")
    line_plot(out / "adapt_served.png", x, {"completion": [r["eval_completion_pct"] for r in rows],
                                             "fulfilled / requests": [r["eval_fulfillment_requests_pct"] for r in rows]},
              xlabel="PPO update (regime switch at the middle)", ylabel="share of requests (%)",
              title="CIVIC adaptation: served and fulfilled requests across the switch")


def training(out: Path, metrics: dict) -> None:
    """``train_return.png``: mean episode return against environment steps (when any episode ended)."""
    if len(metrics.get("mean_return", [])):
        line_plot(out / "train_return.png", metrics["env_steps"], {"PPO": metrics["mean_return"]},
                  xlabel="environment steps", ylabel="mean return of episodes ended in the update",
                  title="CIVIC PPO training (gaps: no episode ended yet)")
