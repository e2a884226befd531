"""PolicyNet and stacked-population helpers."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.nets.policy import (PolicyNet, greedy_action, init_population, inverse_cdf_action,
                                 log_prob, put_member, sample_action, take_member)

NET = PolicyNet()


def test_architecture_and_shapes():
    params = NET.init(jax.random.key(0), jnp.zeros(6))
    shapes = [x.shape for x in jax.tree.leaves(params)]
    assert sorted(shapes) == sorted([(64,), (6, 64), (32,), (64, 32), (3,), (32, 3)])
    assert NET.apply(params, jnp.ones((7, 6))).shape == (7, 3)


def test_population_members_are_independent_and_indexable():
    pop = init_population(jax.random.key(1), NET, 5, (3, 4))
    kernel = pop["params"]["Dense_0"]["kernel"]
    assert kernel.shape == (3, 4, 5, 64)
    flat = kernel.reshape(12, -1)
    assert len({tuple(np.round(np.asarray(r[:4]), 6)) for r in flat}) == 12  # all distinct inits
    member = take_member(take_member(pop, 2), 1)
    np.testing.assert_array_equal(member["params"]["Dense_0"]["kernel"], kernel[2, 1])
    zeros = jax.tree.map(jnp.zeros_like, take_member(pop, 0))
    new = put_member(pop, 0, zeros)
    assert float(jnp.abs(new["params"]["Dense_0"]["kernel"][0]).sum()) == 0.0
    np.testing.assert_array_equal(new["params"]["Dense_0"]["kernel"][1:], kernel[1:])


def test_greedy_vs_sampled_distribution():
    params = NET.init(jax.random.key(2), jnp.zeros(5))
    obs = jnp.array([0.3, 0.5, 0.5, 0.6, 0.1])
    probs = jax.nn.softmax(NET.apply(params, obs))
    assert int(greedy_action(NET, params, obs)) == int(jnp.argmax(probs))
    n = 20000
    by_key = jax.vmap(lambda k: sample_action(NET, params, k, obs))(jax.random.split(jax.random.key(3), n))
    by_u = jax.vmap(lambda u: inverse_cdf_action(NET, params, u, obs))(jax.random.uniform(jax.random.key(4), (n,)))
    for draws in (by_key, by_u):
        freq = np.bincount(np.asarray(draws), minlength=3) / n
        np.testing.assert_allclose(freq, probs, atol=4 * np.sqrt(0.25 / n))
    np.testing.assert_allclose(jnp.exp(log_prob(NET, params, jnp.broadcast_to(obs, (3, 5)), jnp.arange(3))),
                               probs, rtol=1e-5)
