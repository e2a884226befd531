"""Oracle floor of the load forecast (spec coevodt §3, v2): the best forecast
possible under the model, ``E[l_{t+1} | v_t, l_t, c_t]`` under the uniformly
random baseline policy.

The oracle knows the state and the equations (:func:`jaxtwin.coevodt.env.transition`)
but not the next actions and noise. The expectation over the actions is exact:
the random policy picks each of the 27 joint actions with probability 1/27, so
the mean over all 27 is the expectation. The expectation over the virality and
load noise is Monte Carlo with ``n_samples`` standard-normal pairs per state,
shared by the 27 actions (common random numbers). Its sampling error makes the
reported floor slightly pessimistic: it adds the Monte Carlo variance of the
mean (at most about ``(0.02 / sqrt(n_samples))**2`` per transition) to the
MSE of the true conditional mean.
"""
from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp

from jaxtwin.coevodt.env import N_ACTIONS, N_AGENTS, EnvParams, EnvState, action_effects, transition

JOINT_ACTIONS = jnp.array(list(itertools.product(range(N_ACTIONS), repeat=N_AGENTS)), jnp.int32)
"""``int32[27, 3]``: every joint action (content, infra, user)."""


def expected_next_load(key: jax.Array, states: jax.Array, env_params: EnvParams,
                       n_samples: int) -> jax.Array:
    """``E[l' | v, l, c]`` for ``states f32[n, 3]`` (columns ``v, l, c``): ``f32[n]``.

    Quality and time do not enter the load update, so they are not needed.
    Loops (``lax.scan``) over the noise samples with a running sum, so memory
    stays ``O(n * 27)`` however many samples are drawn.
    """
    n = states.shape[0]
    effects = jax.vmap(lambda a: action_effects(a, env_params))(JOINT_ACTIONS)  # 3 x f32[27]
    state = EnvState(virality=states[:, 0, None], load=states[:, 1, None], capacity=states[:, 2, None],
                     quality=jnp.zeros((n, 1)), time=jnp.zeros((n, 1), jnp.int32))
    promo, infra, engage = (e[None, :] for e in effects)

    def add(total, z):
        nxt = transition(state, promo, infra, engage, z[:, 0, None], z[:, 1, None], env_params)
        return total + nxt.load.mean(axis=1), None

    z = jax.random.normal(key, (n_samples, n, 2))
    total, _ = jax.lax.scan(add, jnp.zeros((n,), jnp.float32), z)
    return total / n_samples
