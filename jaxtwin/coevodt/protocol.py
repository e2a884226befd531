"""One Co-EvoDT run (spec coevodt §4) as pure, jittable, ``vmap``-able pieces.

``setup`` (random baseline -> LSTM pretraining -> fresh populations),
``train_group`` (``evolve_freq`` training episodes, then evolution) and
``finish`` (score members, greedy evaluation of the best) compose into
``run(key, env_params)``: one program per mode, ``jax.vmap``-ed over runs.
The experiment calls the pieces separately (one jitted call per group, all
runs vmapped, compiled once) to show progress and checkpoint.

Periodic operations never hide behind a batched ``lax.cond`` (which ``vmap``
turns into a select that runs both branches every episode): training is
nested ``lax.scan``s — episodes inside blocks of ``online_every`` followed by
the Online fine-tune, blocks inside groups of ``evolve_freq`` followed by
evolution. The only ``cond`` skips the evolution after the last group (the
seed evolves when ``ep % EVOLVE_FREQ == 0 and ep < MARL_EPISODES``); its
predicate is the un-batched group index, so it stays a real branch.

Readings fixed here (documented choices):
- the forecast buffer starts with the reset load ``l_0`` (count 1) and gets
  every post-step load, so step ``t`` sees loads ``l_0..l_t``;
- member fitness = mean per-step reward of that agent with the member acting
  greedily and the other agents uniformly random, averaged over
  ``eval_per_member`` episodes whose keys are shared by all members (CRN);
- convergence: with ``R_e`` the episode's per-step reward averaged over agents,
  ``|mean(R over the last W episodes) - mean(R over the W before)| < tol``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import jax
import jax.numpy as jnp
from flax import struct

from jaxtwin.core.config import (ConfigError, require_int, require_positive,
                                 require_range)
from jaxtwin.coevodt.env import (N_ACTIONS, N_AGENTS, EnvParams, initial_state, observation,
                                step_with_noise)
from jaxtwin.learn.evolution import evaluate_population, evolve_population
from jaxtwin.coevodt import forecast as fc
from jaxtwin.coevodt.forecast import ForecastConfig, finetune, forecast_feature, push_load, split_sizes
from jaxtwin.learn.reinforce import init_opt_states, make_optimizer, update_sampled_members
from jaxtwin.nets.policy import PolicyNet, greedy_action, init_population, inverse_cdf_action

MODES = ("NoPred", "PretrainOnly", "Online")
EPISODE_METRICS = ("qoe", "latency", "cost", "virality", "load")


@dataclass(frozen=True)
class ProtocolConfig:
    """Hyperparameters of one Co-EvoDT run (spec §2-4 defaults; POP_SIZE=8 from the seed)."""

    episodes: int = field(default=200, metadata={"help": "MARL training episodes (MARL_EPISODES)"})
    episode_len: int = field(default=50, metadata={"help": "steps per episode (T)"})
    baseline_episodes: int = field(default=160, metadata={"help": "random-action baseline episodes (BASELINE_TRACE_EPISODES)"})
    eval_episodes: int = field(default=80, metadata={"help": "greedy evaluation episodes (EVAL_EPISODES)"})
    pop_size: int = field(default=8, metadata={"help": "policies per agent (POP_SIZE)"})
    evolve_freq: int = field(default=40, metadata={"help": "episodes between evolution steps (EVOLVE_FREQ)"})
    eval_per_member: int = field(default=2, metadata={"help": "fitness episodes per member (EVAL_PER_MEMBER)"})
    tournament_k: int = field(default=3, metadata={"help": "tournament size (TOURNAMENT_K)"})
    mutation_std: float = field(default=0.02, metadata={"help": "Gaussian mutation std (MUT_STD)"})
    n_replace: int = field(default=2, metadata={"help": "weakest members replaced by children per evolution"})
    policy_lr: float = field(default=5e-3, metadata={"help": "Adam learning rate (POLICY_LR)"})
    adam_b1: float = field(default=0.9, metadata={"help": "Adam beta1"})
    adam_b2: float = field(default=0.999, metadata={"help": "Adam beta2"})
    adam_eps: float = field(default=1e-8, metadata={"help": "Adam epsilon"})
    max_grad_norm: Optional[float] = field(default=None, metadata={"help": "global-norm gradient clip (none: off)"})
    gamma: float = field(default=0.99, metadata={"help": "discount factor"})
    policy_hidden: tuple[int, ...] = field(default=(64, 32), metadata={"help": "PolicyNet hidden widths"})
    convergence_window: int = field(default=20, metadata={"help": "episodes per window of the convergence check"})
    convergence_tol: float = field(default=1e-3, metadata={"help": "convergence threshold on the change of mean reward"})
    forecast: ForecastConfig = field(default_factory=ForecastConfig)

    def __post_init__(self):
        require_int(self, "episodes", "episode_len", "baseline_episodes", "eval_episodes",
                    "evolve_freq", "eval_per_member", "convergence_window", minimum=1)
        require_int(self, "pop_size", "tournament_k", minimum=2)
        require_int(self, "n_replace", minimum=1)
        require_positive(self, "policy_lr", "adam_eps", "convergence_tol")
        require_positive(self, "mutation_std", allow_zero=True)
        require_range(self, "adam_b1", 0.0, 1.0, hi_open=True)
        require_range(self, "adam_b2", 0.0, 1.0, hi_open=True)
        require_range(self, "gamma", 0.0, 1.0)
        if self.max_grad_norm is not None:
            require_positive(self, "max_grad_norm")
        if not self.policy_hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1
                                         for h in self.policy_hidden):
            raise ConfigError(f"ProtocolConfig.policy_hidden={self.policy_hidden!r}: must be positive integers")
        if self.tournament_k > self.pop_size:
            raise ConfigError(f"ProtocolConfig.tournament_k={self.tournament_k!r}: must be <= pop_size={self.pop_size}")
        if self.n_replace >= self.pop_size:
            raise ConfigError(f"ProtocolConfig.n_replace={self.n_replace!r}: must be < pop_size={self.pop_size}")
        if self.episodes % self.evolve_freq:
            raise ConfigError(f"ProtocolConfig.episodes={self.episodes!r}: must be a multiple of "
                              f"evolve_freq={self.evolve_freq} (training runs in whole groups)")
        if self.evolve_freq % self.forecast.online_every:
            raise ConfigError(f"ProtocolConfig.evolve_freq={self.evolve_freq!r}: must be a multiple of "
                              f"forecast.online_every={self.forecast.online_every} (blocks nest in groups)")
        if self.episode_len <= self.forecast.window:
            raise ConfigError(f"ProtocolConfig.episode_len={self.episode_len!r}: must exceed "
                              f"forecast.window={self.forecast.window}")
        fine_tune_windows = self.forecast.online_every * (self.episode_len - self.forecast.window)
        if self.forecast.procedure == "v2" and fine_tune_windows < 2:
            raise ConfigError(f"ProtocolConfig.forecast.online_every={self.forecast.online_every!r}: gives "
                              f"{fine_tune_windows} fine-tune window(s); procedure v2 holds one out, so needs >= 2")
        if 2 * self.convergence_window > self.episodes:
            raise ConfigError(f"ProtocolConfig.convergence_window={self.convergence_window!r}: two windows "
                              f"must fit in episodes={self.episodes}")
        try:
            split_sizes(self.baseline_episodes * (self.episode_len - self.forecast.window), self.forecast)
        except ValueError as err:
            raise ConfigError(f"ProtocolConfig.baseline_episodes={self.baseline_episodes!r}: {err}") from None

    @property
    def n_groups(self) -> int:
        """Evolution groups in training."""
        return self.episodes // self.evolve_freq

    @property
    def blocks_per_group(self) -> int:
        """Online-update blocks per group."""
        return self.evolve_freq // self.forecast.online_every


@struct.dataclass
class TrainCarry:
    """What training threads from group to group (and what a checkpoint holds)."""

    populations: dict          # leading (agent, member) axes
    opt_states: object         # same leading axes
    forecaster: object         # ForecasterState, or None in NoPred
    key: jax.Array             # training key; per-group keys are fold_in(key, group)


def convergence(mean_rewards: jax.Array, window: int, tol: float) -> tuple[jax.Array, jax.Array]:
    """``(delta, converged)``: change of the mean over the last ``window`` episodes vs the previous ``window``."""
    last = mean_rewards[..., -window:].mean(-1)
    prev = mean_rewards[..., -2 * window:-window].mean(-1)
    delta = last - prev
    return delta, jnp.abs(delta) < tol


class Protocol:
    """The run of one mode; every method is pure and jittable (``self`` is static data only)."""

    def __init__(self, cfg: ProtocolConfig, mode: str):
        if mode not in MODES:
            raise ConfigError(f"mode={mode!r}: must be one of {MODES}")
        self.cfg, self.mode = cfg, mode
        self.uses_forecast = mode != "NoPred"
        self.obs_dim = 6 if self.uses_forecast else 5
        self.net = PolicyNet(hidden=tuple(cfg.policy_hidden), n_actions=N_ACTIONS)
        self.optimizer = make_optimizer(cfg.policy_lr, cfg.adam_b1, cfg.adam_b2, cfg.adam_eps,
                                        cfg.max_grad_norm)

    # ------------------------------------------------------------ episodes
    def episode(self, key, act_fn, forecaster, env_params: EnvParams):
        """One ``T``-step episode; ``act_fn(u f32[3], obs_in) -> int[3]`` with ``u ~ U(0,1)``.

        All randomness (initial state, action uniforms, model noise) is drawn
        before the step loop. With ``forecaster=None`` (NoPred, or the baseline
        before any forecaster exists) the observation is the 5-dim state;
        otherwise the forecast feature is appended. Returns per-step arrays.
        """
        cfg, fcfg = self.cfg, self.cfg.forecast
        key_reset, key_u, key_z = jax.random.split(key, 3)
        state = initial_state(key_reset, env_params)
        buffer = push_load(jnp.zeros((fcfg.window,), jnp.float32), state.load)
        uniforms = jax.random.uniform(key_u, (cfg.episode_len, N_AGENTS))
        noise = jax.random.normal(key_z, (cfg.episode_len, 4))

        def step(carry, xs):
            state, buffer, count = carry
            u, z = xs
            obs = observation(state, cfg.episode_len)
            if forecaster is not None:
                obs = jnp.append(obs, forecast_feature(forecaster, buffer, count, fcfg))
            action = act_fn(u, obs)
            nxt, reward, info = step_with_noise(state, action, z, env_params)
            out = dict(obs=obs, action=action, reward=reward, **{m: info[m] for m in EPISODE_METRICS})
            return (nxt, push_load(buffer, nxt.load), count + 1), out

        _, traj = jax.lax.scan(step, (state, buffer, jnp.asarray(1, jnp.int32)), (uniforms, noise))
        return traj

    @staticmethod
    def random_actions(u, obs):
        """Uniform actions for all agents from uniforms ``u``."""
        return jnp.minimum(jnp.floor(u * N_ACTIONS), N_ACTIONS - 1).astype(jnp.int32)

    def member_score(self, forecaster, env_params):
        """``score(agent, member_params, key)``: the member greedy, the others random."""
        def score(agent, params, key):
            def act(u, obs):
                mine = greedy_action(self.net, params, obs)
                return jnp.where(jnp.arange(N_AGENTS) == agent, mine, self.random_actions(u, obs))
            traj = self.episode(key, act, forecaster, env_params)
            return traj["reward"][:, agent].mean()
        return score

    def score_population(self, key, populations, forecaster, env_params):
        """Fitness ``f32[A, P]`` over ``eval_per_member`` common-random-number episodes."""
        keys = jax.random.split(key, self.cfg.eval_per_member)
        return evaluate_population(self.member_score(forecaster, env_params), populations, keys)

    # ------------------------------------------------------------ phases
    def setup(self, key, env_params: EnvParams):
        """Baseline episodes, forecaster pretraining, fresh populations: ``(carry, report)``."""
        cfg = self.cfg
        key_base, key_lstm, key_pop, key_train = jax.random.split(key, 4)
        base = jax.vmap(lambda k: self.episode(k, self.random_actions, None, env_params))(
            jax.random.split(key_base, cfg.baseline_episodes))
        report = {"baseline": {m: base[m].mean(axis=1) for m in ("qoe", "latency", "cost")}}
        forecaster = None
        if self.uses_forecast:
            # the oracle floor needs the state each step starts from: (v, l, c) of the observation
            forecaster, lstm = fc.pretrain(key_lstm, base["load"], cfg.forecast, base["obs"][..., :3], env_params)
            report["forecast"] = lstm
        populations = init_population(key_pop, self.net, self.obs_dim, (N_AGENTS, cfg.pop_size))
        opt_states = init_opt_states(self.optimizer, populations, n_lead=2)
        return TrainCarry(populations, opt_states, forecaster, key_train), report

    def train_episode(self, carry: TrainCarry, key, env_params):
        """Sample one member per agent, play one episode sampling actions, REINFORCE them."""
        key_members, key_episode = jax.random.split(key)
        members = jnp.minimum(jnp.floor(jax.random.uniform(key_members, (N_AGENTS,)) * self.cfg.pop_size),
                              self.cfg.pop_size - 1).astype(jnp.int32)
        chosen = jax.tree.map(lambda x: x[jnp.arange(N_AGENTS), members], carry.populations)

        def act(u, obs):
            return jax.vmap(lambda p, uu: inverse_cdf_action(self.net, p, uu, obs))(chosen, u)

        traj = self.episode(key_episode, act, carry.forecaster, env_params)
        pops, states, loss = update_sampled_members(
            self.net, self.optimizer, carry.populations, carry.opt_states, members,
            traj["obs"], traj["action"], traj["reward"], self.cfg.gamma)
        out = {m: traj[m].mean() for m in ("qoe", "latency", "cost")}
        out.update(episode_return=traj["reward"].sum(0), mean_reward=traj["reward"].mean(),
                   member=members, loss=loss, load=traj["load"])
        return carry.replace(populations=pops, opt_states=states), out

    def train_group(self, carry: TrainCarry, group: jax.Array, env_params: EnvParams):
        """``evolve_freq`` episodes in blocks (Online: fine-tune after each), then evolution.

        Returns ``(carry, metrics)``: per-episode metrics with a leading episode
        axis and ``scores f32[A, P]`` of the evolution (NaN where it is skipped).
        """
        cfg = self.cfg
        group_key = jax.random.fold_in(carry.key, group)
        key_blocks, key_evo = jax.random.split(group_key)

        def block(carry, block_key):
            key_eps, key_ft = jax.random.split(block_key)
            carry, out = jax.lax.scan(lambda c, k: self.train_episode(c, k, env_params), carry,
                                      jax.random.split(key_eps, cfg.forecast.online_every))
            if self.mode == "Online":
                carry = carry.replace(forecaster=finetune(carry.forecaster, key_ft, out["load"], cfg.forecast))
            return carry, out

        carry, out = jax.lax.scan(block, carry, jax.random.split(key_blocks, cfg.blocks_per_group))
        out = jax.tree.map(lambda x: x.reshape((cfg.evolve_freq,) + x.shape[2:]), out)
        out.pop("load")

        def evolve(carry):
            key_score, key_ops = jax.random.split(key_evo)
            scores = self.score_population(key_score, carry.populations, carry.forecaster, env_params)
            pops, states, _ = jax.vmap(
                lambda k, p, s, f: evolve_population(
                    k, p, s, f, self.optimizer, tournament_k=cfg.tournament_k,
                    n_replace=cfg.n_replace, mutation_std=cfg.mutation_std),
            )(jax.random.split(key_ops, N_AGENTS), carry.populations, carry.opt_states, scores)
            return carry.replace(populations=pops, opt_states=states), scores

        def skip(carry):
            return carry, jnp.full((N_AGENTS, cfg.pop_size), jnp.nan, jnp.float32)

        carry, scores = jax.lax.cond(group < cfg.n_groups - 1, evolve, skip, carry)
        return carry, dict(out, evolution_scores=scores[None])

    def finish(self, carry: TrainCarry, env_params: EnvParams):
        """Score every member, pick the best per agent, evaluate them greedily together."""
        key_score, key_eval = jax.random.split(jax.random.fold_in(carry.key, self.cfg.n_groups))  # past every group index
        scores = self.score_population(key_score, carry.populations, carry.forecaster, env_params)
        best = jnp.argmax(scores, axis=1)
        champions = jax.tree.map(lambda x: x[jnp.arange(N_AGENTS), best], carry.populations)

        def act(u, obs):
            return jax.vmap(lambda p: greedy_action(self.net, p, obs))(champions)

        traj = jax.vmap(lambda k: self.episode(k, act, carry.forecaster, env_params))(
            jax.random.split(key_eval, self.cfg.eval_episodes))
        trained = {m: traj[m].mean(axis=1) for m in ("qoe", "latency", "cost")}
        trace = {m: traj[m][0] for m in EPISODE_METRICS}
        return dict(final_scores=scores, best=best, trained=trained, greedy_trace=trace)

    def run(self, key: jax.Array, env_params: EnvParams):
        """The whole run as one program: ``setup -> scan(train_group) -> finish``.

        Also returns the pretrained and final forecasters (``None`` in NoPred).
        """
        carry, report = self.setup(key, env_params)
        start = carry.forecaster
        carry, train = jax.lax.scan(lambda c, g: self.train_group(c, g, env_params), carry,
                                    jnp.arange(self.cfg.n_groups))
        train = jax.tree.map(lambda x: x.reshape((-1,) + x.shape[2:]), train)
        final = self.finish(carry, env_params)
        delta, converged = convergence(train["mean_reward"], self.cfg.convergence_window,
                                       self.cfg.convergence_tol)
        return dict(report, train=train, convergence_delta=delta, converged=converged,
                    forecaster_start=start, forecaster_end=carry.forecaster, **final)
