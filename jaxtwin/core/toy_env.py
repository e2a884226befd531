"""A tiny continuous-control task: steer a point to a target in ``[-1, 1]^d``.

Meant for tests, docs and learner sanity checks: it has a flat Box action in
``[-1, 1]^d``, flat float32 observations, and both ways an episode can end —
*termination* when the point gets within ``goal_radius`` of the target, and
*truncation* after ``max_steps`` steps.

Dynamics: ``x' = clip(x + step_size * a, -1, 1)``. Reward: the progress
``|x - g| - |x' - g|`` plus ``goal_bonus`` on reaching the target, so an
episode's return is about the initial distance plus the bonus when solved and
near zero for a random policy. Observation: ``[x, g - x, t / max_steps]``.

Actions are projected onto the admissible set: non-finite entries become 0
(stand still), the rest are clipped to ``[-1, 1]``; a wrong shape raises ``ValueError``.

A gymnax environment (:class:`jaxtwin.core.env.Environment`): ``name`` is
``"Point"``, ``num_actions`` the action dimension ``dim``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from jaxtwin.core.config import ConfigError
from jaxtwin.core.env import Environment
from jaxtwin.core.spaces import Box


@struct.dataclass
class PointParams:
    """Numeric constants of :class:`PointEnv`."""

    step_size: float = 0.2
    goal_radius: float = 0.15
    goal_bonus: float = 1.0
    max_steps: int = 32


@struct.dataclass
class PointState:
    """Position, target and step counter of one episode."""

    position: jax.Array
    target: jax.Array
    t: jax.Array


def project_action(action: jax.Array) -> jax.Array:
    """Admissible action: non-finite entries -> 0, then clipped to ``[-1, 1]``."""
    action = jnp.asarray(action, jnp.float32)
    return jnp.clip(jnp.where(jnp.isfinite(action), action, 0.0), -1.0, 1.0)


class PointEnv(Environment[PointState, PointParams]):
    """Point-to-target navigation in ``dim`` dimensions (see module docstring)."""

    def __init__(self, dim: int = 2):
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ConfigError(f"PointEnv.dim={dim!r}: must be an integer >= 1")
        self.dim = dim

    @property
    def name(self) -> str:
        """``"Point"``."""
        return "Point"

    @property
    def default_params(self) -> PointParams:
        """Defaults: step 0.2, goal radius 0.15, bonus 1, 32 steps."""
        return PointParams()

    def _obs(self, state: PointState, params: PointParams) -> jax.Array:
        frac = jnp.asarray(state.t, jnp.float32) / params.max_steps
        return jnp.concatenate([state.position, state.target - state.position, frac[None]])

    def reset_env(self, key: jax.Array, params: PointParams):
        """Position and target drawn uniformly in ``[-1, 1]^dim``."""
        key_pos, key_target = jax.random.split(key)
        state = PointState(
            position=jax.random.uniform(key_pos, (self.dim,), jnp.float32, -1.0, 1.0),
            target=jax.random.uniform(key_target, (self.dim,), jnp.float32, -1.0, 1.0),
            t=jnp.asarray(0, jnp.int32),
        )
        return self._obs(state, params), state

    def step_env(self, key: jax.Array, state: PointState, action: jax.Array,
                 params: PointParams):
        """Move, score progress, end on reaching the target or running out of time."""
        del key  # deterministic dynamics
        if jnp.shape(action) != (self.dim,):   # static, so checked under jit too
            raise ValueError(f"PointEnv action: expected shape ({self.dim},), got {jnp.shape(action)}")
        action = project_action(action)
        position = jnp.clip(state.position + params.step_size * action, -1.0, 1.0)
        dist_before = jnp.linalg.norm(state.target - state.position)
        dist_after = jnp.linalg.norm(state.target - position)
        terminated = dist_after <= params.goal_radius
        reward = dist_before - dist_after + params.goal_bonus * terminated
        new_state = PointState(position=position, target=state.target, t=state.t + 1)
        truncated = jnp.logical_and(new_state.t >= params.max_steps, ~terminated)
        info = {"distance": dist_after}
        return (self._obs(new_state, params), new_state, reward.astype(jnp.float32),
                terminated, truncated, info)

    def action_space(self, params: PointParams | None = None) -> Box:
        """Velocity command in ``[-1, 1]^dim``."""
        return Box(low=-1.0, high=1.0, shape=(self.dim,))

    def observation_space(self, params: PointParams | None = None) -> Box:
        """``[x, g - x, t/T]``: ``2 * dim + 1`` floats."""
        low = jnp.concatenate([-jnp.ones(self.dim), -2.0 * jnp.ones(self.dim), jnp.zeros(1)])
        high = jnp.concatenate([jnp.ones(self.dim), 2.0 * jnp.ones(self.dim), jnp.ones(1)])
        return Box(low=low, high=high, shape=(2 * self.dim + 1,))
