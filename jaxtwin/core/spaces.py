"""Action and observation spaces: gymnax's own classes, plus one it lacks.

Every jaxtwin environment returns ``gymnax.environments.spaces`` objects, so
gymnax's wrappers (``FlattenObservationWrapper``, ``StickyActionWrapper``,
``GymnaxToGymWrapper``, ...) and PureJaxRL-style code that reads
``space.n`` / ``space.shape`` / ``space.low`` / ``space.high`` accept them.

gymnax 1.0.1 has no multi-discrete space (its :class:`Discrete` is a scalar),
yet Co-EvoDT's action is one choice in ``{0, 1, 2}`` per agent.
:class:`MultiDiscrete` fills the gap as a minimal subclass of gymnax's
:class:`Box` with an integer dtype and bounds ``[0, n-1]``: that is how
gymnasium itself writes an integer box, gymnax's ``gymnax_space_to_gym_space``
converts it to ``gymnasium.spaces.Box(0, n-1, shape, int32)``, and wrappers
that only accept a scalar :class:`Discrete` (``StickyActionWrapper``) refuse it
up front instead of failing inside a ``scan``.

Note that gymnax's ``contains`` checks the range only (not the shape or the
dtype); :func:`conforms` checks all three.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from gymnax.environments.spaces import Box, Dict, Discrete, Space, Tuple
from jaxtwin.core.config import ConfigError

__all__ = ["Box", "Dict", "Discrete", "MultiDiscrete", "Space", "Tuple", "conforms"]


class MultiDiscrete(Box):
    """``shape`` independent integers, each in ``0 .. n-1`` (a gymnax :class:`Box`).

    ``low = 0`` and ``high = n - 1`` (inclusive, as for any Box); ``n`` is the
    number of choices per entry.
    """

    def __init__(self, n: int, shape: Sequence[int], dtype=jnp.int32):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"MultiDiscrete.n={n!r}: must be an integer >= 1")
        if not jnp.issubdtype(dtype, jnp.integer):
            raise ConfigError(f"MultiDiscrete.dtype={dtype!r}: must be an integer dtype")
        super().__init__(low=0, high=n - 1, shape=tuple(shape), dtype=dtype)
        self.n = n

    def __repr__(self) -> str:
        """``MultiDiscrete(n, shape, dtype)``."""
        return f"MultiDiscrete({self.n}, shape={self.shape}, dtype={np.dtype(self.dtype).name})"

    def sample(self, key: jax.Array) -> jax.Array:
        """Uniform integers (gymnax's Box would floor a uniform float and never draw ``n-1``)."""
        return jax.random.randint(key, self.shape, 0, self.n, dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        """Boolean scalar: every entry is an integer in ``0 .. n-1``."""
        x = jnp.asarray(x)
        return jnp.all((x >= 0) & (x < self.n) & (x == jnp.round(x)))


def conforms(space: Space, x) -> bool:
    """Host-side check that concrete ``x`` has the space's shape and dtype and lies in it.

    For a :class:`Discrete` or :class:`Box` (including :class:`MultiDiscrete`);
    gymnax's own ``contains`` checks only the range.
    """
    x = jnp.asarray(x)
    if tuple(x.shape) != tuple(space.shape) or x.dtype != jnp.dtype(space.dtype):
        return False
    return bool(jnp.all(jnp.isfinite(x))) and bool(space.contains(x))


def discrete_index(index, n: int, what: str) -> jax.Array:
    """``index`` as an ``int32`` scalar in ``0..n-1``, for discrete-action views.

    A concrete index that is not one integer in range raises ``ValueError``
    naming ``what``; a traced one (inside ``jit``/``vmap``) cannot be checked
    and is projected: NaN -> 0, rounded, clipped to ``0..n-1``.
    """
    if not isinstance(index, jax.core.Tracer):
        a = np.asarray(index)
        v = a.astype(np.float64) if a.shape == () and a.dtype != object else None
        if v is None or not (np.isfinite(v) and v == np.round(v) and 0 <= v < n):
            raise ValueError(f"{what} action={index!r}: must be one integer (shape ()) in 0..{n - 1}")
    elif jnp.shape(index) != ():
        raise ValueError(f"{what} action: shape must be (), got {jnp.shape(index)}")
    i = jnp.nan_to_num(jnp.asarray(index, jnp.float32), nan=0.0)
    return jnp.clip(jnp.round(i), 0, n - 1).astype(jnp.int32)
