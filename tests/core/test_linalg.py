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


def test_split_cpu_maps_only_batches_that_reach_the_pool_even_nested():
    """On 2 CPU devices: a batch jaxlib runs inline stays one batched LU, a larger one is
    solved system by system, and nested vmaps count the whole batch (inner 5 x 40x40
    mapped, the outer 3 batched; inner 200 x 12x12 mapped, the outer 8 batched); the
    answers are numpy's either way."""
    code = textwrap.dedent("""
        import re, jax, numpy as np
        jax.config.update("jax_enable_x64", True)
        from jaxtwin.core.linalg import solve
        rng = np.random.default_rng(0)
        for shape, k in (((4, 12, 12), 3), ((300, 12, 12), 0), ((3, 5, 40, 40), 0), ((8, 200, 12, 12), 5)):
            a = rng.normal(size=shape) + 10 * np.eye(shape[-1])
            b = rng.normal(size=shape[:-1] + ((k,) if k else ()))
            f = jax.vmap(solve) if len(shape) == 3 else jax.vmap(jax.vmap(solve))
            want = np.linalg.solve(a, b) if k else np.linalg.solve(a, b[..., None])[..., 0]
            np.testing.assert_allclose(jax.jit(f)(a, b), want, rtol=1e-10, atol=1e-12)
            text = jax.jit(f).lower(a, b).as_text()
            lu = [re.search(r"tensor<[^>]*>", l.rsplit(" : (", 1)[1]).group(0)
                  for l in text.splitlines() if "custom_call @lapack_dgetrf" in l]
            print(shape, lu)
    """)
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.split("\n")[:4] == [
        "(4, 12, 12) ['tensor<4x12x12xf64>']", "(300, 12, 12) ['tensor<12x12xf64>']",
        "(3, 5, 40, 40) ['tensor<3x40x40xf64>']", "(8, 200, 12, 12) ['tensor<8x12x12xf64>']"], r.stdout
