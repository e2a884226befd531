"""Solver failures are results, not silence: every solve of the sync-game experiments
(:mod:`jaxtwin.syncgame.experiments`) goes through :func:`require_converged` before its
step writes anything.

Without ``SyncGameConfig.allow_unconverged`` an unconverged solve (any grid point of
a sensitivity study) raises :class:`~jaxtwin.core.errors.ResultError` (the CLI prints
``error: ...`` and exits 1) naming the step, the solve, its residual against its
tolerance and the options that help, and removes the step's output files from an
earlier run, so that a rerun does not skip the step as done. With it, the results
are kept, a ``warning: ...`` line goes to stderr and the message is recorded in
``summary.json`` under ``warnings`` (keyed ``"<step>: <solve>"``; a rerun that
converges removes it); the step's CSV carries ``converged`` (and ``residual``) columns.
A rerun into that folder without the flag does not reuse them (:func:`check_kept_results`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from jaxtwin.core.errors import ResultError
from jaxtwin.core.report import warn
from jaxtwin.syncgame.results import Result, message

# Largest max |replicator field| accepted at a replicator rest point: the bisection runs
# to 1e-14 in S, which leaves a field of ~1e-15 at the returned shares.
REST_POINT_TOL = 1e-9


def require_converged(cfg, summary: dict, step: str, solve: str, residual, converged, *, tol: float | None,
                      result=None, labels: Sequence[str] | None = None, stale: Iterable[Path] = (),
                      fixed_iterations: bool = False, what: str = "grid points") -> bool:
    """Whether the solve converged at every point; raise or warn when not (module doc).

    ``residual``, ``converged`` (and ``result``, :class:`~jaxtwin.syncgame.results.Result`
    codes): one value, or one per grid point with ``labels`` naming the points;
    ``residual=None`` for a solve without one (an ODE integration). ``stale``: the step's
    output files, removed before raising. ``fixed_iterations``: the solve's iteration
    count is not an option (``--max-iter`` does not help). ``what``: what the labelled
    points are (``"grid points"``); ``tol=None`` for a solve without a tolerance.
    """
    ok = np.atleast_1d(np.asarray(converged, dtype=bool))
    residual = np.full(ok.shape, np.nan) if residual is None else np.atleast_1d(np.asarray(residual, np.float64))
    warnings = summary.setdefault("warnings", {})
    if ok.all():
        warnings.pop(f"{step}: {solve}", None)   # an earlier run's warning about this solve is void
        if not warnings:
            del summary["warnings"]
        return True
    bad = np.flatnonzero(~ok)
    codes = None if result is None else np.atleast_1d(np.asarray(result))
    why = "" if codes is None else f"; {message(int(codes[bad[0]]))}"

    def res(j):
        return "" if np.isnan(residual[j]) else f"residual {residual[j]:.3g}"

    def against_tol(j):   # a finite residual within tol fails on something else (e.g. NaN payoffs)
        return f" {'>' if not residual[j] <= tol else '<='} tol {tol:g}"

    if labels is None:
        detail = (res(bad[0]) + against_tol(bad[0]) if res(bad[0]) else "") + why
    else:
        points = ", ".join(f"{labels[j]}" + (f": {res(j)}" if res(j) else "") for j in bad[:6])
        more = f", and {bad.size - 6} more" if bad.size > 6 else ""
        tol_text = "" if tol is None else f", tol {tol:g}"
        detail = f"{bad.size} of {ok.size} {what}{tol_text}: {points}{more}{why}"
    text = f"syncgame {step}: {solve} did not converge ({detail.lstrip('; ')})"
    if not cfg.allow_unconverged:
        for path in stale:
            Path(path).unlink(missing_ok=True)
        diverged = codes is not None and bool(np.all(codes[bad] == Result.NOT_FINITE))
        helps = ("No option changes this solve's iterations; pass" if fixed_iterations
                 else "More iterations do not mend a non-finite solution: check the problem's options "
                      "(a horizon --T this long, the grid); or pass" if diverged
                 else f"Raise --max-iter (now {cfg.max_iter}), or pass")
        raise ResultError(f"{text}; no results written for this step. {helps} --allow-unconverged "
                          f"to keep the results, marked converged=false")
    text += "; kept because of --allow-unconverged, marked converged=false"
    warn(text)
    warnings[f"{step}: {solve}"] = text
    return False


__all__ = ["REST_POINT_TOL", "require_converged"]


def check_kept_results(cfg, summary: dict, step: str) -> None:
    """Results of ``step`` that an earlier ``--allow-unconverged`` run kept in this folder
    (its warnings in ``summary.json``) are never reused silently: without the flag the
    rerun stops as that first run would have (``ResultError``, exit 1); with it the
    warning is repeated on stderr."""
    kept = [text for key, text in summary.get("warnings", {}).items() if key.startswith(f"{step}: ")]
    if not kept:
        return
    if not cfg.allow_unconverged:
        raise ResultError(f"{kept[0].split('; kept because')[0]}: an earlier run with --allow-unconverged kept "
                          "those results here. Pass --allow-unconverged to reuse them (marked converged=false), "
                          "or --overwrite to solve again (e.g. with a higher --max-iter)")
    for text in kept:
        warn(f"reused: {text}")
