"""REINFORCE: returns as specified, the update direction, per-member optimiser states."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxtwin.learn.reinforce import (init_opt_states, make_optimizer, normalised_returns,
                                     reinforce_step, update_sampled_members)
from jaxtwin.nets.policy import PolicyNet, init_population, log_prob, take_member

NET = PolicyNet()


def test_normalised_returns_by_hand():
    r = jnp.array([1.0, 0.0, 2.0])
    g = np.array([1 + 0.5 * 0 + 0.25 * 2, 0 + 0.5 * 2, 2.0])
    expected = (g - g.mean()) / (g.std() + 1e-8)
    np.testing.assert_allclose(normalised_returns(r, 0.5), expected, rtol=1e-5)
    two_agents = normalised_returns(jnp.stack([r, 2 * r], axis=1), 0.5)
    np.testing.assert_allclose(two_agents[:, 0], expected, rtol=1e-5)


def test_update_raises_log_prob_of_positively_returned_action():
    params = NET.init(jax.random.key(0), jnp.zeros(5))
    opt = make_optimizer(5e-3)
    obs = jax.random.uniform(jax.random.key(1), (50, 5))
    actions = jnp.where(jnp.arange(50) % 2 == 0, 2, 0)
    rewards = jnp.where(actions == 2, 1.0, -1.0)  # action 2 pays, so its normalised return is higher
    before = log_prob(NET, params, obs, jnp.full(50, 2)).mean()
    new, _, loss = jax.jit(lambda p: reinforce_step(NET, opt, p, opt.init(p), obs, actions, rewards, 0.0))(params)
    after = log_prob(NET, new, obs, jnp.full(50, 2)).mean()
    assert np.isfinite(float(loss)) and float(after) > float(before)


def test_only_sampled_members_change_and_keep_own_adam_state():
    pops = init_population(jax.random.key(2), NET, 5, (3, 4))
    opt = make_optimizer(1e-2, max_grad_norm=1.0)
    states = init_opt_states(opt, pops, n_lead=2)
    obs = jax.random.uniform(jax.random.key(3), (10, 5))
    actions = jax.random.randint(jax.random.key(4), (10, 3), 0, 3)
    rewards = jax.random.normal(jax.random.key(5), (10, 3))
    members = jnp.array([1, 3, 0])
    new_pops, new_states, loss = jax.jit(
        lambda p, s: update_sampled_members(NET, opt, p, s, members, obs, actions, rewards, 0.99))(pops, states)
    assert loss.shape == (3,)
    k_old, k_new = pops["params"]["Dense_2"]["kernel"], new_pops["params"]["Dense_2"]["kernel"]
    counts = optax.tree_utils.tree_get(new_states, "count")
    for a in range(3):
        for m in range(4):
            changed = not np.allclose(k_old[a, m], k_new[a, m])
            assert changed == (m == int(members[a])), (a, m)
            assert int(counts[a, m]) == int(m == int(members[a]))
    # the same update applied to the member alone gives the same parameters
    p, s, _ = jax.jit(lambda p, s: reinforce_step(NET, opt, p, s, obs, actions[:, 1], rewards[:, 1], 0.99))(
        take_member(take_member(pops, 1), 3), take_member(take_member(states, 1), 3))
    np.testing.assert_allclose(p["params"]["Dense_2"]["kernel"], k_new[1, 3], rtol=1e-5, atol=1e-7)


def test_gradient_clipping_limits_the_step():
    params = NET.init(jax.random.key(6), jnp.zeros(5))
    obs = jax.random.uniform(jax.random.key(7), (20, 5))
    actions = jnp.zeros(20, jnp.int32)
    rewards = jnp.linspace(-1, 1, 20)
    sgd_clip = optax.chain(optax.clip_by_global_norm(1e-3), optax.sgd(1.0))
    new, _, _ = jax.jit(lambda p: reinforce_step(NET, sgd_clip, p, sgd_clip.init(p), obs, actions, rewards, 0.9))(params)
    delta = optax.tree.norm(jax.tree.map(lambda a, b: a - b, new, params))
    assert float(delta) <= 1e-3 + 1e-7
    assert make_optimizer(1e-3, max_grad_norm=None).init(params) is not None
