"""Actor and critic MLPs for continuous control, and the diagonal Gaussian they define.

The actor maps an observation to the mean of a diagonal Gaussian whose log
standard deviation is a learned, state-independent vector (as in PPO's
continuous-control setting); the critic maps it to a scalar value. Actor and
critic have separate trunks so value regression does not disturb the policy
features. Initialisation follows PureJaxRL / CleanRL: orthogonal weights with
gain sqrt(2) in hidden layers, 0.01 on the policy head (near-zero initial mean)
and 1.0 on the value head, zero biases.

The Gaussian helpers are plain functions of ``(mean, log_std)`` so PPO's loss
and tests can use them without a distribution library.
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxtwin.core.config import ConfigError

ACTIVATIONS = {"tanh": nn.tanh, "relu": nn.relu}
"""Hidden-layer activations by name (the names configs may use)."""

_LOG_2PI = math.log(2.0 * math.pi)


def _dense(features: int, gain: float) -> nn.Dense:
    return nn.Dense(features, kernel_init=nn.initializers.orthogonal(gain),
                    bias_init=nn.initializers.zeros)


class MLPTrunk(nn.Module):
    """Hidden layers ``hidden`` with ``activation`` (no output head)."""

    hidden: Sequence[int] = (128, 128)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for width in self.hidden:
            x = act(_dense(width, math.sqrt(2.0))(x))
        return x


class GaussianActor(nn.Module):
    """Observation -> ``(mean, log_std)`` of a diagonal Gaussian over actions.

    ``log_std`` is a parameter vector (state-independent) initialised to
    ``init_log_std`` and broadcast to the mean's shape.
    """

    action_dim: int
    hidden: Sequence[int] = (128, 128)
    activation: str = "tanh"
    init_log_std: float = 0.0

    @nn.compact
    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = MLPTrunk(self.hidden, self.activation)(obs)
        mean = _dense(self.action_dim, 0.01)(x)
        log_std = self.param("log_std", nn.initializers.constant(self.init_log_std),
                             (self.action_dim,))
        return mean, jnp.broadcast_to(log_std, mean.shape)


class Critic(nn.Module):
    """Observation -> scalar state value (trailing axis squeezed)."""

    hidden: Sequence[int] = (128, 128)
    activation: str = "tanh"

    @nn.compact
    def __call__(self, obs: jax.Array) -> jax.Array:
        x = MLPTrunk(self.hidden, self.activation)(obs)
        return jnp.squeeze(_dense(1, 1.0)(x), axis=-1)


class ActorCritic(nn.Module):
    """Separate actor and critic: ``__call__(obs) -> (mean, log_std, value)``.

    ``value(obs)`` evaluates only the critic and ``policy(obs)`` only the actor
    (use ``module.apply(params, obs, method=ActorCritic.value)``). Inputs may
    carry any leading batch axes; the last axis is the observation vector.
    """

    action_dim: int
    hidden: Sequence[int] = (128, 128)
    activation: str = "tanh"
    init_log_std: float = 0.0

    def setup(self):
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"ActorCritic.activation={self.activation!r}: "
                              f"must be one of {tuple(ACTIVATIONS)}")
        self.actor = GaussianActor(self.action_dim, self.hidden, self.activation,
                                   self.init_log_std)
        self.critic = Critic(self.hidden, self.activation)

    def __call__(self, obs: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        mean, log_std = self.actor(obs)
        return mean, log_std, self.critic(obs)

    def policy(self, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Actor only: ``(mean, log_std)``."""
        return self.actor(obs)

    def value(self, obs: jax.Array) -> jax.Array:
        """Critic only: the state value."""
        return self.critic(obs)


def gaussian_log_prob(mean: jax.Array, log_std: jax.Array, x: jax.Array) -> jax.Array:
    """Log-density of ``x`` under ``N(mean, diag(exp(log_std)^2))``, summed over the last axis."""
    z = (x - mean) * jnp.exp(-log_std)
    return jnp.sum(-0.5 * z**2 - log_std - 0.5 * _LOG_2PI, axis=-1)


def gaussian_entropy(log_std: jax.Array) -> jax.Array:
    """Differential entropy of the diagonal Gaussian, summed over the last axis."""
    return jnp.sum(log_std + 0.5 * (1.0 + _LOG_2PI), axis=-1)


def gaussian_sample(key: jax.Array, mean: jax.Array, log_std: jax.Array) -> jax.Array:
    """One reparameterised sample ``mean + exp(log_std) * noise``."""
    return mean + jnp.exp(log_std) * jax.random.normal(key, mean.shape, mean.dtype)


def num_params(params) -> int:
    """Total number of scalars in a parameter pytree."""
    return int(sum(np.prod(p.shape) for p in jax.tree.leaves(params)))
