"""PPO's loss terms (Schulman et al. 2017), as pure functions of batched arrays, and the
epoch/minibatch update built on them (:func:`make_update_epochs`)."""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax.training.train_state import TrainState

from jaxtwin.nets.actor_critic import gaussian_entropy, gaussian_log_prob


def clipped_surrogate_loss(log_prob: jax.Array, old_log_prob: jax.Array,
                           advantages: jax.Array, clip_eps: float) -> jax.Array:
    """PPO policy loss ``-mean(min(rho * A, clip(rho, 1-eps, 1+eps) * A))``, ``rho = exp(logp - logp_old)``."""
    ratio = jnp.exp(log_prob - old_log_prob)
    unclipped = ratio * advantages
    clipped = jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    return -jnp.mean(jnp.minimum(unclipped, clipped))


def clipped_value_loss(values: jax.Array, old_values: jax.Array, returns: jax.Array,
                       clip_eps: float, clip: bool = True) -> jax.Array:
    """``0.5 * mean(max((v - R)^2, (v_clipped - R)^2))``, ``v_clipped = v_old + clip(v - v_old, +-eps)``.

    With ``clip=False``, plain ``0.5 * mean((v - R)^2)``.
    """
    unclipped = jnp.square(values - returns)
    if not clip:
        return 0.5 * jnp.mean(unclipped)
    v_clipped = old_values + jnp.clip(values - old_values, -clip_eps, clip_eps)
    return 0.5 * jnp.mean(jnp.maximum(unclipped, jnp.square(v_clipped - returns)))


def approx_kl(log_prob: jax.Array, old_log_prob: jax.Array) -> jax.Array:
    """Low-variance estimator of ``KL(old || new)``: ``mean((rho - 1) - log rho)``."""
    log_ratio = log_prob - old_log_prob
    return jnp.mean(jnp.expm1(log_ratio) - log_ratio)


def make_update_epochs(config, network):
    """For a :class:`~jaxtwin.learn.ppo.PPOConfig` and its actor-critic network,
    ``epochs(train_state, key, batch) -> (train_state, stats)``: ``update_epochs`` passes of
    shuffled minibatch gradient steps on the clipped PPO loss over one rollout's ``batch``."""
    def loss_fn(params, batch):
        obs, action, old_log_prob, old_value, advantages, returns = batch
        mean, log_std, value = network.apply(params, obs)
        log_prob = gaussian_log_prob(mean, log_std, action)
        if config.normalize_advantages:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        policy_loss = clipped_surrogate_loss(log_prob, old_log_prob, advantages, config.clip_eps)
        value_loss = clipped_value_loss(value, old_value, returns, config.clip_eps,
                                        config.clip_value_loss)
        entropy = jnp.mean(gaussian_entropy(log_std))
        total = policy_loss + config.vf_coef * value_loss - config.ent_coef * entropy
        clip_fraction = jnp.mean(jnp.abs(jnp.exp(log_prob - old_log_prob) - 1.0) > config.clip_eps)
        stats = dict(value_loss=value_loss, policy_loss=policy_loss, entropy=entropy,
                     approx_kl=approx_kl(log_prob, old_log_prob), clip_fraction=clip_fraction)
        return total, stats

    grad_fn = jax.grad(loss_fn, has_aux=True)

    def minibatch_step(train_state: TrainState, batch):
        grads, stats = grad_fn(train_state.params, batch)
        return train_state.apply_gradients(grads=grads), stats

    def epoch(carry, _):
        train_state, key, batch = carry
        key, key_perm = jax.random.split(key)
        perm = jax.random.permutation(key_perm, config.batch_size)
        shuffled = jax.tree.map(
            lambda x: x[perm].reshape((config.num_minibatches, config.minibatch_size, *x.shape[1:])),
            batch)
        train_state, stats = jax.lax.scan(minibatch_step, train_state, shuffled)
        return (train_state, key, batch), stats

    def epochs(train_state: TrainState, key: jax.Array, batch):
        (train_state, _, _), stats = jax.lax.scan(epoch, (train_state, key, batch), None,
                                                  length=config.update_epochs)
        return train_state, stats

    return epochs
