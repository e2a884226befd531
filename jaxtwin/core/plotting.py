"""Small plotting helpers shared by the experiments.

No backend is forced: headless machines fall back to Agg by themselves, and a
notebook that imports jaxtwin keeps its inline backend.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from jaxtwin.core.artifacts import save_figure


def smooth(x, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    x = np.asarray(x, dtype=np.float64)
    if window <= 1 or x.size == 0:
        return x
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def line_plot(path: str | os.PathLike, x, series: Mapping[str, Sequence[float]], *,
              xlabel: str, ylabel: str, title: str = "",
              bands: Mapping[str, Sequence[float]] | None = None) -> None:
    """One line per series (optional ±band per series), saved as PNG."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    x = np.asarray(x)
    for name, y in series.items():
        y = np.asarray(y)
        (line,) = ax.plot(x, y, label=name)
        if bands and name in bands:
            b = np.asarray(bands[name])
            ax.fill_between(x, y - b, y + b, alpha=0.2, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if len(series) > 1:
        ax.legend()
    ax.grid(alpha=0.3)
    save_figure(fig, path)


def bar_plot(path: str | os.PathLike, categories: Sequence[str],
             groups: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
             ylabel: str, title: str = "") -> None:
    """Grouped bars: ``groups[name] = (means, stds)`` over ``categories``, with error bars."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    n = len(groups)
    width = 0.8 / max(n, 1)
    pos = np.arange(len(categories))
    for i, (name, (means, stds)) in enumerate(groups.items()):
        ax.bar(pos + (i - (n - 1) / 2) * width, means, width, yerr=stds, capsize=3, label=name)
    ax.set_xticks(pos, categories)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3, axis="y")
    save_figure(fig, path)
