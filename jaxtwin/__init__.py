"""jaxtwin: JAX-accelerated, vectorised simulators for digital-twin resource
management in the metaverse.

The three systems are namespaces — ``jaxtwin.coevodt``, ``jaxtwin.civic``,
``jaxtwin.syncgame`` — each holding its model, environment or game, agents,
baselines and experiments. The generic pieces (environment contract, spaces,
rollouts, sharding, learners, networks) are re-exported here. Names are
imported lazily so ``import jaxtwin`` stays fast.
"""
from __future__ import annotations

from jaxtwin.core.lazy import lazy_exports

__version__ = "0.1.0"

_all, __getattr__, __dir__ = lazy_exports(__name__, {
    # the systems
    "coevodt": "jaxtwin.coevodt", "civic": "jaxtwin.civic", "syncgame": "jaxtwin.syncgame",
    # environment contract and rollouts
    "Environment": "jaxtwin.core.env", "Discrete": "jaxtwin.core.spaces", "Box": "jaxtwin.core.spaces",
    "rollout": "jaxtwin.core.rollout", "batch_rollout": "jaxtwin.core.rollout", "random_policy": "jaxtwin.core.rollout",
    "PointEnv": "jaxtwin.core.toy_env",
    # devices
    "sharded_vmap": "jaxtwin.core.sharding", "sharded_call": "jaxtwin.core.sharding",
    "prepare_devices": "jaxtwin.core.sharding", "enable_compilation_cache": "jaxtwin.core.compile_cache",
    # learners and networks
    "PPOConfig": "jaxtwin.learn.ppo", "make_train": "jaxtwin.learn.ppo", "compute_gae": "jaxtwin.learn.gae",
    "ActorCritic": "jaxtwin.nets.actor_critic", "PolicyNet": "jaxtwin.nets.policy",
    "LSTMForecaster": "jaxtwin.nets.forecaster",
    # studies of your own
    "sweep": "jaxtwin.studies", "run_study": "jaxtwin.studies", "Study": "jaxtwin.core.study",
    "plot_study": "jaxtwin.core.study_plots",
    "ConfigError": "jaxtwin.core.config",
    "ResultError": "jaxtwin.core.errors",
})
__all__ = ["__version__", *_all]
