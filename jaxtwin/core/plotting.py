"""One plotting style for every figure jaxtwin writes.

Rules every figure follows (a reviewer's checklist): a title saying what is
shown and under which scenario; axis labels with units or "(fraction)";
legends outside the data (to the right of the axes); error bars and bands
always defined in the legend (``err_label``, ``band_label``: "±1 std across
runs", "95% CI"); no error bars on deterministic values; numbers in titles
rounded for people (:func:`fmt_values`); and nothing drawn that was not
measured (NaN points are gaps, not zeros). The style itself (sizes, grid,
fonts) is :data:`STYLE`, applied per figure so a notebook's settings are left
alone. No backend is forced: headless machines fall back to Agg by
themselves, and a notebook keeps its inline backend.
"""
from __future__ import annotations

import os
import textwrap
from contextlib import contextmanager
from typing import Iterable, Iterator, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from jaxtwin.core.artifacts import save_figure

STYLE = {"figure.figsize": (7.2, 4.2), "axes.grid": True, "grid.alpha": 0.3, "axes.titlesize": 11,
         "axes.labelsize": 10, "legend.fontsize": 8, "legend.frameon": False, "xtick.labelsize": 9,
         "ytick.labelsize": 9, "axes.spines.top": False, "axes.spines.right": False}


def fmt_values(values: Iterable[float], digits: int = 3) -> str:
    """``0.1, 0.3, 0.5``: numbers rounded to ``digits`` significant figures, for titles."""
    return ", ".join(f"{float(v):.{digits}g}" for v in values)


def smooth(x, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    x = np.asarray(x, dtype=np.float64)
    if window <= 1 or x.size == 0:
        return x
    c = np.cumsum(np.insert(x, 0, 0.0))
    idx = np.arange(1, x.size + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


@contextmanager
def styled(nrows: int = 1, ncols: int = 1, **kwargs) -> Iterator[tuple]:
    """``(fig, axes)`` drawn under :data:`STYLE` (``plt.subplots`` arguments pass through)."""
    with plt.rc_context(STYLE):
        if "figsize" not in kwargs and (nrows, ncols) != (1, 1):
            kwargs["figsize"] = (4.6 * ncols + 1.6, 3.6 * nrows)
        fig, axes = plt.subplots(nrows, ncols, **kwargs)
        yield fig, axes


def legend_outside(ax, title: str | None = None) -> None:
    """The axes' legend to the right of the data, never over it."""
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                  title=title, title_fontsize=8)


def figure_legend(fig, ax, title: str | None = None) -> None:
    """One legend (``ax``'s entries) for a multi-panel figure, to the right of every panel."""
    fig.tight_layout()
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 0.9), title=title,
                   title_fontsize=8)


def _finite_x(x: np.ndarray, log_x: bool) -> tuple[np.ndarray, list[float]]:
    """``x`` with +inf moved one step past the largest finite value (the typical spacing of
    the finite values, or a factor 2 on a log axis), and where it went (the tick to label ∞)."""
    finite = np.unique(x[np.isfinite(x)])
    if finite.size == x.size or finite.size == 0:
        return x, []
    top = finite[-1]
    step = float(np.median(np.diff(finite))) if finite.size > 1 else max(abs(top), 1.0) * 0.5
    at = top * 2 if log_x else top + step
    return np.where(np.isposinf(x), at, x), [float(at)]


def line_plot(path: str | os.PathLike, x, series: Mapping[str, Sequence[float]], *,
              xlabel: str, ylabel: str, title: str = "",
              bands: Mapping[str, Sequence[float]] | None = None, band_label: str = "±1 std",
              log_x: bool = False) -> None:
    """One line per series, optional ±band per series (its meaning, ``band_label``, in the
    legend), saved as PNG. NaN values are gaps; an infinite ``x`` (``withdraw_ratio = inf``)
    is drawn one step past the largest finite one and labelled ∞; few points get markers.
    A single series needs no legend unless it has a band."""
    with styled() as (fig, ax):
        x, inf_ticks = _finite_x(np.asarray(x, dtype=np.float64), log_x)
        marker = "o" if x.size <= 30 else None
        for name, y in series.items():
            y = np.asarray(y, dtype=np.float64)
            (line,) = ax.plot(x, y, label=name, marker=marker, ms=3)
            if bands and name in bands:
                b = np.asarray(bands[name], dtype=np.float64)
                ax.fill_between(x, y - b, y + b, alpha=0.2, color=line.get_color(), lw=0)
        if bands:
            ax.fill_between([], [], [], color="grey", alpha=0.2, label=f"band: {band_label}")
        if log_x:
            ax.set_xscale("log")
        elif not inf_ticks and np.all(np.mod(x, 1) == 0):   # an integer axis (a horizon): no 6.25 ticks
            from matplotlib.ticker import MaxNLocator

            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if inf_ticks:
            ticks = [t for t in ax.get_xticks() if np.min(x) <= t < min(inf_ticks)] + inf_ticks
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks[:-len(inf_ticks)]] + ["∞"] * len(inf_ticks))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(textwrap.fill(title, 90), fontsize=10)
        if len(series) > 1 or bands:
            legend_outside(ax)
        save_figure(fig, path)


def bar_plot(path: str | os.PathLike, categories: Sequence[str],
             groups: Mapping[str, tuple[Sequence[float], Sequence[float] | None]], *,
             ylabel: str, title: str = "", err_label: str = "±1 std", rotate: bool | None = None) -> None:
    """Grouped bars: ``groups[name] = (means, errors)`` over ``categories``. Error bars are
    drawn only where some error is non-zero (deterministic values get none) and are defined
    in the legend's title (``err_label``). Long category labels are rotated."""
    with styled(figsize=(max(6.4, 0.9 * len(categories) * max(len(groups), 1) ** 0.5 + 3.0), 4.2)) as (fig, ax):
        n = len(groups)
        width = 0.8 / max(n, 1)
        pos = np.arange(len(categories))
        any_err = False
        for i, (name, (means, errs)) in enumerate(groups.items()):
            errs = None if errs is None or not np.any(np.asarray(errs, dtype=np.float64) > 0) else errs
            any_err |= errs is not None
            ax.bar(pos + (i - (n - 1) / 2) * width, means, width, yerr=errs, capsize=2, label=name,
                   error_kw={"lw": 0.8})
        if rotate is None:
            rotate = sum(len(c) for c in categories) > 60
        ax.set_xticks(pos, categories, rotation=30 if rotate else 0, ha="right" if rotate else "center")
        ax.set_ylabel(ylabel)
        ax.grid(False, axis="x")
        if title:
            ax.set_title(title)
        if n > 1 or any_err:
            legend_outside(ax, title=f"error bars: {err_label}" if any_err else None)
        save_figure(fig, path)
