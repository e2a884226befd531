"""CIVIC (spec ``civic.md``): multi-provider immersion-aware allocation with
budgets and a shared General Credit Pool; PPO agents and the baselines.
See ``docs/civic.md`` for the model, every parameter and the differences from the paper.

Everything a notebook needs is here: the model functions (:mod:`.model`), the
environment :class:`CivicEnv` and :func:`default_params`, the baselines and the
evaluator, PPO training, and the experiments (``run(config, out)``).
"""
from jaxtwin.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    # model functions (and the module itself, for the full set)
    "model": ".model",
    "RoomTable": ".model", "ModelConstants": ".model", "default_room_table": ".model",
    "immersion": ".model", "head_cost": ".model", "myopic_optimal": ".model", "efficiency_score": ".model",
    # environment
    "CivicEnv": ".env", "EnvParams": ".env", "CivicState": ".env", "default_params": ".env",
    "credit_total": ".env", "validate_params": ".env",
    # baselines and evaluation
    "BASELINE_NAMES": ".baselines", "make_baseline": ".baselines", "from_actor": ".baselines",
    "METRIC_NAMES": ".evaluate", "episode_metrics": ".evaluate", "run_episode": ".evaluate",
    "make_evaluator": ".evaluate",
    # agents
    "AgentConfig": ".agents", "train_agent": ".agents", "train_agents": ".agents", "load_agent": ".agents",
    "drl_policy": ".agents", "train_through_phases": ".agents", "agent_actor": ".agents",
    "load_saved_agent": ".agents", "saved_agent_record": ".agents",
    # experiments (run(config, out_dir) contract; CLI in .cli)
    "CivicConfig": ".config", "scenario_env": ".config", "scenario_params": ".config", "evaluate_policies": ".tables", "run": ".experiments",
    "run_train": ".experiments", "run_evaluate": ".experiments", "EXPERIMENTS": ".experiments",
    # discrete-action gymnax view (PureJaxRL ppo.py, DQN)
    "discrete": ".views",
})
