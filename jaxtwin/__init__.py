"""jaxtwin: JAX-accelerated, vectorised simulators for digital-twin resource
management in the metaverse — Co-EvoDT, CIVIC and the IoT sync game.

Public names are imported lazily so ``import jaxtwin`` stays fast and a
system's heavy dependencies load only when that system is used.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "Environment": "jaxtwin.core.env",
    "Discrete": "jaxtwin.core.spaces",
    "Box": "jaxtwin.core.spaces",
    "rollout": "jaxtwin.core.rollout",
    "batch_rollout": "jaxtwin.core.rollout",
    "batch_major_rollout": "jaxtwin.core.rollout",
    "discrete_normal_sampler": "jaxtwin.core.rollout",
    "sharded_vmap": "jaxtwin.core.sharding",
    "sharded_call": "jaxtwin.core.sharding",
    "prepare_devices": "jaxtwin.core.sharding",
    "enable_compilation_cache": "jaxtwin.core.compile_cache",
    # CIVIC
    "CivicEnv": "jaxtwin.envs.civic",
    "CivicParams": "jaxtwin.envs.civic",
    "CivicState": "jaxtwin.envs.civic",
    "RoomTable": "jaxtwin.envs.civic_model",
    "default_room_table": "jaxtwin.envs.civic_model",
    "make_evaluator": "jaxtwin.learn.civic_baselines",
    # PPO
    "PPOConfig": "jaxtwin.learn.ppo",
    "ActorCritic": "jaxtwin.nets.actor_critic",
    "PointEnv": "jaxtwin.envs.toy",
    # Co-EvoDT
    "CoEvoEnv": "jaxtwin.envs.coevo",
    "PolicyNet": "jaxtwin.nets.policy",
    "ProtocolConfig": "jaxtwin.learn.coevo_protocol",
    "CoEvoDTConfig": "jaxtwin.experiments.coevodt",
    # sync game
    "SyncParams": "jaxtwin.games.params",
    "SolverOptions": "jaxtwin.games.pmp",
    "nash_equilibrium": "jaxtwin.games.nash",
    "nash_collocation": "jaxtwin.games.collocation",
    "CollocationOptions": "jaxtwin.games.collocation",
    "stackelberg_equilibrium": "jaxtwin.games.stackelberg",
    "static_stackelberg_equilibrium": "jaxtwin.games.static",
    "verify_equilibrium": "jaxtwin.games.direct",
    "ForecastConfig": "jaxtwin.learn.forecast",
    "LSTMForecaster": "jaxtwin.nets.forecaster",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxtwin' has no attribute {name!r}")


def __dir__():
    return __all__
