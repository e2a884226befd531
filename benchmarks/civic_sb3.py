"""The Stable-Baselines3 side of ``python -m benchmarks civic``: SB3's ``DummyVecEnv``
stepping the NumPy gymnasium env, and SB3 PPO with the CIVIC agent's
hyperparameters, timed at each torch thread setting (:mod:`benchmarks.threads`)."""
from __future__ import annotations

import time
from typing import Sequence

import numpy as np

from benchmarks import threads
from benchmarks.civic import (CLIP, ENT_COEF, EPOCHS, EXPERIMENT_ENVS, EXPERIMENT_STEPS, GAE_LAMBDA, GAMMA,
                              HIDDEN, INIT_LOG_STD, LR, MAX_GRAD_NORM, MINIBATCH, VF_COEF, load)


def dummy_vec_rate(env_kw: dict, n_envs: int, n_steps: int, seed: int = 0) -> float:
    """Env steps/s of SB3's ``DummyVecEnv`` over ``n_envs`` gymnasium envs (random actions;
    no torch work, so the thread setting does not matter)."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from benchmarks.reference.civic_gym import CivicGymEnv

    venv = DummyVecEnv([lambda i=i: CivicGymEnv(seed=seed + i, **env_kw) for i in range(n_envs)])
    venv.reset()
    rng = np.random.default_rng(seed)
    A = venv.action_space.shape[0]
    rounds = max(1, n_steps // n_envs)
    actions = rng.uniform(-1, 1, (rounds, n_envs, A)).astype(np.float32)
    t0 = time.perf_counter()
    for a in actions:
        venv.step(a)
    return rounds * n_envs / (time.perf_counter() - t0)


def sb3_ppo(env_kw: dict, total: int, n_envs: int, seed: int = 0) -> dict:
    """Wall and CPU seconds of SB3 ``PPO.learn(total)`` on ``n_envs`` gymnasium envs in a
    ``DummyVecEnv`` (``n_steps = 2048 / n_envs``, so 2048 transitions per update like
    jaxtwin's experiment), at torch's current thread count; rollout/update split.

    The hyperparameters match :func:`benchmarks.civic.ppo_config`; the losses differ
    only in form (SB3's clipped value loss is the MSE of the clipped value, jaxtwin's
    the max of clipped and unclipped), not in the work per step."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from benchmarks.reference.civic_gym import CivicGymEnv

    per_update = EXPERIMENT_ENVS * EXPERIMENT_STEPS
    venv = DummyVecEnv([lambda i=i: CivicGymEnv(seed=seed + i, **env_kw) for i in range(n_envs)])
    model = PPO("MlpPolicy", venv, n_steps=per_update // n_envs, batch_size=MINIBATCH, n_epochs=EPOCHS,
                learning_rate=LR, gamma=GAMMA, gae_lambda=GAE_LAMBDA, clip_range=CLIP, clip_range_vf=CLIP,
                ent_coef=ENT_COEF, vf_coef=VF_COEF, max_grad_norm=MAX_GRAD_NORM,
                policy_kwargs=dict(net_arch=dict(pi=list(HIDDEN), vf=list(HIDDEN)),
                                   activation_fn=torch.nn.Tanh, log_std_init=INIT_LOG_STD, ortho_init=True),
                device="cpu", seed=seed, verbose=0)
    spent = {"rollout": 0.0, "update": 0.0}

    def timed(fn, name):
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t0
        return wrapper

    model.collect_rollouts = timed(model.collect_rollouts, "rollout")
    model.train = timed(model.train, "update")
    t0, c0 = time.perf_counter(), time.process_time()
    model.learn(total_timesteps=total)
    run_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    steps = int(model.num_timesteps)
    return dict(n_envs=n_envs, steps=steps, run_s=run_s, cpu_s=cpu_s, env_steps_per_s=steps / run_s,
                rollout_s=spent["rollout"], update_s=spent["update"], torch_threads=torch.get_num_threads(),
                load=load())


def sb3_ppo_at_threads(env_kw: dict, total: int, n_envs: int, settings: Sequence[int]) -> tuple[dict, list[dict]]:
    """:func:`sb3_ppo` once per torch thread count of ``settings`` (``learn`` timed alone);
    returns ``(fastest, all)`` as :func:`benchmarks.threads.time_at_threads`."""
    import torch

    return threads.time_at_threads(lambda: sb3_ppo(env_kw, total, n_envs), settings,
                                   set_threads=torch.set_num_threads, get_threads=torch.get_num_threads,
                                   own_times=lambda r: (r["run_s"], r["cpu_s"]))


def sb3_ppo_with_threads(env_kw: dict, total: int, n_envs: int, n_threads: int) -> dict:
    """:func:`sb3_ppo` at ``n_threads`` torch threads (the setting before is restored)."""
    return sb3_ppo_at_threads(env_kw, total, n_envs, (n_threads,))[0]["result"]
