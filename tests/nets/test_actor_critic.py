"""Actor-critic shapes, initialisation and Gaussian formulas vs SciPy."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from jaxtwin.core.config import ConfigError

from jaxtwin.nets.actor_critic import (ActorCritic, gaussian_entropy, gaussian_log_prob,
                                       gaussian_sample, num_params)


def test_log_prob_matches_scipy():
    rng = np.random.default_rng(0)
    mean = rng.normal(size=(5, 3)).astype(np.float32)
    log_std = rng.normal(scale=0.5, size=(5, 3)).astype(np.float32)
    x = rng.normal(size=(5, 3)).astype(np.float32)
    expected = stats.norm.logpdf(x, loc=mean, scale=np.exp(log_std)).sum(-1)
    np.testing.assert_allclose(gaussian_log_prob(mean, log_std, x), expected, rtol=1e-5)
    # same as the multivariate normal with a diagonal covariance
    mvn = stats.multivariate_normal(mean[0], np.diag(np.exp(2 * log_std[0])))
    np.testing.assert_allclose(gaussian_log_prob(mean[0], log_std[0], x[0]), mvn.logpdf(x[0]),
                               rtol=1e-5)


def test_entropy_matches_scipy():
    log_std = np.array([[-1.0, 0.0, 0.7], [0.2, 0.3, -0.5]], np.float32)
    expected = stats.norm(scale=np.exp(log_std)).entropy().sum(-1)
    np.testing.assert_allclose(gaussian_entropy(log_std), expected, rtol=1e-6)


def test_samples_have_the_stated_moments():
    mean = jnp.array([0.5, -1.0])
    log_std = jnp.log(jnp.array([0.1, 2.0]))
    xs = jax.vmap(lambda k: gaussian_sample(k, mean, log_std))(
        jax.random.split(jax.random.PRNGKey(0), 20000))
    np.testing.assert_allclose(xs.mean(0), mean, atol=0.05)
    np.testing.assert_allclose(xs.std(0), [0.1, 2.0], rtol=0.03)


def test_actor_critic_shapes_and_init():
    net = ActorCritic(action_dim=3, hidden=(16, 8), init_log_std=-0.5)
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 5)))
    obs = jax.random.normal(jax.random.PRNGKey(1), (4, 7, 5))
    mean, log_std, value = net.apply(params, obs)
    assert mean.shape == (4, 7, 3) and log_std.shape == (4, 7, 3) and value.shape == (4, 7)
    np.testing.assert_array_equal(log_std, -0.5)
    # policy head initialised near zero (gain 0.01) so early actions are ~ pure noise
    assert float(jnp.max(jnp.abs(mean))) < 0.1
    np.testing.assert_allclose(net.apply(params, obs, method=ActorCritic.value), value)
    m2, s2 = net.apply(params, obs, method=ActorCritic.policy)
    np.testing.assert_allclose(m2, mean)
    # actor: 5*16+16 + 16*8+8 + 8*3+3 + log_std 3 ; critic: 5*16+16 + 16*8+8 + 8+1
    assert num_params(params) == (96 + 136 + 27 + 3) + (96 + 136 + 9)


def test_separate_trunks():
    """Critic gradients never touch the actor's parameters."""
    net = ActorCritic(action_dim=2, hidden=(8,))
    params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 3)))
    grads = jax.grad(lambda p: net.apply(p, jnp.ones((1, 3)), method=ActorCritic.value).sum())(params)
    assert all(float(jnp.abs(g).sum()) == 0.0 for g in jax.tree.leaves(grads["params"]["actor"]))


def test_bad_activation_rejected():
    with pytest.raises(ConfigError, match="activation"):
        ActorCritic(action_dim=1, activation="sigmoid").init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
