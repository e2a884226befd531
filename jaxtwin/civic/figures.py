"""CIVIC's figures: one function per experiment, drawing its PNGs from the
summary rows the experiment wrote (:mod:`jaxtwin.civic.experiments`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxtwin.core.plotting import bar_plot, line_plot
from jaxtwin.core.stats import t_ci_halfwidth


CI_LABEL = "95% CI (baselines: over episodes; DRL: over training seeds)"


def _msps(m: int) -> str:
    return f"{m} MSP" if m == 1 else f"{m} MSPs"


def coop(out: Path, cfg, summary: list[dict], curves: dict, policies: tuple[str, ...]) -> None:
    """Per horizon, one bar chart per metric (MSP counts x policies); DRL-GCP training returns."""
    for T in cfg.horizons:
        cats = [_msps(M) for M in cfg.msps]
        for metric, label in (("completion_pct", "completion (%)"),
                              ("served_clients", "served clients"),
                              ("fulfillment_requests_pct", "fulfilled / requests (%)"),
                              ("total_cost", "total cost"), ("range", "range of completed per MSP")):
            groups = {}
            for pol in policies:
                rs = [next(r for r in summary if r["n_msps"] == M and r["horizon"] == T and r["policy"] == pol)
                      for M in cfg.msps]
                groups[pol] = ([r[f"{metric}_mean"] for r in rs], [r[f"{metric}_ci95"] for r in rs])
            bar_plot(out / f"coop_{metric}_T{T}.png", cats, groups, ylabel=label,
                     title=f"CIVIC cooperative: {label} by MSP count (T = {T} steps, {cfg.eval_episodes} "
                           f"episodes per policy, DRL: {cfg.train_seeds} trainings)", err_label=CI_LABEL)
    series = {f"{name} DRL-GCP": m_coop["mean_return"] for name, (_, m_coop) in curves.items()
              if np.size(m_coop.get("mean_return", []))}
    training_curves(out / "coop_training_return.png", series,
                    title="CIVIC cooperative: DRL-GCP training return per scenario (M MSPs, T steps)")


def training_curves(path: Path, series: dict, *, title: str, xlabel: str = "PPO update") -> None:
    """Mean training return per update across learners (``[learner, update]`` arrays), with a
    95% CI band across the independent trainings where there are at least two."""
    if not series:
        return
    n = min(np.shape(v)[-1] for v in series.values())
    runs = {k: np.atleast_2d(np.asarray(v, np.float64))[:, :n] for k, v in series.items()}
    seeds = {r.shape[0] for r in runs.values()}
    bands = {k: _ci_band(r) for k, r in runs.items() if r.shape[0] > 1}
    line_plot(path, np.arange(1, n + 1), {k: np.nanmean(r, axis=0) for k, r in runs.items()},
              xlabel=xlabel, ylabel="mean return of episodes ended in the update", title=title,
              bands=bands or None,
              band_label=f"95% CI over {'/'.join(map(str, sorted(seeds)))} training seeds")


def _ci_band(runs: np.ndarray) -> np.ndarray:
    return np.asarray([t_ci_halfwidth(col[np.isfinite(col)]) for col in runs.T])


def noncoop(out: Path, cfg, summary: list[dict], curves: dict, policies: tuple[str, ...]) -> None:
    """Training-return curves per scenario; per request count, mean immersion per MSP count and policy."""
    if curves and all(np.size(v) for v in curves.values()):
        training_curves(out / "noncoop_reward_convergence.png", curves,
                        title="CIVIC non-cooperative: DRL training return per scenario (M MSPs, N requests)")
    for N in cfg.noncoop_requests:
        groups = {}
        for pol in policies:
            rs = [next(r for r in summary if r["n_msps"] == M and r["requests_per_head"] == N and r["policy"] == pol)
                  for M in cfg.noncoop_msps]
            groups[pol] = ([r["mean_immersion_mean"] for r in rs], [r["mean_immersion_ci95"] for r in rs])
        bar_plot(out / f"noncoop_immersion_N{N}.png", [_msps(M) for M in cfg.noncoop_msps], groups,
                 ylabel="mean immersion of served requests",
                 title=f"CIVIC non-cooperative: immersion by MSP count (N_m = {N} requests per Head)",
                 err_label=CI_LABEL)


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
    """Served requests, served and failed clients against the withdraw-to-insert ratio (inf drawn rightmost, as ∞)."""
    for metric, label in (("served", "served requests"), ("served_clients", "served clients"),
                          ("failed_clients", "failed clients")):
        series = {n: [next(r for r in summary if r["ratio"] == float(q) and r["policy"] == n)[f"{metric}_mean"]
                      for q in ratios] for n in policies}
        line_plot(out / f"withdraw_{metric}.png", ratios, series,
                  xlabel="withdraw-to-insert ratio (∞: no limit)", ylabel=label,
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
    """``train_return.png``: mean episode return per update across the trained seeds (when any episode ended)."""
    if np.size(metrics.get("mean_return", [])):
        training_curves(out / "train_return.png", {"PPO": metrics["mean_return"]},
                        title="CIVIC PPO training (gaps: no episode ended yet)")
