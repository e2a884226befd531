"""Population co-evolution (spec coevodt §2): fitness with common random numbers,
tournament selection, parent averaging, Gaussian mutation, replacement of the
weakest members. Every operator works on a stacked population (leading member
axis) and is vmappable over agents; evolution changes weights only.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax


def evaluate_population(score_fn: Callable[[jax.Array, object, jax.Array], jax.Array],
                        populations, keys: jax.Array) -> jax.Array:
    """Fitness ``f32[A, P]``: mean of ``score_fn(agent, member_params, key)`` over ``keys``.

    ``populations`` has leading ``(agent, member)`` axes. The *same* keys are
    used for every member and agent (common random numbers), so fitness
    differences come from the policies, not from the noise.
    """
    n_agents = jax.tree.leaves(populations)[0].shape[0]
    per_key = jax.vmap(score_fn, in_axes=(None, None, 0))
    per_member = jax.vmap(per_key, in_axes=(None, 0, None))
    per_agent = jax.vmap(per_member, in_axes=(0, 0, None))
    return per_agent(jnp.arange(n_agents), populations, keys).mean(axis=-1)


def tournament_select(key: jax.Array, scores: jax.Array, k: int, n: int) -> jax.Array:
    """``n`` winners (indices): each the best of ``k`` members drawn without replacement."""
    def one(key):
        entrants = jax.random.choice(key, scores.shape[0], (k,), replace=False)
        return entrants[jnp.argmax(scores[entrants])]
    return jax.vmap(one)(jax.random.split(key, n))


def average_parents(parent_a, parent_b):
    """Crossover: the element-wise mean of two parameter pytrees."""
    return jax.tree.map(lambda a, b: 0.5 * (a + b), parent_a, parent_b)


def mutate(key: jax.Array, params, std: float):
    """Add ``N(0, std^2)`` noise to every parameter (weights and biases), one key per leaf."""
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(key, len(leaves))
    noisy = [x + std * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
    return jax.tree.unflatten(treedef, noisy)


def weakest(scores: jax.Array, n: int) -> jax.Array:
    """Indices of the ``n`` lowest scores (distinct; ties broken by index)."""
    return jnp.argsort(scores)[:n]


def evolve_population(key: jax.Array, population, opt_states, scores: jax.Array,
                      optimizer: optax.GradientTransformation, *, tournament_k: int,
                      n_replace: int, mutation_std: float):
    """One evolution step of one agent's population (leading member axis).

    ``n_replace`` children, each ``mutate(average(t1, t2))`` of two tournament
    winners of the *current* population, replace the ``n_replace`` weakest
    members; only the children get fresh optimiser states. Returns
    ``(population, opt_states, replaced_indices)``.
    """
    key_sel, key_mut = jax.random.split(key)
    parents = tournament_select(key_sel, scores, tournament_k, 2 * n_replace).reshape(n_replace, 2)
    take = lambda idx: jax.tree.map(lambda x: x[idx], population)
    children = average_parents(take(parents[:, 0]), take(parents[:, 1]))
    children = jax.vmap(mutate, in_axes=(0, 0, None))(
        jax.random.split(key_mut, n_replace), children, mutation_std)
    slots = weakest(scores, n_replace)
    put = lambda pop, new: jax.tree.map(lambda p, c: p.at[slots].set(c), pop, new)
    fresh = jax.vmap(optimizer.init)(children)
    return put(population, children), put(opt_states, fresh), slots
