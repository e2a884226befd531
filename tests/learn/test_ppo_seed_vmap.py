"""PPO trained over two seeds in one ``vmap``-ed program at the spec's 2x128 network.

With jaxlib 0.10.x this program never finished on a 2-core CPU: the network's
orthogonal initialisers ran as *batched* LAPACK QRs, each of which blocks its
XLA pool thread while waiting for batch pieces queued on the same pool, and
the independent QRs of the six dense layers ran at once, one per pool thread
(``lapack_sorgqr_ffi`` in ``jax::ParallelBatchMap``). ``ppo`` now initialises
the network seed by seed under ``vmap``. The training runs in a subprocess with
a hard timeout, pinned to two CPUs (XLA sizes its CPU thread pool from the
process's CPU affinity) so that a many-core machine runs it with the pool of
the 2-core CI, where the hang showed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

TIMEOUT_S = 300

# First the vmapped initialisation alone (where the deadlock was: it hung in each
# configuration tried), then 2 seeds trained vmapped (a configuration whose whole program
# also hung), then each seed alone (one compiled program called twice). Every leaf of
# (params, metrics) is saved as vmapped_<i> (leading seed axis) and alone<s>_<i>.
_CODE = textwrap.dedent("""
    import os, sys
    if hasattr(os, "sched_setaffinity"):  # before JAX starts: its CPU pool follows the affinity
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:2])
    import jax, numpy as np
    from jaxtwin.core.toy_env import PointEnv
    from jaxtwin.learn.ppo import PPOConfig, make_train, make_train_chunks

    cfg = PPOConfig(num_envs=8, num_steps=16, total_timesteps=512, minibatch_size=32,
                    hidden=(128, 128))
    env = PointEnv(dim=2)
    keys = jax.random.split(jax.random.PRNGKey(0), 2)
    init, _ = make_train_chunks(cfg, env)
    jax.block_until_ready(jax.jit(jax.vmap(init))(keys))
    print("vmapped init finished", flush=True)
    train = make_train(cfg, env)
    state, metrics = jax.block_until_ready(jax.jit(jax.vmap(train))(keys))
    out = {f"vmapped_{i}": np.asarray(x)
           for i, x in enumerate(jax.tree.leaves((state.params, metrics)))}
    print("vmapped training finished", flush=True)
    alone = jax.jit(train)
    for s in range(2):
        state, metrics = jax.block_until_ready(alone(keys[s]))
        out.update({f"alone{s}_{i}": np.asarray(x)
                    for i, x in enumerate(jax.tree.leaves((state.params, metrics)))})
    np.savez(sys.argv[1], **out)
    print("OK", flush=True)
""")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Leaves of the vmapped run and of each seed run alone (``dict`` of arrays)."""
    path = tmp_path_factory.mktemp("seed_vmap") / "runs.npz"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    try:
        r = subprocess.run([sys.executable, "-c", _CODE, str(path)], capture_output=True,
                           text=True, env=env, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as e:
        r = e
    if isinstance(r, subprocess.TimeoutExpired):  # failed outside the except: no chained traceback
        out = r.stdout.decode() if isinstance(r.stdout, bytes) else (r.stdout or "")
        stage = ("the single-seed runs" if "vmapped training finished" in out
                 else "the two-seed vmapped training" if "vmapped init finished" in out
                 else "the two-seed vmapped initialisation")
        pytest.fail(f"PPO over 2 seeds at hidden (128, 128) did not finish in {TIMEOUT_S} s "
                    f"(stuck in {stage}): the XLA CPU deadlock of batched LAPACK calls in "
                    f"vmapped network initialisation is back (see jaxtwin.learn.ppo._param_init)",
                    pytrace=False)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stderr[-3000:]
    with np.load(path) as data:
        return dict(data)


def _leaves(runs: dict, prefix: str) -> list[np.ndarray]:
    n = sum(k.startswith(prefix) for k in runs)
    return [runs[f"{prefix}{i}"] for i in range(n)]


def test_each_vmapped_seed_equals_that_seed_trained_alone(trained):
    vmapped = _leaves(trained, "vmapped_")
    for s in range(2):
        alone = _leaves(trained, f"alone{s}_")
        assert len(alone) == len(vmapped) > 0
        for v, a in zip(vmapped, alone):
            # float32 round-off: batched and unbatched matmuls may sum in another order
            np.testing.assert_allclose(v[s], a, rtol=1e-5, atol=1e-6)


def test_the_two_seeds_train_differently(trained):
    vmapped = _leaves(trained, "vmapped_")
    float_leaves = [v for v in vmapped if v.dtype.kind == "f" and v[0].size > 1]
    assert float_leaves
    assert all(not np.allclose(v[0], v[1]) for v in float_leaves)
