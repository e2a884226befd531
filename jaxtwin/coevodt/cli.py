"""``jaxtwin coevodt [options]``: the Co-EvoDT experiment (one command, every
option a field of :class:`~jaxtwin.coevodt.experiments.CoEvoDTConfig`)."""
from __future__ import annotations

from pathlib import Path

from jaxtwin.core.cli import Command, System
from jaxtwin.coevodt.experiments import CoEvoDTConfig, run


def report(results: dict, out: Path) -> None:
    """One line per mode and metric: baseline, trained, relative change and the CI of the difference."""
    for mode, rows in results.items():
        for row in rows:
            print(f"{mode:13s} {row['metric']:8s} baseline {float(row['baseline_mean']):.4f} "
                  f"trained {float(row['trained_mean']):.4f} ({float(row['relative_change_pct']):+.1f}%, "
                  f"95% CI of diff [{float(row['diff_ci_low']):+.4f}, {float(row['diff_ci_high']):+.4f}])")


SYSTEM = System(
    description="Co-EvoDT: every run of each forecast mode in one vmapped, jitted program, then "
                "per-run CSVs, cross-run aggregates with paired tests and bootstrap CIs, the "
                "three-mode ablation and the figures (see jaxtwin.coevodt.experiments).",
    commands={"": Command(CoEvoDTConfig, run, out="results/coevodt", batch="the runs", report=report)},
)
