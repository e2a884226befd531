"""GAE against hand-computed values and a NumPy reference, incl. termination and truncation."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxtwin.core.rollout import discounted_returns
from jaxtwin.learn.gae import compute_gae


def numpy_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """Straightforward backward loop, written independently of the JAX version."""
    T = len(rewards)
    adv = np.zeros(T)
    running = 0.0
    for t in reversed(range(T)):
        bootstrap = 0.0 if terminated[t] else next_values[t]
        delta = rewards[t] + gamma * bootstrap - values[t]
        if terminated[t] or truncated[t]:
            running = 0.0
        running = delta + gamma * lam * running
        adv[t] = running
    return adv, adv + np.asarray(values)


def test_gae_hand_values_termination_and_truncation():
    # t=1 terminates (its next value 10 must be ignored); t=2 is truncated
    # (bootstraps from V(final_observation)=3); t=3 is cut by the rollout end.
    rewards = jnp.array([1.0, 2.0, 3.0, 4.0])
    values = jnp.array([0.5, 1.0, 1.5, 2.0])
    next_values = jnp.array([1.0, 10.0, 3.0, 2.5])
    terminated = jnp.array([False, True, False, False])
    truncated = jnp.array([False, False, True, False])
    adv, ret = compute_gae(rewards, values, next_values, terminated, truncated, 0.9, 0.8)
    # A3 = 4 + .9*2.5 - 2 = 4.25; A2 = 3 + .9*3 - 1.5 = 4.2; A1 = 2 - 1 = 1;
    # A0 = (1 + .9*1 - .5) + .9*.8*A1 = 1.4 + .72 = 2.12
    np.testing.assert_allclose(adv, [2.12, 1.0, 4.2, 4.25], rtol=1e-6)
    np.testing.assert_allclose(ret, [2.62, 2.0, 5.7, 6.25], rtol=1e-6)


def test_truncation_differs_from_termination():
    args = (jnp.array([1.0]), jnp.array([0.0]), jnp.array([5.0]))
    adv_trunc, _ = compute_gae(*args, jnp.array([False]), jnp.array([True]), 0.5, 0.9)
    adv_term, _ = compute_gae(*args, jnp.array([True]), jnp.array([False]), 0.5, 0.9)
    np.testing.assert_allclose(adv_trunc, [1.0 + 0.5 * 5.0])
    np.testing.assert_allclose(adv_term, [1.0])


def test_lambda_one_without_dones_gives_bootstrapped_discounted_return():
    rewards = jnp.array([1.0, -2.0, 0.5, 3.0, 1.0])
    values = jnp.array([0.3, 0.1, -0.4, 0.2, 0.9])
    boot = 2.0
    next_values = jnp.concatenate([values[1:], jnp.array([boot])])
    no = jnp.zeros(5, bool)
    _, ret = compute_gae(rewards, values, next_values, no, no, 0.95, 1.0)
    expected = discounted_returns(rewards.at[-1].add(0.95 * boot), 0.95)
    np.testing.assert_allclose(ret, expected, rtol=1e-5)


_gae_jit = jax.jit(compute_gae, static_argnums=(5, 6))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), gamma=st.sampled_from([0.9, 0.97]),
       lam=st.sampled_from([0.0, 0.5, 0.95]))
def test_gae_matches_numpy_reference_with_batch_axis(seed, gamma, lam):
    rng = np.random.default_rng(seed)
    T, B = 8, 3
    rewards, values, next_values = (rng.normal(size=(T, B)).astype(np.float32) for _ in range(3))
    terminated = rng.random((T, B)) < 0.2
    truncated = (rng.random((T, B)) < 0.2) & ~terminated
    adv, ret = _gae_jit(rewards, values, next_values, terminated, truncated, gamma, lam)
    for b in range(B):
        ref_adv, ref_ret = numpy_gae(rewards[:, b], values[:, b], next_values[:, b],
                                     terminated[:, b], truncated[:, b], gamma, lam)
        np.testing.assert_allclose(adv[:, b], ref_adv, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(ret[:, b], ref_ret, rtol=1e-5, atol=1e-5)
