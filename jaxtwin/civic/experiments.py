"""CIVIC experiments (spec §7): the five experiments of
:data:`EXPERIMENTS` and the ``train``/``evaluate`` commands, each a
``run(config, out_dir, *, overwrite, progress)`` (CLI: :mod:`jaxtwin.civic.cli`; the
config: :mod:`jaxtwin.civic.config`).

* :func:`run` (``jaxtwin civic experiment noncoop|tolerance|coop|adapt|withdraw``)
  — ``config.experiment`` into ``out_dir``: ``results.csv`` (tidy: one row per
  policy x scenario x seed with the metric columns of
  :data:`jaxtwin.civic.evaluate.METRIC_NAMES`), summary CSVs, PNG figures and
  ``config.json``.
* :func:`run_train` (``jaxtwin civic train``) — PPO on one scenario,
  ``train_seeds`` learners trained vmapped, checkpointed after every chunk (rerun resumes;
  :func:`jaxtwin.civic.agents.train_agents`).
* :func:`run_evaluate` (``jaxtwin civic evaluate``) — the finished agent of
  ``out_dir`` (:func:`jaxtwin.civic.agents.load_agent`; never trains) against the
  baselines: ``evaluation.csv``, ``evaluation_summary.csv``, ``evaluation_config.json``.

coop and noncoop are declared studies (:func:`coop_study`, :func:`noncoop_study`) run by
the study engine into ``DIR/studies/<name>/``, their trainings checkpointed under its
``work/``; tolerance and withdraw train one agent under ``DIR/agents/<name>/`` and evaluate
it in studies. A rerun skips finished work and resumes an interrupted training;
``--overwrite`` redoes everything.

``--devices N`` spreads the evaluation episodes (the vmapped seed batch of
every evaluation, :mod:`jaxtwin.core.sharding`) over N devices (0: all),
with results identical to one device. PPO training is one learner whose
gradient averages over its environments, not a batch of independent work, so
it stays on one device.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import numpy as np

from jaxtwin.core import artifacts, engine, provenance, report, sharding
from jaxtwin.core.config import ConfigError, record_config
from jaxtwin.civic import figures
from jaxtwin.civic.agents import (FINISHED, AgentConfig, load_agent, saved_agent_record, train_agents,
                                  train_through_phases)
from jaxtwin.civic.config import (EXPERIMENT_NAMES, CivicConfig, scenario_env,
                                  scenario_params)
from jaxtwin.civic.env import CivicEnv, EnvParams
from jaxtwin.learn import ppo
from jaxtwin.civic.baselines import from_actor, make_baseline
from jaxtwin.civic.evaluate import METRIC_NAMES, episode_metrics, run_episode
from jaxtwin.civic.sweep import ADAPTER, agent_fixed, agent_folder, scenario_fixed, training_curves
from jaxtwin.core.study import Study
from jaxtwin.civic.tables import agent_verdicts, drl_policies, evaluate_policies, summarize
from jaxtwin.civic.sizes import require_command_fits

COOP_POLICIES = ("Average", "Max", "Random", "DRL", "Avg-GCP", "Max-GCP", "Random-GCP", "Myopic-GCP", "DRL-GCP")
GCP_BASELINES = ("Avg-GCP", "Max-GCP", "Random-GCP", "Myopic-GCP")
NONCOOP_POLICIES = ("Saving", "Average", "Max", "Myopic-Optimal", "DRL")


# ------------------------------------------------------------------ helpers
def _write_results(out: Path, rows: list[dict], keys: tuple[str, ...]) -> list[dict]:
    artifacts.write_csv(out / "results.csv", rows)
    summary = summarize(rows, keys)
    artifacts.write_csv(out / "summary.csv", summary)
    return summary


def _key(cfg: CivicConfig, *ints: int) -> jax.Array:
    key = jax.random.PRNGKey(cfg.seed)
    for i in ints:
        key = jax.random.fold_in(key, i)
    return key


def _agent(out: Path, name: str, env, params, cfg, key, progress, overwrite):
    """``cfg.train_seeds`` learners of one scenario, trained vmapped (cached under agents/<name>)."""
    return train_agents(env, params, cfg.agent, jax.random.split(key, cfg.train_seeds), out / "agents" / name,
                        progress=progress, desc=name, overwrite=overwrite)


# ------------------------------------------------------------------ experiments
def run_coop(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.3: MSPs x horizons x the nine policies (GCP and not), dynamic requests.

    A declared study (:func:`coop_study`) run by the engine into ``studies/coop/``: per MSP
    count one shape group padded to the longest horizon (``EnvParams.episode_steps`` masks
    the shorter ones), in which DRL-GCP and DRL (trained without the pool, on the same
    budgets, then playing in the pooled env) are each one vmapped training of horizons x
    ``train_seeds`` learners: two PPO programs per MSP count.
    """
    study = coop_study(cfg)
    folder = out / "studies" / "coop"
    rows, _ = engine.run(study, ADAPTER, folder, overwrite=overwrite, progress=progress)
    table = [{"n_msps": int(r["n_msps"]), "horizon": int(r["horizon"]), **_policy_row(r)} for r in rows]
    summary = _write_results(out, table, ("n_msps", "horizon", "policy"))
    rel = coop_relative_table(summary)
    artifacts.write_csv(out / "relative_to_random.csv", rel)
    verdicts = agent_verdicts(summary, ("n_msps", "horizon"))
    artifacts.write_csv(out / "agent_vs_baselines.csv", verdicts)
    short = [v for v in verdicts if v["under_trained"]]
    if short:
        informed = "" if cfg.observe_sla else (
            "; Myopic-GCP reads each Head's SLA accuracy, which the agent observes only with --observe-sla")
        report.warn(f"DRL-GCP is under-trained in {len(short)} of {len(verdicts)} scenarios: a baseline earns "
                    f"a higher episode return on its own objective (see {out / 'agent_vs_baselines.csv'})"
                    + informed)
    pooled = scenario_env(cfg, cfg.msps[0], cfg.horizons[0], True)
    drl, gcp = ({(pt["n_msps"], pt["horizon"]): m
                 for pt, m in training_curves(study, folder, agent_folder(pooled, n))} for n in ("DRL", "DRL-GCP"))
    curves = {f"M{M}_T{T}": (drl[M, T], gcp[M, T]) for M, T in gcp}
    figures.coop(out, cfg, summary, curves, COOP_POLICIES)
    return table


def coop_study(cfg: CivicConfig) -> Study:
    """The coop experiment's declaration: ``msps`` x ``horizons``, pooled, the config's scenario
    (every budget sized for ``T_ref`` steps; with ``T_ref`` none, v1, ``T_ref`` is zipped with
    the horizon so budgets grow with it) and agent, ``COOP_POLICIES`` over ``eval_episodes`` seeds."""
    env = scenario_env(cfg, cfg.msps[0], cfg.horizons[0], True)
    axes, zipped = [("n_msps", tuple(cfg.msps)), ("horizon", tuple(cfg.horizons))], ()
    if cfg.T_ref is None:
        axes.append(("T_ref", tuple(float(T) for T in cfg.horizons)))
        zipped = (("horizon", "T_ref"),)
    shape = {name for name, _ in axes}
    fixed = tuple((k, v) for k, v in scenario_fixed(env, scenario_params(env, cfg)) if k not in shape)
    return Study("civic", tuple(axes), zipped=zipped, fixed=fixed + agent_fixed(cfg.agent, cfg.train_seeds),
                 policies=COOP_POLICIES, seeds=cfg.eval_episodes, seed=cfg.seed, devices=cfg.devices)


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


def run_noncoop(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.1: non-cooperative, MSPs x requests N_m (fixed requests, p_req = 1, T = N_m).

    A declared study (:func:`noncoop_study`) run by the engine into ``studies/noncoop/``: per
    MSP count one shape group padded to the largest N_m, whose ``noncoop_requests`` x
    ``train_seeds`` DRL learners train as one vmapped program (checkpointed under its
    ``work/``) and play the baselines' episodes (common random numbers).
    """
    study = noncoop_study(cfg)
    folder = out / "studies" / "noncoop"
    rows, _ = engine.run(study, ADAPTER, folder, overwrite=overwrite, progress=progress)
    table = [{"n_msps": int(r["n_msps"]), "requests_per_head": int(r["horizon"]), **_policy_row(r)} for r in rows]
    summary = _write_results(out, table, ("n_msps", "requests_per_head", "policy"))
    curves = {f"M{pt['n_msps']}_N{pt['horizon']}": m["mean_return"] for pt, m in training_curves(study, folder)}
    figures.noncoop(out, cfg, summary, curves, NONCOOP_POLICIES)
    return table


def noncoop_study(cfg: CivicConfig) -> Study:
    """The noncoop experiment's declaration: ``n_msps`` x (``horizon`` = ``T_ref`` = N_m, zipped:
    fixed requests, each budget sized for its own N_m), non-cooperative, ``p_req`` = 1, the
    config's scenario and agent, ``NONCOOP_POLICIES`` over ``eval_episodes`` seeds."""
    requests = tuple(cfg.noncoop_requests)
    env = scenario_env(cfg, cfg.noncoop_msps[0], requests[0], False)
    base = scenario_params(env, cfg, p_req=1.0)
    fixed = tuple((k, v) for k, v in scenario_fixed(env, base) if k not in ("n_msps", "horizon", "T_ref"))
    return Study("civic", (("n_msps", tuple(cfg.noncoop_msps)), ("horizon", requests),
                           ("T_ref", tuple(float(n) for n in requests))),
                 zipped=(("horizon", "T_ref"),), fixed=fixed + agent_fixed(cfg.agent, cfg.train_seeds),
                 policies=NONCOOP_POLICIES, seeds=cfg.eval_episodes, seed=cfg.seed, devices=cfg.devices)


def run_tolerance(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.2: fixed budget with requests +10% per trial; fixed requests with budget -5% per trial.

    One DRL agent trained at the base scenario (N_m requests, budget sized for them), then two
    studies of it and the baselines on the engine (``studies/requests``: the horizon grows, the
    budget stays; ``studies/budget``), on the same episode keys (common random numbers)."""
    M, N = cfg.n_msps, cfg.noncoop_requests[0]
    base_env = scenario_env(cfg, M, N, False)
    base_p = scenario_params(base_env, cfg, p_req=1.0, T_ref=float(N))   # fixed requests: T_ref = N_m
    name = f"M{M}_N{N}_DRL"
    _agent(out, name, base_env, base_p, cfg, _key(cfg, 21), progress, overwrite)
    trials = range(cfg.tolerance_trials)
    horizons = tuple(int(round(N * (1.0 + 0.1 * k))) for k in trials)
    budgets = tuple(float(base_p.budget_factor) * (1.0 - 0.05 * k) for k in trials)
    rows = []
    for mode, axis in (("requests", ("horizon", horizons)), ("budget", ("budget_factor", budgets))):
        for r in _agent_study(cfg, out, mode, base_env, base_p, name, axis, NONCOOP_POLICIES,
                              overwrite=overwrite, progress=progress):
            k = int(r["point"])
            load, budget = (100 * horizons[k] / N, 100.0) if mode == "requests" else (100.0, 100 * (1 - 0.05 * k))
            rows.append({"mode": mode, "trial": k, "load_pct": load, "budget_pct": budget, **_policy_row(r)})
    summary = _write_results(out, rows, ("mode", "trial", "load_pct", "budget_pct", "policy"))
    figures.tolerance(out, summary, NONCOOP_POLICIES)
    return rows


def _agent_study(cfg: CivicConfig, out: Path, name: str, env: CivicEnv, params: EnvParams, agent: str,
                 axis: tuple[str, tuple], policies: tuple[str, ...], *, overwrite: bool, progress: bool):
    """The saved agent ``agents/<agent>`` and ``policies`` over one ``axis`` of the scenario
    ``(env, params)``: a declared study run by the engine into ``studies/<name>/`` (its own
    results, summary, plots and ``study.toml``); the episodes are ``cfg.eval_episodes`` keys of
    ``cfg.seed``. Returns the engine's rows."""
    fixed = tuple((k, v) for k, v in scenario_fixed(env, params, agent_dir=str(out / "agents" / agent))
                  if k != axis[0])
    study = Study("civic", (axis,), fixed=fixed, policies=policies, seeds=cfg.eval_episodes, seed=cfg.seed,
                  devices=cfg.devices)
    rows, _ = engine.run(study, ADAPTER, out / "studies" / name, overwrite=overwrite, progress=progress)
    return rows


def _policy_row(row: dict) -> dict:
    """An engine row as the experiments' tables have it: policy, train_seed, seed, metrics."""
    train_seed = row.get("train_seed", "")
    train_seed = int(train_seed) if train_seed not in ("", None) and np.isfinite(train_seed) else ""
    return {"policy": row["policy"], "train_seed": train_seed, "seed": int(row["seed"]),
            **{m: float(row[m]) for m in METRIC_NAMES}}


def run_withdraw(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.5: withdrawal-to-insertion ratio limits; DRL-GCP trained without limit, then it
    and the GCP baselines over the ratios: a study on the engine (``studies/withdraw``)."""
    env = scenario_env(cfg, cfg.n_msps, cfg.horizon, True)
    p = scenario_params(env, cfg)
    name = f"M{cfg.n_msps}_T{cfg.horizon}_DRL-GCP"
    _agent(out, name, env, p, cfg, _key(cfg, 31), progress, overwrite)
    rows = [{"ratio": float(r["withdraw_ratio"]), **_policy_row(r)}
            for r in _agent_study(cfg, out, "withdraw", env, p, name, ("withdraw_ratio", tuple(cfg.ratios)),
                                  (*GCP_BASELINES, "DRL-GCP"), overwrite=overwrite, progress=progress)]
    summary = _write_results(out, rows, ("ratio", "policy"))
    figures.withdraw(out, cfg.ratios, summary, list(dict.fromkeys(r["policy"] for r in rows)))
    return rows


def run_adapt(cfg: CivicConfig, out: Path, *, overwrite=False, progress=True) -> list[dict]:
    """Spec §7.4: train DRL-GCP at threshold/p_req (before), switch to (after) halfway;
    record training return and the deterministic policy's cost and served % per chunk."""
    path = out / "adapt_curve.csv"
    if not overwrite and path.exists():
        return artifacts.read_csv(path)
    env = scenario_env(cfg, cfg.n_msps, cfg.horizon, True)
    phases = [scenario_params(env, cfg, threshold=th, p_req=pr)
              for th, pr in zip(cfg.adapt_thresholds, cfg.adapt_p_req)]
    act = ppo.make_policy(cfg.agent.ppo(), env, phases[0], deterministic=True)
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
        em = jax.tree.map(lambda x: float(np.mean(x)), seeds_on_devices(eval_keys, net_params, params))
        return {f"eval_{k}": em[k] for k in ("total_cost", "completion_pct", "fulfillment_requests_pct",
                                             "mean_immersion")}

    # at least 16 evaluation points per phase so the re-convergence is visible
    rows = train_through_phases(env, phases, cfg.agent, _key(cfg, 41), _key(cfg, 43), evaluate, min_points=16)
    artifacts.write_csv(path, rows)
    figures.adapt(out, rows)
    return rows


# name -> runner(cfg, out, *, overwrite, progress); the choices of `jaxtwin civic experiment`
EXPERIMENTS = {"noncoop": run_noncoop, "tolerance": run_tolerance, "coop": run_coop,
               "adapt": run_adapt, "withdraw": run_withdraw}
assert tuple(EXPERIMENTS) == EXPERIMENT_NAMES


def run(config: CivicConfig, out_dir, *, overwrite: bool = False, progress: bool = True) -> list[dict]:
    """Run ``config.experiment`` into ``out_dir`` (skips if its results exist unless ``overwrite``);
    a size that cannot fit the memory is refused first (:mod:`jaxtwin.civic.sizes`)."""
    require_command_fits(config, config.experiment)   # before anything is written or compiled
    out = Path(out_dir)
    record_config(out, config, overwrite=overwrite)
    done = out / ("adapt_curve.csv" if config.experiment == "adapt" else "results.csv")
    if done.exists() and not overwrite:
        return artifacts.read_csv(done)
    return EXPERIMENTS[config.experiment](config, out, overwrite=overwrite, progress=progress)


def _scenario(cfg: CivicConfig) -> tuple[CivicEnv, EnvParams]:
    env = scenario_env(cfg, cfg.n_msps, cfg.horizon, cfg.cooperative)
    return env, scenario_params(env, cfg)


def run_train(config: CivicConfig, out_dir, *, overwrite: bool = False, progress: bool = True) -> dict:
    """PPO on one scenario (``n_msps``, ``horizon``, ``cooperative``), ``train_seeds`` learners
    trained vmapped and checkpointed in ``out_dir``; returns the per-update training metrics
    (arrays ``[learner, update]``)."""
    require_command_fits(config, "train")
    out = Path(out_dir)
    record_config(out, config, overwrite=overwrite)
    if overwrite:  # the agent is trained again: an evaluation of the old one would be mislabelled
        provenance.discard(out / EVALUATION_RECORD)
    env, p = _scenario(config)
    _, m = train_agents(env, p, config.agent, jax.random.split(_key(config, 51), config.train_seeds), out,
                        progress=progress, overwrite=overwrite)
    figures.training(out, m)
    return m


EVALUATION_RECORD = "evaluation_config.json"


def _with_trained_agent(config: CivicConfig, out: Path) -> CivicConfig:
    """``config`` with the agent options the finished agent in ``out`` was trained with (its
    ``agent.json``), so the evaluation's record describes that agent; given ``--agent.*``
    values that differ are named on stderr and not used (an evaluation trains nothing)."""
    if not (out / FINISHED).is_file():
        return config   # load_agent says what to run
    try:
        trained = AgentConfig(**saved_agent_record(out).get("agent", {}))
    except (TypeError, ConfigError):   # a record of another version: the given options stand
        return config
    differ = [f"{f.name}={getattr(trained, f.name)!r} (given {getattr(config.agent, f.name)!r})"
              for f in dataclasses.fields(AgentConfig) if getattr(trained, f.name) != getattr(config.agent, f.name)]
    if differ:
        report.note(f"the agent in {out} was trained with " + ", ".join(differ)
                    + ": the --agent.* options describe a training, so the evaluation uses that agent's")
    return dataclasses.replace(config, agent=trained)


def run_evaluate(config: CivicConfig, out_dir, *, overwrite: bool = False, progress: bool = True) -> list[dict]:
    """The agent trained by :func:`run_train` in ``out_dir`` against the baselines (loaded,
    never trained: an unfinished training is an error); writes ``evaluation.csv``."""
    require_command_fits(config, "evaluate")
    out = Path(out_dir)
    env, p = _scenario(config)
    config = _with_trained_agent(config, out)
    net = load_agent(out, env, config.agent, p)
    names = (("Random", "Saving", "Average", "Max", *GCP_BASELINES) if config.cooperative
             else ("Random", "Saving", "Average", "Max", "Myopic-Optimal"))
    pols = {n: make_baseline(n, env) for n in names}
    pols.update(drl_policies("DRL-GCP" if config.cooperative else "DRL", env, p, config.agent, net))
    # the evaluation depends on the agent (its training's fingerprint), not on how it was trained
    record_config(out, config, name=EVALUATION_RECORD, overwrite=overwrite, ignore=("agent",),
                  inputs={"agent": provenance.record_fingerprint(out / "config.json")})
    rows = evaluate_policies(env, p, pols, config.eval_episodes, _key(config, 52), devices=config.devices)
    artifacts.write_csv(out / "evaluation.csv", rows)
    artifacts.write_csv(out / "evaluation_summary.csv", summarize(rows, ("policy",)))
    return rows
