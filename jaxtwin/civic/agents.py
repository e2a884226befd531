"""CIVIC's PPO agents: the budget (:class:`AgentConfig`), training with
checkpoints (:func:`train_agent`), loading a finished agent
(:func:`load_agent`), training through a change of regime
(:func:`train_through_phases`) and the trained actor as a policy
(:func:`drl_policy`).

A training folder holds ``checkpoint.msgpack`` (the whole runner state,
rewritten after every chunk so an interrupted run resumes), ``train_metrics.csv``
(one row per update so far) and, once the last chunk is done, ``agent.json``
(the agent config and the scenario's shape): its presence is what marks the
training finished, so :func:`load_agent` never returns a half-trained agent.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxtwin.core import artifacts
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
    """What fixes an agent's network and spaces: the env's shape arguments."""
    return {"n_msps": env.n_msps, "heads_per_msp": env.heads_per_msp, "horizon": env.horizon,
            "cooperative": env.cooperative}


def train_agent(env: CivicEnv, params: EnvParams, agent: AgentConfig, key: jax.Array,
                ckpt_dir: Path | None = None, *, progress: bool = True, desc: str = "",
                overwrite: bool = False):
    """Train PPO in ``agent.chunks`` jitted chunks; checkpoint/resume under ``ckpt_dir``.

    Returns ``(net_params, metrics)`` with ``metrics`` a dict of per-update
    NumPy arrays (``mean_return``, ``env_steps``, ...). With ``ckpt_dir`` the
    runner state and metrics are saved after every chunk, an unfinished run is
    resumed, and ``agent.json`` is written when the last chunk is done.
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
        ckpt, metrics_path = ckpt_dir / CHECKPOINT, ckpt_dir / METRICS
        if overwrite:
            (ckpt_dir / FINISHED).unlink(missing_ok=True)
        elif ckpt.exists() and metrics_path.exists():
            runner = ppo.runner_state_from_bytes(ckpt.read_bytes(), runner)
            rows = artifacts.read_csv(metrics_path)
            history = [{k: float(v) for k, v in r.items()} for r in rows]
            done_chunks = int(round(float(rows[-1]["chunk"]))) + 1 if rows else 0
    with progress_bar(len(sizes), desc or "train", enabled=progress, initial=done_chunks) as bar:
        for c in range(done_chunks, len(sizes)):
            runner, m = run_updates(runner, sizes[c])
            m = jax.tree.map(np.asarray, m)
            for i in range(sizes[c]):
                history.append({"chunk": c, **{k: float(v[i]) for k, v in m.items()}})
            if ckpt is not None:
                artifacts._atomic_write_bytes(ckpt, ppo.runner_state_to_bytes(runner))
                artifacts.write_csv(metrics_path, history)
            bar.update(1)
    if ckpt_dir is not None and (done_chunks < len(sizes) or not (ckpt_dir / FINISHED).exists()):
        artifacts.write_json(ckpt_dir / FINISHED, {"agent": agent, "scenario": scenario_shape(env),
                                                   "updates": n_updates})
    metrics = {k: np.asarray([h[k] for h in history]) for k in (history[0] if history else {})}
    return runner.train_state.params, metrics


def load_agent(out_dir: str | Path, env: CivicEnv, agent: AgentConfig, params: EnvParams | None = None):
    """The network parameters of the agent trained by :func:`train_agent` in ``out_dir``.

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
        raise ConfigError(f"the training in {out} is not finished ({len(rows)} of "
                          f"{agent.ppo().num_updates} updates, no {FINISHED}): run {train_cmd} "
                          "to finish it first")
    saved_shape = json.loads((out / FINISHED).read_text()).get("scenario", {})
    differ = {k: (saved_shape.get(k), v) for k, v in scenario_shape(env).items() if saved_shape.get(k) != v}
    if differ:
        raise ConfigError(f"the agent in {out} was trained for another scenario: "
                          + ", ".join(f"{k}={a!r} there, {b!r} here" for k, (a, b) in differ.items()))
    params = env.default_params if params is None else params
    init, _ = ppo.make_train_chunks(agent.ppo(), env, params)
    template = jax.eval_shape(init, jax.random.PRNGKey(0)).train_state.params
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
        raise ConfigError("drl_policy: only a non-cooperative agent can act in a cooperative env")

    def policy(key, obs, state, p):
        a = act(net_params, key, obs[:-2])
        return jnp.concatenate([a, -jnp.ones((env.n_msps,), a.dtype)])

    return policy
