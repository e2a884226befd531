"""CIVIC on the study engine (:mod:`jaxtwin.core.engine`): any grid over
:class:`~jaxtwin.civic.params.EnvParams` fields (and ``constants.<name>`` of
:class:`~jaxtwin.civic.model.ModelConstants`), with the baselines evaluated on
the same episode keys at every point (common random numbers).

Shape fields (each value its own compiled program): ``n_msps``,
``heads_per_msp``, ``horizon`` and ``cooperative``. Every other field is a leaf
of the params vmapped over points, so a grid over them runs as one program.
The defaults are the spec v2 scenario (``T_ref`` = 100, threshold 0.85,
``p_req`` 0.8, ``budget_factor`` 0.8) with 3 MSPs, one Head each, T = 100,
cooperative. Metrics: :data:`jaxtwin.civic.evaluate.METRIC_NAMES`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping

import jax

from jaxtwin.core import sharding
from jaxtwin.core.study import AxisField
from jaxtwin.civic.baselines import BASELINE_NAMES, make_baseline
from jaxtwin.civic.env import CivicEnv, EnvParams, validate_params
from jaxtwin.civic.evaluate import METRIC_NAMES, check_policies, policy_metrics
from jaxtwin.civic.model import ModelConstants

SHAPE_FIELDS = {
    "n_msps": AxisField("n_msps", int, 3, "shape", "MSPs"),
    "heads_per_msp": AxisField("heads_per_msp", int, 1, "shape", "Heads per MSP"),
    "horizon": AxisField("horizon", int, 100, "shape", "episode length T (steps)"),
    "cooperative": AxisField("cooperative", bool, True, "shape", "GCP credit pool on"),
}
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


def _with(params: EnvParams, values: Mapping[str, Any]) -> EnvParams:
    top = {k: v for k, v in values.items() if "." not in k}
    consts = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("constants.")}
    params = params.replace(**top)
    return params.replace(constants=params.constants.replace(**consts)) if consts else params


class Runner:
    """One CIVIC shape group: every policy x seed at each point in one vmapped program."""

    metrics = METRIC_NAMES

    def __init__(self, shape: Mapping[str, Any], policies: tuple[str, ...], devices: int):
        self.env = CivicEnv(shape["n_msps"], shape["heads_per_msp"], shape["horizon"],
                            cooperative=shape["cooperative"])
        self.policies = policies
        self._pols = [make_baseline(n, self.env) for n in policies]
        call = jax.jit(jax.vmap(policy_metrics(self.env, self._pols), in_axes=(None, 0)))
        self._call = sharding.sharded_call(lambda p, k: call(k, p), devices, in_axes=(0, None))

    def params(self, values: Mapping[str, Any]) -> EnvParams:
        """The env's defaults with ``values``, checked (``ConfigError`` names the field)."""
        p = validate_params(_with(self.env.default_params, values), self.env)
        check_policies(self._pols, p)
        return p

    def __call__(self, stacked_params: EnvParams, keys: jax.Array):
        return self._call(stacked_params, keys)


class CivicAdapter:
    """The study engine's view of CIVIC (see the module doc)."""

    system = "civic"
    policy_label = "policy"
    seed_label = "seed"
    stochastic = True
    default_seeds = 16
    plot_metrics = ("completion_pct", "fulfillment_requests_pct", "total_cost", "episode_return")
    metric_labels = METRIC_LABELS

    def __init__(self):
        self.fields = {**SHAPE_FIELDS, **_param_fields()}

    def policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """Every baseline (the ``-GCP`` ones need ``cooperative``)."""
        return tuple(n for n in BASELINE_NAMES if shape["cooperative"] or not n.endswith("-GCP"))

    def default_policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """The coop table's baselines (cooperative) or the noncoop table's."""
        return DEFAULT_COOP if shape["cooperative"] else DEFAULT_NONCOOP

    def keys(self, seed: int, n: int) -> jax.Array:
        """``n`` episode keys split from ``PRNGKey(seed)``."""
        return jax.random.split(jax.random.PRNGKey(seed), n)

    def group(self, shape, fixed_params, policies, n_seeds, devices) -> Runner:
        """The runner of one (n_msps, heads, horizon, cooperative) group."""
        return Runner(shape, policies, devices)


ADAPTER = CivicAdapter()
