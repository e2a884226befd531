"""``jaxtwin civic {experiment,train,evaluate} ...``: CIVIC's commands (every
option a field of :class:`~jaxtwin.civic.experiments.CivicConfig`); the
experiments are the entries of :data:`~jaxtwin.civic.experiments.EXPERIMENTS`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxtwin.core.cli import Command, System
from jaxtwin.civic.experiments import EXPERIMENTS, CivicConfig, run, run_evaluate, run_train


def report_training(metrics: dict, out: Path) -> None:
    """The last update's mean episode return and the environment steps taken."""
    if len(metrics.get("mean_return", [])):
        print(f"PPO: mean episode return {metrics['mean_return'][-1]:.3f} after "
              f"{int(metrics['env_steps'][-1])} environment steps")


def report_evaluation(rows: list[dict], out: Path) -> None:
    """Per policy: completion, fulfilled share of requests, total cost and immersion (means over seeds)."""
    cols = ("completion_pct", "fulfillment_requests_pct", "total_cost", "mean_immersion")
    print(f"{'policy':16s}" + "".join(f"{c:>26s}" for c in cols))
    for policy in dict.fromkeys(r["policy"] for r in rows):
        mine = [r for r in rows if r["policy"] == policy]
        print(f"{policy:16s}" + "".join(f"{np.mean([r[c] for r in mine]):26.4f}" for c in cols))


SYSTEM = System(
    description="CIVIC: immersion-aware allocation with a shared credit pool (PPO agents and "
                "baselines; see jaxtwin.civic.experiments).",
    commands={
        "experiment": Command(CivicConfig, run, help="run one of the spec's experiments",
                              select="experiment", choices=EXPERIMENTS, batch="the evaluation episodes"),
        "train": Command(CivicConfig, run_train, help="train PPO on one scenario (checkpoint + resume)",
                         exclude=("experiment",), batch="the evaluation episodes", report=report_training),
        "evaluate": Command(CivicConfig, run_evaluate, exclude=("experiment",), batch="the evaluation episodes",
                            help="evaluate the agent trained in --out against the baselines "
                                 "(loads it; run `train` first)", report=report_evaluation),
    },
)
