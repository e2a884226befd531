"""Sharded vmap over 4 forced CPU devices gives the single-device result."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.core.sharding import sharded_vmap


def _work(key, scale):
    x = jax.random.normal(key, (16,))
    return {"sum": jnp.sum(jnp.cumsum(x) * scale), "first": x[0]}


def test_single_device_equals_jit_vmap():
    keys = jax.random.split(jax.random.key(0), 5)
    ref = jax.jit(jax.vmap(_work, in_axes=(0, None)))(keys, 2.0)
    out = sharded_vmap(_work, in_axes=(0, None))(keys, 2.0)
    np.testing.assert_array_equal(out["sum"], ref["sum"])


def test_four_forced_devices_match_one_device():
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        from jaxtwin.core.sharding import sharded_vmap
        assert jax.device_count() == 4, jax.devices()
        def work(key, scale):
            x = jax.random.normal(key, (16,))
            return jnp.sum(jnp.cumsum(x) * scale)
        keys = jax.random.split(jax.random.key(0), 7)   # 7: not a multiple of 4 -> padding
        out = sharded_vmap(work, in_axes=(0, None))(keys, 2.0)
        assert out.shape == (7,)
        ref = np.array([work(k, 2.0) for k in keys])
        np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-6, atol=1e-6)
        print("OK", len(out.sharding.device_set) if hasattr(out, "sharding") else "")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("OK")
