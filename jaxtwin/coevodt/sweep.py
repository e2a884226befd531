"""Co-EvoDT on the study engine (:mod:`jaxtwin.core.engine`): the whole protocol
(random-policy baseline, forecaster pretraining, REINFORCE with evolution, the
champions' greedy evaluation) at every point x run, for each forecast mode.

Fields of :class:`~jaxtwin.coevodt.env.EnvParams` are leaves of the params
vmapped over points (one program per mode for the whole grid); scalar fields of
:class:`~jaxtwin.coevodt.protocol.ProtocolConfig` (``episodes``,
``episode_len``, ``pop_size``, ``policy_lr``, ...) and of its forecaster
(``forecast.epochs``, ``forecast.procedure``, ...) fix the program, so each
value is its own group. :data:`ADAPTER` starts from the spec's defaults;
``CoEvoDTAdapter(protocol, env, prng_impl)`` from an experiment's (how
``jaxtwin coevodt --sensitivity`` runs its study). The modes (``NoPred``,
``PretrainOnly``, ``Online``) are the study's policies; a run is a seed (run
``r`` uses key ``seed + r``, as ``jaxtwin coevodt``; every point gets the same
runs' draws: common random numbers). Metrics per run: the baseline's and the trained
champions' mean QoE, latency and cost over their episodes, and ``converged``.
"""
from __future__ import annotations

import dataclasses
import re
import typing
from typing import Any, Literal, Mapping

import jax
import jax.numpy as jnp

from jaxtwin.core import sharding
from jaxtwin.core.memory import Need, lanes_per_device
from jaxtwin.core.study import AxisField
from jaxtwin.coevodt.env import EnvParams, validate_params
from jaxtwin.coevodt.protocol import MODES, Protocol, ProtocolConfig
from jaxtwin.coevodt.sizes import program_need, run_terms

METRICS = ("baseline_qoe", "baseline_latency", "baseline_cost", "trained_qoe", "trained_latency",
           "trained_cost", "converged")
PRNG_IMPL = "unsafe_rbg"
FORECAST = "forecast."
_SET_OPTION = re.compile(r"--((?:forecast\.)?[a-z][a-z0-9-]*)")


def _as_field(match: re.Match) -> str:
    name = match.group(1).replace("-", "_")
    return match.group(0) if name in ("chunk", "seeds") else name


def _scalar_fields(config, prefix: str = "") -> dict[str, AxisField]:
    """Shape fields for the int, float and choice fields of a config dataclass (``prefix``: nested)."""
    out, hints = {}, typing.get_type_hints(type(config))
    for f in dataclasses.fields(config):
        v, name = getattr(config, f.name), prefix + f.name
        choices = typing.get_args(hints[f.name]) if typing.get_origin(hints[f.name]) is Literal else ()
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            out[name] = AxisField(name, type(v), v, "shape", f.metadata.get("help", ""), choices)
    return out


def _fields(env: EnvParams, proto: ProtocolConfig) -> dict[str, AxisField]:
    out = {}
    for f in dataclasses.fields(EnvParams):
        v = getattr(env, f.name)
        if isinstance(v, tuple):   # per-agent weights: a study sets every agent's
            out[f.name] = AxisField(f.name, float, float(v[0]), help="every agent's " + f.metadata.get("help", ""))
        else:
            out[f.name] = AxisField(f.name, float, float(v), help=f.metadata.get("help", ""))
    return {**out, **_scalar_fields(proto), **_scalar_fields(proto.forecast, FORECAST)}


def protocol_config(base: ProtocolConfig, shape: Mapping[str, Any]) -> ProtocolConfig:
    """``base`` with a group's shape fields (``forecast.<name>`` into its forecaster config);
    ``ConfigError`` names a bad value."""
    top = {k: v for k, v in shape.items() if not k.startswith(FORECAST)}
    forecast = {k[len(FORECAST):]: v for k, v in shape.items() if k.startswith(FORECAST)}
    return dataclasses.replace(base, **top, forecast=dataclasses.replace(base.forecast, **forecast))


class Runner:
    """One protocol-config group: per mode one program vmapped over points x runs."""

    metrics = METRICS

    def __init__(self, shape: Mapping[str, Any], modes: tuple[str, ...], n_runs: int, devices: int,
                 base: ProtocolConfig, env: EnvParams):
        self.policies, self.n_runs, self.devices, self.env = modes, n_runs, devices, env
        self.cfg = protocol_config(base, shape)
        self._calls = []
        for mode in modes:
            run = jax.vmap(jax.vmap(Protocol(self.cfg, mode).run, in_axes=(0, None)), in_axes=(None, 0))
            call = jax.jit(lambda p, k, run=run: self._metrics(run(k, p)))
            self._calls.append(sharding.sharded_call(call, devices, in_axes=(0, None)))

    def needs(self, chunk: int) -> list[Need]:
        """Peak bytes of each mode's programs for ``chunk`` points x runs (``coevodt.sizes``;
        the engine checks them before any work)."""
        lanes = lanes_per_device(chunk, self.devices) * self.n_runs   # points are sharded, runs are not
        needs = [program_need(terms, lanes, f"coevodt sweep: the {mode} {program} program of {chunk} points x "
                                            f"{self.n_runs} runs", "--chunk or --seeds")
                 for mode in self.policies for program, terms in run_terms(self.cfg, mode).items()]
        # a study sets these as fields (`--set baseline_episodes=...`), not as jaxtwin coevodt's options
        return [n._replace(option=_SET_OPTION.sub(_as_field, n.option)) for n in needs]

    @staticmethod
    def _metrics(res) -> dict[str, jax.Array]:
        out = {f"{s}_{m}": res[s][m].mean(-1) for s in ("baseline", "trained") for m in ("qoe", "latency", "cost")}
        out["converged"] = res["converged"]
        return out

    def params(self, values: Mapping[str, Any]) -> EnvParams:
        """The spec's env params with ``values``, checked (``ConfigError`` names the field)."""
        base = self.env
        values = {k: (v,) * len(getattr(base, k)) if isinstance(getattr(base, k), tuple) else v
                  for k, v in values.items()}
        return validate_params(base.replace(**values))

    def __call__(self, stacked_params: EnvParams, keys: jax.Array):
        per_mode = [jax.tree.map(jnp.asarray, call(stacked_params, keys)) for call in self._calls]
        return {m: jnp.stack([r[m] for r in per_mode], axis=1) for m in METRICS}   # [point, mode, run]


class CoEvoDTAdapter:
    """The study engine's view of Co-EvoDT (see the module doc)."""

    system = "coevodt"
    policy_label = "mode"
    seed_label = "run"
    stochastic = True
    default_seeds = 5
    plot_metrics = ("trained_qoe", "trained_latency", "trained_cost")
    metric_labels = {"trained_qoe": "trained QoE (mean per step)", "trained_latency": "trained latency (mean per step)",
                     "trained_cost": "trained cost (mean per step)"}

    def __init__(self, protocol: ProtocolConfig | None = None, env: EnvParams | None = None,
                 prng_impl: str = PRNG_IMPL):
        self.protocol, self.env = protocol or ProtocolConfig(), env or EnvParams()
        self.prng_impl = prng_impl
        self.fields = _fields(self.env, self.protocol)

    def policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """The three forecast modes."""
        return MODES

    def default_policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """NoPred (the cheapest; ask for ``all`` for the three modes)."""
        return ("NoPred",)

    def keys(self, seed: int, n: int) -> jax.Array:
        """Run ``r``'s key from ``seed + r`` (as ``jaxtwin coevodt``)."""
        return jnp.stack([jax.random.key(seed + r, impl=self.prng_impl) for r in range(n)])

    def group(self, shape, fixed_params, policies, n_seeds, devices) -> Runner:
        """The runner of one protocol-config group."""
        return Runner(shape, policies, n_seeds, devices, self.protocol, self.env)


ADAPTER = CoEvoDTAdapter()
