"""Direct-method verification of equilibria (spec §5).

Controls live on the same time grid as the PMP solution; a player's payoff is
the discounted integral from a differentiable ODE solve
(:func:`jaxtwin.syncgame.replicator.simulate`, reverse mode through
``RecursiveCheckpointAdjoint``). A unilateral best response is searched by
projected gradient ascent (optax Adam, iterates clipped to ``[0, u_max]``)
from the equilibrium path; the best payoff seen is kept. An equilibrium
passes when no player's gain exceeds a small tolerance.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import optax

from jaxtwin.syncgame.params import SyncParams, call_float64
from jaxtwin.syncgame.replicator import simulate


class DeviationCheck(NamedTuple):
    """Per checked player: payoff on the equilibrium path, best deviation payoff,
    the gain (best - equilibrium, >= 0 up to rounding) and the best path found."""

    players: jax.Array
    equilibrium_payoff: jax.Array
    best_payoff: jax.Array
    gain: jax.Array
    best_controls: jax.Array


def payoff_of_controls(params: SyncParams, ts: jax.Array, us: jax.Array, substeps: int = 1) -> jax.Array:
    """Discounted payoffs ``(M,)`` of control paths ``us`` ``(K, M)`` on grid ``ts``."""
    return simulate(params, ts, us, substeps=substeps).payoffs


def best_response_gain(params: SyncParams, ts: jax.Array, us: jax.Array, player, *, steps: int = 300,
                       learning_rate: float = 0.05, substeps: int = 1):
    """Projected Adam ascent on ``player``'s path with the others fixed; returns
    ``(equilibrium payoff, best payoff, best path)``."""
    def payoff(v):
        return payoff_of_controls(params, ts, us.at[:, player].set(v), substeps)[player]

    opt = optax.adam(learning_rate)
    v0 = us[:, player]
    p0 = payoff(v0)
    grad_fn = jax.value_and_grad(payoff)

    def step(carry, _):
        v, state, best_v, best_p = carry
        val, g = grad_fn(v)
        better = val > best_p
        best_v, best_p = jnp.where(better, v, best_v), jnp.where(better, val, best_p)
        upd, state = opt.update(-g, state, v)
        v = jnp.clip(optax.apply_updates(v, upd), 0.0, params.u_max)
        return (v, state, best_v, best_p), None

    (v, _, best_v, best_p), _ = jax.lax.scan(step, (v0, opt.init(v0), v0, p0), None, length=steps)
    p_last = payoff(v)
    best_v, best_p = jnp.where(p_last > best_p, v, best_v), jnp.maximum(p_last, best_p)
    return p0, best_p, best_v


def check_deviations(params: SyncParams, ts: jax.Array, us: jax.Array, players: Sequence[int],
                     steps: int = 300, learning_rate: float = 0.05, substeps: int = 1) -> DeviationCheck:
    """:func:`best_response_gain` for each listed player (one ``vmap``)."""
    idx = jnp.array(players)
    p0, best, paths = jax.vmap(lambda i: best_response_gain(params, ts, us, i, steps=steps,
                                                            learning_rate=learning_rate, substeps=substeps))(idx)
    return DeviationCheck(idx, p0, best, best - p0, paths)


def verify_equilibrium(params: SyncParams, ts, us, players: Sequence[int], *, steps: int = 300,
                       learning_rate: float = 0.05, substeps: int = 1) -> DeviationCheck:
    """float64 entry point of :func:`check_deviations` (compiled once per players and settings)."""
    return call_float64(check_deviations, params, ts, us,
                        static=(tuple(int(i) for i in players), steps, learning_rate, substeps))
