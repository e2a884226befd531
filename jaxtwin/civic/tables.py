"""CIVIC evaluation tables: every policy of a scenario evaluated in one jitted program
(:func:`evaluate_policies`), tidy rows with the training seed of trained agents
(:func:`policy_rows`), and summaries whose 95% CIs are over the independent
replicate (:func:`summarize`: episodes for baselines, training seeds for agents)."""
from __future__ import annotations

import jax
import numpy as np

from jaxtwin.core import sharding
from jaxtwin.core.stats import t_ci_halfwidth
from jaxtwin.core.study import REPLICATE_MARK
from jaxtwin.civic.agents import AgentConfig, drl_policy, learner
from jaxtwin.civic.env import CivicEnv, EnvParams
from jaxtwin.civic.evaluate import METRIC_NAMES, make_evaluator


def evaluate_policies(env: CivicEnv, params: EnvParams, named_policies: dict, n_episodes: int,
                      key: jax.Array, *, devices: int = 1) -> list[dict]:
    """Rows (policy x seed) of per-episode metrics, all policies in one jitted program.

    ``devices`` (see :func:`jaxtwin.core.sharding.sharded_call`) spreads the
    seeds over devices; the rows do not depend on it.
    """
    names = list(named_policies)
    ev = sharding.sharded_call(make_evaluator(env, [named_policies[n] for n in names]), devices,
                               in_axes=(0, None), out_axes=1)  # metrics [policy, seed]
    return policy_rows(names, ev(jax.random.split(key, n_episodes), params))


def policy_rows(names: list[str], metrics: dict) -> list[dict]:
    """Tidy rows (policy, train_seed, seed, metrics) of evaluator output ``[policy, seed]``;
    ``"DRL#2"`` becomes policy DRL, train_seed 2 (baselines: train_seed empty)."""
    m = jax.tree.map(np.asarray, metrics)
    rows = []
    for i, name in enumerate(names):
        policy, _, train_seed = name.partition(SEED_MARK)
        for s in range(m[METRIC_NAMES[0]].shape[1]):
            rows.append({"policy": policy, "train_seed": int(train_seed) if train_seed else "", "seed": s,
                         **{k: float(m[k][i, s]) for k in METRIC_NAMES}})
    return rows


SEED_MARK = REPLICATE_MARK
"""``"DRL#2"`` in a policy dict: the DRL agent of training seed 2 (rows: policy DRL, train_seed 2);
the study engine's mark, so both split trained policies' names the same way."""


def drl_policies(name: str, env: CivicEnv, params: EnvParams, agent: AgentConfig, nets,
                 *, trained_env: CivicEnv | None = None) -> dict:
    """``{"<name>#<s>": policy}`` for each learner ``s`` of a stack from :func:`train_agents`."""
    n = int(jax.tree.leaves(nets)[0].shape[0])
    return {f"{name}{SEED_MARK}{s}": drl_policy(env, params, agent, learner(nets, s), trained_env=trained_env)
            for s in range(n)}


def summarize(rows: list[dict], keys: tuple[str, ...], metrics=METRIC_NAMES) -> list[dict]:
    """Mean and std of each metric per group of ``keys``."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for g, rs in groups.items():
        row = dict(zip(keys, g))
        row["n"] = len(rs)
        trainings = sorted({r["train_seed"] for r in rs if r.get("train_seed", "") != ""})
        row["n_train_seeds"] = len(trainings)
        for m in metrics:
            vals = np.asarray([r[m] for r in rs], np.float64)
            row[f"{m}_mean"] = float(vals.mean())
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
            # the CI's unit is the independent replicate: a training seed (its episodes' mean)
            # for trained agents, an episode for baselines
            units = ([np.mean([r[m] for r in rs if r["train_seed"] == s]) for s in trainings]
                     if trainings else vals)
            row[f"{m}_ci95"] = t_ci_halfwidth(units)
        out.append(row)
    return out




SLA_BASELINES = ("Myopic-Optimal", "Myopic-GCP")
"""Baselines that read each Head's SLA accuracy, which the agent observes only with ``observe_sla``."""


def agent_verdicts(summary: list[dict], keys: tuple[str, ...], agent: str = "DRL-GCP") -> list[dict]:
    """Per scenario (``keys``): ``agent``'s mean episode return (its own objective) with its
    95% CI beside the best baseline's, ``under_trained`` when a baseline earns more, and
    whether that baseline reads the SLA accuracies (:data:`SLA_BASELINES`)."""
    scenarios: dict[tuple, dict[str, dict]] = {}
    for r in summary:
        scenarios.setdefault(tuple(r[k] for k in keys), {})[r["policy"]] = r
    out = []
    for g, by in scenarios.items():
        if agent not in by:
            continue
        base = {p: r for p, r in by.items() if not p.startswith("DRL")}
        best = max(base, key=lambda p: base[p]["episode_return_mean"])
        mine = by[agent]
        out.append({**dict(zip(keys, g)), "agent": agent, "n_train_seeds": mine["n_train_seeds"],
                    "return_mean": mine["episode_return_mean"], "return_ci95": mine["episode_return_ci95"],
                    "best_baseline": best, "best_baseline_return": base[best]["episode_return_mean"],
                    "best_baseline_reads_sla": best in SLA_BASELINES,
                    "under_trained": mine["episode_return_mean"] < base[best]["episode_return_mean"]})
    return out
