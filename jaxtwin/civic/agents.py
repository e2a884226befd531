"""CIVIC's PPO agents: the budget (:class:`AgentConfig`), training with
checkpoints (:func:`train_agents`: seeds, or seeds x points of one shape, as
one vmapped program; :func:`train_agent` for one), loading finished agents
(:func:`load_agent`), training through a change of regime
(:func:`train_through_phases`), a saved agent with its own config and scenario
(:func:`load_saved_agent`) and the trained actor as a policy (:func:`agent_actor`,
:func:`drl_policy`).

A training folder holds ``checkpoint.msgpack`` (the whole runner state,
rewritten after every chunk so an interrupted run resumes), ``train_metrics.csv``
(one row per update so far) and, once the last chunk is done, ``agent.json``
(the agent config and the scenario's shape): its presence is what marks the
training finished, so :func:`load_agent` never returns a half-trained agent.
"""
from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxtwin.core import artifacts, report
from jaxtwin.core.config import ConfigError, require_int, require_positive, require_range
from jaxtwin.core.progress import progress_bar
from jaxtwin.civic.baselines import from_actor
from jaxtwin.civic.env import CivicEnv, EnvParams
from jaxtwin.learn import ppo

CHECKPOINT, METRICS, FINISHED = "checkpoint.msgpack", "train_metrics.csv", "agent.json"


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


def scenario_shape(env: CivicEnv) -> dict[str, Any]:
    """What fixes an agent's network and spaces: the env's shape arguments (``observe_sla`` only
    when on, so the records of agents trained on the spec's observation read as before)."""
    shape = {"n_msps": env.n_msps, "heads_per_msp": env.heads_per_msp, "horizon": env.horizon,
             "cooperative": env.cooperative}
    return {**shape, "observe_sla": True} if env.observe_sla else shape


def stack_learners(params: EnvParams | list[EnvParams], n: int) -> EnvParams:
    """``n`` learners' scenario params with a leading learner axis: a list (one per
    learner, the same shapes) is stacked; one params is repeated ``n`` times. Built on the
    host, so Python numbers and NumPy scalars give the same (strongly typed) arrays and
    the trainings of equal shapes share one compiled program."""
    if isinstance(params, (list, tuple)):
        if len(params) != n:
            raise ConfigError(f"{len(params)} scenario params for {n} learners")
        return jax.tree.map(lambda *xs: jnp.asarray(np.stack([np.asarray(x) for x in xs])), *params)
    return jax.tree.map(lambda x: jnp.asarray(np.broadcast_to(np.asarray(x), (n, *np.shape(x)))), params)


@functools.lru_cache(maxsize=32)
def _learner_programs(env: CivicEnv, agent: AgentConfig):
    """``(init, run)``: PPO's init and chunk step ``vmap``-ed over learners (key and params);
    cached, so a resumed or repeated training of the same shapes compiles nothing new."""
    init, run_updates = ppo.make_train_chunks(agent.ppo(), env, env.default_params)
    runs: dict[int, Callable] = {}

    def run(runner, params, n_updates: int):
        if n_updates not in runs:  # at most two chunk lengths: the last chunk may be shorter
            runs[n_updates] = jax.jit(jax.vmap(lambda r, p: run_updates(r, n_updates, p)))
        return runs[n_updates](runner, params)
    return jax.jit(jax.vmap(init)), run


def train_agents(env: CivicEnv, params: EnvParams | list[EnvParams], agent: AgentConfig,
                 keys: jax.Array, ckpt_dir: Path | None = None, *, progress: bool = True,
                 desc: str = "", overwrite: bool = False):
    """Train ``len(keys)`` independent PPO learners as one ``vmap``-ed program, in
    ``agent.chunks`` jitted chunks; checkpoint/resume under ``ckpt_dir``.

    Learner ``i`` starts from ``keys[i]`` under ``params`` (one scenario for all
    learners: seeds) or ``params[i]`` (a list: seeds x points of one shape, e.g.
    thresholds). Returns ``(net_params, metrics)``, each with a leading learner
    axis; ``metrics`` maps ``mean_return``, ``env_steps``, ... to arrays of shape
    ``(learners, updates)``. With ``ckpt_dir`` the stacked runner state and the
    metrics (``train_metrics.csv``: one row per update x learner) are saved after
    every chunk, an unfinished run is resumed, and ``agent.json`` is written when
    the last chunk is done.
    """
    keys = jnp.asarray(keys)
    n_learners = int(keys.shape[0])
    stacked = stack_learners(params, n_learners)
    init, run = _learner_programs(env, agent)
    n_updates = agent.ppo().num_updates
    per_chunk = max(1, math.ceil(n_updates / agent.chunks))
    sizes = [min(per_chunk, n_updates - i) for i in range(0, n_updates, per_chunk)]
    runner = init(keys, stacked)
    done_chunks, history = 0, []
    ckpt = metrics_path = None
    if ckpt_dir is not None:
        ckpt_dir = Path(ckpt_dir)
        ckpt, metrics_path = ckpt_dir / CHECKPOINT, ckpt_dir / METRICS
        if overwrite:
            (ckpt_dir / FINISHED).unlink(missing_ok=True)
        elif ckpt.exists() and metrics_path.exists():
            runner = ppo.runner_state_from_bytes(ckpt.read_bytes(), runner)
            history = _read_history(metrics_path)
            done_chunks = int(round(history[-1]["chunk"])) + 1 if history else 0
    if 0 < done_chunks < len(sizes):
        report.note(f"resuming the training in {ckpt_dir} at chunk {done_chunks + 1} of {len(sizes)}")
    with progress_bar(len(sizes), desc or "train", enabled=progress, initial=done_chunks) as bar:
        for c in range(done_chunks, len(sizes)):
            runner, m = run(runner, stacked, sizes[c])
            m = jax.tree.map(np.asarray, m)
            for i in range(sizes[c]):
                for learner in range(n_learners):
                    history.append({"chunk": c, "learner": learner,
                                    **{k: float(v[learner, i]) for k, v in m.items()}})
            if ckpt is not None:
                artifacts._atomic_write_bytes(ckpt, ppo.runner_state_to_bytes(runner))
                artifacts.write_csv(metrics_path, history)
            bar.update(1)
    if ckpt_dir is not None and (done_chunks < len(sizes) or not (ckpt_dir / FINISHED).exists()):
        artifacts.write_json(ckpt_dir / FINISHED, {"agent": agent, "scenario": scenario_shape(env),
                                                   "updates": n_updates, "learners": n_learners})
    return runner.train_state.params, _metric_arrays(history, n_learners)


def _metric_arrays(history: list[dict], n_learners: int) -> dict[str, np.ndarray]:
    """``train_metrics.csv`` rows (one per update x learner) as arrays ``(learners, updates)``."""
    names = [k for k in (history[0] if history else {}) if k not in ("chunk", "learner")]
    return {k: np.asarray([[h[k] for h in history if h["learner"] == learner]
                           for learner in range(n_learners)]) for k in names}


def read_training_metrics(ckpt_dir: str | Path) -> dict[str, np.ndarray]:
    """The training curves :func:`train_agents` saved in ``ckpt_dir`` (``train_metrics.csv``):
    ``mean_return``, ``env_steps``, ... as arrays ``(learners, updates)``."""
    history = _read_history(Path(ckpt_dir) / METRICS)
    return _metric_arrays(history, len({int(h["learner"]) for h in history}))


def _read_history(path: Path) -> list[dict]:
    return [{k: float(v) for k, v in r.items()} for r in artifacts.read_csv(path)]


def train_agent(env: CivicEnv, params: EnvParams, agent: AgentConfig, key: jax.Array,
                ckpt_dir: Path | None = None, *, progress: bool = True, desc: str = "",
                overwrite: bool = False):
    """One learner of :func:`train_agents`: ``(net_params, metrics)`` without the learner axis."""
    net, metrics = train_agents(env, params, agent, jnp.asarray(key)[None], ckpt_dir,
                                progress=progress, desc=desc, overwrite=overwrite)
    return learner(net, 0), {k: v[0] for k, v in metrics.items()}


def learner(net_params: Any, index: int) -> Any:
    """Learner ``index``'s network parameters from a stack returned by :func:`train_agents`."""
    return jax.tree.map(lambda x: x[index], net_params)


def load_agent(out_dir: str | Path, env: CivicEnv, agent: AgentConfig, params: EnvParams | None = None):
    """The network parameters (leading learner axis) of the agents trained by
    :func:`train_agents` in ``out_dir``.

    Reads only the checkpoint's network parameters, so an evaluation may use
    another number of environments than the training did. A folder without a
    finished training (no checkpoint, or training stopped before its last
    chunk) or with an agent of another scenario shape raises
    :class:`~jaxtwin.core.config.ConfigError` saying what to run.
    """
    out = Path(out_dir)
    train_cmd = f"`jaxtwin civic train --out {out}` (with the same options)"
    if not (out / CHECKPOINT).exists():
        raise ConfigError(f"no trained agent in {out} (no {CHECKPOINT}): run {train_cmd} first")
    if not (out / FINISHED).exists():
        rows = artifacts.read_csv(out / METRICS) if (out / METRICS).exists() else []
        n = len({r.get("learner") for r in rows}) or 1
        raise ConfigError(f"the training in {out} is not finished ({len(rows) // n} of "
                          f"{agent.ppo().num_updates} updates, no {FINISHED}): run {train_cmd} "
                          "to finish it first")
    record = json.loads((out / FINISHED).read_text())
    saved_shape = record.get("scenario", {})
    here = scenario_shape(env)
    differ = {k: (saved_shape.get(k), here.get(k)) for k in {**saved_shape, **here}
              if saved_shape.get(k) != here.get(k)}
    if differ:
        raise ConfigError(f"the agent in {out} was trained for another scenario: "
                          + ", ".join(f"{k}={a!r} there, {b!r} here" for k, (a, b) in differ.items()))
    params = env.default_params if params is None else params
    n_learners = int(record.get("learners", 1))
    init, _ = _learner_programs(env, agent)
    template = jax.eval_shape(init, jnp.zeros((n_learners, 2), jnp.uint32),
                              stack_learners(params, n_learners)).train_state.params
    state = serialization.msgpack_restore((out / CHECKPOINT).read_bytes())
    try:
        net = serialization.from_state_dict(template, state["train_state"]["params"])
    except (KeyError, ValueError, TypeError) as err:
        raise ConfigError(f"{out / CHECKPOINT} does not hold this agent's network ({err})") from None
    want = [tuple(x.shape) for x in jax.tree.leaves(template)]
    got = [tuple(np.shape(x)) for x in jax.tree.leaves(net)]
    if want != got:
        raise ConfigError(f"{out / CHECKPOINT}: network shapes {got} differ from this scenario's {want}")
    return net


def train_through_phases(env: CivicEnv, phases: list[EnvParams], agent: AgentConfig, key: jax.Array,
                         restart_key: jax.Array, evaluate: Callable[[Any, EnvParams], dict],
                         *, min_points: int = 16) -> list[dict]:
    """One PPO learner trained under each params of ``phases`` in turn.

    At a phase change the learner (network, optimiser) carries over and the
    environments restart (from ``restart_key``) under the new regime. Each
    phase runs the agent's whole budget in ``max(chunks, min_points)`` chunks
    (at most one per update), and ``evaluate(net_params, params)`` — a dict of
    floats — runs after every chunk. Returns one row per update: ``update``,
    ``phase``, ``threshold``, ``p_req``, ``mean_return`` and the evaluation.
    """
    pcfg = agent.ppo()
    n_chunks = max(agent.chunks, min(min_points, pcfg.num_updates))
    per_chunk = max(1, math.ceil(pcfg.num_updates / n_chunks))
    runner, rows, update = None, [], 0
    for phase, params in enumerate(phases):
        init, run_updates = ppo.make_train_chunks(pcfg, env, params)
        if runner is None:
            runner = init(key)
        else:
            fresh = init(restart_key)
            runner = runner.replace(env_state=fresh.env_state, obs=fresh.obs)
        for _ in range(n_chunks):
            runner, m = run_updates(runner, per_chunk)
            m = jax.tree.map(np.asarray, m)
            em = evaluate(runner.train_state.params, params)
            for i in range(per_chunk):
                update += 1
                rows.append({"update": update, "phase": phase, "threshold": float(params.threshold),
                             "p_req": float(params.p_req), "mean_return": float(m["mean_return"][i]), **em})
    return rows


def agent_actor(env: CivicEnv, agent: AgentConfig, *, trained_env: CivicEnv | None = None,
                params: EnvParams | None = None) -> Callable[[Any], Callable]:
    """``policy_of(net_params)``: the deterministic PPO agent as a baseline-style policy for
    ``env`` (``net_params`` may be traced, e.g. vmapped over learners).

    ``trained_env`` non-cooperative and ``env`` cooperative: the agent sees the
    observation without the two GCP entries and never donates (DRL in the coop table).
    The horizon may differ: the network does not depend on it.
    """
    trained_env = trained_env or env
    act = ppo.make_policy(agent.ppo(), trained_env, trained_env.default_params if params is None else params,
                          deterministic=True)
    if trained_env.cooperative == env.cooperative:
        return lambda net_params: from_actor(act, net_params)
    if trained_env.cooperative or not env.cooperative:
        raise ConfigError("drl_policy: only a non-cooperative agent can act in a cooperative env")
    if trained_env.observe_sla != env.observe_sla:
        raise ConfigError(f"drl_policy: the agent was trained with observe_sla={trained_env.observe_sla}, "
                          f"the env has observe_sla={env.observe_sla}")

    def policy_of(net_params):
        def policy(key, obs, state, p):
            a = act(net_params, key, obs[:-2])
            return jnp.concatenate([a, -jnp.ones((env.n_msps,), a.dtype)])
        return policy
    return policy_of


def drl_policy(env: CivicEnv, params: EnvParams, agent: AgentConfig, net_params,
               *, trained_env: CivicEnv | None = None):
    """The deterministic PPO agent ``net_params`` as a policy for ``env`` (:func:`agent_actor`)."""
    return agent_actor(env, agent, trained_env=trained_env, params=params)(net_params)


def saved_agent_record(folder: str | Path, field_name: str = "agent_dir") -> dict:
    """``agent.json`` of a finished training in ``folder`` (``ConfigError`` naming
    ``field_name`` when there is none)."""
    folder = Path(folder)
    if not (folder / FINISHED).is_file():
        raise ConfigError(f"{field_name}={str(folder)!r}: no finished agent there (no {FINISHED}); train one "
                          f"with `jaxtwin civic train --out {folder}` (or an experiment's agents/<name>)")
    return json.loads((folder / FINISHED).read_text())


def load_saved_agent(folder: str | Path, env: CivicEnv, field_name: str = "agent_dir"):
    """``(trained_env, agent, net_params)`` of the finished training in ``folder``, to play in
    ``env`` (the learners stacked on a leading axis). The agent's config and scenario come
    from its ``agent.json``; ``env`` must have its MSPs, Heads and observation, and be
    cooperative if the agent is (a non-cooperative agent may play in a pooled env, as DRL
    in the coop table, and any horizon). ``ConfigError`` names ``field_name`` otherwise."""
    record = saved_agent_record(folder, field_name)
    scenario = {"observe_sla": False, **record["scenario"]}
    trained_env = CivicEnv(scenario["n_msps"], scenario["heads_per_msp"], scenario["horizon"],
                           cooperative=scenario["cooperative"], observe_sla=scenario["observe_sla"])
    here = {"n_msps": env.n_msps, "heads_per_msp": env.heads_per_msp, "observe_sla": env.observe_sla}
    differ = [f"{k}={scenario[k]!r} there, {v!r} here" for k, v in here.items() if scenario[k] != v]
    if trained_env.cooperative and not env.cooperative:
        differ.append("cooperative=True there (a GCP agent), False here")
    if differ:
        raise ConfigError(f"{field_name}={str(folder)!r}: the agent there was trained for another scenario: "
                          + ", ".join(differ))
    agent = AgentConfig(**record["agent"])
    return trained_env, agent, load_agent(folder, trained_env, agent)
