"""Proximal policy optimisation (PPO, clipped surrogate) for continuous actions.

Modelled on PureJaxRL's ``ppo_continuous_action``: the whole training run is one
pure function of a PRNG key; environments are ``vmap``-ed, the rollout and the
epoch/minibatch updates are ``lax.scan``-s, and ``jax.vmap(train)(keys)`` trains
several seeds at once.

Pieces:

- :class:`PPOConfig` — frozen, validated hyperparameters (CIVIC spec §6 defaults).
- :func:`make_train_chunks` — ``init(key) -> runner_state`` and
  ``run_updates(runner_state, n_updates) -> (runner_state, metrics)`` so a
  driver can report progress and checkpoint between chunks;
  :func:`make_train` is ``run_updates(init(key), num_updates)``.
- :func:`make_policy` — the trained policy as ``act(params, key, obs)``.
- :func:`clipped_surrogate_loss`, :func:`clipped_value_loss` — the loss terms
  as standalone functions.
- :func:`runner_state_to_bytes` / :func:`runner_state_from_bytes` — pure
  (de)serialisation of a runner state for checkpoints written by experiments.

Actions: the Gaussian sample is what the log-probabilities refer to; the
environment receives it clipped to the action space's bounds.

Truncation: the value of ``info["final_observation"]`` bootstraps a truncated
episode; a terminated one bootstraps from zero (see :mod:`jaxtwin.learn.gae`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, Literal

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training.train_state import TrainState

from jaxtwin.core.config import (ConfigError, require_choice, require_int, require_positive,
                                 require_range)
from jaxtwin.core.env import Environment
from jaxtwin.learn.gae import compute_gae
from jaxtwin.learn.ppo_losses import (approx_kl, clipped_surrogate_loss, clipped_value_loss,
                                      make_update_epochs)
from jaxtwin.nets.init import seedwise_init
from jaxtwin.nets.actor_critic import (ACTIVATIONS, ActorCritic, gaussian_log_prob, gaussian_sample)


# ----------------------------------------------------------------- config
@dataclass(frozen=True)
class PPOConfig:
    """PPO hyperparameters; defaults follow the CIVIC spec §6 and PureJaxRL."""

    num_envs: int = field(default=64, metadata={"help": "parallel environments"})
    num_steps: int = field(default=128, metadata={"help": "steps per environment per update (rollout length)"})
    total_timesteps: int = field(default=1_000_000, metadata={
        "help": "environment steps in total; updates = total_timesteps // (num_envs * num_steps)"})
    update_epochs: int = field(default=4, metadata={"help": "passes over each rollout"})
    minibatch_size: int = field(default=128, metadata={"help": "transitions per gradient step"})
    gamma: float = field(default=0.97, metadata={"help": "discount factor"})
    gae_lambda: float = field(default=0.95, metadata={"help": "GAE lambda"})
    clip_eps: float = field(default=0.2, metadata={"help": "PPO ratio clip (also the value clip)"})
    lr: float = field(default=3e-4, metadata={"help": "Adam learning rate"})
    anneal_lr: bool = field(default=False, metadata={"help": "decay the learning rate linearly to 0 over the updates"})
    adam_eps: float = field(default=1e-5, metadata={"help": "Adam epsilon"})
    ent_coef: float = field(default=0.0, metadata={"help": "entropy bonus coefficient"})
    vf_coef: float = field(default=0.5, metadata={"help": "value loss coefficient"})
    max_grad_norm: float = field(default=0.5, metadata={"help": "global gradient-norm clip"})
    clip_value_loss: bool = field(default=True, metadata={"help": "clip the value update to +-clip_eps around the old value"})
    normalize_advantages: bool = field(default=True, metadata={"help": "standardise advantages per minibatch"})
    hidden: tuple[int, ...] = field(default=(128, 128), metadata={"help": "hidden widths of the actor and of the critic MLP"})
    activation: Literal["tanh", "relu"] = field(default="tanh", metadata={"help": "hidden activation"})
    init_log_std: float = field(default=0.0, metadata={"help": "initial log standard deviation of the Gaussian policy"})

    def __post_init__(self):
        require_int(self, "num_envs", "num_steps", "total_timesteps", "update_epochs",
                    "minibatch_size", minimum=1)
        require_range(self, "gamma", 0.0, 1.0)
        require_range(self, "gae_lambda", 0.0, 1.0)
        require_positive(self, "clip_eps", "lr", "adam_eps", "max_grad_norm")
        require_positive(self, "ent_coef", "vf_coef", allow_zero=True)
        require_range(self, "init_log_std", -20.0, 5.0)
        require_choice(self, "activation", tuple(ACTIVATIONS))
        for name in ("anneal_lr", "clip_value_loss", "normalize_advantages"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"PPOConfig.{name}={getattr(self, name)!r}: must be a boolean")
        if not isinstance(self.hidden, tuple) or not self.hidden:
            raise ConfigError(f"PPOConfig.hidden={self.hidden!r}: must be a non-empty tuple of widths")
        for width in self.hidden:
            if isinstance(width, bool) or not isinstance(width, int) or width < 1:
                raise ConfigError(f"PPOConfig.hidden={self.hidden!r}: widths must be integers >= 1")
        if self.batch_size % self.minibatch_size:
            raise ConfigError(
                f"PPOConfig.minibatch_size={self.minibatch_size!r}: must divide "
                f"num_envs * num_steps = {self.num_envs} * {self.num_steps} = {self.batch_size}")
        if self.total_timesteps < self.batch_size:
            raise ConfigError(
                f"PPOConfig.total_timesteps={self.total_timesteps!r}: must be at least one update, "
                f"num_envs * num_steps = {self.batch_size}")

    @property
    def batch_size(self) -> int:
        """Transitions per update: ``num_envs * num_steps``."""
        return self.num_envs * self.num_steps

    @property
    def num_minibatches(self) -> int:
        """Gradient steps per epoch."""
        return self.batch_size // self.minibatch_size

    @property
    def num_updates(self) -> int:
        """Updates in a full run: ``total_timesteps // batch_size``."""
        return self.total_timesteps // self.batch_size


# ----------------------------------------------------------------- state
@struct.dataclass
class RunnerState:
    """Everything a training run carries between updates (a pytree).

    ``episode_return``/``episode_length`` accumulate the running episode of each
    environment; ``last_mean_return`` is the mean return of the most recent
    update that completed any episode (NaN before the first one: nothing measured yet,
    so no curve starts at a fake 0).
    """

    train_state: TrainState
    env_state: Any
    obs: jax.Array
    key: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array
    last_mean_return: jax.Array
    last_mean_length: jax.Array
    update: jax.Array


@struct.dataclass
class Transition:
    """One vectorised rollout step (leading env axis; time axis after scan)."""

    obs: jax.Array
    action: jax.Array
    log_prob: jax.Array
    value: jax.Array
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    final_obs: jax.Array
    finished_return: jax.Array
    finished_length: jax.Array


# ----------------------------------------------------------------- helpers
def _spaces(env: Environment, env_params: Any):
    action_space = env.action_space(env_params)
    obs_space = env.observation_space(env_params)
    act_shape = tuple(action_space.shape)
    obs_shape = tuple(obs_space.shape)
    low = jnp.broadcast_to(jnp.asarray(action_space.low, jnp.float32), act_shape).reshape(-1)
    high = jnp.broadcast_to(jnp.asarray(action_space.high, jnp.float32), act_shape).reshape(-1)
    return act_shape, obs_shape, low, high


def _network(config: PPOConfig, action_dim: int) -> ActorCritic:
    return ActorCritic(action_dim=action_dim, hidden=config.hidden,
                       activation=config.activation, init_log_std=config.init_log_std)


def _raw_key(key: jax.Array) -> jax.Array:
    """Legacy uint32 key data (serialisable) from either key flavour."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    return key


# ----------------------------------------------------------------- training
def make_train_chunks(config: PPOConfig, env: Environment, env_params: Any = None):
    """``(init, run_updates)`` for training PPO in resumable chunks.

    ``init(key) -> RunnerState`` builds the network, optimiser and ``num_envs``
    reset environments. ``run_updates(runner_state, n_updates)`` (``n_updates``
    static) performs ``n_updates`` rollout+update rounds and returns the new
    runner state and a dict of per-update metrics (leading axis ``n_updates``):

    - ``mean_return``: mean undiscounted return of episodes completed during the
      update (carried forward from the last update that completed one; NaN before);
    - ``mean_length``: the same for episode lengths;
    - ``episodes``: episodes completed during the update;
    - ``value_loss``, ``policy_loss``, ``entropy``, ``approx_kl``,
      ``clip_fraction``: means over the update's epochs and minibatches;
    - ``env_steps``: environment steps taken so far (int32).

    Both take an optional last argument ``env_params`` (default: the
``env_params`` given here) of the same shapes, so one compiled program trains
learners under different scenario parameters: ``jax.vmap(run_updates,
in_axes=(0, None, 0))`` over a stack of runner states and of params (a seed x
point grid of learners). Both are jitted (nest them under ``jax.vmap`` for
several seeds).
    With ``anneal_lr`` the learning rate reaches 0 after ``config.num_updates``.

    To change the scenario mid-training (e.g. a new threshold), build a second
    pair with the new ``env_params`` and continue with its ``run_updates`` on
    the same runner state (running episodes finish under the new parameters).
    """
    env_params = env.default_params if env_params is None else env_params
    act_shape, obs_shape, act_low, act_high = _spaces(env, env_params)
    obs_dim = int(np.prod(obs_shape))
    network = _network(config, int(np.prod(act_shape)))
    init_params = seedwise_init(network, jnp.zeros((1, obs_dim), jnp.float32))
    tx = _optimizer(config)
    n_envs = config.num_envs
    env_reset = jax.vmap(env.reset, in_axes=(0, None))
    one_update = _make_one_update(config, network, _make_rollout_step(
        network, env, n_envs, obs_dim, act_shape, act_low, act_high))
    default_params = env_params

    @jax.jit
    def _init(key: jax.Array, env_params) -> RunnerState:
        key = _raw_key(key)
        key, key_net, key_env = jax.random.split(key, 3)
        params = init_params(key_net)
        train_state = TrainState.create(apply_fn=network.apply, params=params, tx=tx)
        obs, env_state = env_reset(jax.random.split(key_env, n_envs), env_params)
        zeros = jnp.zeros((n_envs,), jnp.float32)
        return RunnerState(
            train_state=train_state, env_state=env_state, obs=_flat(obs, obs_dim), key=key,
            episode_return=zeros, episode_length=jnp.zeros((n_envs,), jnp.int32),
            last_mean_return=jnp.full((), jnp.nan, jnp.float32),
            last_mean_length=jnp.full((), jnp.nan, jnp.float32),
            update=jnp.zeros((), jnp.int32))

    @partial(jax.jit, static_argnums=1)
    def _run_updates(runner_state: RunnerState, n_updates: int, env_params):
        return jax.lax.scan(partial(one_update, env_params), runner_state, None, length=n_updates)

    def init(key: jax.Array, env_params: Any = None) -> RunnerState:
        return _init(key, default_params if env_params is None else env_params)

    def run_updates(runner_state: RunnerState, n_updates: int, env_params: Any = None):
        return _run_updates(runner_state, n_updates, default_params if env_params is None else env_params)

    return init, run_updates


def _flat(obs: jax.Array, obs_dim: int) -> jax.Array:
    """A batch of observations as ``(batch, obs_dim)`` float32 (the network's input)."""
    return jnp.reshape(obs, (obs.shape[0], obs_dim)).astype(jnp.float32)


def _optimizer(config: PPOConfig) -> optax.GradientTransformation:
    """Adam behind a global-norm clip; with ``anneal_lr`` the rate falls linearly to 0."""
    if config.anneal_lr:
        grad_steps = config.num_updates * config.update_epochs * config.num_minibatches
        learning_rate = optax.linear_schedule(config.lr, 0.0, grad_steps)
    else:
        learning_rate = config.lr
    return optax.chain(optax.clip_by_global_norm(config.max_grad_norm),
                       optax.adam(learning_rate, eps=config.adam_eps))


def _make_rollout_step(network, env: Environment, n_envs: int, obs_dim: int, act_shape, act_low, act_high):
    """``rollout_step(env_params, runner, _) -> (runner, transition)``: one step of the
    ``n_envs`` environments under the current policy (a ``lax.scan`` body)."""
    env_step = jax.vmap(env.step, in_axes=(0, 0, 0, None))

    def rollout_step(env_params, runner: RunnerState, _):
        key, key_act, key_env = jax.random.split(runner.key, 3)
        mean, log_std, value = network.apply(runner.train_state.params, runner.obs)
        action = gaussian_sample(key_act, mean, log_std)
        log_prob = gaussian_log_prob(mean, log_std, action)
        env_action = jnp.clip(action, act_low, act_high).reshape((n_envs, *act_shape))
        obs, env_state, reward, terminated, truncated, info = env_step(
            jax.random.split(key_env, n_envs), runner.env_state, env_action, env_params)
        if reward.shape != (n_envs,):
            raise ValueError(f"PPO needs one scalar reward per environment step; the env "
                             f"returned rewards of shape {reward.shape[1:]}")
        reward = reward.astype(jnp.float32)
        done = jnp.logical_or(terminated, truncated)
        episode_return = runner.episode_return + reward
        episode_length = runner.episode_length + 1
        transition = Transition(
            obs=runner.obs, action=action, log_prob=log_prob, value=value, reward=reward,
            terminated=terminated, truncated=truncated,
            final_obs=_flat(info["final_observation"], obs_dim),
            finished_return=jnp.where(done, episode_return, 0.0),
            finished_length=jnp.where(done, episode_length, 0))
        runner = runner.replace(
            env_state=env_state, obs=_flat(obs, obs_dim), key=key,
            episode_return=jnp.where(done, 0.0, episode_return),
            episode_length=jnp.where(done, 0, episode_length))
        return runner, transition

    return rollout_step


def _make_one_update(config: PPOConfig, network, rollout_step):
    """``one_update(env_params, runner, _) -> (runner, metrics)``: a rollout of
    ``num_steps``, GAE, then the epochs of minibatch updates (a ``lax.scan`` body)."""
    update_epochs = make_update_epochs(config, network)

    def one_update(env_params, runner: RunnerState, _):
        runner, traj = jax.lax.scan(partial(rollout_step, env_params), runner, None, length=config.num_steps)
        params = runner.train_state.params
        next_values = network.apply(params, traj.final_obs, method=ActorCritic.value)
        advantages, returns = compute_gae(traj.reward, traj.value, next_values, traj.terminated,
                                          traj.truncated, config.gamma, config.gae_lambda)
        batch = (traj.obs, traj.action, traj.log_prob, traj.value, advantages, returns)
        batch = jax.tree.map(lambda x: x.reshape((config.batch_size, *x.shape[2:])), batch)
        key, key_epochs = jax.random.split(runner.key)
        train_state, stats = update_epochs(runner.train_state, key_epochs, batch)

        done = jnp.logical_or(traj.terminated, traj.truncated)
        episodes = jnp.sum(done, dtype=jnp.int32)
        denom = jnp.maximum(episodes, 1).astype(jnp.float32)
        # carried forward from the last update that finished an episode (NaN before one does)
        mean_return = jnp.where(episodes > 0, jnp.sum(traj.finished_return) / denom, runner.last_mean_return)
        mean_length = jnp.where(episodes > 0, jnp.sum(traj.finished_length) / denom, runner.last_mean_length)
        update = runner.update + 1
        runner = runner.replace(train_state=train_state, key=key,
                                last_mean_return=mean_return, last_mean_length=mean_length,
                                update=update)
        metrics = {k: jnp.mean(v) for k, v in stats.items()}
        metrics.update(mean_return=mean_return, mean_length=mean_length, episodes=episodes,
                       env_steps=update * jnp.int32(config.batch_size))
        return runner, metrics

    return one_update


def make_train(config: PPOConfig, env: Environment, env_params: Any = None
               ) -> Callable[[jax.Array], tuple[TrainState, dict[str, jax.Array]]]:
    """``train(key) -> (train_state, metrics)`` running ``config.num_updates`` updates.

    Pure and jittable; ``jax.vmap(train)(keys)`` trains one run per key.
    ``metrics`` is the dict documented in :func:`make_train_chunks`, with a
    leading axis of length ``config.num_updates``.
    """
    init, run_updates = make_train_chunks(config, env, env_params)

    def train(key: jax.Array):
        runner_state, metrics = run_updates(init(key), config.num_updates)
        return runner_state.train_state, metrics

    return train


def make_policy(config: PPOConfig, env: Environment, env_params: Any = None,
                deterministic: bool = True) -> Callable[[Any, jax.Array, jax.Array], jax.Array]:
    """``act(params, key, obs) -> action`` for trained parameters (``train_state.params``).

    Deterministic: the Gaussian mean; otherwise a sample. Actions are clipped to
    the action space's bounds and shaped like it; ``obs`` may carry leading
    batch axes (the action gets the same ones). ``key`` is unused when
    deterministic.
    """
    env_params = env.default_params if env_params is None else env_params
    act_shape, obs_shape, act_low, act_high = _spaces(env, env_params)
    network = _network(config, int(np.prod(act_shape)))
    obs_dim = int(np.prod(obs_shape))

    def act(params, key: jax.Array, obs: jax.Array) -> jax.Array:
        obs = jnp.asarray(obs, jnp.float32)
        batch_shape = obs.shape[:obs.ndim - len(obs_shape)]
        mean, log_std = network.apply(params, obs.reshape((*batch_shape, obs_dim)),
                                      method=ActorCritic.policy)
        action = mean if deterministic else gaussian_sample(key, mean, log_std)
        return jnp.clip(action, act_low, act_high).reshape((*batch_shape, *act_shape))

    return act


# ----------------------------------------------------------------- checkpoints
def runner_state_to_bytes(runner_state: RunnerState) -> bytes:
    """Serialise a runner state (or a vmapped stack of them) with flax msgpack."""
    return flax.serialization.to_bytes(runner_state)


def runner_state_from_bytes(data: bytes, template: RunnerState) -> RunnerState:
    """Restore bytes from :func:`runner_state_to_bytes` into ``template``'s structure.

    ``template`` is any runner state of the same config/env (e.g. ``init(key)``;
    vmapped if the saved one was); its optimiser and ``apply_fn`` are kept.
    """
    return flax.serialization.from_bytes(template, data)


__all__ = ["PPOConfig", "RunnerState", "Transition", "make_train", "make_train_chunks",
           "make_policy", "clipped_surrogate_loss", "clipped_value_loss", "approx_kl",
           "runner_state_to_bytes", "runner_state_from_bytes"]
