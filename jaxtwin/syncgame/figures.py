"""The sync game's figures: trajectories, ESS paths, one panel pair per
sensitivity study and the payoff comparison, drawn from what
:mod:`jaxtwin.syncgame.experiments` computed, in the style of
:mod:`jaxtwin.core.plotting`. Time is in the model's time units."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxtwin.core.artifacts import save_figure
from jaxtwin.core.plotting import figure_legend, fmt_values, legend_outside, styled

SCHEMES = {"simultaneous": "open-loop Nash", "stackelberg": "Stackelberg (open-loop)",
           "static_stackelberg": "static Stackelberg"}


def trajectories(path: Path, sol, delta: np.ndarray, T: float) -> None:
    """UAV shares, sync intensities and DT values of every VSP along one open-loop Nash
    solution of the game with sync values ``delta`` and horizon ``T``."""
    ts = np.asarray(sol.ts)
    z, u = np.asarray(sol.states), np.asarray(sol.controls)
    m = u.shape[1]
    with styled(1, 3) as (fig, axes):
        for i in range(m):
            axes[0].plot(ts, z[:, m + i], label=f"VSP {i + 1}")
            axes[1].plot(ts, u[:, i])
            axes[2].plot(ts, z[:, i])
        for ax, lab in zip(axes, ("UAV share y (fraction)", "sync intensity u (control)", "DT value x")):
            ax.set_xlabel("time t")
            ax.set_ylabel(lab)
        fig.suptitle(f"Open-loop Nash trajectories, {m} VSPs (δ = {fmt_values(delta)}, T = {T:g})")
        figure_legend(fig, axes[0])
        save_figure(fig, path)


def ess(path: Path, t_eval: np.ndarray, paths: np.ndarray, labels: list[float], rest: np.ndarray,
        u_plateau: np.ndarray) -> None:
    """Replicator paths of y_1 from each start (label -1: the perturbed rest point) and the rest point."""
    with styled() as (fig, ax):
        for j, lab in enumerate(labels):
            ax.plot(t_eval, paths[j, :, 0], ls="--" if lab < 0 else "-",
                    label="perturbed rest point" if lab < 0 else f"y₁(0) = {lab:.1f}")
        ax.axhline(rest[0], color="k", lw=0.8, label=f"rest point y₁* = {rest[0]:.3f}")
        ax.set_xlabel("time t")
        ax.set_ylabel("UAV share of VSP 1, y₁ (fraction)")
        ax.set_title(f"Replicator dynamics under the Nash plateau controls u = ({fmt_values(u_plateau)})")
        legend_outside(ax, title="start")
        save_figure(fig, path)


def study(path: Path, name: str, rows: list[dict], focal: int) -> None:
    """Plateau controls and shares of every VSP against one study's parameter."""
    m = len({r["vsp"] for r in rows})
    with styled(1, 2) as (fig, axes):
        for i in sorted({r["vsp"] for r in rows}):
            sel = [r for r in rows if r["vsp"] == i]
            xs = [r["value"] for r in sel]
            style = dict(lw=2.2) if i == focal + 1 else dict(lw=1.2)
            label = f"VSP {i}" + (" (focal k)" if i == focal + 1 else "")
            axes[0].plot(xs, [r["u_plateau"] for r in sel], "o-", label=label, ms=3, **style)
            axes[1].plot(xs, [r["y_plateau"] for r in sel], "o-", ms=3, **style)
        for ax, lab in zip(axes, ("plateau sync intensity u", "plateau UAV share y (fraction)")):
            ax.set_xlabel(name)
            ax.set_ylabel(lab)
            if name in ("w3",):
                ax.set_xscale("log")
        fig.suptitle(f"Open-loop Nash plateau vs {name} ({m} VSPs; plateau = mean over [0.4T, 0.6T])")
        figure_legend(fig, axes[0])
        save_figure(fig, path)


def compare(path: Path, rows: list[dict], m: int, leader: int) -> None:
    """Discounted payoff of every VSP under each scheme (left) and each scheme's payoff minus
    the simultaneous (Nash) one (right), where the small leader/follower gaps show."""
    cats = [f"VSP {i + 1}{' (leader)' if i == leader else ''}" for i in range(m)]
    pay = {s: np.asarray([r["payoff"] for r in rows if r["scheme"] == s], np.float64) for s in SCHEMES}
    pos = np.arange(m)
    width = 0.8 / len(SCHEMES)
    with styled(1, 2) as (fig, axes):
        for k, (s, label) in enumerate(SCHEMES.items()):
            off = (k - (len(SCHEMES) - 1) / 2) * width
            axes[0].bar(pos + off, pay[s], width, label=label)
            if s != "simultaneous":
                gap = pay[s] - pay["simultaneous"]
                bars = axes[1].bar(pos + off, gap, width, color=f"C{k}")
                axes[1].bar_label(bars, labels=[f"{g:+.3g}" for g in gap], fontsize=7, padding=2)
        axes[1].axhline(0.0, color="k", lw=0.8)
        gaps = np.abs(np.concatenate([pay[s] - pay["simultaneous"] for s in SCHEMES if s != "simultaneous"]))
        if np.any(gaps > 0):  # gaps span orders of magnitude: a symmetric log axis shows them all
            axes[1].set_yscale("symlog", linthresh=float(gaps[gaps > 0].min()))
        for ax, lab in zip(axes, ("discounted payoff", "payoff − open-loop Nash payoff (symlog)")):
            ax.set_xticks(pos, cats)
            ax.set_ylabel(lab)
            ax.grid(False, axis="x")
        axes[0].set_title("payoff per scheme (deterministic solves)")
        axes[1].set_title("difference from open-loop Nash")
        fig.suptitle(f"Leader–follower payoffs, {m} VSPs, leader VSP {leader + 1}")
        figure_legend(fig, axes[0])
        save_figure(fig, path)
