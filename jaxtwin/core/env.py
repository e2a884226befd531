"""The environment contract every jaxtwin environment follows: gymnax 1.x's.

:class:`Environment` subclasses ``gymnax.environments.environment.Environment``,
so gymnax's wrappers and code written for gymnax (PureJaxRL) take jaxtwin's
environments as they are: ``default_params`` is a property, ``name`` and
``num_actions`` exist, the spaces are gymnax's (:mod:`jaxtwin.core.spaces`),
and ``step`` returns gymnax 1.x's six values
``(obs, state, reward, terminated, truncated, info)`` with auto-reset.

An environment object holds only what fixes array shapes; every numeric
constant lives in an ``EnvParams`` pytree passed to each call, so scenarios can
be ``vmap``-ed.

One deliberate difference from gymnax's base class: a jaxtwin ``step_env``
returns the raw transition's six values itself, ``truncated`` included,
instead of gymnax's five values plus an ``is_truncated(state, params)`` hook.
The envs decide truncation inside the transition (CIVIC, for instance, reports
``truncated`` only when the horizon step did not also terminate), which a
state-only hook cannot express. :meth:`Environment.step` therefore overrides
gymnax's ``step`` with the same auto-reset and the same ``info`` keys.

Called on concrete values (a user stepping by hand, gymnax's
``GymnaxToGymWrapper``, which calls ``reset``/``step`` eagerly), ``reset`` and
``step`` run one compiled program per env shape instead of dispatching the
transition op by op: a CIVIC step takes ~0.4 s eagerly, and the wrapper's
first reset and step ~12 s. Inside a trace (``jit``/``vmap``, PureJaxRL, every
jaxtwin experiment) they are plain functions, traced into the caller's program.
Host-side checks (:meth:`Environment.check_params`,
:meth:`Environment.check_action`) run before the compiled call.
"""
from __future__ import annotations

from functools import partial
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment as gymnax_env

from jaxtwin.core.concrete import check_if_concrete, is_concrete
from jaxtwin.core.spaces import Discrete, MultiDiscrete

TState = TypeVar("TState")
TParams = TypeVar("TParams")


class Environment(gymnax_env.Environment[TState, TParams]):
    """Base class: subclasses implement ``default_params``, ``reset_env``,
    ``step_env`` (raw six-value transition), ``action_space`` and
    ``observation_space``, and may override ``name``.
    """

    @property
    def default_params(self) -> TParams:
        """The spec's default parameters."""
        raise NotImplementedError

    @property
    def num_actions(self) -> int:
        """Action count in gymnax's sense, read off ``action_space(default_params)``.

        A :class:`~gymnax.environments.spaces.Discrete` space gives its number
        of actions ``n``; a :class:`~jaxtwin.core.spaces.MultiDiscrete` space
        the number of choices per entry ``n`` (per agent for Co-EvoDT); a
        continuous Box the action dimension ``prod(shape)``, as gymnax's own
        continuous environments report it (``Pendulum-v1``: 1).
        """
        space = self.action_space(self.default_params)
        if isinstance(space, (Discrete, MultiDiscrete)):
            return int(space.n)
        return int(np.prod(space.shape))

    def reset_env(self, key: jax.Array, params: TParams) -> tuple[jax.Array, TState]:
        """Start an episode: ``(obs, state)``."""
        raise NotImplementedError

    def step_env(self, key: jax.Array, state: TState, action: Any, params: TParams):
        """One raw transition without auto-reset:
        ``(obs, state, reward, terminated, truncated, info)``."""
        raise NotImplementedError

    def action_space(self, params: TParams | None = None):
        """Space of admissible actions (a gymnax space)."""
        raise NotImplementedError

    def observation_space(self, params: TParams | None = None):
        """Space of observations (a gymnax space)."""
        raise NotImplementedError

    def check_params(self, params: TParams) -> None:
        """Host-side check of concrete ``params``: raise
        :class:`~jaxtwin.core.config.ConfigError` naming the bad field. :meth:`reset`
        and :meth:`step` call it on the params passed to them when no leaf is a
        tracer (:func:`jaxtwin.core.concrete.check_if_concrete`: no cost inside
        ``jit``/``vmap``). The default accepts anything."""

    def check_action(self, action: Any) -> None:
        """Host-side check of a concrete action given to :meth:`step` (before the compiled
        call; raise ``ValueError`` naming what is wrong). The default accepts anything;
        traced actions are the env's ``step_env``'s to check or project."""

    def _given_params(self, params: TParams | None) -> TParams:
        """``params`` checked by :meth:`check_params`, or the defaults if ``None``."""
        return self.default_params if params is None else check_if_concrete(self.check_params, params)

    def reset(self, key: jax.Array, params: TParams | None = None) -> tuple[jax.Array, TState]:
        """Start an episode with ``params`` (defaults if ``None``; concrete params are
        checked by :meth:`check_params`; concrete calls run compiled, see the module doc)."""
        params = self._given_params(params)
        if is_concrete((key, params)) and _hashable(self):
            return _compiled_reset(self, key, params)
        return self.reset_env(key, params)

    def step(self, key: jax.Array, state: TState, action: Any, params: TParams | None = None):
        """Step with auto-reset (gymnax 1.x semantics).

        Returns ``(obs, state, reward, terminated, truncated, info)``. The key
        is split into ``(key_step, key_reset)``; when ``terminated | truncated``
        the returned ``obs``/``state`` are ``reset_env(key_reset)``'s, a fresh
        episode. ``info`` is ``step_env``'s plus, as in gymnax,
        ``final_observation`` (the raw transition's observation, the terminal
        one when the episode ended) and ``terminated``/``truncated`` (kept for
        code behind gymnax's ``LegacyStepAPIWrapper``, which folds them into
        one ``done``). Concrete ``params`` are checked by :meth:`check_params`.
        """
        params = self._given_params(params)
        if is_concrete((key, state, action, params)) and _hashable(self):
            self.check_action(action)
            if isinstance(action, (list, tuple)):   # one array, not a pytree of scalars, as traced
                action = np.asarray(action)
            return _compiled_step(self, key, state, action, params)
        return self._auto_reset_step(key, state, action, params)

    def _auto_reset_step(self, key, state, action, params):
        """:meth:`step` after its host-side checks."""
        key_step, key_reset = jax.random.split(key)
        obs, new_state, reward, terminated, truncated, info = self.step_env(
            key_step, state, action, params
        )
        reset_obs, reset_state = self.reset_env(key_reset, params)
        done = jnp.logical_or(terminated, truncated)
        next_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), reset_state, new_state)
        next_obs = jnp.where(done, reset_obs, obs)
        info = {**info, "final_observation": obs, "terminated": terminated, "truncated": truncated}
        return next_obs, next_state, reward, terminated, truncated, info


def _hashable(env: Environment) -> bool:
    """Whether ``env`` can key the compiled programs (an env class that defines ``__eq__``
    without ``__hash__`` cannot; its concrete calls then run op by op)."""
    try:
        hash(env)
    except TypeError:
        return False
    return True


# One program per env (by its hash: CIVIC's by shape) and argument shapes; the env is static.
@partial(jax.jit, static_argnums=0)
def _compiled_reset(env: Environment, key, params):
    return env.reset_env(key, params)


@partial(jax.jit, static_argnums=0)
def _compiled_step(env: Environment, key, state, action, params):
    return env._auto_reset_step(key, state, action, params)
