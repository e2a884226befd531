"""``jaxtwin coevodt [options]``: the Co-EvoDT experiment (one command, every
option a field of :class:`~jaxtwin.coevodt.experiments.CoEvoDTConfig`)."""
from __future__ import annotations

from pathlib import Path

from jaxtwin.core.cli import Command, System
from jaxtwin.core.report import MIN_RUNS_FOR_CI, print_table, warn
from jaxtwin.coevodt.experiments import CoEvoDTConfig, run


def report(results: dict, out: Path) -> None:
    """Per mode and metric: baseline and trained means, the relative change and the 95% CI of
    the paired difference; warnings for unconverged runs and too few runs for a CI."""
    rows = [{"mode": mode, "metric": r["metric"], "baseline": float(r["baseline_mean"]),
             "trained": float(r["trained_mean"]), "change %": float(r["relative_change_pct"]),
             "95% CI of diff": f"[{float(r['diff_ci_low']):+.4f}, {float(r['diff_ci_high']):+.4f}]",
             "converged": f"{int(float(r['converged_runs']))}/{int(float(r['n_runs']))}"}
            for mode, mode_rows in results.items() for r in mode_rows]
    print_table(rows, ["mode", "metric", "baseline", "trained", "change %", "95% CI of diff", "converged"],
                title="Co-EvoDT: trained populations vs the random baseline (means over runs)",
                note="(95% CI: bootstrap of the paired trained - baseline difference over runs)")
    for mode, mode_rows in results.items():
        conv, n = (int(float(mode_rows[0][k])) for k in ("converged_runs", "n_runs"))
        if conv < n:
            warn(f"{mode}: {n - conv} of {n} runs did not meet the convergence criterion "
                 "(--convergence-window, --convergence-tol); their results are reported as they are")
    n_runs = min((int(float(rs[0]["n_runs"])) for rs in results.values() if rs), default=0)
    if 0 < n_runs < MIN_RUNS_FOR_CI:
        warn(f"{n_runs} run(s) per mode: the confidence intervals are too wide to read (--runs >= "
             f"{MIN_RUNS_FOR_CI})")


SYSTEM = System(
    description="Co-EvoDT: every run of each forecast mode in one vmapped, jitted program, then "
                "per-run CSVs, cross-run aggregates with paired tests and bootstrap CIs, the "
                "three-mode ablation and the figures (see jaxtwin.coevodt.experiments).",
    commands={"": Command(CoEvoDTConfig, run, out="results/coevodt", batch="the runs", report=report)},
)
