"""CIVIC baseline policies (spec §6) and the vectorised evaluation engine (§7).

A policy is ``policy(key, obs, state, params) -> action`` with the action a flat
vector in ``[-1, 1]`` as :class:`~jaxtwin.civic.env.CivicEnv` expects; baselines
may read the environment state (clients, SLA accuracy). All are jittable.

Evaluation: :func:`make_evaluator` runs every policy x seed of one scenario as a
single jitted program (``lax.map`` over the policy index, ``vmap`` over seeds,
the policy picked by ``lax.switch``, one episode a ``lax.scan``) and returns per-episode metrics.
Every policy sees the same keys, hence the same clients and requests (common
random numbers).
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

from jaxtwin.core.stats import gini, value_range
from jaxtwin.civic import model as cm
from jaxtwin.civic.env import CivicEnv, CivicState, EnvParams

Policy = Callable[[jax.Array, jax.Array, CivicState, EnvParams], jax.Array]

BASELINE_NAMES = ("Random", "Saving", "Average", "Max", "Myopic-Optimal",
                  "Avg-GCP", "Max-GCP", "Random-GCP")
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


def _myopic(env: CivicEnv) -> Policy:
    """Per step and Head the cheapest grid point meeting the threshold (else the best ``I``)."""

    def policy(key, obs, state, params):
        r = env.rooms(params)
        B, f, k, *_ = cm.myopic_optimal(r, state.eps, state.clients, params.threshold,
                                        params.constants, env.grid_sizes)
        return env.encode_allocation(B, f, k, 0.0, params)

    return policy


def make_baseline(name: str, env: CivicEnv) -> Policy:
    """The baseline ``name`` (one of :data:`BASELINE_NAMES`) for ``env``.

    ``Saving``/``Average``/``Max`` put every Head at the minimum / mid-range /
    maximum of each range (``Average`` is the projected mid-point). Non-GCP
    policies donate nothing (``delta = 0``); ``*-GCP`` donate all surplus
    (``delta = 1``); withdrawals are automatic in the cooperative env.
    """
    table = {
        "Random": lambda: _random(env, False),
        "Saving": lambda: _constant(env, -1.0, False),
        "Average": lambda: _constant(env, 0.0, False),
        "Max": lambda: _constant(env, 1.0, False),
        "Myopic-Optimal": lambda: _myopic(env),
        "Avg-GCP": lambda: _constant(env, 0.0, True),
        "Max-GCP": lambda: _constant(env, 1.0, True),
        "Random-GCP": lambda: _random(env, True),
    }
    if name not in table:
        raise ValueError(f"make_baseline: unknown policy {name!r}; choose from {BASELINE_NAMES}")
    if name.endswith("-GCP") and not env.cooperative:
        raise ValueError(f"make_baseline: {name!r} needs a cooperative CivicEnv")
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


# ------------------------------------------------------------- evaluation
METRIC_NAMES = ("completion_pct", "fulfillment_served_pct", "fulfillment_requests_pct",
                "requests", "served", "fulfilled", "served_clients", "requested_clients",
                "failed_clients", "total_cost", "mean_immersion", "range", "gini",
                "episode_return", "gcp_final", "credit_error")
"""Per-episode metrics returned by :func:`episode_metrics` / :func:`make_evaluator`."""


def episode_metrics(state: CivicState, episode_return) -> dict[str, jax.Array]:
    """Per-episode metrics from a final (not auto-reset) state.

    Completion = served / requests, fulfillment = fulfilled / served and
    fulfilled / requests (percent; 0 when the denominator is 0); fairness
    (range, Gini) over completed requests per MSP.
    """
    req = jnp.sum(state.n_requests)
    served = jnp.sum(state.n_served)
    fulfilled = jnp.sum(state.n_fulfilled)
    pct = lambda a, b: jnp.where(b > 0, 100.0 * a / jnp.maximum(b, 1), 0.0)  # noqa: E731
    per_msp = state.n_served.astype(jnp.float32)
    return {
        "completion_pct": pct(served, req),
        "fulfillment_served_pct": pct(fulfilled, served),
        "fulfillment_requests_pct": pct(fulfilled, req),
        "requests": req,
        "served": served,
        "fulfilled": fulfilled,
        "served_clients": state.served_clients,
        "requested_clients": state.requested_clients,
        "failed_clients": state.requested_clients - state.served_clients,
        "total_cost": state.cost_sum,
        "mean_immersion": jnp.where(served > 0, state.immersion_sum / jnp.maximum(served, 1), 0.0),
        "range": value_range(per_msp),
        "gini": gini(per_msp),
        "episode_return": episode_return,
        "gcp_final": state.gcp,
        "credit_error": jnp.sum(state.budget) + state.gcp + state.spent - jnp.sum(state.initial_budget),
    }


def run_episode(env: CivicEnv, policy: Policy, key: jax.Array, params: EnvParams):
    """One full-horizon episode (``T`` raw steps, no auto-reset); returns
    ``(final_state, episode_return, per_step_info)``.

    Scores every step of the horizon: the early end (``stuck_limit``) is a
    training device, so evaluation keeps stepping (a stuck system keeps
    dropping requests) and policies are compared on the same requests.
    """
    params = params.replace(stuck_limit=0)
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset_env(key_reset, params)

    def one_step(carry, step_key):
        obs, state, ret = carry
        key_act, key_env = jax.random.split(step_key)
        action = policy(key_act, obs, state, params)
        obs, state, reward, _, _, info = env.step_env(key_env, state, action, params)
        return (obs, state, ret + reward), info

    (_, state, ret), infos = jax.lax.scan(
        one_step, (obs, state, jnp.asarray(0.0, jnp.float32)),
        jax.random.split(key_steps, env.horizon))
    return state, ret, infos


def make_evaluator(env: CivicEnv, policies: Sequence[Policy]):
    """``evaluate(keys, params) -> metrics`` with arrays of shape ``(n_policies, n_seeds)``.

    One jitted program: ``lax.map`` over policies (``lax.switch`` on the index),
    ``vmap`` over seeds (``keys``, shared by all policies).
    """
    policies = tuple(policies)

    def switched(key, obs, state, params, index):
        return jax.lax.switch(index, [lambda k, o, s, p, pol=pol: pol(k, o, s, p) for pol in policies],
                              key, obs, state, params)

    def one(index, key, params):
        pol = lambda k, o, s, p: switched(k, o, s, p, index)  # noqa: E731
        state, ret, _ = run_episode(env, pol, key, params)
        return episode_metrics(state, ret)

    per_seed = jax.vmap(one, in_axes=(None, 0, None))

    @jax.jit
    def evaluate(keys, params):
        # lax.map (not vmap) over policies keeps the switch index unbatched, so each
        # policy computes only its own branch (Myopic-Optimal is costly).
        return jax.lax.map(lambda i: per_seed(i, keys, params), jnp.arange(len(policies)))

    return evaluate
