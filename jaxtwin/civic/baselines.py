"""CIVIC baseline policies (spec §6).

A policy is ``policy(key, obs, state, params) -> action`` with the action a flat
vector in ``[-1, 1]`` as :class:`~jaxtwin.civic.env.CivicEnv` expects; baselines
may read the environment state (clients, SLA accuracy). All are jittable. The
evaluation engine that runs them is :mod:`jaxtwin.civic.evaluate`.
"""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp

from jaxtwin.core.config import ConfigError
from jaxtwin.civic import model as cm
from jaxtwin.civic.env import CivicEnv, CivicState, EnvParams

Policy = Callable[[jax.Array, jax.Array, CivicState, EnvParams], jax.Array]
"""``policy(key, obs, state, params) -> action``. A policy may also carry
``validate(params)``, which :func:`jaxtwin.civic.evaluate.make_evaluator` calls
on the concrete params before compiling (raising ``ConfigError`` if the policy
cannot act under them)."""

BASELINE_NAMES = ("Random", "Saving", "Average", "Max", "Myopic-Optimal",
                  "Avg-GCP", "Max-GCP", "Random-GCP", "Myopic-GCP")
"""Names accepted by :func:`make_baseline`."""


def _constant(env: CivicEnv, level: float, donate: bool) -> Policy:
    """Every allocation at ``level`` in ``[-1, 1]`` (projected by the env), delta 0 or 1."""
    alloc = jnp.full((3 * env.n_heads,), level, jnp.float32)
    delta = jnp.full((env.n_msps if env.cooperative else 0,), 1.0 if donate else -1.0, jnp.float32)
    action = jnp.concatenate([alloc, delta])

    def policy(key, obs, state, params):
        return action

    return policy


def _random(env: CivicEnv, donate: bool) -> Policy:
    """Uniform on the admissible integer / grid sets (each level equally likely)."""

    def policy(key, obs, state, params):
        r = env.rooms(params)
        k_b, k_f, k_beta = jax.random.split(key, 3)
        shape = (env.n_heads,)
        B = jax.random.randint(k_b, shape, 0, (r.B_max - r.B_min).astype(jnp.int32) + 1) + r.B_min
        f = jax.random.randint(k_f, shape, 0, (r.f_max - r.f_min).astype(jnp.int32) + 1) + r.f_min
        k = jax.random.randint(k_beta, shape, 0, cm.beta_levels(r))
        return env.encode_allocation(B, f, k, 1.0 if donate else 0.0, params)

    return policy


class _Myopic:
    """Per step and Head the cheapest grid point meeting the threshold (else the best ``I``).

    The grid's (static) size comes from the room table of the params the policy
    is built for; acting under a table with wider ranges would silently skip
    grid points, so :meth:`validate` refuses it (also on every call with
    concrete params; under ``jit`` the table is traced and the evaluator checks).
    """

    costly = True   # civic.evaluate.policy_metrics runs it as an episode program of its own

    def __init__(self, env: CivicEnv, params: EnvParams, donate: bool = False):
        self.env = env
        self.sizes = cm.grid_sizes(params.room_table)
        self.donate = 1.0 if donate else 0.0

    def validate(self, params: EnvParams) -> None:
        """``ConfigError`` if ``params.room_table`` needs a larger grid than the policy's."""
        if not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(params.room_table)):
            cm.require_grid_covers(params.room_table, self.sizes)

    def __call__(self, key, obs, state, params):
        self.validate(params)
        r = self.env.rooms(params)
        B, f, k, *_ = cm.myopic_optimal(r, state.eps, state.clients, params.threshold,
                                        params.constants, self.sizes)
        return self.env.encode_allocation(B, f, k, self.donate, params)


def make_baseline(name: str, env: CivicEnv, params: EnvParams | None = None) -> Policy:
    """The baseline ``name`` (one of :data:`BASELINE_NAMES`) for ``env``.

    ``Saving``/``Average``/``Max`` put every Head at the minimum / mid-range /
    maximum of each range (``Average`` is the projected mid-point). Non-GCP
    policies donate nothing (``delta = 0``); ``*-GCP`` donate all surplus
    (``delta = 1``); withdrawals are automatic in the cooperative env.
    ``Myopic-GCP`` (spec v2) is Myopic-Optimal's allocation with that GCP rule.
    ``params`` (default ``env.default_params``) sizes Myopic-Optimal's search
    grid from its room table; the other baselines read the params they act under.
    """
    table = {
        "Random": lambda: _random(env, False),
        "Saving": lambda: _constant(env, -1.0, False),
        "Average": lambda: _constant(env, 0.0, False),
        "Max": lambda: _constant(env, 1.0, False),
        "Myopic-Optimal": lambda: _Myopic(env, env.default_params if params is None else params),
        "Avg-GCP": lambda: _constant(env, 0.0, True),
        "Max-GCP": lambda: _constant(env, 1.0, True),
        "Random-GCP": lambda: _random(env, True),
        "Myopic-GCP": lambda: _Myopic(env, env.default_params if params is None else params, donate=True),
    }
    if name not in table:
        raise ConfigError(f"make_baseline: unknown policy {name!r}; choose from {BASELINE_NAMES}")
    if name.endswith("-GCP") and not env.cooperative:
        raise ConfigError(f"make_baseline: {name!r} needs a cooperative CivicEnv")
    return table[name]()


def from_actor(act: Callable[[Any, jax.Array, jax.Array], jax.Array], net_params: Any,
               *, no_donation: bool = False, env: CivicEnv | None = None) -> Policy:
    """Wrap a learned ``act(params, key, obs)`` as a :data:`Policy`.

    ``no_donation=True`` (needs ``env``) forces ``delta = 0``: a policy trained
    without the GCP can then act in a cooperative env.
    """

    def policy(key, obs, state, params):
        action = act(net_params, key, obs)
        if no_donation:
            action = action.at[3 * env.n_heads:].set(-1.0)
        return action

    return policy
