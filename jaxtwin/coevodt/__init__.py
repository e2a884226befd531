"""Co-EvoDT (spec ``coevodt.md``): content, infrastructure and user digital
twins trained by REINFORCE over co-evolving populations, with an LSTM load
forecaster appended to the state (modes NoPred, PretrainOnly, Online).
See ``docs/coevodt.md`` for the model, every parameter and the differences from the paper.

Everything a notebook needs is here: the environment :class:`CoEvoEnv` and
:func:`default_params` with its model functions, the forecaster, the whole
protocol (:class:`Protocol`) and the experiment (``run(config, out)``).
"""
from jaxtwin.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    # environment and model functions
    "CoEvoEnv": ".env", "EnvParams": ".env", "EnvState": ".env", "default_params": ".env",
    "AGENTS": ".env", "validate_params": ".env", "transition": ".env", "metrics": ".env",
    "agent_rewards": ".env", "project_action": ".env",
    # load forecaster
    "ForecastConfig": ".forecast", "FORECASTERS": ".forecast", "pretrain": ".forecast",
    "finetune": ".forecast", "predict": ".forecast",
    # protocol and experiment
    "MODES": ".protocol", "Protocol": ".protocol", "ProtocolConfig": ".protocol", "convergence": ".protocol",
    "CoEvoDTConfig": ".experiments", "train_mode": ".experiments", "run": ".experiments",
    "sensitivity_scenarios": ".sensitivity", "sensitivity_study": ".sensitivity",
    "run_sensitivity": ".sensitivity",
    # views for existing JAX RL code (gymnax single controller, JaxMARL)
    "single_controller": ".views", "as_jaxmarl": ".views",
})
