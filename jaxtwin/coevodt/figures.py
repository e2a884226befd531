"""Co-EvoDT's figures: the per-mode PNGs and the sensitivity bars, drawn from
the results :mod:`jaxtwin.coevodt.experiments` computed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxtwin.core import artifacts
from jaxtwin.core.plotting import bar_plot, legend_outside, line_plot, smooth, styled
from jaxtwin.coevodt.env import AGENTS
from jaxtwin.coevodt.forecast import FORECASTERS


def mode_figures(cfg, res: dict, mode: str, mode_dir: Path, metrics: tuple[str, ...]) -> None:
    """Return curves, baseline-vs-trained bars, LSTM holdout, one greedy episode."""
    returns(mode_dir / "returns.png", cfg, res["train"]["episode_return"], mode)
    groups = {}
    for s in ("baseline", "trained"):
        per_run = np.stack([res[s][m].mean(1) for m in metrics])
        groups["random baseline" if s == "baseline" else "trained"] = (
            per_run.mean(1), per_run.std(1, ddof=1) if cfg.runs > 1 else None)
    bar_plot(mode_dir / "baseline_vs_trained.png", list(metrics), groups,
             ylabel="episode mean (averaged over runs)", err_label=f"±1 std across {cfg.runs} runs",
             title=f"Co-EvoDT {mode}: random baseline vs trained populations")
    if mode != "NoPred":
        holdout(mode_dir / "lstm_holdout.png", cfg, res["forecast"], mode)
    greedy_episode(mode_dir / "greedy_episode.png", cfg, res["greedy_trace"], mode)


def returns(path: Path, cfg, ret: np.ndarray, mode: str) -> None:
    """Smoothed training return per agent (``ret``: runs x episodes x agents), ±1 std across
    runs; one curve when every agent earns the same (shared) reward."""
    ep = np.arange(1, cfg.episodes + 1)
    shared = all(np.allclose(ret[..., i], ret[..., 0]) for i in range(ret.shape[-1]))
    curves = {"every agent (shared reward)": 0} if shared else {a: i for i, a in enumerate(AGENTS)}
    line_plot(path, ep, {name: smooth(ret[:, :, i].mean(0), cfg.smooth_window) for name, i in curves.items()},
              bands={name: smooth(ret[:, :, i].std(0), cfg.smooth_window) for name, i in curves.items()},
              band_label=f"±1 std across {cfg.runs} runs", xlabel="training episode",
              ylabel=f"episodic return (mean of {cfg.runs} runs, {cfg.smooth_window}-episode average)",
              title=f"Co-EvoDT {mode}: training return")


def holdout(path: Path, cfg, fc: dict, mode: str) -> None:
    """Run 0's held-out loads beside every forecaster's predictions and the oracle floor."""
    target, pred = fc["test_target"][0], fc["test_pred"][0]
    n = min(200, target.shape[0])
    mean_rmse = fc["rmse"].mean(0)
    with styled() as (fig, ax):
        ax.plot(target[:n], "k-", lw=2, label="actual load")
        for k, f in enumerate(FORECASTERS):
            # the oracle floor knows the state (not a window forecaster): dashed
            name = "oracle floor" if f == "oracle" else f
            ax.plot(pred[:n, k], lw=1, ls="--" if f == "oracle" else "-",
                    label=f"{name}: RMSE {fc['rmse'][0, k]:.4f} (mean of {cfg.runs} runs {mean_rmse[k]:.4f})")
        ax.set_xlabel(f"held-out transition (run 0, first {n})")
        ax.set_ylabel("next load (load units)")
        ax.set_title(f"Co-EvoDT {mode}: one-step load forecasts on the held-out split")
        legend_outside(ax)
        artifacts.save_figure(fig, path)


def greedy_episode(path: Path, cfg, trace: dict, mode: str) -> None:
    """One greedy episode of run 0: each quantity on its own axis."""
    t = np.arange(1, cfg.episode_len + 1)
    labels = {"qoe": "QoE (fraction)", "latency": "latency (model units)", "virality": "virality",
              "load": "load (load units)"}
    with styled(2, 2, sharex=True) as (fig, axes):
        for ax, (m, label) in zip(axes.ravel(), labels.items()):
            ax.plot(t, trace[m][0])
            ax.set_ylabel(label)
        for ax in axes[-1]:
            ax.set_xlabel("step")
        fig.suptitle(f"Co-EvoDT {mode}: one greedy episode of the trained populations (run 0)")
        fig.tight_layout()
        artifacts.save_figure(fig, path)


def sensitivity(path: Path, cfg, scenarios: list[tuple[str, float]], rows: list[dict],
                metrics: tuple[str, ...]) -> None:
    """Trained metrics (mean and 95% CI over runs) of every sensitivity scenario."""
    labels = ["nominal"] + [f"{n} x{f:.2f}" for n, f in scenarios[1:]]
    bar_plot(path, labels,
             {m: ([r[f"trained_{m}_mean"] for r in rows], [r[f"trained_{m}_ci95"] for r in rows]) for m in metrics},
             ylabel="trained metric (mean over runs)", err_label=f"95% CI across {cfg.sensitivity_runs} runs",
             title=f"Co-EvoDT {cfg.sensitivity_mode}: sensitivity to ±{cfg.sensitivity_delta:.0%} action coefficients")
