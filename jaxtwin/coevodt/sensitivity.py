"""Co-EvoDT's +-delta sensitivity sweep (spec coevodt §5) as a declared study on the
engine (:mod:`jaxtwin.core.engine`): ``alpha_p``, ``alpha_i`` and ``alpha_u`` scaled one
at a time by ``1 -+ sensitivity_delta`` (7 scenarios with the nominal one), each trained
in ``sensitivity_mode`` for ``sensitivity_runs`` runs, all in one program.

Files under ``out_dir``: the engine's ``sensitivity/{results,summary}.csv``,
``study.json``, ``study.toml``; ``sensitivity.csv`` (per scenario: ``parameter, factor,
value, runs`` and, for the baseline and the trained champions, the mean, std and 95% CI
over runs of QoE, latency and cost) and ``sensitivity.png``.
"""
from __future__ import annotations

from pathlib import Path

from jaxtwin.core import artifacts, engine
from jaxtwin.core.study import Study
from jaxtwin.coevodt import figures, sweep as coevodt_sweep
from jaxtwin.coevodt.env import EnvParams
from jaxtwin.coevodt.experiments import METRICS, CoEvoDTConfig

SENSITIVITY_PARAMS = ("alpha_p", "alpha_i", "alpha_u")


def sensitivity_scenarios(cfg: CoEvoDTConfig) -> list[tuple[str, float, EnvParams]]:
    """Nominal plus each of alpha_p, alpha_i, alpha_u scaled by ``1 -+ delta``."""
    out = [("nominal", 1.0, cfg.env)]
    for name in SENSITIVITY_PARAMS:
        for factor in (1 - cfg.sensitivity_delta, 1 + cfg.sensitivity_delta):
            out.append((name, factor, cfg.env.replace(**{name: getattr(cfg.env, name) * factor})))
    return out


def sensitivity_study(cfg: CoEvoDTConfig) -> Study:
    """The +-delta sweep as a declared study: ``alpha_p, alpha_i, alpha_u`` zipped over the
    :func:`sensitivity_scenarios`, ``sensitivity_mode`` at ``sensitivity_runs`` runs; ``fixed``
    lists every study field where ``cfg`` departs from the spec's defaults, so the study's
    ``study.toml`` reruns it under ``jaxtwin sweep coevodt --study`` (per-agent weights that
    differ between agents, ``policy_hidden``, ``max_grad_norm`` and ``prng_impl`` come from
    the experiment's adapter, :func:`sensitivity_adapter`, and are not fields of a study)."""
    scen = sensitivity_scenarios(cfg)
    axes = tuple((n, tuple(float(getattr(p, n)) for _, _, p in scen)) for n in SENSITIVITY_PARAMS)
    mine, spec = sensitivity_adapter(cfg).fields, coevodt_sweep.ADAPTER.fields
    fixed = tuple((n, f.default) for n, f in mine.items()
                  if n not in SENSITIVITY_PARAMS and f.default != spec[n].default)
    return Study("coevodt", axes, zipped=(SENSITIVITY_PARAMS,), fixed=fixed, policies=(cfg.sensitivity_mode,),
                 seeds=cfg.sensitivity_runs, seed=cfg.seed, devices=cfg.devices)


def sensitivity_adapter(cfg: CoEvoDTConfig) -> coevodt_sweep.CoEvoDTAdapter:
    """The study engine's Co-EvoDT adapter starting from ``cfg``'s protocol, env and PRNG."""
    return coevodt_sweep.CoEvoDTAdapter(cfg.protocol(), cfg.env, cfg.prng_impl)


def run_sensitivity(cfg: CoEvoDTConfig, out_dir: Path, *, overwrite: bool = False, progress: bool = True) -> Path:
    """Train ``sensitivity_mode`` under every scenario, as the study :func:`sensitivity_study`
    on the engine (one program over scenario x run; its files under ``sensitivity/``), then
    ``sensitivity.csv`` (per scenario: mean, std and 95% CI over runs of every metric) and
    ``sensitivity.png``."""
    scen = sensitivity_scenarios(cfg)
    _, summary = engine.run(sensitivity_study(cfg), sensitivity_adapter(cfg), out_dir / "sensitivity",
                            overwrite=overwrite, progress=progress)
    rows = []
    for (name, factor, p), point in zip(scen, sorted(summary, key=lambda r: r["point"])):
        row = dict(parameter=name, factor=factor,
                   value=float(getattr(p, name)) if name != "nominal" else float("nan"), runs=point["n_runs"])
        row.update({f"{s}_{m}_{stat}": point[f"{s}_{m}_{stat}"] for s in ("baseline", "trained") for m in METRICS
                    for stat in ("mean", "std", "ci95")})
        rows.append(row)
    path = artifacts.write_csv(out_dir / "sensitivity.csv", rows)
    figures.sensitivity(out_dir / "sensitivity.png", cfg, [(n, f) for n, f, _ in scen], rows, METRICS)
    return path


__all__ = ["SENSITIVITY_PARAMS", "sensitivity_scenarios", "sensitivity_study", "sensitivity_adapter",
           "run_sensitivity"]
