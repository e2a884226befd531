"""benchmarks.batch_major: batch_major_rollout and discrete_normal_sampler."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.batch_major import batch_major_rollout, discrete_normal_sampler
from benchmarks.reference.coevo_numpy import run_vectorised
from jaxtwin.coevodt.env import N_ACTIONS, N_AGENTS, CoEvoEnv, initial_state, step_with_noise


def test_batch_major_rollout_matches_a_python_loop():
    n, T = 5, 7
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(T, 2, n)).astype(np.float32)  # episode axis last

    def step(x, sample):  # one episode
        x = 0.5 * x + sample[0] * sample[1]
        return x, x ** 2

    x0 = np.arange(n, dtype=np.float32)
    final, out = jax.jit(lambda x: batch_major_rollout(step, x, lambda t: jnp.asarray(draws)[t], T))(x0)
    x, want = x0.copy(), []
    for t in range(T):
        x = 0.5 * x + draws[t, 0] * draws[t, 1]
        want.append(x ** 2)
    np.testing.assert_allclose(np.asarray(final), x, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(out), np.stack(want), rtol=1e-6)
    _, summed = batch_major_rollout(step, x0, lambda t: jnp.asarray(draws)[t], T, summarize=lambda o: o.sum(0))
    np.testing.assert_allclose(np.asarray(summed), np.stack(want).sum(1), rtol=1e-5)


def test_sampler_shapes_determinism_and_fresh_steps():
    make = jax.jit(lambda k, t: discrete_normal_sampler(k, 100, 3, 3, 4)(t))
    make_erf = jax.jit(lambda k, t: discrete_normal_sampler(k, 100, 3, 3, 3, normal_method="erfinv")(t))
    a, z = make(jax.random.key(0), jnp.uint32(0))
    assert a.shape == (3, 100) and a.dtype == jnp.int32 and z.shape == (4, 100) and z.dtype == jnp.float32
    a2, z2 = make(jax.random.key(0), jnp.uint32(0))
    np.testing.assert_array_equal(np.asarray(z), np.asarray(z2))
    np.testing.assert_array_equal(np.asarray(a), np.asarray(a2))
    _, z3 = make(jax.random.key(0), jnp.uint32(1))
    _, z4 = make(jax.random.key(1), jnp.uint32(0))
    assert not np.any(np.asarray(z) == np.asarray(z3)) and not np.any(np.asarray(z) == np.asarray(z4))
    a1, z1 = jax.jit(lambda k: discrete_normal_sampler(k, 10, 2, 1, 1)(jnp.uint32(0)))(jax.random.key(0))  # < 4 normals
    assert a1.shape == (1, 10) and z1.shape == (1, 10) and set(np.unique(a1)) <= {0, 1}
    _, ze = make_erf(jax.random.key(0), jnp.uint32(0))
    assert ze.shape == (3, 100) and np.all(np.isfinite(np.asarray(ze)))
    with pytest.raises(ValueError, match="normal_method"):
        discrete_normal_sampler(jax.random.key(0), 10, 3, 3, 4, normal_method="ziggurat")
    with pytest.raises(ValueError, match="num_agents"):
        discrete_normal_sampler(jax.random.key(0), 10, 3, 0, 4)
    with pytest.raises(ValueError, match="num_normals"):
        discrete_normal_sampler(jax.random.key(0), 10, 3, 3, -1)


def _coevo_batch_major_means(key, n, T, params, normal_method="box_muller"):
    def step(state, sample):
        nxt, _, info = step_with_noise(state, sample[0], sample[1], params)
        return nxt, jnp.stack([info["qoe"], info["latency"], info["cost"]])

    k0, k1 = jax.random.split(key)
    state0 = jax.vmap(initial_state, (0, None))(jax.random.split(k0, n), params)
    _, out = batch_major_rollout(step, state0, discrete_normal_sampler(k1, n, N_ACTIONS, N_AGENTS, 4, normal_method), T)
    return out.mean(0)  # [n, 3] per-episode means


@pytest.mark.parametrize("normal_method", ["box_muller", "erfinv"])
def test_coevo_batch_major_random_baseline_agrees_with_numpy(normal_method):
    """Same model, different generators (counter-mode threefry vs NumPy PCG64): the means of
    QoE/latency/cost over random episodes agree within 5 standard errors of the difference."""
    n, T = 2000, 50
    params = CoEvoEnv(T).default_params
    per_episode = np.asarray(jax.jit(lambda k: _coevo_batch_major_means(k, n, T, params, normal_method))(
        jax.random.key(0)))
    ours = per_episode.mean(0)
    numpy_means = run_vectorised(n, T, seed=0) / (n * T)
    tol = 5 * np.sqrt(2) * per_episode.std(0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(ours - numpy_means) < tol), (ours, numpy_means, tol)
    # the spec's sanity figures: QoE ~0.17, latency ~0.72, cost ~0.089
    assert np.all(np.abs(ours - [0.17, 0.72, 0.089]) < [0.01, 0.01, 0.002]), ours
