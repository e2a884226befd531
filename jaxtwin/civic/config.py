"""Options of every CIVIC command (:class:`CivicConfig`), the scenarios they build
(:func:`scenario_env`, :func:`scenario_params`) and the experiment names."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from jaxtwin.core import sharding
from jaxtwin.core.config import (ConfigError, require_choice, require_int, require_positive,
                                 require_range)
from jaxtwin.civic.agents import AgentConfig
from jaxtwin.civic.env import CivicEnv, EnvParams, validate_params

EXPERIMENT_NAMES = ("noncoop", "tolerance", "coop", "adapt", "withdraw")
"""The choices of ``jaxtwin civic experiment`` (spec §7)."""


# ------------------------------------------------------------------ configs
@dataclass(frozen=True)
class CivicConfig:
    """Options of every CIVIC command (each uses the fields it needs)."""

    experiment: str = field(default="coop", metadata={"help": "which experiment of EXPERIMENTS (command `experiment`)"})
    msps: tuple[int, ...] = field(default=(3, 5, 7), metadata={"help": "MSP counts (coop; noncoop uses noncoop_msps)"})
    horizons: tuple[int, ...] = field(default=(100, 150, 200), metadata={"help": "horizons T (coop)"})
    noncoop_msps: tuple[int, ...] = field(default=(1, 3, 5), metadata={"help": "MSP counts (noncoop)"})
    noncoop_requests: tuple[int, ...] = field(default=(50, 70, 90), metadata={"help": "requests per Head N_m = T (noncoop)"})
    heads_per_msp: int = field(default=1, metadata={"help": "Heads per MSP"})
    n_msps: int = field(default=3, metadata={"help": "MSPs (train/evaluate/tolerance/adapt/withdraw)"})
    horizon: int = field(default=100, metadata={"help": "horizon T (train/evaluate/adapt/withdraw)"})
    cooperative: bool = field(default=True, metadata={"help": "GCP on (train/evaluate)"})
    observe_sla: bool = field(default=False, metadata={
        "help": "the agents also observe each Head's SLA accuracy eps, which the spec's (and the seed's) "
                "observation leaves out although Myopic-Optimal and Myopic-GCP use it"})
    threshold: float = field(default=0.85, metadata={"help": "immersion threshold"})
    p_req: float = field(default=0.8, metadata={"help": "request probability (dynamic setting)"})
    budget_factor: float = field(default=0.8, metadata={"help": "budget as a fraction of the myopic-optimal cost"})
    T_ref: float | None = field(default=100.0, metadata={
        "help": "steps the dynamic-setting budget is sized for, whatever the horizon (spec v2); none: the "
                "horizon (v1: budgets grow with T). Fixed-request experiments use T_ref = N_m"})
    eval_episodes: int = field(default=16, metadata={"help": "evaluation episodes (seeds) per policy and scenario"})
    train_seeds: int = field(default=3, metadata={
        "help": "independent PPO trainings per agent, trained as one vmapped program; DRL rows carry "
                "train_seed and their 95% CIs are across these trainings (spec v2)"})
    tolerance_trials: int = field(default=6, metadata={"help": "trials of +10% requests / -5% budget"})
    ratios: tuple[float, ...] = field(default=(1.0, 1.2, 1.4, 1.6, 1.8, 2.0, math.inf),
                                      metadata={"help": "withdraw-to-insert ratios (inf: no limit)"})
    adapt_thresholds: tuple[float, ...] = field(default=(0.60, 0.67), metadata={"help": "threshold before/after the switch"})
    adapt_p_req: tuple[float, ...] = field(default=(0.8, 1.0), metadata={"help": "request probability before/after the switch"})
    seed: int = field(default=0, metadata={"help": "master seed"})
    devices: int = field(default=1, metadata={"help": sharding.DEVICES_HELP})
    agent: AgentConfig = field(default_factory=AgentConfig)

    def __post_init__(self):
        require_choice(self, "experiment", EXPERIMENT_NAMES)
        if not isinstance(self.observe_sla, bool):
            raise ConfigError(f"CivicConfig.observe_sla={self.observe_sla!r}: must be a boolean")
        for name in ("msps", "horizons", "noncoop_msps", "noncoop_requests"):
            if not getattr(self, name):
                raise ConfigError(f"CivicConfig.{name}={getattr(self, name)!r}: must not be empty")
            require_int_tuple(self, name)
        require_int(self, "heads_per_msp", "n_msps", "horizon", "eval_episodes", "tolerance_trials",
                    "train_seeds", minimum=1)
        require_int(self, "seed", minimum=0)
        require_range(self, "threshold", 0.0, 1.0, lo_open=True)
        require_range(self, "p_req", 0.0, 1.0, lo_open=True)
        require_positive(self, "budget_factor")
        if self.T_ref is not None:
            require_positive(self, "T_ref")
        for r in self.ratios:
            if not (r > 0):
                raise ConfigError(f"CivicConfig.ratios={self.ratios!r}: ratios must be > 0 (inf allowed)")
        if len(self.adapt_thresholds) != 2 or len(self.adapt_p_req) != 2:
            raise ConfigError("CivicConfig.adapt_thresholds/adapt_p_req: need exactly two values (before, after)")
        require_range(self, "adapt_thresholds", 0.0, 1.0, lo_open=True)
        require_range(self, "adapt_p_req", 0.0, 1.0, lo_open=True)
        sharding.require_devices(self, "devices")


def require_int_tuple(obj: Any, name: str) -> None:
    """Every entry of tuple field ``name`` is an int >= 1."""
    for v in getattr(obj, name):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"{type(obj).__name__}.{name}={getattr(obj, name)!r}: entries must be integers >= 1")


# ------------------------------------------------------------------ scenarios
def scenario_env(cfg: CivicConfig, n_msps: int, horizon: int, cooperative: bool) -> CivicEnv:
    """The env of a scenario: ``n_msps`` MSPs of ``cfg.heads_per_msp`` Heads, observing the SLA
    accuracies when ``cfg.observe_sla``."""
    return CivicEnv(n_msps, cfg.heads_per_msp, horizon, cooperative=cooperative, observe_sla=cfg.observe_sla)


def scenario_params(env: CivicEnv, cfg: CivicConfig, **overrides) -> EnvParams:
    """Environment parameters of a scenario from the config (validated: ``ConfigError`` names a bad field)."""
    p = env.default_params.replace(threshold=cfg.threshold, p_req=cfg.p_req, budget_factor=cfg.budget_factor,
                                   T_ref=float(env.horizon if cfg.T_ref is None else cfg.T_ref))
    return validate_params(p.replace(**overrides) if overrides else p, env)


