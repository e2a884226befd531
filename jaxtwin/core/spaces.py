"""Action and observation spaces (gymnax-style), pure and jittable."""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class Discrete:
    """Integers ``0 .. n-1``, optionally one per agent (``shape``)."""

    n: int = struct.field(pytree_node=False)
    shape: tuple[int, ...] = struct.field(pytree_node=False, default=())
    dtype: jnp.dtype = struct.field(pytree_node=False, default=jnp.int32)

    def sample(self, key: jax.Array) -> jax.Array:
        """Draw a uniform sample."""
        return jax.random.randint(key, self.shape, 0, self.n, dtype=self.dtype)

    def contains(self, x: jax.Array) -> jax.Array:
        """Boolean scalar: ``x`` has the right shape and every entry is in range."""
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all((x >= 0) & (x < self.n) & (x == jnp.round(x)))


@struct.dataclass
class Box:
    """Real vectors in ``[low, high]`` (bounds broadcast to ``shape``)."""

    low: jax.Array | float
    high: jax.Array | float
    shape: tuple[int, ...] = struct.field(pytree_node=False, default=())
    dtype: jnp.dtype = struct.field(pytree_node=False, default=jnp.float32)

    def sample(self, key: jax.Array) -> jax.Array:
        """Draw a uniform sample (bounds must be finite)."""
        return jax.random.uniform(
            key, self.shape, self.dtype,
            jnp.broadcast_to(jnp.asarray(self.low, self.dtype), self.shape),
            jnp.broadcast_to(jnp.asarray(self.high, self.dtype), self.shape),
        )

    def contains(self, x: jax.Array) -> jax.Array:
        """Boolean scalar: ``x`` has the right shape, is finite and within bounds."""
        x = jnp.asarray(x)
        if x.shape != self.shape:
            return jnp.asarray(False)
        return jnp.all(jnp.isfinite(x) & (x >= self.low) & (x <= self.high))


def box(low: float, high: float, shape: Sequence[int], dtype=jnp.float32) -> Box:
    """Convenience constructor for a :class:`Box` with scalar bounds."""
    return Box(low=low, high=high, shape=tuple(shape), dtype=dtype)
