"""Sync game (spec ``syncgame.md``): replicator dynamics of a UAV population
under open-loop Nash and Stackelberg differential games between VSPs, solved
through Pontryagin costate ODEs with diffrax.
See ``docs/syncgame.md`` for the model, every parameter and the differences from the paper.

Everything a notebook needs is here: the parameters (:class:`SyncParams`,
:func:`default_params`), the model and replicator (and the replicator dynamics
of any payoff matrix or function), the Nash solvers (sweep and collocation),
Stackelberg and static baselines, the direct-method check, the solvers' result
codes (:class:`Result`, :func:`message`), and the experiments (``run(config, out)``).
"""
from jaxtwin.core.lazy import lazy_exports

__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "SyncParams": ".params", "default_params": ".params", "make_params": ".params",
    "stack_params": ".params", "validate_params": ".params",
    "instantaneous_payoff": ".model", "discounted_payoff": ".model", "replicator_field": ".model",
    "simulate": ".replicator", "simulate_replicator": ".replicator", "replicator_rest_point": ".replicator",
    "time_grid": ".replicator", "replicator_dynamics": ".replicator", "replicator_vector_field": ".replicator",
    "Result": ".results", "message": ".results",
    "SolverOptions": ".pmp", "GameSolution": ".nash", "nash_equilibrium": ".nash",
    "CollocationOptions": ".collocation", "nash_collocation": ".collocation",
    "stackelberg_equilibrium": ".stackelberg", "static_stackelberg_equilibrium": ".static",
    "static_nash": ".static", "verify_equilibrium": ".direct",
    "SyncGameConfig": ".experiments", "run": ".experiments", "STEPS": ".experiments",
})
