"""``jaxtwin syncgame {trajectories,ess,sensitivity,compare,all} --out DIR [options]``:
the sync-game experiments, one step of :data:`~jaxtwin.syncgame.experiments.STEPS`
or all of them (every option a field of
:class:`~jaxtwin.syncgame.experiments.SyncGameConfig`)."""
from __future__ import annotations

import json
from pathlib import Path

from jaxtwin.core.cli import Command, System
from jaxtwin.syncgame.experiments import STEPS, SyncGameConfig, run


def report(summary: dict, out: Path) -> None:
    """The run's summary (residuals, convergence flags, timings) as JSON, cut at 4000 characters."""
    print(json.dumps(summary, indent=1, default=str)[:4000])


SYSTEM = System(
    description="Sync game: open-loop Nash trajectories, ESS of the replicator dynamics, "
                "sensitivity studies (one vmapped solve per study) and the payoff comparison "
                "with Stackelberg (see jaxtwin.syncgame.experiments).",
    commands={"": Command(SyncGameConfig, run, select="command",
                          choices={**STEPS, "all": "every step above, in this order"},
                          batch="the grid points of each sensitivity study", report=report)},
)
