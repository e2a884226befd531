"""CIVIC evaluation engine (spec §7): full-horizon episodes of any policies and
their per-episode metrics.

:func:`make_evaluator` runs every policy x seed of one scenario as a single
jitted program (:func:`policy_metrics` is the same program unjitted, for callers
that vmap it over scenarios) (``lax.map`` over the policy index, ``vmap`` over seeds, the
policy picked by ``lax.switch``, one episode a ``lax.scan``) and returns
per-episode metrics. Every policy sees the same keys, hence the same clients
and requests (common random numbers). Policies follow
:data:`jaxtwin.civic.baselines.Policy`.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

from jaxtwin.core.stats import gini, value_range
from jaxtwin.civic.baselines import Policy
from jaxtwin.civic.env import CivicEnv, CivicState, EnvParams

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
    """One full-horizon episode (``T`` raw steps, no auto-reset; in a program padded past
    ``params.episode_steps`` the extra steps change nothing); returns
    ``(final_state, episode_return, per_step_info)`` (the info of padded steps is not masked).

    Scores every step of the horizon: the early end (``stuck_limit``) is a
    training device, so evaluation keeps stepping (a stuck system keeps
    dropping requests) and policies are compared on the same requests.
    """
    params = params.replace(stuck_limit=0)
    key_reset, key_steps = jax.random.split(key)
    obs, state = env.reset_env(key_reset, params)

    steps = env.episode_steps(params)

    def one_step(carry, step_key):
        obs, state, ret = carry
        key_act, key_env = jax.random.split(step_key)
        action = policy(key_act, obs, state, params)
        new = env.step_env(key_env, state, action, params)
        live = state.t < steps   # past the episode's T (a padded horizon): nothing changes
        obs, state = jax.tree.map(lambda n, o: jnp.where(live, n, o), (new[0], new[1]), (obs, state))
        return (obs, state, ret + jnp.where(live, new[2], 0.0)), new[5]

    (_, state, ret), infos = jax.lax.scan(
        one_step, (obs, state, jnp.asarray(0.0, jnp.float32)),
        jax.random.split(key_steps, env.horizon))
    return state, ret, infos


def policy_metrics(env: CivicEnv, policies: Sequence[Policy]):
    """``run(keys, params) -> metrics`` of shape ``(n_policies, n_seeds)``: pure and
    unjitted, so callers may ``vmap`` it over params (the study engine) before ``jit``.

    ``vmap`` over seeds (``keys``, shared by all policies). The cheap policies share one
    episode program, ``lax.map`` over them with a ``lax.switch`` on the index in every
    step; a policy marked ``costly`` (Myopic-Optimal, Myopic-GCP: they enumerate the
    allocation grid every step) runs as an episode program of its own. The params are
    not checked: see :func:`check_policies`.
    """
    policies = tuple(policies)
    # Why costly policies are not switch branches: inside the per-step conditional XLA:CPU
    # ran them 2.5x slower (both Myopics, 16 seeds, 3 MSPs: 3.1 s against 1.25 s apart;
    # all nine baselines 2.6 s against 1.0 s, for 4 s more compile; results identical).
    costly = [i for i, pol in enumerate(policies) if getattr(pol, "costly", False)]
    cheap = [i for i in range(len(policies)) if i not in costly]
    branches = [policies[i] for i in cheap]

    def episodes(pol):
        def one(key, params):
            state, ret, _ = run_episode(env, pol, key, params)
            return episode_metrics(state, ret)
        return jax.vmap(one, in_axes=(0, None))

    def switched(index):
        return lambda k, o, s, p: jax.lax.switch(index, branches, k, o, s, p)

    def run(keys, params):
        out = {i: episodes(policies[i])(keys, params) for i in costly}
        if cheap:
            # lax.map (not vmap) over the cheap policies keeps the switch index unbatched,
            # so each policy computes only its own branch
            shared = jax.lax.map(lambda j: episodes(switched(j))(keys, params), jnp.arange(len(cheap)))
            out.update({i: jax.tree.map(lambda x, j=j: x[j], shared) for j, i in enumerate(cheap)})
        return jax.tree.map(lambda *xs: jnp.stack(xs), *[out[i] for i in range(len(policies))])

    return run


def check_policies(policies: Sequence[Policy], params: EnvParams) -> None:
    """Hand concrete ``params`` to each policy's ``validate`` where it has one, so a
    policy that cannot act under them (Myopic-Optimal built for a narrower room table)
    fails with a ``ConfigError`` instead of computing a wrong answer when compiled."""
    for pol in policies:
        if hasattr(pol, "validate"):
            pol.validate(params)


def make_evaluator(env: CivicEnv, policies: Sequence[Policy]):
    """``evaluate(keys, params) -> metrics`` with arrays of shape ``(n_policies, n_seeds)``:
    :func:`policy_metrics` jitted, after :func:`check_policies` on the (concrete) params.
    Under an outer ``jit`` (e.g. :func:`jaxtwin.core.sharding.sharded_call` over several
    devices) the params are traced and cannot be checked: validate first.
    """
    policies = tuple(policies)
    run = jax.jit(policy_metrics(env, policies))

    def evaluate(keys, params):
        check_policies(policies, params)
        return run(keys, params)

    return evaluate
