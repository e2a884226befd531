"""``core.linalg.solve``: the batched dense solve that does not hang a CPU split into devices."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.core.linalg import solve


def test_solve_one_and_batched_match_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 5, 5)) + 5 * np.eye(5)
    b = rng.normal(size=(6, 5))
    want = np.linalg.solve(a, b[..., None])[..., 0]
    np.testing.assert_allclose(solve(jnp.asarray(a[0]), jnp.asarray(b[0])), want[0], rtol=1e-5)
    np.testing.assert_allclose(jax.jit(jax.vmap(solve))(a, b), want, rtol=1e-5)
    # one operand unbatched
    np.testing.assert_allclose(jax.vmap(solve, in_axes=(None, 0))(a[0], b),
                               np.linalg.solve(a[0], b.T).T, rtol=1e-5)


def test_batched_solves_on_two_cpu_devices_finish_and_match_one_device():
    """512 batched 30x30 solves sharded over 2 CPU devices, 30 times: plain ``jnp.linalg.solve``
    hung here every time with jaxlib 0.10.2 (both pool threads blocked in LAPACK's batch map);
    ``solve`` must finish and give the one-device answers exactly."""
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
        from jaxtwin.core.linalg import solve
        assert jax.local_device_count() == 2, jax.devices()
        sh = NamedSharding(Mesh(jax.devices(), ("b",)), P("b"))
        a = jax.random.uniform(jax.random.key(0), (512, 30, 30)) + 3 * jnp.eye(30)
        b = jax.random.uniform(jax.random.key(1), (512, 30))
        f = jax.jit(jax.vmap(solve), out_shardings=sh)
        ad, bd = jax.device_put(a, sh), jax.device_put(b, sh)
        for _ in range(30):
            x = f(ad, bd).block_until_ready()
        ref = jax.jit(jax.vmap(jnp.linalg.solve), device=jax.devices()[0])(a, b)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(ref))
        print("OK")
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=180)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip().endswith("OK")


def test_solve_with_several_right_hand_sides():
    """``b`` of shape ``(n, k)``, batched or not (the collocation Riccati sweep solves one per interval)."""
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 6, 6)) + 6 * np.eye(6)
    b = rng.normal(size=(4, 6, 3))
    want = np.linalg.solve(a, b)
    np.testing.assert_allclose(solve(jnp.asarray(a[0]), jnp.asarray(b[0])), want[0], rtol=1e-5)
    np.testing.assert_allclose(jax.jit(jax.vmap(solve))(a, b), want, rtol=1e-5)
    np.testing.assert_allclose(jax.vmap(solve, in_axes=(None, 0))(a[0], b), np.linalg.solve(a[0], b), rtol=1e-5)
