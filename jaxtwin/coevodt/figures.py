"""Co-EvoDT's figures: the per-mode PNGs and the sensitivity bars, drawn from
the results :mod:`jaxtwin.coevodt.experiments` computed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxtwin.core import artifacts
from jaxtwin.core.plotting import bar_plot, line_plot, smooth
from jaxtwin.coevodt.env import AGENTS
from jaxtwin.coevodt.forecast import FORECASTERS


def mode_figures(cfg, res: dict, mode: str, mode_dir: Path, metrics: tuple[str, ...]) -> None:
    """Return curves, baseline-vs-trained bars, LSTM holdout, one greedy episode."""
    import matplotlib.pyplot as plt

    ep = np.arange(1, cfg.episodes + 1)
    ret = res["train"]["episode_return"]  # [runs, episodes, agents]
    line_plot(mode_dir / "returns.png", ep,
              {a: smooth(ret[:, :, i].mean(0), cfg.smooth_window) for i, a in enumerate(AGENTS)},
              bands={a: smooth(ret[:, :, i].std(0), cfg.smooth_window) for i, a in enumerate(AGENTS)},
              xlabel="training episode", ylabel=f"episodic return (mean over {cfg.runs} runs, smoothed)",
              title=f"Co-EvoDT {mode}: smoothed episodic return per agent")
    groups = {}
    for s in ("baseline", "trained"):
        per_run = np.stack([res[s][m].mean(1) for m in metrics])
        groups[s] = (per_run.mean(1), per_run.std(1, ddof=1) if cfg.runs > 1 else np.zeros(3))
    bar_plot(mode_dir / "baseline_vs_trained.png", list(metrics), groups,
             ylabel="mean over runs (error bar: std across runs)", title=f"Co-EvoDT {mode}: random vs trained")
    if mode != "NoPred":
        fc = res["forecast"]
        target, pred = fc["test_target"][0], fc["test_pred"][0]
        n = min(200, target.shape[0])
        fig, ax = plt.subplots(figsize=(7, 4))
        ax.plot(target[:n], "k-", lw=2, label="actual load")
        mean_rmse = fc["rmse"].mean(0)
        for k, f in enumerate(FORECASTERS):
            # the oracle floor knows the state (not a window forecaster): dashed
            name = "oracle floor" if f == "oracle" else f
            ax.plot(pred[:n, k], lw=1, ls="--" if f == "oracle" else "-",
                    label=f"{name} (RMSE {fc['rmse'][0, k]:.4f}; mean of {cfg.runs} runs {mean_rmse[k]:.4f})")
        ax.set_xlabel("holdout sequence (run 0)")
        ax.set_ylabel("next load")
        ax.set_title(f"Co-EvoDT {mode}: LSTM vs baselines and the oracle floor on the holdout")
        ax.legend(fontsize=8)
        artifacts.save_figure(fig, mode_dir / "lstm_holdout.png")
    trace = res["greedy_trace"]
    t = np.arange(1, cfg.episode_len + 1)
    line_plot(mode_dir / "greedy_episode.png", t,
              {m: trace[m][0] for m in ("qoe", "latency", "virality", "load")},
              xlabel="step", ylabel="value", title=f"Co-EvoDT {mode}: one greedy episode (run 0)")


def sensitivity(path: Path, cfg, scenarios: list[tuple[str, float]], rows: list[dict],
                metrics: tuple[str, ...]) -> None:
    """Trained metrics (mean +- std over runs) of every sensitivity scenario."""
    labels = ["nominal"] + [f"{n} x{f:.2f}" for n, f in scenarios[1:]]
    bar_plot(path, labels,
             {m: ([r[f"trained_{m}_mean"] for r in rows], [r[f"trained_{m}_std"] for r in rows]) for m in metrics},
             ylabel="trained metric (mean +- std over runs)",
             title=f"Sensitivity of {cfg.sensitivity_mode} to +-{cfg.sensitivity_delta:.0%} action coefficients")
