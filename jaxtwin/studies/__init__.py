"""Sweeps of your own: ``jaxtwin sweep <system>`` and :func:`sweep` in Python,
and the shipped study declarations (``*.toml`` here) for ``--study NAME``.

A study is a grid over named parameter fields of a system, the policies (CIVIC
baselines, sync-game schemes, Co-EvoDT modes) run at each point, and the
seeds; the engine (:mod:`jaxtwin.core.engine`) runs it as one compiled program
per array shape and writes ``results.csv``, ``summary.csv``, ``study.json``,
``study.toml`` and figures. In a notebook::

    import jaxtwin
    df = jaxtwin.sweep("civic", {"budget_factor": [0.4, 0.8, 1.2], "threshold": [0.8, 0.9]},
                       policies=["Random-GCP", "Myopic-GCP"], seeds=32, out="runs/bf")

:data:`ADAPTERS` maps a system to the module holding its ``ADAPTER``.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Mapping, Sequence

from jaxtwin.core import engine
from jaxtwin.core.config import ConfigError
from jaxtwin.core.study import Study

ADAPTERS = {"civic": "jaxtwin.civic.sweep", "syncgame": "jaxtwin.syncgame.sweep",
            "coevodt": "jaxtwin.coevodt.sweep"}


def adapter(system: str):
    """The study adapter of ``system``."""
    if system not in ADAPTERS:
        raise ConfigError(f"unknown system {system!r}; valid: {', '.join(ADAPTERS)}")
    return importlib.import_module(ADAPTERS[system]).ADAPTER


def fields(system: str) -> dict[str, str]:
    """Every field a study of ``system`` may vary, with its kind and default."""
    return {n: f"{f.kind}, default {f.default!r}" + (f": {f.help}" if f.help else "")
            for n, f in adapter(system).fields.items()}


def run_study(study: Study, out: str | Path | None = None, *, overwrite: bool = False, progress: bool = True):
    """Run a declared :class:`~jaxtwin.core.study.Study`; returns ``(results, summary)``
    as tables (pandas DataFrames if pandas is installed, else dicts of columns)."""
    rows, summary = engine.run(study, adapter(study.system), out, overwrite=overwrite, progress=progress)
    return engine.table(rows), engine.table(summary)


def sweep(system: str, axes: Mapping[str, Sequence[Any]], *, zipped: Sequence[Sequence[str]] = (),
          fixed: Mapping[str, Any] | None = None, policies: Sequence[str] = (), seeds: int = 0,
          seed: int = 0, chunk: int = 0, devices: int = 1, out: str | Path | None = None,
          overwrite: bool = False, progress: bool = True):
    """Declare and run a study (see the module doc); returns the results table
    (:func:`run_study` gives the summary too). ``seeds`` 0: the system's default."""
    study = Study(system, tuple((k, tuple(v)) for k, v in axes.items()), tuple(tuple(g) for g in zipped),
                  tuple((fixed or {}).items()), tuple(policies), seeds, seed, chunk, devices)
    return run_study(study, out, overwrite=overwrite, progress=progress)[0]
