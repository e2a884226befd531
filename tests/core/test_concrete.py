"""``compiled_when_concrete``: a user's call with concrete arrays runs one compiled program
(not one compile per primitive); inside another program the function is traced inline."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.core.concrete import compiled_when_concrete
from jaxtwin.core.engine import compilations


def _many_ops(x, scale):
    """Twenty primitives: op by op, each would compile on its own."""
    for k in range(10):
        x = jnp.sin(x) * scale + k
    return x


def test_a_concrete_call_is_one_program_and_a_traced_call_is_inline():
    fn = compiled_when_concrete(_many_ops, static_argnames=("scale",))
    assert fn.__doc__ == _many_ops.__doc__
    x, y = jnp.arange(3.0), jnp.ones(3)
    before = compilations()
    got = fn(x, scale=0.5)
    assert compilations() - before == 1
    fn(y, scale=0.5)
    assert compilations() - before == 1                     # same shapes and scale: cached
    np.testing.assert_allclose(got, _many_ops(x, 0.5), rtol=1e-6)
    jaxpr = jax.make_jaxpr(lambda x: fn(x, scale=0.5))(x)
    assert [e.primitive.name for e in jaxpr.eqns].count("sin") == 10   # inline: no nested program
    np.testing.assert_array_equal(jax.jit(lambda x: fn(x, scale=0.5))(x),
                                  jax.jit(_many_ops, static_argnums=1)(x, 0.5))
