"""Memory CIVIC's programs allocate, estimated from the config, so that a run too
large for the machine is refused before anything compiles (:func:`require_command_fits`,
through :func:`jaxtwin.core.memory.require_all_fit`).

Two kinds of program dominate, and the estimates follow what XLA holds at their
peak (checked against ``jit(...).lower(...).compile().memory_analysis()``, temp
plus argument and output bytes, float32, CPU, 2 and 5 MSPs, up to 16384
transitions and 4096 episodes: every estimate 1.00 to 1.25 times XLA's;
``tests/civic/test_sizes.py`` checks two of them):

* PPO training (:func:`jaxtwin.learn.ppo.make_train_chunks`' update): the rollout's
  ``num_envs x num_steps`` transitions. The critic evaluated on every transition's
  final observation holds its hidden activations (``2 x 128`` floats per
  transition), and the trajectory, the flattened batch and its shuffled copy hold
  the observations and actions: about ``4 (sum(hidden) + 2 (obs + act) + 16)``
  bytes per transition (measured 1130 B at 11 + 8 entries, 1220 B at 23 + 20;
  the estimate is 10-20% above), plus the runner state (parameters and Adam
  moments of the two 128 x 128 MLPs) in and out.
* Evaluation (:func:`jaxtwin.civic.evaluate.policy_metrics`): one lane per
  evaluation episode (``lax.map`` runs the policies one at a time). Every lane
  draws its clients by inverting a 40-term Poisson CDF per Head (about 350 B per
  Head); Myopic-Optimal and Myopic-GCP enumerate the whole ``B x f x beta`` grid
  (21 x 61 x 15 points) per Head, holding immersion, cost and a validity mask
  per point: 9 bytes per point per Head per lane, the term that grows fastest.

Both also size the budgets at reset with one grid search over the Heads (not
per lane). The horizon does not enter: episodes are scans whose per-step
outputs are reduced, not stored. Evaluation episodes are spread over
``--devices`` (:func:`jaxtwin.core.memory.lanes_per_device`); PPO runs on one device.
"""
from __future__ import annotations

import math

from jaxtwin.core.memory import F32, Need, lanes_per_device, require_all_fit
from jaxtwin.civic import model as cm
from jaxtwin.civic.env import CivicEnv

POISSON_LANE = 4 * (2 * 40 + 8)   # bytes per Head per lane: two 40-term CDFs and the draws
GRID_POINT = 9                    # bytes per grid point per Head: immersion, cost (f32), mask (bool)
GRID_POLICIES = ("Myopic-Optimal", "Myopic-GCP")
AGENT_HIDDEN = 2 * 128            # the agents' two hidden layers (AgentConfig.ppo)
METRICS_PER_EPISODE = 16 * F32    # evaluate.METRIC_NAMES


def _grid_points() -> int:
    return math.prod(cm.grid_sizes(cm.default_room_table()))


def _budget_search(n_heads: int) -> float:
    """The grid search that sizes the budgets at reset (once per call, not per lane)."""
    return GRID_POINT * n_heads * _grid_points()


def ppo_bytes(n_msps: int, heads_per_msp: int, cooperative: bool, agent, observe_sla: bool = False) -> float:
    """Peak bytes of one PPO update of ``agent`` (an :class:`~jaxtwin.civic.agents.AgentConfig`)
    on a scenario of that shape."""
    env = CivicEnv(n_msps, heads_per_msp, 1, cooperative=cooperative, observe_sla=observe_sla)
    per_transition = F32 * (AGENT_HIDDEN + 2 * (env.obs_size + env.action_size) + 16)
    per_env = POISSON_LANE * env.n_heads
    h, obs, act = AGENT_HIDDEN // 2, env.obs_size, env.action_size
    n_params = 2 * (obs * h + h * h + 2 * h) + (h + 1) * act + act + h + 1   # actor + critic MLPs
    runner = 2 * 3 * F32 * n_params   # parameters and Adam moments, in and out of the update
    return (agent.num_envs * agent.num_steps * per_transition + agent.num_envs * per_env
            + _budget_search(env.n_heads) + runner)


def evaluation_bytes(n_heads: int, policies, n_episodes: int, devices: int) -> float:
    """Peak bytes of :func:`~jaxtwin.civic.evaluate.make_evaluator` over ``n_episodes`` seeds
    of the named ``policies`` (DRL included), spread over ``devices``."""
    lanes = lanes_per_device(n_episodes, devices)
    grid = any(p in GRID_POLICIES for p in policies)
    per_lane = n_heads * (POISSON_LANE + (GRID_POINT * _grid_points() if grid else 0))
    per_lane += F32 * AGENT_HIDDEN * any(p.startswith("DRL") for p in policies)
    return lanes * (per_lane + METRICS_PER_EPISODE * len(policies)) + _budget_search(n_heads)


def _scenarios(cfg, command: str) -> list[tuple[int, bool, tuple[str, ...]]]:
    """``(n_msps, cooperative, evaluated policies)`` of every scenario ``command`` runs."""
    from jaxtwin.civic import experiments as ex

    if command == "coop":
        return [(m, c, ex.COOP_POLICIES) for m in cfg.msps for c in (True, False)]
    if command == "noncoop":
        return [(m, False, ex.NONCOOP_POLICIES) for m in cfg.noncoop_msps]
    if command == "tolerance":
        return [(cfg.n_msps, False, ("Saving", "Average", "Max", "Myopic-Optimal", "DRL"))]
    if command == "withdraw":
        return [(cfg.n_msps, True, (*ex.GCP_BASELINES, "DRL-GCP"))]
    if command == "adapt":
        return [(cfg.n_msps, True, ("DRL-GCP",))]
    names = ("Random", "Saving", "Average", "Max") + (ex.GCP_BASELINES if cfg.cooperative else ("Myopic-Optimal",))
    return [(cfg.n_msps, cfg.cooperative, (*names, "DRL"))]   # train, evaluate


def _name(command: str) -> str:
    return command if command in ("train", "evaluate") else f"experiment {command}"


def command_needs(cfg, command: str) -> list[Need]:
    """The PPO update and the evaluation of the largest scenario of ``command`` (``train``,
    ``evaluate`` or an experiment name) under ``cfg``, a :class:`~jaxtwin.civic.experiments.CivicConfig`."""
    scenarios = _scenarios(cfg, command)
    needs = []
    if command != "evaluate":
        # the learners of one vmapped program: training seeds (x horizons or N_m, padded)
        points = {"coop": len(cfg.horizons), "noncoop": len(cfg.noncoop_requests)}.get(command, 1)
        learners = cfg.train_seeds * points
        ppo = learners * max(ppo_bytes(m, cfg.heads_per_msp, c, cfg.agent, cfg.observe_sla) for m, c, _ in scenarios)
        needs.append(Need(ppo, f"civic {_name(command)}: one PPO update of {learners} vmapped learners "
                               f"({cfg.agent.num_envs} environments x {cfg.agent.num_steps} steps each)",
                          "--agent.num-envs, --agent.num-steps or --train-seeds"))
    if command != "train":
        # each training seed's agent is its own policy in the evaluation
        ev = max(evaluation_bytes(m * cfg.heads_per_msp,
                                  [q for q in p for _ in range(cfg.train_seeds if q.startswith("DRL") else 1)],
                                  cfg.eval_episodes, cfg.devices) for m, _, p in scenarios)
        needs.append(Need(ev, f"civic {_name(command)}: the evaluation of {cfg.eval_episodes} episodes per policy",
                          "--eval-episodes"))
    return needs


def require_command_fits(cfg, command: str) -> None:
    """Refuse ``command`` under ``cfg`` when one of its programs cannot fit (``ConfigError``)."""
    require_all_fit(command_needs(cfg, command))


__all__ = ["command_needs", "evaluation_bytes", "ppo_bytes", "require_command_fits"]
