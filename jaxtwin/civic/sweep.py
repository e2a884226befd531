"""CIVIC on the study engine (:mod:`jaxtwin.core.engine`): any grid over
:class:`~jaxtwin.civic.params.EnvParams` fields (and ``constants.<name>`` of
:class:`~jaxtwin.civic.model.ModelConstants`), with the baselines evaluated on
the same episode keys at every point (common random numbers).

Shape fields (each value its own compiled program): ``n_msps``,
``heads_per_msp`` and ``cooperative``. The horizons of a study run as one program
padded to the longest (``episode_steps`` masks each point to its own horizon, with
results bit for bit those of an env of that horizon), unless the study sets
``episode_steps`` itself or uses ``train_on = "base"``. Every other field is a leaf
of the params vmapped over points, so a grid over them runs as one program.
The defaults are the spec v2 scenario (``T_ref`` = 100, threshold 0.85,
``p_req`` 0.8, ``budget_factor`` 0.8) with 3 MSPs, one Head each, T = 100,
cooperative. Metrics: :data:`jaxtwin.civic.evaluate.METRIC_NAMES`.

Trained agents: the policy ``DRL-GCP`` (cooperative) or ``DRL`` trains PPO at every
point, ``train_seeds`` learners per point, all the learners of a chunk of points as
one vmapped program (:func:`jaxtwin.civic.agents.train_agents`), then evaluates each
deterministically on the baselines' episode keys. The training keys are the same at
every point (common random numbers across points, like the episodes). Its rows carry
``train_seed``; the summary's CIs for it are across trainings. With an output folder a
chunk's trainings are checkpointed after each of the agent's chunks (``AgentConfig``'s
default 4) in ``OUT/work/gGGG/cCCCC/agent/`` (learner ``j * train_seeds + s``: the
chunk's point ``j``, training ``s``; ``train_metrics.csv`` holds the training curves),
so an interrupted sweep resumes mid-training. The ``agent.*`` fields
(:class:`~jaxtwin.civic.agents.AgentConfig`), ``train_seeds`` and ``observe_sla``
are shape fields: each value its own program. With ``train_on = "base"`` the agent
trains once per shape group, at the base scenario (the defaults with the study's
``fixed`` values), and that one agent is evaluated at every point: the robustness of
a trained agent across a grid. With ``agent_dir`` nothing trains: the finished agent
saved in that folder (by ``jaxtwin civic train --out DIR`` or an experiment, under its
own ``agent.json`` config) plays at every point, all its learners, on the same episode
keys; it must fit the group's MSPs, Heads and observation (any horizon; a
non-cooperative agent may play in a pooled env, as ``DRL``). The study's record holds
the checkpoint's content hash, so a rerun after that agent was trained again is refused.
The tolerance and withdraw experiments run this way.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Mapping

import jax

import jax.numpy as jnp
import numpy as np

from jaxtwin.core import sharding
from jaxtwin.core.config import ConfigError
from jaxtwin.core.memory import Need
from jaxtwin.core.study import AxisField, REPLICATE_MARK
from jaxtwin.civic.agents import (CHECKPOINT, AgentConfig, agent_actor, learner, load_saved_agent,
                                  saved_agent_record, train_agents)
from jaxtwin.civic.baselines import BASELINE_NAMES, make_baseline
from jaxtwin.civic.env import CivicEnv, EnvParams, validate_params
from jaxtwin.civic.evaluate import METRIC_NAMES, check_policies, episode_metrics, policy_metrics, run_episode
from jaxtwin.civic.model import ModelConstants
from jaxtwin.civic.sizes import evaluation_bytes, ppo_bytes

SHAPE_FIELDS = {
    "n_msps": AxisField("n_msps", int, 3, "shape", "MSPs"),
    "heads_per_msp": AxisField("heads_per_msp", int, 1, "shape", "Heads per MSP"),
    "horizon": AxisField("horizon", int, 100, "shape", "episode length T (steps); a study's horizons share "
                         "one program padded to the longest"),
    "cooperative": AxisField("cooperative", bool, True, "shape", "GCP credit pool on"),
    "observe_sla": AxisField("observe_sla", bool, False, "shape", "trained agents observe the SLA accuracies"),
    "train_seeds": AxisField("train_seeds", int, 3, "shape", "PPO trainings per point (DRL, DRL-GCP)"),
    "agent_dir": AxisField("agent_dir", str, "", "shape", "evaluate the finished agent saved in this folder "
                           "(`jaxtwin civic train --out DIR`, or an experiment's agents/<name>) at every point "
                           "instead of training: all its learners, under its own config"),
    "train_on": AxisField("train_on", str, "point", "shape", "where DRL/DRL-GCP train: at every point, or "
                          "once per group at the base scenario (the study's fixed values) and evaluated at "
                          "every point", ("point", "base")),
    **{f"agent.{f.name}": AxisField(f"agent.{f.name}", type(getattr(AgentConfig(), f.name)),
                                    getattr(AgentConfig(), f.name), "shape", f.metadata.get("help", ""))
       for f in dataclasses.fields(AgentConfig) if f.name != "chunks"},
}
AGENTS = {True: "DRL-GCP", False: "DRL"}
AGENT_FOLDER = "agent"   # under a chunk's work folder: its trainings' checkpoint and train_metrics.csv
DEFAULT_COOP = ("Random", "Average", "Max", "Avg-GCP", "Max-GCP", "Random-GCP", "Myopic-GCP")
DEFAULT_NONCOOP = ("Random", "Saving", "Average", "Max", "Myopic-Optimal")
METRIC_LABELS = {"completion_pct": "completion (% of requests served)",
                 "fulfillment_served_pct": "fulfillment (% of served meeting the threshold)",
                 "fulfillment_requests_pct": "fulfillment (% of requests)",
                 "served_clients": "served clients", "total_cost": "total cost (credits)",
                 "mean_immersion": "mean immersion of served requests", "range": "range of served requests",
                 "gini": "Gini of served requests", "episode_return": "episode return"}


def _param_fields() -> dict[str, AxisField]:
    defaults = EnvParams()
    out = {}
    for f in dataclasses.fields(EnvParams):
        if f.name in ("room_table", "constants"):
            continue
        v = getattr(defaults, f.name)
        out[f.name] = AxisField(f.name, type(v), v)
    for f in dataclasses.fields(ModelConstants):
        name = f"constants.{f.name}"
        out[name] = AxisField(name, float, getattr(defaults.constants, f.name))
    return out


def scenario_fixed(env: CivicEnv, params: EnvParams, **extra: Any) -> tuple[tuple[str, Any], ...]:
    """A study's ``fixed`` for the scenario ``(env, params)``: the env's shape fields and every
    parameter that differs from the env's defaults, so the engine builds exactly ``params``;
    ``extra`` fields last."""
    fixed = {"n_msps": env.n_msps, "heads_per_msp": env.heads_per_msp, "horizon": env.horizon,
             "cooperative": env.cooperative, "observe_sla": env.observe_sla}
    for name in _param_fields():
        top, _, sub = name.partition(".")
        value, default = getattr(params, top), getattr(env.default_params, top)
        if sub:
            value, default = getattr(value, sub), getattr(default, sub)
        if np.asarray(value).item() != np.asarray(default).item():
            fixed[name] = np.asarray(value).item()
    return tuple({**fixed, **extra}.items())


def _with(params: EnvParams, values: Mapping[str, Any]) -> EnvParams:
    top = {k: v for k, v in values.items() if "." not in k}
    consts = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("constants.")}
    params = params.replace(**top)
    return params.replace(constants=params.constants.replace(**consts)) if consts else params


class Runner:
    """One CIVIC shape group: every baseline x seed at each point in one vmapped program;
    with the agent among the policies, its trainings and their evaluation too."""

    metrics = METRIC_NAMES
    checkpoints = True   # the engine passes each chunk's folder: trainings resume from their checkpoints

    def __init__(self, shape: Mapping[str, Any], fixed_params: Mapping[str, Any], policies: tuple[str, ...],
                 n_seeds: int, devices: int):
        self.n_seeds, self.devices = n_seeds, devices
        self.env = CivicEnv(shape["n_msps"], shape["heads_per_msp"], shape["horizon"],
                            cooperative=shape["cooperative"], observe_sla=shape["observe_sla"])
        agent_name, saved = (self._saved_learners(shape["agent_dir"], policies) if shape["agent_dir"]
                             else (AGENTS[self.env.cooperative], {}))
        self.baselines = tuple(p for p in policies if p != agent_name)
        self.n_train = shape["train_seeds"] if agent_name in policies and not saved else 0
        if self.n_train < 0 or (agent_name in policies and not saved and self.n_train < 1):
            raise ConfigError(f"study field train_seeds={shape['train_seeds']}: must be >= 1 to train {agent_name}")
        self.policies = (self.baselines + tuple(saved)
                         + tuple(f"{agent_name}{REPLICATE_MARK}{s}" for s in range(self.n_train)))
        self._pols = [make_baseline(n, self.env) for n in self.baselines] + list(saved.values())
        call = jax.jit(jax.vmap(policy_metrics(self.env, self._pols), in_axes=(None, 0)))
        self._call = sharding.sharded_call(lambda p, k: call(k, p), devices, in_axes=(0, None))
        if self.n_train:
            self.agent = AgentConfig(**{k.split(".", 1)[1]: v for k, v in shape.items() if k.startswith("agent.")})
            self._agent_call = sharding.sharded_call(self._agent_metrics(), devices, in_axes=(0, 0, None))
        self.base = self.params(fixed_params) if self.n_train and shape["train_on"] == "base" else None
        self._base_nets = None

    def _saved_learners(self, folder: str, policies: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
        """The name of the agent saved in ``folder`` (DRL-GCP or DRL) and, if the study runs it,
        ``{"<name>#<s>": policy}``: each of its learners as a policy of this group's env,
        evaluated like a baseline, in the same program (as the experiments' tables always were)."""
        trained_env, agent, nets = load_saved_agent(folder, self.env)
        name = AGENTS[trained_env.cooperative]
        if name not in policies:
            return name, {}
        policy_of = agent_actor(self.env, agent, trained_env=trained_env)
        n = int(jax.tree.leaves(nets)[0].shape[0])
        return name, {f"{name}{REPLICATE_MARK}{s}": policy_of(learner(nets, s)) for s in range(n)}

    def _agent_metrics(self):
        """``metrics[point, learner, seed]`` of the deterministic trained actors, one jitted program."""
        policy_of = agent_actor(self.env, self.agent)

        def one(net, params, key):
            state, ret, _ = run_episode(self.env, policy_of(net), key, params)
            return episode_metrics(state, ret)
        over_seeds = jax.vmap(one, in_axes=(None, None, 0))
        return jax.jit(jax.vmap(jax.vmap(over_seeds, in_axes=(0, None, None)), in_axes=(0, 0, None)))

    def needs(self, chunk: int) -> list[Need]:
        """Peak bytes of this group's programs for ``chunk`` points (engine: checked before any work)."""
        env = self.env
        lanes = chunk * self.n_seeds   # every policy x seed of the chunk's points in one call
        out = [Need(evaluation_bytes(env.n_heads, self.policies, lanes, self.devices),
                    f"civic sweep: the evaluation of {chunk} points x {self.n_seeds} seeds x "
                    f"{len(self.policies)} policies", "--chunk or --seeds")]
        if self.n_train:
            learners = self.n_train if self.base is not None else chunk * self.n_train
            out.append(Need(learners * ppo_bytes(env.n_msps, env.heads_per_msp, env.cooperative, self.agent,
                                                 env.observe_sla),
                            f"civic sweep: one PPO update of {learners} vmapped learners "
                            f"({1 if self.base is not None else chunk} points x {self.n_train} training seeds)",
                            "--chunk, train_seeds or agent.num_envs"))
        return out

    def params(self, values: Mapping[str, Any]) -> EnvParams:
        """The env's defaults with ``values``, checked (``ConfigError`` names the field); a
        ``horizon`` among them (a padded group) becomes the point's ``episode_steps``."""
        values = dict(values)
        if "horizon" in values:
            values["episode_steps"] = values.pop("horizon")
        p = validate_params(_with(self.env.default_params, values), self.env)
        check_policies(self._pols, p)
        return p

    def _train(self, stacked_params: EnvParams, keys: jax.Array, workdir: Path | None):
        """``train_seeds`` learners per point of the chunk, one vmapped training checkpointed
        in ``workdir/agent`` (with ``train_on = "base"``: the base scenario's learners, trained
        once, in the group's ``base/agent``); nets ``[point, learner]``."""
        n, L = int(np.asarray(stacked_params.threshold).shape[0]), self.n_train
        seed_keys = jax.random.split(jax.random.fold_in(keys[0], 7), L)   # the same at every point
        if self.base is not None:
            if self._base_nets is None:
                folder = None if workdir is None else workdir.parent / "base" / AGENT_FOLDER
                self._base_nets, _ = train_agents(self.env, [self.base] * L, self.agent, seed_keys,
                                                  ckpt_dir=folder, progress=False)
            return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), self._base_nets)
        points = [jax.tree.map(lambda x: x[i], stacked_params) for i in range(n) for _ in range(L)]
        nets, _ = train_agents(self.env, points, self.agent, jnp.tile(seed_keys, (n, 1)),
                               ckpt_dir=None if workdir is None else workdir / AGENT_FOLDER, progress=False)
        return jax.tree.map(lambda x: x.reshape((n, L) + x.shape[1:]), nets)

    def __call__(self, stacked_params: EnvParams, keys: jax.Array, workdir: Path | None = None):
        out = self._call(stacked_params, keys) if self._pols else None
        if not self.n_train:
            return out
        drl = self._agent_call(self._train(stacked_params, keys, workdir), stacked_params, keys)
        if out is None:
            return drl
        return {m: jnp.concatenate([jnp.asarray(out[m]), jnp.asarray(drl[m])], axis=1) for m in self.metrics}


class CivicAdapter:
    """The study engine's view of CIVIC (see the module doc)."""

    system = "civic"
    trained_policies = tuple(AGENTS.values())   # not in "all": they train at every point
    policy_label = "policy"
    seed_label = "seed"
    stochastic = True
    default_seeds = 16
    plot_metrics = ("completion_pct", "fulfillment_requests_pct", "total_cost", "episode_return")
    metric_labels = METRIC_LABELS

    def __init__(self):
        self.fields = {**SHAPE_FIELDS, **_param_fields()}

    def policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """Every baseline (the ``-GCP`` ones need ``cooperative``) and the agent: trained, or
        the saved one of ``agent_dir`` (``DRL`` for a non-cooperative agent, also in a pooled env)."""
        coop = shape["cooperative"]
        if shape.get("agent_dir"):
            coop = bool(saved_agent_record(shape["agent_dir"])["scenario"]["cooperative"])
        return tuple(n for n in BASELINE_NAMES if shape["cooperative"] or not n.endswith("-GCP")) + (AGENTS[coop],)

    def inputs(self, study) -> dict[str, str]:
        """What a study reads besides its declaration: the checkpoint of each saved agent
        (``agent_dir``), by content, so a rerun after that agent was trained again is refused."""
        dirs = [v for n, v in study.fixed if n == "agent_dir"] + [v for n, vs in study.axes if n == "agent_dir"
                                                                   for v in vs]
        out = {}
        for d in dirs:
            if d and (Path(d) / CHECKPOINT).is_file():
                out[f"agent_dir={d}"] = hashlib.sha256((Path(d) / CHECKPOINT).read_bytes()).hexdigest()
        return out

    def padded(self, study) -> tuple[str, ...]:
        """``("horizon",)``: the horizons of a group run as one program padded to the longest,
        each point masked to its own (``episode_steps``; metrics and trainings bit for bit
        those of an env of that horizon). Not when the study sets ``episode_steps`` itself
        or trains once at the base scenario (``train_on = "base"``: one training per horizon)."""
        declared = {n: vs for n, vs in study.axes} | {n: (v,) for n, v in study.fixed}
        if "episode_steps" in declared or "base" in declared.get("train_on", ()):
            return ()
        return ("horizon",)

    def default_policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """The coop table's baselines (cooperative) or the noncoop table's."""
        return DEFAULT_COOP if shape["cooperative"] else DEFAULT_NONCOOP

    def keys(self, seed: int, n: int) -> jax.Array:
        """``n`` episode keys split from ``PRNGKey(seed)``."""
        return jax.random.split(jax.random.PRNGKey(seed), n)

    def group(self, shape, fixed_params, policies, n_seeds, devices) -> Runner:
        """The runner of one (n_msps, heads, horizon, cooperative) group."""
        return Runner(shape, fixed_params, policies, n_seeds, devices)


ADAPTER = CivicAdapter()
