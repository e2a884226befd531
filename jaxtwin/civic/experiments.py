"""CIVIC experiments (spec §7), PPO training with checkpoints, evaluation, CLI.

Commands (``jaxtwin civic <command> --help``):

* ``experiment noncoop|tolerance|coop|adapt|withdraw --out DIR`` — the spec's
  five experiments; each writes ``results.csv`` (tidy: one row per policy x
  scenario x seed with the metric columns of
  :data:`jaxtwin.civic.evaluate.METRIC_NAMES`), summary CSVs, PNG
  figures and ``config.json``.
* ``train --out DIR`` — PPO on one scenario, checkpointed after every chunk
  (rerun resumes), writes ``train_metrics.csv`` and ``checkpoint.msgpack``.
* ``evaluate --out DIR`` — the trained agent of ``DIR`` against the baselines.

Trained agents are cached per scenario under ``DIR/agents/<name>/`` so a rerun
skips finished training; ``--overwrite`` redoes everything.

``--devices N`` spreads the evaluation episodes (the vmapped seed batch of
every evaluation, :mod:`jaxtwin.core.sharding`) over N devices (0: all),
with results identical to one device. PPO training is one learner whose
gradient averages over its environments, not a batch of independent work, so
it stays on one device.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.core import artifacts, sharding
from jaxtwin.core.config import (ConfigError, add_dataclass_arguments, config_from_args,
                                 require_choice, require_int, require_positive, require_range)
from jaxtwin.civic.env import CivicEnv, EnvParams
from jaxtwin.learn import ppo
from jaxtwin.civic.baselines import from_actor, make_baseline
from jaxtwin.civic.evaluate import METRIC_NAMES, episode_metrics, make_evaluator, run_episode

EXPERIMENTS = ("noncoop", "tolerance", "coop", "adapt", "withdraw")
COOP_POLICIES = ("Average", "Max", "Random", "DRL", "Avg-GCP", "Max-GCP", "Random-GCP", "DRL-GCP")
NONCOOP_POLICIES = ("Saving", "Average", "Max", "Myopic-Optimal", "DRL")


# ------------------------------------------------------------------ configs
@dataclass(frozen=True)
class AgentConfig:
    """PPO budget and hyperparameters of a CIVIC agent (spec §6 defaults; small budget)."""

    total_timesteps: int = field(default=1_048_576, metadata={"help": "environment steps per training run"})
    num_envs: int = field(default=32, metadata={"help": "parallel environments"})
    num_steps: int = field(default=64, metadata={"help": "rollout length per update"})
    update_epochs: int = field(default=4, metadata={"help": "passes over each rollout"})
    minibatch_size: int = field(default=128, metadata={"help": "transitions per gradient step"})
    lr: float = field(default=3e-4, metadata={"help": "Adam learning rate"})
    ent_coef: float = field(default=0.0, metadata={"help": "entropy bonus"})
    init_log_std: float = field(default=-0.5, metadata={"help": "initial log std of the Gaussian policy"})
    chunks: int = field(default=4, metadata={"help": "training chunks (progress ticks and checkpoints)"})

    def __post_init__(self):
        require_int(self, "total_timesteps", "num_envs", "num_steps", "update_epochs",
                    "minibatch_size", "chunks", minimum=1)
        require_positive(self, "lr")
        require_positive(self, "ent_coef", allow_zero=True)
        require_range(self, "init_log_std", -5.0, 2.0)
        self.ppo()  # validates the divisibility rules with PPOConfig's own messages

    def ppo(self) -> ppo.PPOConfig:
        """The equivalent :class:`~jaxtwin.learn.ppo.PPOConfig` (gamma 0.97, GAE 0.95, clip 0.2, 2x128)."""
        return ppo.PPOConfig(num_envs=self.num_envs, num_steps=self.num_steps,
                             total_timesteps=self.total_timesteps, update_epochs=self.update_epochs,
                             minibatch_size=self.minibatch_size, lr=self.lr, ent_coef=self.ent_coef,
                             init_log_std=self.init_log_std, hidden=(128, 128))


@dataclass(frozen=True)
class CivicConfig:
    """Options of every CIVIC command (each uses the fields it needs)."""

    experiment: Literal["noncoop", "tolerance", "coop", "adapt", "withdraw"] = field(
        default="coop", metadata={"help": "which experiment (command `experiment`)"})
    msps: tuple[int, ...] = field(default=(3, 5, 7), metadata={"help": "MSP counts (coop; noncoop uses noncoop_msps)"})
    horizons: tuple[int, ...] = field(default=(100, 150, 200), metadata={"help": "horizons T (coop)"})
    noncoop_msps: tuple[int, ...] = field(default=(1, 3, 5), metadata={"help": "MSP counts (noncoop)"})
    noncoop_requests: tuple[int, ...] = field(default=(50, 70, 90), metadata={"help": "requests per Head N_m = T (noncoop)"})
    heads_per_msp: int = field(default=1, metadata={"help": "Heads per MSP"})
    n_msps: int = field(default=3, metadata={"help": "MSPs (train/evaluate/tolerance/adapt/withdraw)"})
    horizon: int = field(default=100, metadata={"help": "horizon T (train/evaluate/adapt/withdraw)"})
    cooperative: bool = field(default=True, metadata={"help": "GCP on (train/evaluate)"})
    threshold: float = field(default=0.85, metadata={"help": "immersion threshold"})
    p_req: float = field(default=0.8, metadata={"help": "request probability (dynamic setting)"})
    budget_factor: float = field(default=0.8, metadata={"help": "budget as a fraction of the myopic-optimal cost"})
    eval_episodes: int = field(default=16, metadata={"help": "evaluation episodes (seeds) per policy and scenario"})
    tolerance_trials: int = field(default=6, metadata={"help": "trials of +10%% requests / -5%% budget"})
    ratios: tuple[float, ...] = field(default=(1.0, 1.2, 1.4, 1.6, 1.8, 2.0, math.inf),
                                      metadata={"help": "withdraw-to-insert ratios (inf: no limit)"})
    adapt_thresholds: tuple[float, ...] = field(default=(0.60, 0.67), metadata={"help": "threshold before/after the switch"})
    adapt_p_req: tuple[float, ...] = field(default=(0.8, 1.0), metadata={"help": "request probability before/after the switch"})
    seed: int = field(default=0, metadata={"help": "master seed"})
    devices: int = field(default=1, metadata={"help": sharding.DEVICES_HELP})
    agent: AgentConfig = field(default_factory=AgentConfig)

    def __post_init__(self):
        require_choice(self, "experiment", EXPERIMENTS)
        for name in ("msps", "horizons", "noncoop_msps", "noncoop_requests"):
            if not getattr(self, name):
                raise ConfigError(f"CivicConfig.{name}={getattr(self, name)!r}: must not be empty")
            require_int_tuple(self, name)
        require_int(self, "heads_per_msp", "n_msps", "horizon", "eval_episodes", "tolerance_trials", minimum=1)
        require_int(self, "seed", minimum=0)
        require_range(self, "threshold", 0.0, 1.0, lo_open=True)
        require_range(self, "p_req", 0.0, 1.0, lo_open=True)
        require_positive(self, "budget_factor")
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


# ------------------------------------------------------------------ agents
def scenario_params(env: CivicEnv, cfg: CivicConfig, **overrides) -> EnvParams:
    """Environment parameters of a scenario from the config."""
    p = env.default_params.replace(threshold=cfg.threshold, p_req=cfg.p_req,
                                     budget_factor=cfg.budget_factor)
    return p.replace(**overrides) if overrides else p


def train_agent(env: CivicEnv, params: EnvParams, agent: AgentConfig, key: jax.Array,
                ckpt_dir: Path | None = None, *, progress: bool = True, desc: str = "",
                overwrite: bool = False):
    """Train PPO in ``agent.chunks`` jitted chunks; checkpoint/resume under ``ckpt_dir``.

    Returns ``(net_params, metrics)`` with ``metrics`` a dict of per-update
    NumPy arrays (``mean_return``, ``env_steps``, ...).
    """
    cfg = agent.ppo()
    init, run_updates = ppo.make_train_chunks(cfg, env, params)
    n_updates = cfg.num_updates
    per_chunk = max(1, math.ceil(n_updates / agent.chunks))
    sizes = [min(per_chunk, n_updates - i) for i in range(0, n_updates, per_chunk)]
    runner = init(key)
    done_chunks, history = 0, []
    ckpt = metrics_path = None
    if ckpt_dir is not None:
        ckpt_dir = Path(ckpt_dir)
        ckpt, metrics_path = ckpt_dir / "checkpoint.msgpack", ckpt_dir / "train_metrics.csv"
        if not overwrite and ckpt.exists() and metrics_path.exists():
            runner = ppo.runner_state_from_bytes(ckpt.read_bytes(), runner)
            rows = artifacts.read_csv(metrics_path)
            history = [{k: float(v) for k, v in r.items()} for r in rows]
            done_chunks = int(round(float(rows[-1]["chunk"]))) + 1 if rows else 0
    from tqdm.auto import tqdm

    bar = tqdm(total=len(sizes), initial=done_chunks, desc=desc or "train", leave=False,
               disable=not progress)
    for c in range(done_chunks, len(sizes)):
        runner, m = run_updates(runner, sizes[c])
        m = jax.tree.map(np.asarray, m)
        for i in range(sizes[c]):
            history.append({"chunk": c, **{k: float(v[i]) for k, v in m.items()}})
        if ckpt is not None:
            _write_bytes_atomic(ckpt, ppo.runner_state_to_bytes(runner))
            artifacts.write_csv(metrics_path, history)
        bar.update(1)
    bar.close()
    metrics = {k: np.asarray([h[k] for h in history]) for k in (history[0] if history else {})}
    return runner.train_state.params, metrics


def _write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path`` and rename it (no half-written checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def drl_policy(env: CivicEnv, params: EnvParams, agent: AgentConfig, net_params,
               *, trained_env: CivicEnv | None = None):
    """The deterministic PPO agent as a baseline-style policy for ``env``.

    ``trained_env`` non-cooperative and ``env`` cooperative: the agent sees the
    observation without the two GCP entries and never donates (DRL in the coop table).
    """
    trained_env = trained_env or env
    act = ppo.make_policy(agent.ppo(), trained_env, params, deterministic=True)
    if trained_env.cooperative == env.cooperative:
        return from_actor(act, net_params)
    if trained_env.cooperative or not env.cooperative:
        raise ValueError("drl_policy: only a non-cooperative agent can act in a cooperative env")

    def policy(key, obs, state, p):
        a = act(net_params, key, obs[:-2])
        return jnp.concatenate([a, -jnp.ones((env.n_msps,), a.dtype)])

    return policy


def evaluate_policies(env: CivicEnv, params: EnvParams, named_policies: dict, n_episodes: int,
                      key: jax.Array, *, devices: int = 1) -> list[dict]:
    """Rows (policy x seed) of per-episode metrics, all policies in one jitted program.

    ``devices`` (see :func:`jaxtwin.core.sharding.sharded_call`) spreads the
    seeds over devices; the rows do not depend on it.
    """
    names = list(named_policies)
    ev = sharding.sharded_call(make_evaluator(env, [named_policies[n] for n in names]), devices,
                               in_axes=(0, None), out_axes=1)  # metrics [policy, seed]
    m = jax.tree.map(np.asarray, ev(jax.random.split(key, n_episodes), params))
    rows = []
    for i, name in enumerate(names):
        for s in range(n_episodes):
            rows.append({"policy": name, "seed": s, **{k: float(m[k][i, s]) for k in METRIC_NAMES}})
    return rows


# ------------------------------------------------------------------ helpers
def _summary(rows: list[dict], keys: tuple[str, ...], metrics=METRIC_NAMES) -> list[dict]:
    """Mean and std of each metric per group of ``keys``."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), []).append(r)
    out = []
    for g, rs in groups.items():
        row = dict(zip(keys, g))
        row["n"] = len(rs)
        for m in metrics:
            vals = np.asarray([r[m] for r in rs], np.float64)
            row[f"{m}_mean"] = float(vals.mean())
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
        out.append(row)
    return out


def _write_results(out: Path, cfg: CivicConfig, rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    artifacts.write_csv(out / "results.csv", rows)
    summary = _summary(rows, keys)
    artifacts.write_csv(out / "summary.csv", summary)
    artifacts.write_json(out / "config.json", {"config": cfg, "environment": artifacts.environment_info()})
    return summary


def _key(cfg: CivicConfig, *ints: int) -> jax.Array:
    key = jax.random.PRNGKey(cfg.seed)
    for i in ints:
        key = jax.random.fold_in(key, i)
    return key


def _agent(out: Path, name: str, env, params, cfg, key, progress, overwrite):
    return train_agent(env, params, cfg.agent, key, out / "agents" / name, progress=progress,
                       desc=name, overwrite=overwrite)


# ------------------------------------------------------------------ experiments
def run_coop(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.3: MSPs x horizons x the eight policies (GCP and not), dynamic requests."""
    rows, curves = [], {}
    for i, M in enumerate(cfg.msps):
        for j, T in enumerate(cfg.horizons):
            name = f"M{M}_T{T}"
            coop_env = CivicEnv(M, cfg.heads_per_msp, T, cooperative=True)
            solo_env = CivicEnv(M, cfg.heads_per_msp, T, cooperative=False)
            p_coop = scenario_params(coop_env, cfg)
            p_solo = scenario_params(solo_env, cfg, unbalanced_budgets=True)  # same budgets, no pool
            net_solo, m_solo = _agent(out, f"{name}_DRL", solo_env, p_solo, cfg, _key(cfg, 1, i, j),
                                      progress, overwrite)
            net_coop, m_coop = _agent(out, f"{name}_DRL-GCP", coop_env, p_coop, cfg, _key(cfg, 2, i, j),
                                      progress, overwrite)
            curves[name] = (m_solo, m_coop)
            policies = {n: make_baseline(n, coop_env) for n in COOP_POLICIES if not n.startswith("DRL")}
            policies["DRL"] = drl_policy(coop_env, p_solo, cfg.agent, net_solo, trained_env=solo_env)
            policies["DRL-GCP"] = drl_policy(coop_env, p_coop, cfg.agent, net_coop)
            policies = {n: policies[n] for n in COOP_POLICIES}
            for r in evaluate_policies(coop_env, p_coop, policies, cfg.eval_episodes, _key(cfg, 3, i, j),
                                       devices=cfg.devices):
                rows.append({"n_msps": M, "horizon": T, **r})
    summary = _write_results(out, cfg, rows, ("n_msps", "horizon", "policy"))
    rel = coop_relative_table(summary)
    artifacts.write_csv(out / "relative_to_random.csv", rel)
    _coop_figures(out, cfg, summary, rel, curves)
    return rows


def coop_relative_table(summary: list[dict]) -> list[dict]:
    """Per scenario and policy: metrics and their change (%) relative to Random, and
    DRL-GCP's change relative to each policy."""
    by = {(r["n_msps"], r["horizon"], r["policy"]): r for r in summary}
    out = []
    for (M, T, pol), r in by.items():
        ref = by.get((M, T, "Random"))
        drl = by.get((M, T, "DRL-GCP"))
        row = {"n_msps": M, "horizon": T, "policy": pol}
        for m in ("completion_pct", "fulfillment_served_pct", "fulfillment_requests_pct", "served_clients",
                  "total_cost", "mean_immersion", "range", "gini"):
            row[m] = r[f"{m}_mean"]
            for tag, base in (("vs_random_pct", ref), ("drlgcp_vs_this_pct", drl)):
                if base is None:
                    continue
                num, den = (r, base) if tag == "vs_random_pct" else (base, r)
                d = den[f"{m}_mean"]
                row[f"{m}_{tag}"] = 100.0 * (num[f"{m}_mean"] - d) / abs(d) if d != 0 else float("nan")
        out.append(row)
    return out


def _coop_figures(out: Path, cfg, summary, rel, curves) -> None:
    from jaxtwin.core.plotting import bar_plot, line_plot

    for T in cfg.horizons:
        cats = [f"{M} MSPs" for M in cfg.msps]
        for metric, label in (("completion_pct", "completion (%)"),
                              ("served_clients", "served clients"),
                              ("fulfillment_requests_pct", "fulfilled / requests (%)"),
                              ("total_cost", "total cost"), ("range", "range of completed per MSP")):
            groups = {}
            for pol in COOP_POLICIES:
                rs = [next(r for r in summary if r["n_msps"] == M and r["horizon"] == T and r["policy"] == pol)
                      for M in cfg.msps]
                groups[pol] = ([r[f"{metric}_mean"] for r in rs], [r[f"{metric}_std"] for r in rs])
            bar_plot(out / f"coop_{metric}_T{T}.png", cats, groups, ylabel=label, title=f"T = {T}")
    series = {}
    for name, (m_solo, m_coop) in curves.items():
        if len(m_coop.get("mean_return", [])):
            series[f"{name} DRL-GCP"] = m_coop["mean_return"]
    if series:
        n = min(len(v) for v in series.values())
        line_plot(out / "coop_training_return.png", np.arange(n), {k: v[:n] for k, v in series.items()},
                  xlabel="update", ylabel="mean episode return")


def run_noncoop(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.1: non-cooperative, MSPs x requests N_m (fixed requests, p_req = 1, T = N_m)."""
    from jaxtwin.core.plotting import bar_plot, line_plot

    rows, curves = [], {}
    for i, M in enumerate(cfg.noncoop_msps):
        for j, N in enumerate(cfg.noncoop_requests):
            env = CivicEnv(M, cfg.heads_per_msp, N, cooperative=False)
            p = scenario_params(env, cfg, p_req=1.0)
            net, m = _agent(out, f"M{M}_N{N}_DRL", env, p, cfg, _key(cfg, 11, i, j), progress, overwrite)
            curves[f"M{M}_N{N}"] = m.get("mean_return", np.zeros(0))
            pols = {n: make_baseline(n, env) for n in NONCOOP_POLICIES if n != "DRL"}
            pols["DRL"] = drl_policy(env, p, cfg.agent, net)
            for r in evaluate_policies(env, p, pols, cfg.eval_episodes, _key(cfg, 12, i, j), devices=cfg.devices):
                rows.append({"n_msps": M, "requests_per_head": N, **r})
    summary = _write_results(out, cfg, rows, ("n_msps", "requests_per_head", "policy"))
    if curves and all(len(v) for v in curves.values()):
        n = min(len(v) for v in curves.values())
        line_plot(out / "noncoop_reward_convergence.png", np.arange(n), {k: v[:n] for k, v in curves.items()},
                  xlabel="update", ylabel="mean episode return")
    for N in cfg.noncoop_requests:
        groups = {}
        for pol in NONCOOP_POLICIES:
            rs = [next(r for r in summary if r["n_msps"] == M and r["requests_per_head"] == N and r["policy"] == pol)
                  for M in cfg.noncoop_msps]
            groups[pol] = ([r["mean_immersion_mean"] for r in rs], [r["mean_immersion_std"] for r in rs])
        bar_plot(out / f"noncoop_immersion_N{N}.png", [f"{M} MSPs" for M in cfg.noncoop_msps], groups,
                 ylabel="mean immersion of served requests", title=f"N_m = {N}")
    return rows


def run_tolerance(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.2: fixed budget with requests +10% per trial; fixed requests with budget -5% per trial."""
    from jaxtwin.core.plotting import line_plot

    M, N = cfg.n_msps, cfg.noncoop_requests[0]
    base_env = CivicEnv(M, cfg.heads_per_msp, N, cooperative=False)
    base_p = scenario_params(base_env, cfg, p_req=1.0)
    net, _ = _agent(out, f"M{M}_N{N}_DRL", base_env, base_p, cfg, _key(cfg, 21), progress, overwrite)
    rows = []
    for k in range(cfg.tolerance_trials):
        scale = 1.0 + 0.1 * k
        T = int(round(N * scale))
        env = CivicEnv(M, cfg.heads_per_msp, T, cooperative=False)
        # The budget stays the one sized for N requests: scale it down by N/T.
        p = base_p.replace(budget_scale=N / T)
        pols = {n: make_baseline(n, env) for n in ("Saving", "Average", "Max", "Myopic-Optimal")}
        pols["DRL"] = drl_policy(env, p, cfg.agent, net)
        for r in evaluate_policies(env, p, pols, cfg.eval_episodes, _key(cfg, 22), devices=cfg.devices):
            rows.append({"mode": "requests", "trial": k, "load_pct": 100 * T / N, "budget_pct": 100.0, **r})
    pols = {n: make_baseline(n, base_env) for n in ("Saving", "Average", "Max", "Myopic-Optimal")}
    pols["DRL"] = drl_policy(base_env, base_p, cfg.agent, net)
    for k in range(cfg.tolerance_trials):
        p = base_p.replace(budget_factor=base_p.budget_factor * (1.0 - 0.05 * k))
        # same keys in every trial: only the budget differs between trials (common random numbers)
        for r in evaluate_policies(base_env, p, pols, cfg.eval_episodes, _key(cfg, 22), devices=cfg.devices):
            rows.append({"mode": "budget", "trial": k, "load_pct": 100.0, "budget_pct": 100 * (1 - 0.05 * k), **r})
    summary = _write_results(out, cfg, rows, ("mode", "trial", "load_pct", "budget_pct", "policy"))
    for mode, xkey in (("requests", "load_pct"), ("budget", "budget_pct")):
        for metric, label in (("mean_immersion", "mean immersion"), ("completion_pct", "served (%)")):
            series = {}
            for pol in ("Saving", "Average", "Max", "Myopic-Optimal", "DRL"):
                rs = sorted((r for r in summary if r["mode"] == mode and r["policy"] == pol), key=lambda r: r["trial"])
                series[pol] = [r[f"{metric}_mean"] for r in rs]
                xs = [r[xkey] for r in rs]
            line_plot(out / f"tolerance_{mode}_{metric}.png", xs, series,
                      xlabel="requests (% of base)" if mode == "requests" else "budget (% of base)", ylabel=label)
    return rows


def run_withdraw(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.5: withdrawal-to-insertion ratio limits; DRL-GCP trained without limit."""
    from jaxtwin.core.plotting import line_plot

    env = CivicEnv(cfg.n_msps, cfg.heads_per_msp, cfg.horizon, cooperative=True)
    p = scenario_params(env, cfg)
    net, _ = _agent(out, f"M{cfg.n_msps}_T{cfg.horizon}_DRL-GCP", env, p, cfg, _key(cfg, 31), progress, overwrite)
    pols = {n: make_baseline(n, env) for n in ("Avg-GCP", "Max-GCP", "Random-GCP")}
    pols["DRL-GCP"] = drl_policy(env, p, cfg.agent, net)
    names = list(pols)
    ev = sharding.sharded_call(make_evaluator(env, [pols[n] for n in names]), cfg.devices,
                               in_axes=(0, None), out_axes=1)  # compiled once: the ratio is a parameter
    keys = jax.random.split(_key(cfg, 32), cfg.eval_episodes)
    rows = []
    for ratio in cfg.ratios:
        m = jax.tree.map(np.asarray, ev(keys, p.replace(withdraw_ratio=float(ratio))))
        for i, name in enumerate(names):
            for s in range(cfg.eval_episodes):
                rows.append({"ratio": float(ratio), "policy": name, "seed": s,
                             **{k: float(m[k][i, s]) for k in METRIC_NAMES}})
    summary = _write_results(out, cfg, rows, ("ratio", "policy"))
    xs = [r if math.isfinite(r) else max(x for x in cfg.ratios if math.isfinite(x)) + 0.4 for r in cfg.ratios]
    for metric, label in (("served", "served requests"), ("served_clients", "served clients"),
                          ("failed_clients", "failed clients")):
        series = {n: [next(r for r in summary if r["ratio"] == float(q) and r["policy"] == n)[f"{metric}_mean"]
                      for q in cfg.ratios] for n in names}
        line_plot(out / f"withdraw_{metric}.png", xs, series,
                  xlabel="withdraw-to-insert ratio (rightmost: no limit)", ylabel=label)
    return rows


def run_adapt(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.4: train DRL-GCP at threshold/p_req (before), switch to (after) halfway;
    record training return and the deterministic policy's cost and served % per chunk."""
    from jaxtwin.core.plotting import line_plot

    path = out / "adapt_curve.csv"
    if not overwrite and path.exists():
        return artifacts.read_csv(path)
    env = CivicEnv(cfg.n_msps, cfg.heads_per_msp, cfg.horizon, cooperative=True)
    phases = [scenario_params(env, cfg, threshold=th, p_req=pr)
              for th, pr in zip(cfg.adapt_thresholds, cfg.adapt_p_req)]
    pcfg = cfg.agent.ppo()
    act = ppo.make_policy(pcfg, env, phases[0], deterministic=True)
    eval_keys = jax.random.split(_key(cfg, 42), cfg.eval_episodes)

    @jax.jit
    def evaluate_seeds(keys, net_params, params):
        pol = from_actor(act, net_params)

        def one(k):
            st, ret, _ = run_episode(env, pol, k, params)
            return episode_metrics(st, ret)
        return jax.vmap(one)(keys)

    seeds_on_devices = sharding.sharded_call(evaluate_seeds, cfg.devices, in_axes=(0, None, None))

    def evaluate(net_params, params):
        return seeds_on_devices(eval_keys, net_params, params)

    runner = None
    rows = []
    # at least 16 evaluation points per phase so the re-convergence is visible
    n_chunks = max(cfg.agent.chunks, min(16, pcfg.num_updates))
    per_chunk = max(1, math.ceil(pcfg.num_updates / n_chunks))
    update = 0
    for phase, params in enumerate(phases):
        init, run_updates = ppo.make_train_chunks(pcfg, env, params)
        if runner is None:
            runner = init(_key(cfg, 41))
        else:
            # keep the learner, restart the environments under the new regime
            fresh = init(_key(cfg, 43))
            runner = runner.replace(env_state=fresh.env_state, obs=fresh.obs)
        for _ in range(n_chunks):
            runner, m = run_updates(runner, per_chunk)
            m = jax.tree.map(np.asarray, m)
            em = jax.tree.map(lambda x: float(np.mean(x)), evaluate(runner.train_state.params, params))
            for i in range(per_chunk):
                update += 1
                rows.append({"update": update, "phase": phase, "threshold": float(params.threshold),
                             "p_req": float(params.p_req), "mean_return": float(m["mean_return"][i]),
                             "eval_total_cost": em["total_cost"], "eval_completion_pct": em["completion_pct"],
                             "eval_fulfillment_requests_pct": em["fulfillment_requests_pct"],
                             "eval_mean_immersion": em["mean_immersion"]})
    artifacts.write_csv(path, rows)
    artifacts.write_json(out / "config.json", {"config": cfg, "environment": artifacts.environment_info()})
    x = [r["update"] for r in rows]
    line_plot(out / "adapt_reward.png", x, {"DRL-GCP": [r["mean_return"] for r in rows]},
              xlabel="update (switch at the middle)", ylabel="mean episode return")
    line_plot(out / "adapt_cost.png", x, {"DRL-GCP": [r["eval_total_cost"] for r in rows]},
              xlabel="update (switch at the middle)", ylabel="total cost (deterministic policy)")
    line_plot(out / "adapt_served.png", x, {"completion %": [r["eval_completion_pct"] for r in rows],
                                             "fulfilled / requests %": [r["eval_fulfillment_requests_pct"] for r in rows]},
              xlabel="update (switch at the middle)", ylabel="%")
    return rows


RUNNERS = {"coop": run_coop, "noncoop": run_noncoop, "tolerance": run_tolerance,
           "withdraw": run_withdraw, "adapt": run_adapt}


def run(config: CivicConfig, out_dir, *, overwrite: bool = False, progress: bool = True) -> list[dict]:
    """Run ``config.experiment`` into ``out_dir`` (skips if its results exist unless ``overwrite``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    done = out / ("adapt_curve.csv" if config.experiment == "adapt" else "results.csv")
    if done.exists() and not overwrite:
        return artifacts.read_csv(done)
    return RUNNERS[config.experiment](config, out, overwrite=overwrite, progress=progress)


def run_train(cfg: CivicConfig, out_dir, *, overwrite=False, progress=True):
    """PPO on one scenario (``n_msps``, ``horizon``, ``cooperative``), checkpointed in ``out_dir``."""
    out = Path(out_dir)
    env = CivicEnv(cfg.n_msps, cfg.heads_per_msp, cfg.horizon, cooperative=cfg.cooperative)
    p = scenario_params(env, cfg)
    net, m = train_agent(env, p, cfg.agent, _key(cfg, 51), out, progress=progress, overwrite=overwrite)
    artifacts.write_json(out / "config.json", {"config": cfg, "environment": artifacts.environment_info()})
    if len(m.get("mean_return", [])):
        from jaxtwin.core.plotting import line_plot

        line_plot(out / "train_return.png", m["env_steps"], {"PPO": m["mean_return"]},
                  xlabel="environment steps", ylabel="mean episode return")
    return net, m


def run_evaluate(cfg: CivicConfig, out_dir, *, overwrite=False, progress=True) -> list[dict]:
    """The agent trained by ``train`` in ``out_dir`` against the baselines; writes ``evaluation.csv``."""
    out = Path(out_dir)
    if not (out / "checkpoint.msgpack").exists():
        raise ConfigError(f"evaluate: no checkpoint in {out}; run `jaxtwin civic train --out {out}` first")
    net, _ = run_train(cfg, out, overwrite=False, progress=progress)   # loads the finished checkpoint
    env = CivicEnv(cfg.n_msps, cfg.heads_per_msp, cfg.horizon, cooperative=cfg.cooperative)
    p = scenario_params(env, cfg)
    names = (("Random", "Saving", "Average", "Max", "Avg-GCP", "Max-GCP", "Random-GCP") if cfg.cooperative
             else ("Random", "Saving", "Average", "Max", "Myopic-Optimal"))
    pols = {n: make_baseline(n, env) for n in names}
    pols["DRL-GCP" if cfg.cooperative else "DRL"] = drl_policy(env, p, cfg.agent, net)
    rows = evaluate_policies(env, p, pols, cfg.eval_episodes, _key(cfg, 52), devices=cfg.devices)
    artifacts.write_csv(out / "evaluation.csv", rows)
    artifacts.write_csv(out / "evaluation_summary.csv", _summary(rows, ("policy",)))
    return rows


# ------------------------------------------------------------------ CLI
MULTI_DEVICE_EPILOG = (
    "Multiple devices: --devices 0 spreads the evaluation episodes over every device (--devices N: "
    "the first N local ones); results match --devices 1. On a CPU-only host, "
    "--devices N splits the CPU into N devices (0: one per core) so the work uses every core. Across hosts: set "
    "JAX_COORDINATOR_ADDRESS=host:port (of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID on "
    "every process and pass --devices 0; every process gathers the full results and writes the "
    "same artifacts (give each its own --out, or share one: writes are atomic).")


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description="CIVIC: immersion-aware allocation with a shared credit pool.",
                                     epilog=MULTI_DEVICE_EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext in (("experiment", "run one of the spec's experiments"),
                           ("train", "train PPO on one scenario (checkpoint + resume)"),
                           ("evaluate", "evaluate the agent trained in --out against the baselines")):
        sp = sub.add_parser(name, help=helptext, epilog=MULTI_DEVICE_EPILOG)
        if name == "experiment":
            sp.add_argument("which", choices=EXPERIMENTS, help="experiment to run")
        add_dataclass_arguments(sp, CivicConfig, exclude=("experiment",))
        sp.add_argument("--config", help="TOML/JSON file of options")
        sp.add_argument("--out", required=True, help="output directory")
        sp.add_argument("--overwrite", action="store_true", help="redo finished pieces")
        sp.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def cli(argv: list[str], prog: str = "jaxtwin civic") -> int:
    """``jaxtwin civic {experiment,train,evaluate} ...``; returns the exit code."""
    ns = _parser(prog).parse_args(argv)
    try:
        sharding.prepare_devices(sharding.cli_devices(ns, ns.config))  # before any JAX work
        cfg = config_from_args(CivicConfig, ns, config_file=ns.config, exclude=("experiment",))
        if ns.command == "experiment":
            cfg = replace(cfg, experiment=ns.which)
        kwargs = dict(overwrite=ns.overwrite, progress=not ns.no_progress)
        t0 = time.perf_counter()
        if ns.command == "experiment":
            run(cfg, ns.out, **kwargs)
        elif ns.command == "train":
            run_train(cfg, ns.out, **kwargs)
        else:
            run_evaluate(cfg, ns.out, **kwargs)
        print(f"{ns.command} done in {time.perf_counter() - t0:.1f} s -> {ns.out}")
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
