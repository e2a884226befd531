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

Trained agents: the policies ``DRL-GCP`` (cooperative) and ``DRL`` train PPO at every
point (in a pooled group ``DRL`` trains without the pool, on the point's scenario and
budgets, and then plays in the pooled env, as the coop table's DRL), ``train_seeds``
learners per point, all the learners of a chunk of points as one vmapped program
(:func:`jaxtwin.civic.agents.train_agents`), then evaluates each deterministically on
the baselines' episode keys. The training keys are the same at every point (common
random numbers across points, like the episodes). Its rows carry ``train_seed``; the
summary's CIs for it are across trainings. With an output folder a chunk's trainings are
checkpointed after each of the agent's chunks (``AgentConfig``'s default 4) in
``OUT/work/gGGG/cCCCC/agent/`` (``agent-DRL/`` for DRL in a pooled group; learner
``j * train_seeds + s``: the chunk's point ``j``, training ``s``; ``train_metrics.csv`` holds
the training curves, :func:`training_curves` reads them), so an interrupted sweep
resumes mid-training. The coop and noncoop experiments are studies that train this way;
tolerance and withdraw evaluate a saved agent (below). The ``agent.*`` fields
(:class:`~jaxtwin.civic.agents.AgentConfig`), ``train_seeds`` and ``observe_sla`` are
shape fields: each value its own program. With ``train_on = "base"`` the agent trains
once per shape group, at the base scenario (the defaults with the study's ``fixed``
values), and that one agent is evaluated at every point: the robustness of a trained
agent across a grid. With ``agent_dir`` nothing trains: the finished agent saved in that
folder (by ``jaxtwin civic train --out DIR`` or an experiment, under its own
``agent.json`` config) plays at every point, all its learners, on the same episode keys;
it must fit the group's MSPs, Heads and observation (any horizon; a non-cooperative
agent may play in a pooled env, as ``DRL``). The study's record holds the checkpoint's
content hash, so a rerun after that agent was trained again is refused.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any, Mapping

import jax

import jax.numpy as jnp
import numpy as np

from jaxtwin.core import engine, sharding
from jaxtwin.core.config import ConfigError
from jaxtwin.core.memory import Need
from jaxtwin.core.study import AxisField, REPLICATE_MARK, Study, expand
from jaxtwin.civic.agents import (CHECKPOINT, AgentConfig, agent_actor, learner, load_saved_agent,
                                  read_training_metrics, saved_agent_record, train_agents)
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
                           "(`jaxtwin civic train --out DIR`, an experiment's agents/<name>, a study's "
                           "work/.../agent) at every point "
                           "instead of training: all its learners, under its own config"),
    "train_on": AxisField("train_on", str, "point", "shape", "where DRL/DRL-GCP train: at every point, or "
                          "once per group at the base scenario (the study's fixed values) and evaluated at "
                          "every point", ("point", "base")),
    **{f"agent.{f.name}": AxisField(f"agent.{f.name}", type(getattr(AgentConfig(), f.name)),
                                    getattr(AgentConfig(), f.name), "shape", f.metadata.get("help", ""))
       for f in dataclasses.fields(AgentConfig)},
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


def agent_fixed(agent: AgentConfig, train_seeds: int) -> tuple[tuple[str, Any], ...]:
    """A study's ``fixed`` for ``train_seeds`` trainings per point under ``agent``."""
    return (("train_seeds", train_seeds),
            *((f"agent.{f.name}", getattr(agent, f.name)) for f in dataclasses.fields(AgentConfig)))


def training_curves(study: Study, out_dir: str | Path, folder: str = AGENT_FOLDER
                    ) -> list[tuple[dict[str, Any], dict[str, np.ndarray]]]:
    """Per point of ``study``, run into ``out_dir`` with a trained agent among its policies: the
    point's axis values and its trainings' curves (``train_metrics.csv`` in its chunk's work
    ``folder``, :func:`agent_folder`: learners ``j * train_seeds`` ... of the chunk's point
    ``j``), arrays ``(train_seeds, updates)``."""
    fixed, points = dict(study.fixed), expand(study)
    out = []
    for i, (work, j) in sorted(engine.work_folders(study, ADAPTER, out_dir).items()):
        L = int(points[i].get("train_seeds", fixed.get("train_seeds", SHAPE_FIELDS["train_seeds"].default)))
        m = read_training_metrics(work / folder)
        out.append((points[i], {k: v[j * L:(j + 1) * L] for k, v in m.items()}))
    return out


def _with(params: EnvParams, values: Mapping[str, Any]) -> EnvParams:
    top = {k: v for k, v in values.items() if "." not in k}
    consts = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("constants.")}
    params = params.replace(**top)
    return params.replace(constants=params.constants.replace(**consts)) if consts else params


class Runner:
    """One CIVIC shape group: every baseline x seed at each point in one vmapped program;
    with trained agents among the policies, their trainings and their evaluation too."""

    metrics = METRIC_NAMES
    checkpoints = True   # the engine passes each chunk's folder: trainings resume from their checkpoints

    def __init__(self, shape: Mapping[str, Any], fixed_params: Mapping[str, Any], policies: tuple[str, ...],
                 n_seeds: int, devices: int):
        self.n_seeds, self.devices = n_seeds, devices
        self.env = CivicEnv(shape["n_msps"], shape["heads_per_msp"], shape["horizon"],
                            cooperative=shape["cooperative"], observe_sla=shape["observe_sla"])
        saved_name, saved = (self._saved_learners(shape["agent_dir"], policies) if shape["agent_dir"]
                             else (None, {}))
        # name -> the env it trains in: DRL in a pooled group trains without the pool, on the
        # point's scenario and budgets, and plays in the pooled env (the coop table's DRL)
        envs = {} if saved_name else self._training_envs()
        self.trained = {n: envs[n] for n in policies if n in envs}   # in the declared order
        self.baselines = tuple(p for p in policies if p != saved_name and p not in self.trained)
        self.n_train = shape["train_seeds"] if self.trained else 0
        if self.trained and self.n_train < 1:
            raise ConfigError(f"study field train_seeds={shape['train_seeds']}: must be >= 1 to train "
                              + " and ".join(self.trained))
        self.policies = (self.baselines + tuple(saved)
                         + tuple(f"{n}{REPLICATE_MARK}{s}" for n in self.trained for s in range(self.n_train)))
        self._pols = [make_baseline(n, self.env) for n in self.baselines] + list(saved.values())
        call = jax.jit(jax.vmap(policy_metrics(self.env, self._pols), in_axes=(None, 0)))
        self._call = sharding.sharded_call(lambda p, k: call(k, p), devices, in_axes=(0, None))
        if self.trained:
            self.agent = AgentConfig(**{k.split(".", 1)[1]: v for k, v in shape.items() if k.startswith("agent.")})
            self._agent_calls = {n: sharding.sharded_call(self._agent_metrics(e), devices, in_axes=(0, 0, None))
                                 for n, e in self.trained.items()}
        self.base = self.params(fixed_params) if self.trained and shape["train_on"] == "base" else None
        self._base_nets: dict[str, Any] = {}

    def _training_envs(self) -> dict[str, CivicEnv]:
        env = self.env
        if not env.cooperative:
            return {"DRL": env}
        return {"DRL-GCP": env, "DRL": CivicEnv(env.n_msps, env.heads_per_msp, env.horizon, cooperative=False,
                                                observe_sla=env.observe_sla)}

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

    def _agent_metrics(self, trained_env: CivicEnv):
        """``metrics[point, learner, seed]`` of the deterministic actors trained in ``trained_env``,
        playing in the group's env: one jitted program."""
        policy_of = agent_actor(self.env, self.agent, trained_env=trained_env)

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
        learners = self.n_train if self.base is not None else chunk * self.n_train
        for name, e in self.trained.items():
            out.append(Need(learners * ppo_bytes(e.n_msps, e.heads_per_msp, e.cooperative, self.agent,
                                                 e.observe_sla),
                            f"civic sweep: one PPO update of {learners} vmapped {name} learners "
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

    def _train(self, name: str, stacked_params: EnvParams, keys: jax.Array, workdir: Path | None,
               progress: bool):
        """Agent ``name``'s ``train_seeds`` learners per point of the chunk, one vmapped training
        checkpointed in ``workdir/<agent_folder(name)>`` (with ``train_on = "base"``: the base
        scenario's learners, trained once, under the group's ``base/``); nets ``[point, learner]``."""
        n, L, env = int(np.asarray(stacked_params.threshold).shape[0]), self.n_train, self.trained[name]
        seed_keys = jax.random.split(jax.random.fold_in(keys[0], 7), L)   # the same at every point
        folder = agent_folder(self.env, name)
        if self.base is not None:
            if name not in self._base_nets:
                ckpt = None if workdir is None else workdir.parent / "base" / folder
                self._base_nets[name], _ = train_agents(
                    env, [self.base] * L, self.agent, seed_keys, ckpt_dir=ckpt, progress=progress,
                    desc=f"train {name}, {_msps(env)}: base, {L} seeds")
            return jax.tree.map(lambda x: jnp.broadcast_to(x, (n,) + x.shape), self._base_nets[name])
        points = [jax.tree.map(lambda x: x[i], stacked_params) for i in range(n) for _ in range(L)]
        nets, _ = train_agents(env, points, self.agent, jnp.tile(seed_keys, (n, 1)),
                               ckpt_dir=None if workdir is None else workdir / folder, progress=progress,
                               desc=f"train {name}, {_msps(env)}: {n} points x {L} seeds")
        return jax.tree.map(lambda x: x.reshape((n, L) + x.shape[1:]), nets)

    def __call__(self, stacked_params: EnvParams, keys: jax.Array, workdir: Path | None = None,
                 progress: bool = False):
        parts = [self._call(stacked_params, keys)] if self._pols else []
        parts += [self._agent_calls[n](self._train(n, stacked_params, keys, workdir, progress),
                                       stacked_params, keys) for n in self.trained]
        if len(parts) == 1:
            return parts[0]
        return {m: jnp.concatenate([jnp.asarray(part[m]) for part in parts], axis=1) for m in self.metrics}


def _msps(env: CivicEnv) -> str:
    return f"{env.n_msps} MSP" + ("s" if env.n_msps != 1 else "")


def agent_folder(env: CivicEnv, name: str) -> str:
    """The folder, under a chunk's work folder, of agent ``name``'s trainings in a group of
    ``env``: ``agent`` for the group's own (DRL-GCP pooled, DRL otherwise); ``agent-DRL`` for
    DRL trained without the pool in a pooled group."""
    return AGENT_FOLDER if name == AGENTS[env.cooperative] else f"{AGENT_FOLDER}-{name}"


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
        """Every baseline (the ``-GCP`` ones need ``cooperative``) and the agents: trained
        (``DRL-GCP`` and ``DRL``, which trains without the pool, in a pooled group; ``DRL``
        otherwise), or the saved one of ``agent_dir`` (``DRL`` for a non-cooperative agent,
        also in a pooled env)."""
        pooled = shape["cooperative"]
        if shape.get("agent_dir"):
            agents = (AGENTS[bool(saved_agent_record(shape["agent_dir"])["scenario"]["cooperative"])],)
        else:
            agents = ("DRL", "DRL-GCP") if pooled else ("DRL",)
        return tuple(n for n in BASELINE_NAMES if pooled or not n.endswith("-GCP")) + agents

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
