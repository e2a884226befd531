"""The environment contract every jaxtwin environment follows (gymnax style).

An environment object holds only what fixes array shapes; every numeric
constant lives in an ``EnvParams`` pytree passed to each call, so scenarios can
be ``vmap``-ed. ``step`` auto-resets: when an episode ends the returned
observation/state belong to a fresh episode and ``info["final_observation"]``
holds the last observation of the finished one.
"""
from __future__ import annotations

from typing import Any, Generic, TypeVar

import jax
import jax.numpy as jnp

TState = TypeVar("TState")
TParams = TypeVar("TParams")


class Environment(Generic[TState, TParams]):
    """Base class: subclasses implement ``reset_env``, ``step_env`` and spaces.

    ``step_env`` returns ``(obs, state, reward, terminated, truncated, info)``
    for the raw transition; :meth:`step` adds the auto-reset.
    """

    @property

    def default_params(self) -> TParams:
        """The spec's default parameters."""
        raise NotImplementedError

    def reset_env(self, key: jax.Array, params: TParams) -> tuple[jax.Array, TState]:
        """Start an episode: ``(obs, state)``."""
        raise NotImplementedError

    def step_env(self, key: jax.Array, state: TState, action: Any, params: TParams):
        """One raw transition without auto-reset."""
        raise NotImplementedError

    def action_space(self, params: TParams | None = None):
        """Space of admissible actions."""
        raise NotImplementedError

    def observation_space(self, params: TParams | None = None):
        """Space of observations."""
        raise NotImplementedError

    def reset(self, key: jax.Array, params: TParams | None = None) -> tuple[jax.Array, TState]:
        """Start an episode with ``params`` (defaults if ``None``)."""
        params = self.default_params if params is None else params
        return self.reset_env(key, params)

    def step(self, key: jax.Array, state: TState, action: Any, params: TParams | None = None):
        """Step with auto-reset.

        Returns ``(obs, state, reward, terminated, truncated, info)``; when
        ``terminated | truncated`` the returned ``obs``/``state`` start a new
        episode and ``info["final_observation"]`` is the terminal observation.
        """
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs, new_state, reward, terminated, truncated, info = self.step_env(
            key_step, state, action, params
        )
        reset_obs, reset_state = self.reset_env(key_reset, params)
        done = jnp.logical_or(terminated, truncated)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, new_state)
        next_obs = jnp.where(done, reset_obs, obs)
        info = dict(info)
        info["final_observation"] = obs
        return next_obs, next_state, reward, terminated, truncated, info
