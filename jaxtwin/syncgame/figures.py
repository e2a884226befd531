"""The sync game's figures: trajectories, ESS paths, one panel pair per
sensitivity study and the payoff comparison, drawn from what
:mod:`jaxtwin.syncgame.experiments` computed."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxtwin.core.artifacts import save_figure
from jaxtwin.core.plotting import bar_plot  # also selects the Agg backend


def trajectories(path: Path, sol, title: str) -> None:
    """UAV shares, sync intensities and DT values of every VSP along one solution."""
    import matplotlib.pyplot as plt

    ts = np.asarray(sol.ts)
    z, u = np.asarray(sol.states), np.asarray(sol.controls)
    m = u.shape[1]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for i in range(m):
        axes[0].plot(ts, z[:, m + i], label=f"VSP {i + 1}")
        axes[1].plot(ts, u[:, i], label=f"VSP {i + 1}")
        axes[2].plot(ts, z[:, i], label=f"VSP {i + 1}")
    for ax, lab in zip(axes, ("UAV share y", "sync intensity u", "DT value x")):
        ax.set_xlabel("t")
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    save_figure(fig, path)


def ess(path: Path, t_eval: np.ndarray, paths: np.ndarray, labels: list[float], rest: np.ndarray,
        u_plateau: np.ndarray) -> None:
    """Replicator paths of y_1 from each start (label -1: the perturbed rest point) and the rest point."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for j, lab in enumerate(labels):
        ax.plot(t_eval, paths[j, :, 0], ls="--" if lab < 0 else "-",
                label="perturbed ESS" if lab < 0 else f"y1(0)={lab:.1f}")
    ax.axhline(rest[0], color="k", lw=0.8)
    ax.set_xlabel("t")
    ax.set_ylabel("y_1")
    ax.set_title(f"ESS under Nash plateau controls u={np.round(u_plateau, 2).tolist()}")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def study(path: Path, name: str, rows: list[dict], focal: int) -> None:
    """Plateau controls and shares of every VSP against one study's parameter."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for i in sorted({r["vsp"] for r in rows}):
        sel = [r for r in rows if r["vsp"] == i]
        xs = [r["value"] for r in sel]
        axes[0].plot(xs, [r["u_plateau"] for r in sel], "o-", label=f"VSP {i}")
        axes[1].plot(xs, [r["y_plateau"] for r in sel], "o-", label=f"VSP {i}")
    for ax, lab in zip(axes, ("plateau u", "plateau y")):
        ax.set_xlabel(name)
        ax.set_ylabel(lab)
        ax.grid(alpha=0.3)
        if name in ("w3",):
            ax.set_xscale("log")
    axes[0].legend()
    fig.suptitle(f"sensitivity to {name} (4 VSPs; focal VSP k = {focal + 1})")
    save_figure(fig, path)


def compare(path: Path, rows: list[dict], m: int, leader: int) -> None:
    """Discounted payoff of every VSP under each scheme (the leader marked)."""
    cats = [f"VSP {i + 1}{' (L)' if i == leader else ''}" for i in range(m)]
    groups = {s: ([r["payoff"] for r in rows if r["scheme"] == s], [0.0] * m)
              for s in ("simultaneous", "stackelberg", "static_stackelberg")}
    bar_plot(path, cats, groups, ylabel="discounted payoff", title=f"{m} VSPs, leader VSP {leader + 1}")
