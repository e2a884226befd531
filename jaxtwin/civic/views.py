"""A discrete-action view of :class:`~jaxtwin.civic.env.CivicEnv` for code that
needs ``Discrete`` actions (PureJaxRL's ``ppo.py``, DQN, gymnax's
``StickyActionWrapper``).

The native action is a flat Box in ``[-1, 1]``: ``[B_1..B_H, f_1..f_H,
beta_1..beta_H]`` then, cooperative, ``[delta_1..delta_M]``. The view picks,
per Head, one **effort level** ``u`` from ``levels`` and writes it into that
Head's ``B``, ``f`` and ``beta`` entries: the env maps ``u`` affinely onto each
range, so a larger level means more bandwidth, frame rate and behavioural
accuracy — higher immersion and higher cost. In the cooperative setting it also
picks one donation fraction ``d`` from ``donations`` shared by every MSP
(native ``delta = 2d - 1``). With ``L`` levels, ``H`` Heads and ``D`` donation
choices (``D = 1`` without the GCP) there are ``L**H * D`` actions; the index
is mixed-radix, Head 0 most significant, the donation digit least::

    index = ((k_0 * L + k_1) * L + ... + k_{H-1}) * D + d

At the spec defaults the default levels ``(-1, 0.7, 0.85, 1)`` are the
cheapest allocation (immersion <= 0.13) and three settings around the 0.85
threshold: at the mean SLA accuracy they give immersion 0.80/0.82/0.88,
0.89/0.87/0.92 and 0.93/0.92/0.97 for Library/Arena/Gallery Heads.
"""
from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments import environment, spaces

from jaxtwin.civic.env import CivicEnv
from jaxtwin.core.config import ConfigError
from jaxtwin.core.spaces import discrete_index

DEFAULT_LEVELS = (-1.0, 0.7, 0.85, 1.0)
"""Per-Head effort levels (native action values) of :func:`discrete`."""
DEFAULT_DONATIONS = (0.0, 0.5)
"""Donation fractions of :func:`discrete` (cooperative setting)."""
MAX_ACTIONS = 65536
"""Largest action count :func:`discrete` builds (a categorical head that size is already large)."""


def _check_values(name: str, values, lo: float, hi: float) -> tuple[float, ...]:
    """A non-empty tuple of distinct finite floats in ``[lo, hi]``, or ``ConfigError`` naming ``name``."""
    try:
        vals = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ConfigError(f"discrete.{name}={values!r}: must be a sequence of numbers") from None
    if not vals:
        raise ConfigError(f"discrete.{name}={values!r}: must not be empty")
    for v in vals:
        if not (math.isfinite(v) and lo <= v <= hi):
            raise ConfigError(f"discrete.{name}={values!r}: every value must be finite in [{lo}, {hi}], got {v}")
    if len(set(vals)) != len(vals):
        raise ConfigError(f"discrete.{name}={values!r}: values must be distinct")
    return vals


class DiscreteCivic(environment.Environment):
    """``CivicEnv`` with a ``Discrete`` action (module doc for the encoding).

    Observation, reward, termination and params are the raw env's; ``reset`` and
    ``step`` delegate to it (auto-reset, ``info["final_observation"]``), so with
    the same keys the view follows the raw env fed :meth:`native_action`.
    """

    def __init__(self, env: CivicEnv, levels=DEFAULT_LEVELS, donations=DEFAULT_DONATIONS):
        if not isinstance(env, CivicEnv):
            raise TypeError(f"discrete(env): expected a CivicEnv, got {type(env).__name__}")
        self.env = env
        self.levels = _check_values("levels", levels, -1.0, 1.0)
        self.donations = _check_values("donations", donations, 0.0, 1.0) if env.cooperative else ()
        n = len(self.levels) ** env.n_heads * max(len(self.donations), 1)
        if n > MAX_ACTIONS:
            raise ConfigError(f"discrete.levels={levels!r}: {len(self.levels)} levels over "
                              f"{env.n_heads} Heads give {n} actions (> {MAX_ACTIONS}); use fewer levels")
        self._n = n
        self._table = jnp.asarray(self._action_table(), jnp.float32)

    def _action_table(self) -> np.ndarray:
        """``(num_actions, action_size)`` native actions, row ``i`` for index ``i``."""
        H, M = self.env.n_heads, self.env.n_msps
        rows = []
        for digits in itertools.product(range(len(self.levels)), repeat=H):
            u = [self.levels[k] for k in digits]
            for d in self.donations or (None,):
                delta = [] if d is None else [2.0 * d - 1.0] * M
                rows.append(u * 3 + delta)
        return np.asarray(rows, np.float32)

    @property
    def default_params(self):
        """The raw env's default ``EnvParams``."""
        return self.env.default_params

    @property
    def name(self) -> str:
        """Environment name."""
        return "CIVIC-Discrete"

    @property
    def num_actions(self) -> int:
        """``len(levels) ** n_heads * len(donations)`` (donations count 1 without the GCP)."""
        return self._n

    def action_space(self, params=None) -> spaces.Discrete:
        """``Discrete(num_actions)``."""
        return spaces.Discrete(self._n)

    def observation_space(self, params=None) -> spaces.Box:
        """The raw observation space as a gymnax ``Box``."""
        obs = self.env.observation_space(params)
        return spaces.Box(obs.low, obs.high, tuple(obs.shape), obs.dtype)

    def native_action(self, index) -> jax.Array:
        """The flat native action of a discrete ``index``.

        A concrete index that is not an integer in ``0..num_actions-1`` is
        rejected with ``ValueError``; a traced one (inside ``jit``/``vmap``) is
        projected: NaN -> 0, rounded, clipped.
        """
        return self._table[discrete_index(index, self._n, "CIVIC discrete")]

    def reset_env(self, key, params):
        """The raw env's episode start."""
        return self.env.reset_env(key, params)

    def reset(self, key, params=None):
        """``(obs, state)`` of a fresh episode."""
        return self.env.reset(key, self.default_params if params is None else params)

    def step_env(self, key, state, action, params):
        """The raw transition without auto-reset (in the raw env's ``step_env`` form)."""
        return self.env.step_env(key, state, self.native_action(action), params)

    def step(self, key, state, action, params=None):
        """``(obs, state, reward, terminated, truncated, info)`` with auto-reset (gymnax 1.x)."""
        params = self.default_params if params is None else params
        return self.env.step(key, state, self.native_action(action), params)


def discrete(env: CivicEnv | None = None, levels=DEFAULT_LEVELS,
             donations=DEFAULT_DONATIONS) -> DiscreteCivic:
    """A discrete-action gymnax view of ``env`` (default ``CivicEnv()``).

    ``levels``: per-Head effort levels, native action values in ``[-1, 1]``;
    ``donations``: donation fractions in ``[0, 1]`` shared by every MSP (ignored
    without the GCP). See the module doc for the encoding; bad values raise
    ``ConfigError`` naming the argument.
    """
    return DiscreteCivic(CivicEnv() if env is None else env, levels, donations)
