"""``jaxtwin syncgame {trajectories,ess,sensitivity,compare,all} --out DIR [options]``:
the sync-game experiments, one step of :data:`~jaxtwin.syncgame.experiments.STEPS`
or all of them (every option a field of
:class:`~jaxtwin.syncgame.experiments.SyncGameConfig`)."""
from __future__ import annotations

from pathlib import Path

from jaxtwin.core.artifacts import read_csv
from jaxtwin.core.cli import Command, System
from jaxtwin.core.report import print_table
from jaxtwin.syncgame.experiments import STEPS, SyncGameConfig, run


def _solves(summary: dict) -> list[dict]:
    """One row per solve in the summary: its residual, convergence and time."""
    rows = []
    for name, entry in summary.items():
        if not isinstance(entry, dict):
            continue
        if name == "sensitivity":
            rows += [{"solve": f"sensitivity {study}", "residual": e.get("max_residual"),
                      "converged": e.get("all_converged"), "seconds": e.get("seconds")}
                     for study, e in entry.items()]
        elif name == "compare":
            rows += [{"solve": f"compare {scheme}", "residual": entry.get(f"{scheme}_residual"),
                      "converged": entry.get(f"{scheme}_converged", True),
                      "seconds": entry.get(f"{scheme}_seconds", entry.get("seconds"))}
                     for scheme in ("nash", "stackelberg", "static")]
        elif "residual" in entry or "max_final_distance" in entry:
            rows.append({"solve": name, "residual": entry.get("residual", entry.get("max_final_distance")),
                         "converged": entry.get("converged", True), "seconds": entry.get("seconds")})
    return rows


def report(summary: dict, out: Path) -> None:
    """The solves (residual, converged, seconds) and the findings table; the detail is in
    ``summary.json`` and the CSVs (unconverged solves were warned about as they happened)."""
    solves = _solves(summary)
    print_table(solves, ["solve", "residual", "converged", "seconds"], title="Sync game: solves")
    findings = out / "findings.csv"
    if findings.exists():
        rows = read_csv(findings)
        held = sum(r["reproduced"] == "True" for r in rows)
        print_table(rows, ["finding", "reproduced"],
                    title=f"\nFindings ({held} of {len(rows)} reproduced; evidence in findings.csv)")


SYSTEM = System(
    description="Sync game: open-loop Nash trajectories, ESS of the replicator dynamics, "
                "sensitivity studies (one vmapped solve per study) and the payoff comparison "
                "with Stackelberg (see jaxtwin.syncgame.experiments).",
    commands={"": Command(SyncGameConfig, run, select="command",
                          choices={**STEPS, "all": "every step above, in this order"},
                          batch="the grid points of each sensitivity study", report=report)},
)
