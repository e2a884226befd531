"""Figures of a study's ``summary.csv``: chosen by the grid (one axis: each headline
metric against it, one line per policy with its 95% CI band; two axes: a heatmap
per metric with one panel per policy), or any view through :func:`plot_study`
(``jaxtwin plot DIR --x FIELD [--y FIELD] --metric M``)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from jaxtwin.core import artifacts
from jaxtwin.core.config import ConfigError
from jaxtwin.core.plotting import line_plot, styled


def _label(adapter: Any, metric: str) -> str:
    return getattr(adapter, "metric_labels", {}).get(metric, metric)


def _tick(v: Any) -> str:
    """A heatmap tick: 4 significant digits for floats (``0.187333`` -> ``0.1873``)."""
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _log_axis(values: Sequence[float]) -> bool:
    v = np.asarray([x for x in values if isinstance(x, (int, float)) and np.isfinite(x)], np.float64)
    return v.size > 2 and bool(np.all(v > 0)) and v.max() / v.min() >= 100


def _select(summary: Sequence[Mapping], where: Mapping[str, Any]) -> list[Mapping]:
    return [r for r in summary if all(str(r.get(k)) == str(v) for k, v in where.items())]


def line_figure(path: Path, summary: Sequence[Mapping], x: str, metric: str, policy_col: str,
                *, ylabel: str, title: str, count_col: str = "n_seeds") -> None:
    """``metric`` against axis ``x``: one line per policy, a 95% CI band where seeds > 1."""
    xs = sorted({r[x] for r in summary})
    series, bands, n_seeds = {}, {}, set()
    for pol in dict.fromkeys(r[policy_col] for r in summary):
        by_x = {r[x]: r for r in summary if r[policy_col] == pol}
        series[pol] = [by_x[v][f"{metric}_mean"] if v in by_x else np.nan for v in xs]
        ci = [by_x[v].get(f"{metric}_ci95", np.nan) if v in by_x else np.nan for v in xs]
        n_seeds.update(by_x[v][count_col] for v in xs if v in by_x)
        if np.any(np.isfinite(np.asarray(ci, np.float64))):
            bands[pol] = ci
    n = "/".join(str(k) for k in sorted(n_seeds))
    trainings = sorted({int(r["n_train_seeds"]) for r in summary if _count(r.get("n_train_seeds")) > 0})
    over = f"95% CI over {n} {count_col[2:]}" + (
        f" (trained: over {'/'.join(map(str, trainings))} trainings)" if trainings else "")
    line_plot(path, xs, series, xlabel=x, ylabel=ylabel, title=title, bands=bands or None,
              band_label=over, log_x=_log_axis(xs))


def _count(v: Any) -> float:
    """A count cell (empty for rows without one) as a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def heatmap_figure(path: Path, summary: Sequence[Mapping], x: str, y: str, metric: str, policy_col: str,
                   *, label: str, title: str) -> None:
    """``metric`` over the ``x`` x ``y`` grid: one panel per policy, one shared colour scale."""
    xs, ys = sorted({r[x] for r in summary}), sorted({r[y] for r in summary})
    pols = list(dict.fromkeys(r[policy_col] for r in summary))
    grids = {}
    for pol in pols:
        g = np.full((len(ys), len(xs)), np.nan)
        for r in summary:
            if r[policy_col] == pol:
                g[ys.index(r[y]), xs.index(r[x])] = r[f"{metric}_mean"]
        grids[pol] = g
    finite = np.concatenate([g[np.isfinite(g)] for g in grids.values()]) if grids else np.zeros(0)
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    ncols = min(len(pols), 4)
    nrows = -(-len(pols) // ncols)
    with styled(nrows, ncols, figsize=(3.6 * ncols + 1.2, 3.2 * nrows + 0.6), squeeze=False) as (fig, axes):
        for k, (ax, pol) in enumerate(zip(axes.ravel(), pols)):
            im = ax.imshow(grids[pol], origin="lower", aspect="auto", vmin=vmin, vmax=vmax, cmap="viridis")
            ax.set_title(pol, fontsize=9)
            ax.set_xticks(range(len(xs)), [_tick(v) for v in xs],
                          rotation=45 if len(xs) > 6 else 0, fontsize=7)
            # the panels share the y grid: its ticks and label only on the first column, so
            # the inner panels' tick labels do not crowd the gaps between panels
            ax.set_yticks(range(len(ys)), [_tick(v) for v in ys] if k % ncols == 0 else [], fontsize=7)
            ax.set_xlabel(x)
            if k % ncols == 0:
                ax.set_ylabel(y)
            ax.grid(False)
            if len(xs) * len(ys) <= 64:  # small grids: the value in each cell, readable in print
                mid = (vmin + vmax) / 2
                for (i, j), v in np.ndenumerate(grids[pol]):
                    if np.isfinite(v):
                        ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=6,
                                color="black" if v > mid else "white")
        for ax in axes.ravel()[len(pols):]:
            ax.axis("off")
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        fig.colorbar(im, ax=axes.ravel().tolist(), label=label, shrink=0.9)
        artifacts.save_figure(fig, path)


def count_column(adapter: Any) -> str:
    """See :func:`jaxtwin.core.engine.count_column`."""
    return f"n_{adapter.seed_label}s"


def default_figures(out: Path, study: Any, adapter: Any, summary: Sequence[Mapping]) -> list[Path]:
    """The figures the grid calls for (none beyond two axes: use :func:`plot`)."""
    axes = [n for n, vals in study.axes if len(vals) > 1]
    pol = adapter.policy_label
    metrics = [m for m in adapter.plot_metrics if summary and f"{m}_mean" in summary[0]]
    fixed = ", ".join(f"{n}={v}" for n, v in study.fixed)
    written = []
    for m in metrics:
        if len(axes) == 1:
            path = out / f"{m}_vs_{axes[0]}.png"
            line_figure(path, summary, axes[0], m, pol, ylabel=_label(adapter, m), count_col=count_column(adapter),
                        title=f"{study.system}: {_label(adapter, m)} vs {axes[0]}" + (f" ({fixed})" if fixed else ""))
        elif len(axes) == 2:
            path = out / f"{m}_heatmap.png"
            heatmap_figure(path, summary, axes[0], axes[1], m, pol, label=_label(adapter, m),
                           title=f"{study.system}: mean {_label(adapter, m)} over {axes[0]} x {axes[1]}"
                           + (f" ({fixed})" if fixed else ""))
        else:
            break
        written.append(path)
    return written


def plot_study(out_dir: str | Path, x: str, metric: str, *, y: str | None = None,
               where: Mapping[str, Any] | None = None, path: str | Path | None = None) -> Path:
    """Any view of a finished study in ``out_dir``: ``metric`` against ``x`` (or a heatmap over
    ``x`` x ``y``), rows restricted by ``where`` (field -> value); returns the PNG's path."""
    out = Path(out_dir)
    if not (out / "summary.csv").exists() or not (out / "study.json").exists():
        raise ConfigError(f"{out}: no finished study (summary.csv, study.json); run `jaxtwin sweep` first")
    record = json.loads((out / "study.json").read_text())
    policy_col = record.get("policy_label", "policy")
    summary = _select(artifacts.read_table(out / "summary.csv"), where or {})
    cols = set(summary[0]) if summary else set()
    metrics = sorted(c[:-5] for c in cols if c.endswith("_mean"))
    for name, kind in ((x, "--x"), (y, "--y")):
        if name is not None and name not in cols:
            raise ConfigError(f"{kind} {name}: not a column of {out / 'summary.csv'}; axes: "
                              + ", ".join(a for a, _ in record["study"]["axes"]))
    if metric not in metrics:
        raise ConfigError(f"--metric {metric}: not a metric of this study; metrics: {', '.join(metrics)}")
    if not summary:
        raise ConfigError(f"--where {where}: no rows match")
    other = [a for a, _ in record["study"]["axes"] if a not in (x, y) and a not in (where or {})
             and len({r[a] for r in summary}) > 1]
    if other:
        raise ConfigError(f"axes {', '.join(other)} also vary: fix them with --where FIELD=VALUE")
    target = Path(path) if path else out / (f"{metric}_{x}_{y}.png" if y else f"{metric}_vs_{x}.png")
    label = record.get("metric_labels", {}).get(metric, metric)   # the name with its unit, as the study drew it
    title = f"{record['study']['system']}: {label}" + (f" ({', '.join(f'{k}={v}' for k, v in where.items())})"
                                                        if where else "")
    if y is None:
        line_figure(target, summary, x, metric, policy_col, ylabel=label, title=title,
                    count_col=record.get("count_column", "n_seeds"))
    else:
        heatmap_figure(target, summary, x, y, metric, policy_col, label=label, title=title)
    return target
