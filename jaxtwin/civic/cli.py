"""``jaxtwin civic {experiment,train,evaluate} ...``: CIVIC's commands (every
option a field of :class:`~jaxtwin.civic.experiments.CivicConfig`); the
experiments are the entries of :data:`~jaxtwin.civic.experiments.EXPERIMENTS`."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxtwin.core.cli import Command, System
from jaxtwin.core.report import grouped_ci_table, mean_pm_ci
from jaxtwin.civic.experiments import EXPERIMENTS, CivicConfig, run, run_evaluate, run_train


HEADLINE = ("completion_pct", "fulfillment_requests_pct", "served_clients", "episode_return")


def report_training(metrics: dict, out: Path) -> None:
    """The last update's mean episode return (mean ± 95% CI over the trained seeds) and the
    environment steps each learner took."""
    returns = np.atleast_2d(np.asarray(metrics.get("mean_return", []), np.float64))
    if returns.size:
        steps = int(np.atleast_2d(metrics["env_steps"])[0, -1])
        print(f"PPO ({returns.shape[0]} training seed(s)): mean episode return "
              f"{mean_pm_ci(returns[:, -1])} after {steps} environment steps each")


def report_results(rows: list[dict], out: Path) -> None:
    """Per scenario and policy: completion, fulfilled share of requests, served clients and the
    episode return, each as mean ± 95% CI over the evaluation episodes."""
    if not rows or "policy" not in rows[0] or not all(m in rows[0] for m in HEADLINE):
        print(f"{len(rows)} rows: see the CSVs in {out}")
        return
    keys = [k for k in ("n_msps", "horizon", "requests_per_head", "mode", "trial", "ratio") if k in rows[0]] + ["policy"]
    grouped_ci_table(rows, keys, HEADLINE, title="CIVIC: evaluation over the episodes", replicate="train_seed")


SYSTEM = System(
    description="CIVIC: immersion-aware allocation with a shared credit pool (PPO agents and "
                "baselines; see jaxtwin.civic.experiments).",
    commands={
        "experiment": Command(CivicConfig, run, help="run one of the spec's experiments",
                              select="experiment", choices=EXPERIMENTS, batch="the evaluation episodes",
                              report=report_results),
        "train": Command(CivicConfig, run_train, help="train PPO on one scenario (checkpoint + resume)",
                         exclude=("experiment",), batch="the evaluation episodes", report=report_training),
        "evaluate": Command(CivicConfig, run_evaluate, exclude=("experiment",), batch="the evaluation episodes",
                            help="evaluate the agent trained in --out against the baselines "
                                 "(loads it; run `train` first)", report=report_results),
    },
)
