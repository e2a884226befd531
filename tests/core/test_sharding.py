"""Sharded vmap over 4 forced CPU devices gives the single-device result."""
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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


def _four_device_env(**extra):
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu", **extra)
    env.pop("JAX_COORDINATOR_ADDRESS", None)
    return env


def test_sharded_call_out_axes_keys_and_one_device_passthrough():
    """Batch axis elsewhere in the outputs, unbatched outputs, typed keys, devices=1 is the call
    itself; on a split CPU the outputs leave no array spread over the devices."""
    from jaxtwin.core.sharding import sharded_call
    call = jax.jit(jax.vmap(_work, in_axes=(0, None)))
    assert sharded_call(call, 1) is call
    code = textwrap.dedent("""
        import jax, jax.numpy as jnp, numpy as np
        from jaxtwin.core.sharding import sharded_call, to_host, shard_batch, batch_mesh
        def per_lane(key, scale):
            k1, k2 = jax.random.split(key)
            return {"x": jax.random.normal(k1, (3,)) * scale, "key": k2}
        def batched(keys, scale):   # outputs: [3, batch] and an unbatched total
            out = jax.vmap(per_lane, in_axes=(0, None))(keys, scale)
            return {"xt": out["x"].T, "key": out["key"], "n": jnp.asarray(keys.shape[0])}
        call = jax.jit(batched)
        for impl in ("threefry2x32", "unsafe_rbg"):
            keys = jnp.stack([jax.random.key(42 + r, impl=impl) for r in range(5)])
            ref = call(keys, 2.0)
            out = sharded_call(call, 4, in_axes=(0, None), out_axes={"xt": 1, "key": 0, "n": None})(keys, 2.0)
            assert out["xt"].shape == (3, 5)
            # on a split CPU every output is assembled on one device through the host: trimming
            # it on the devices is an all-gather, which can deadlock XLA's CPU thread pool
            assert all(len(x.sharding.device_set) == 1 for x in jax.tree.leaves(out))
            np.testing.assert_array_equal(np.asarray(out["xt"]), np.asarray(ref["xt"]))
            np.testing.assert_array_equal(jax.random.key_data(out["key"]), jax.random.key_data(ref["key"]))
            assert int(out["n"]) == 8   # unbatched outputs see the padded batch: callers must not reduce over it
            placed, n = shard_batch(keys, batch_mesh(4))
            assert n == 5 and placed.shape == (8,) and len(placed.sharding.device_set) == 4
            host = to_host({"k": placed}, n)
            np.testing.assert_array_equal(jax.random.key_data(host["k"]), jax.random.key_data(keys))
        print("OK")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_four_device_env(),
                       timeout=120)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "OK" in r.stdout


def test_two_processes_with_jax_distributed_match_one_device():
    """``initialize_distributed`` from the environment: 2 processes x 2 CPU devices form one
    4-device mesh; every process gets the full, single-device result (gloo collectives)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = textwrap.dedent("""
        from jaxtwin.core.sharding import initialize_distributed, sharded_vmap
        assert initialize_distributed()
        import jax, jax.numpy as jnp, numpy as np
        assert jax.device_count() == 4 and jax.local_device_count() == 2
        def work(key, scale):
            return jnp.sum(jnp.cumsum(jax.random.normal(key, (16,))) * scale)
        keys = jax.random.split(jax.random.key(0), 7)
        out = sharded_vmap(work, devices=0, in_axes=(0, None))(keys, 2.0)
        ref = jax.jit(jax.vmap(work, in_axes=(0, None)))(keys, 2.0)
        np.testing.assert_array_equal(np.asarray(out), np.asarray(ref))
        print("OK", jax.process_index())
    """)
    procs = []
    for pid in range(2):
        env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu",
                   JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(pid))
        procs.append(subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env=env))
    outs = [p.communicate(timeout=180) for p in procs]
    for pid, (p, (out, err)) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, err[-4000:]
        assert f"OK {pid}" in out


def _clean_env(**extra):
    env = dict(os.environ, JAX_PLATFORMS="cpu", **extra)
    for var in ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS"):
        env.pop(var, None)
    env.update(extra)
    return env


def test_prepare_devices_splits_a_cpu_only_before_jax_starts(tmp_path):
    """``--devices 3`` splits the CPU into 3 devices; 1 leaves it whole; an XLA_FLAGS device
    count is the user's and stays; once a backend is up nothing changes."""
    code = textwrap.dedent("""
        import sys, jax
        from jaxtwin.core.sharding import prepare_devices
        prepare_devices(int(sys.argv[1]))
        print(jax.local_device_count())
        prepare_devices(4)   # too late: the backend is up
        print(jax.local_device_count())
    """)

    def count(requested, **env):
        r = subprocess.run([sys.executable, "-c", code, str(requested)], capture_output=True, text=True,
                           env=_clean_env(**env), timeout=120)
        assert r.returncode == 0, r.stderr[-3000:]
        return [int(v) for v in r.stdout.split()]

    assert count(3) == [3, 3]
    assert count(1) == [1, 1]
    from jaxtwin.core.sharding import cpu_cores
    assert count(0) == [cpu_cores()] * 2
    assert count(3, XLA_FLAGS="--xla_force_host_platform_device_count=2") == [2, 2]


def test_cli_devices_reads_the_flag_then_the_config_file(tmp_path):
    import argparse

    from jaxtwin.core.sharding import cli_devices
    cfg = tmp_path / "c.json"
    cfg.write_text('{"devices": 3}')
    assert cli_devices(argparse.Namespace(devices=2), str(cfg)) == 2
    assert cli_devices(argparse.Namespace(), str(cfg)) == 3
    assert cli_devices(argparse.Namespace(), None) == 1


def test_select_devices_rejects_a_bad_count_with_config_error():
    from jaxtwin.core.config import ConfigError
    from jaxtwin.core.sharding import select_devices
    assert select_devices(1) == jax.local_devices()[:1]
    for bad in (-1, jax.local_device_count() + 1):
        with pytest.raises(ConfigError, match=f"devices={bad}"):
            select_devices(bad)
