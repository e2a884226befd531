"""What a command prints when it ends: one style for every system.

A short results table on stdout (the numbers a reader looks for first, each
with its 95% CI where there is a sample), warnings on stderr (``warning: ...``:
unconverged solves, too few runs for a CI, under-trained agents), and the
files the run wrote. Machine-readable detail stays in the files.
"""
from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from jaxtwin.core import artifacts
from jaxtwin.core.stats import t_ci_halfwidth

MIN_RUNS_FOR_CI = 3  # below this a 95% CI is too wide to read (t_{0.975,1} = 12.7)


def note(message: str) -> None:
    """One line on stderr that is not a warning (e.g. that a run resumes)."""
    print(message, file=sys.stderr, flush=True)


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def fmt(x: Any, digits: int = 4) -> str:
    """A number rounded for people (``digits`` significant figures), anything else as text."""
    if x is None:
        return "n/a"
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.number)):
        return str(x)
    x = float(x)
    return "n/a" if math.isnan(x) else f"{x:.{digits}g}"


def mean_pm_ci(values: Iterable[float]) -> str:
    """``mean ± half-width`` of the 95% t-interval (just the mean for a single value)."""
    v = np.asarray(list(values), dtype=np.float64)
    half = t_ci_halfwidth(v)
    return fmt(v.mean()) if math.isnan(half) else f"{fmt(v.mean())} ± {fmt(half, 2)}"


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, title: str = "",
                note: str = "") -> None:
    """An aligned text table of ``rows`` (cells formatted with :func:`fmt`) on stdout."""
    cells = [[fmt(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    if title:
        print(title)
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())
    if note:
        print(note)


def grouped_ci_table(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], metrics: Sequence[str],
                     *, title: str = "", replicate: str | None = None) -> None:
    """One line per group of ``keys``: each metric as mean ± 95% CI over the group's rows.

    ``replicate``: a column naming the independent replicate (CIVIC's ``train_seed``);
    in a group whose rows set it, the CI is over the replicates' means, not the rows.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)

    def units(rs, m):
        reps: dict[Any, list[float]] = {}
        for r in rs:
            if replicate is not None and r.get(replicate, "") != "":
                reps.setdefault(r[replicate], []).append(float(r[m]))
        return [sum(v) / len(v) for v in reps.values()] if reps else [float(r[m]) for r in rs]

    table = [{**dict(zip(keys, g)), "n": len(rs), **{m: mean_pm_ci(units(rs, m)) for m in metrics}}
             for g, rs in groups.items()]
    print_table(table, [*keys, "n", *metrics], title=title,
                note="(mean ± half-width of the 95% t-interval over the n rows of each group"
                     + (f"; groups with a {replicate}: over its values' means)" if replicate else ")"))
    smallest = min((len(rs) for rs in groups.values()), default=0)
    if 0 < smallest < MIN_RUNS_FOR_CI:
        warn(f"only {smallest} sample(s) per group: confidence intervals are too wide to read "
             f"(use at least {MIN_RUNS_FOR_CI})")


def print_files(out_dir: str | Path) -> None:
    """The files this run wrote under ``out_dir``, one line per folder (or that it wrote none)."""
    out = Path(out_dir)
    files = [f for f in artifacts.written_since_claim(out) if not f.name.startswith(".") and f.exists()]
    if not files:
        print(f"nothing recomputed: the results in {out} were already there (--overwrite recomputes)")
        return
    folders: dict[Path, list[str]] = {}
    for f in files:
        folders.setdefault(f.parent, []).append(f.name)
    print(f"files written ({len(files)}):")
    for folder in sorted(folders):
        shown = folder.relative_to(out.resolve()) if folder != out.resolve() else Path(".")
        print(f"  {out / shown}/: {' '.join(sorted(folders[folder]))}")
