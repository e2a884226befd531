"""Evolution operators, each on its own, and the composed step."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxtwin.learn.evolution import (average_parents, evaluate_population, evolve_population, mutate,
                                     tournament_select, weakest)


def test_tournament_picks_best_of_k_entrants():
    scores = jnp.array([0.0, 5.0, 1.0, 3.0, 2.0, 4.0])
    winners = np.asarray(tournament_select(jax.random.key(0), scores, 3, 4000))
    # with k=3 of 6 without replacement the two weakest can never win
    assert set(np.unique(winners)) <= {1, 2, 3, 4, 5} and 0 not in winners
    assert not np.any(winners == 2)  # index 2 (score 1) beats only index 0: it needs {0,2,x} with x worse -> impossible
    # P(best of 6 wins) = 1 - C(5,3)/C(6,3) = 1/2
    assert abs(np.mean(winners == 1) - 0.5) < 0.03
    full = tournament_select(jax.random.key(1), scores, 6, 10)
    np.testing.assert_array_equal(full, np.full(10, 1))


def test_average_and_mutation():
    a = {"w": jnp.ones((2, 3)), "b": jnp.zeros(3)}
    b = {"w": 3 * jnp.ones((2, 3)), "b": jnp.full(3, 2.0)}
    avg = average_parents(a, b)
    np.testing.assert_allclose(avg["w"], 2.0)
    np.testing.assert_allclose(avg["b"], 1.0)
    big = {"w": jnp.zeros((200, 100))}
    noise = mutate(jax.random.key(2), big, 0.02)["w"]
    assert abs(float(noise.std()) - 0.02) < 0.001 and abs(float(noise.mean())) < 0.001
    np.testing.assert_array_equal(mutate(jax.random.key(3), a, 0.0)["w"], a["w"])


def test_weakest_indices():
    np.testing.assert_array_equal(np.sort(weakest(jnp.array([3.0, -1.0, 2.0, -5.0]), 2)), [1, 3])


def test_evolve_replaces_weakest_and_resets_only_children_states():
    pop = {"w": jnp.arange(5.0)[:, None] * jnp.ones((5, 2))}  # member i has weights = i
    opt = optax.adam(1e-2)
    states = jax.vmap(opt.init)(pop)
    # give every member a used optimiser state (count 7, non-zero moments)
    states = jax.tree.map(lambda x: jnp.full_like(x, 7), states)
    scores = jnp.array([4.0, 3.0, 2.0, 1.0, 0.0])  # members 3, 4 are the weakest
    new_pop, new_states, slots = evolve_population(
        jax.random.key(4), pop, states, scores, opt, tournament_k=3, n_replace=2, mutation_std=0.0)
    np.testing.assert_array_equal(np.sort(slots), [3, 4])
    np.testing.assert_array_equal(new_pop["w"][:3], pop["w"][:3])
    # children average two tournament winners among the top three (mutation off) -> values in [0, 2]
    assert np.all((new_pop["w"][3:] >= 0) & (new_pop["w"][3:] <= 2))
    assert np.all(new_pop["w"][3:] != pop["w"][3:])
    count = optax.tree_utils.tree_get(new_states, "count")
    np.testing.assert_array_equal(count, [7, 7, 7, 0, 0])
    mu = optax.tree_utils.tree_get(new_states, "mu")["w"]
    np.testing.assert_array_equal(mu[3:], 0.0)
    np.testing.assert_array_equal(mu[:3], 7.0)


def test_evaluation_uses_common_random_numbers_across_members_and_agents():
    pops = {"w": jnp.array([[1.0, 2.0, 3.0], [10.0, 20.0, 30.0]])}  # 2 agents x 3 members

    def score(agent, params, key):
        return params["w"] * (agent + 1) + jax.random.normal(key)

    keys = jax.random.split(jax.random.key(5), 4)
    fit = evaluate_population(score, pops, keys)
    noise = jax.vmap(jax.random.normal)(keys).mean()
    np.testing.assert_allclose(fit, np.array([[1, 2, 3], [20, 40, 60]]) + float(noise), rtol=1e-6)
