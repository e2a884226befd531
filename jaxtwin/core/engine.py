"""The study engine: runs a declared :class:`~jaxtwin.core.study.Study` on a
system's :class:`~jaxtwin.core.study.Adapter`.

Points are split into shape groups (:func:`~jaxtwin.core.study.shape_of`; a shape
field the adapter pads, such as CIVIC's horizon, runs all its values in one group
padded to the largest, see :func:`plan`); each group is one runner whose program
compiles once: its points run in chunks of a
fixed size (the last chunk padded by repeating its last point), every policy and
seed of a chunk in the same call, the chunk's points spread over ``devices``.
Every point's parameters are built and checked before anything compiles.

With an output folder, each finished chunk is written to ``parts/`` atomically,
so an interrupted study rerun into the same folder continues from its last
finished chunk (a runner that trains keeps its checkpoints under
``work/gGGG/cCCCC/``, so even an unfinished chunk resumes where it stopped); the
folder is claimed through :func:`~jaxtwin.core.config.record_config` (a different
declaration is refused, naming the fields). At the end the engine writes
``results.csv`` (tidy: one row per point x policy x seed, columns ``point``, every axis, the policy, the seed,
every metric), ``summary.csv`` (per point x policy: ``n_seeds`` (``n_runs``) and each metric's
``_mean``, ``_std``, ``_ci95`` — the half-width of the 95% Student-t interval
over seeds), ``study.json`` (the declaration, groups, compile and run times)
and ``study.toml``; :mod:`jaxtwin.core.study_plots` draws the figures.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from jaxtwin.core import artifacts, report, study_plots
from jaxtwin.core.config import record_config
from jaxtwin.core.memory import require_all_fit
from jaxtwin.core.progress import progress_bar
from jaxtwin.core.stats import t_ci_halfwidth
from jaxtwin.core.study import (REPLICATE_MARK, Adapter, GroupRunner, Study, expand, group_policies, shape_of,
                                study_toml, validate)

MAX_CHUNK = 256
RESULTS, SUMMARY, RECORD, PARTS, WORK = "results.csv", "summary.csv", "study.json", "parts", "work"
TRAIN_SEED = "train_seed"

_COMPILES = {"count": 0, "seconds": 0.0}


def _count_compile(event: str, duration: float, **_: Any) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        _COMPILES["count"] += 1
        _COMPILES["seconds"] += duration


jax.monitoring.register_event_duration_secs_listener(_count_compile)


def compilations() -> int:
    """XLA compilations (backend compiles) so far in this process."""
    return _COMPILES["count"]


@dataclass
class Group:
    """One shape group: its shape, runner, and the indices and params of its points."""

    shape: dict[str, Any]
    runner: GroupRunner
    points: list[int] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)


def plan(study: Study, adapter: Adapter) -> tuple[Study, list[dict], list[Group]]:
    """Validate ``study``, expand its points and build (not compile) each shape group's
    runner and every point's parameters, so every bad value fails here.

    A shape field the adapter pads for this study (optional ``adapter.padded(study)``, e.g.
    CIVIC's horizon) does not split groups: a group's runner is built for its largest value
    and each point's own value goes to ``runner.params`` with the param fields (a mask)."""
    study = validate(study, adapter)
    points = expand(study)
    fixed = {n: v for n, v in study.fixed if adapter.fields[n].kind == "param"}
    padded = tuple(adapter.padded(study)) if hasattr(adapter, "padded") else ()
    shapes = [shape_of(point, study, adapter) for point in points]
    keys = [tuple((n, v) for n, v in shape.items() if n not in padded) for shape in shapes]
    largest: dict[tuple, dict[str, Any]] = {}
    for shape, key in zip(shapes, keys):
        top = largest.setdefault(key, {})
        top.update({n: max(top.get(n, shape[n]), shape[n]) for n in padded})
    groups: dict[tuple, Group] = {}
    for i, (point, shape, key) in enumerate(zip(points, shapes, keys)):
        if key not in groups:
            group_shape = {**shape, **largest[key]}
            pols = group_policies(study, adapter, group_shape)
            groups[key] = Group(group_shape, adapter.group(group_shape, fixed, pols, study.seeds, study.devices))
        g = groups[key]
        values = {**fixed, **{n: v for n, v in point.items() if adapter.fields[n].kind == "param"},
                  **{n: shape[n] for n in padded}}
        g.params.append(g.runner.params(values))
        g.points.append(i)
    return study, points, list(groups.values())


def _chunks(n: int, chunk: int, pad_to: int = 0) -> tuple[list[range], int]:
    """Ranges of chunk points and the fixed chunk size (the last chunk is padded to it;
    every chunk to at least ``pad_to`` points)."""
    size = min(chunk or MAX_CHUNK, n)
    return [range(s, min(s + size, n)) for s in range(0, n, size)], max(size, pad_to)


def _work_folder(out: Path, group: int, chunk: int) -> Path:
    return out / WORK / f"g{group:03d}" / f"c{chunk:04d}"


def work_folders(study: Study, adapter: Adapter, out_dir: str | Path) -> dict[int, tuple[Path, int]]:
    """Point index -> ``(folder, j)``: the work folder under ``out_dir`` of the chunk that ran
    that point (given to runners with ``checkpoints = True``, e.g. CIVIC's trainings and their
    curves) and the point's position ``j`` in that chunk."""
    study, _, groups = plan(study, adapter)
    out = {}
    for gi, g in enumerate(groups):
        for ci, rng in enumerate(_chunks(len(g.points), study.chunk)[0]):
            out.update({g.points[i]: (_work_folder(Path(out_dir), gi, ci), j) for j, i in enumerate(rng)})
    return out


def _stack(params: Sequence[Any], size: int):
    padded = list(params) + [params[-1]] * (size - len(params))
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *padded)


def _rows(study: Study, adapter: Adapter, points: list[dict], indices: Sequence[int], runner: GroupRunner,
          metrics: Mapping[str, np.ndarray]) -> list[dict]:
    """Tidy rows of one chunk: point-major, then policy, then seed."""
    rows = []
    for j, i in enumerate(indices):
        for p, pol in enumerate(runner.policies):
            name, _, replicate = pol.partition(REPLICATE_MARK)
            for s in range(study.seeds):
                row = {"point": i, **{n: points[i][n] for n in study.axis_names}, adapter.policy_label: name}
                if replicate:
                    row[TRAIN_SEED] = int(replicate)
                if adapter.stochastic:
                    row[adapter.seed_label] = s
                row.update({m: _plain(metrics[m][j, p, s]) for m in runner.metrics})
                rows.append(row)
    return rows


def _chunk_rows(study: Study, adapter: Adapter, points: list[dict], g: Group, rng: range, size: int,
                keys: Any, workdir: Path | None, progress: bool) -> list[dict]:
    """One chunk's tidy rows; a runner that keeps checkpoints (``checkpoints = True``: its chunks
    are long, e.g. trainings) gets ``workdir``, the chunk's folder under ``OUT/work/`` (``None``
    without an output folder), and ``progress`` for bars of its own."""
    stacked = _stack([g.params[i] for i in rng], size)
    extra = {"workdir": workdir, "progress": progress} if getattr(g.runner, "checkpoints", False) else {}
    metrics = jax.tree.map(np.asarray, g.runner(stacked, keys, **extra))
    return _rows(study, adapter, points, [g.points[i] for i in rng], g.runner, metrics)


def _plain(x: Any) -> Any:
    x = np.asarray(x).item()
    return x if isinstance(x, (bool, int)) else float(x)


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return list(dict.fromkeys(k for r in rows for k in r))


def count_column(adapter: Adapter) -> str:
    """The summary's column counting the seeds (runs) behind each mean: ``n_seeds``/``n_runs``."""
    return study_plots.count_column(adapter)


def summarize(rows: Sequence[Mapping[str, Any]], study: Study, adapter: Adapter) -> list[dict]:
    """Per point x policy: the seed count (:func:`count_column`) and each numeric metric's mean,
    std and 95% CI half-width over seeds; for a trained policy (rows with ``train_seed``) over
    its trainings' means instead (``n_train_seeds``), since the trainings are the independent
    replicates."""
    key_cols = ["point", *study.axis_names, adapter.policy_label]
    skip = set(key_cols) | {adapter.seed_label, TRAIN_SEED}
    groups: dict[tuple, list[Mapping]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in key_cols), []).append(r)
    out = []
    for key, rs in groups.items():
        row = dict(zip(key_cols, key))
        trainings = sorted({r[TRAIN_SEED] for r in rs if r.get(TRAIN_SEED) not in (None, "")})
        row[count_column(adapter)] = len(rs) // max(len(trainings), 1)
        if trainings:
            row[f"n_{TRAIN_SEED}s"] = len(trainings)
        for m in [c for c in _columns(rs) if c not in skip]:
            vals = _values(rs, m)
            if trainings:   # one value per training: its mean over the seeds
                vals = np.asarray([_values([r for r in rs if r[TRAIN_SEED] == t], m).mean() for t in trainings])
            row[f"{m}_mean"] = float(vals.mean())
            row[f"{m}_std"] = float(vals.std(ddof=1)) if len(vals) > 1 else 0.0
            row[f"{m}_ci95"] = t_ci_halfwidth(vals) if np.all(np.isfinite(vals)) else float("nan")
        out.append(row)
    return out


def _values(rows: Sequence[Mapping[str, Any]], metric: str) -> np.ndarray:
    return np.asarray([float(r[metric]) if r.get(metric, "") != "" else np.nan for r in rows], np.float64)


def _write_table(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    cols = _columns(rows)
    artifacts.write_csv(path, [{c: r.get(c, "") for c in cols} for r in rows], cols)


def run(study: Study, adapter: Adapter, out_dir: str | Path | None = None, *, overwrite: bool = False,
        progress: bool = True, pad_to: int = 0) -> tuple[list[dict], list[dict]]:
    """Run ``study``; returns ``(results_rows, summary_rows)``. With ``out_dir`` the files
    of the module doc are written (and a finished study there is read back, not rerun,
    unless ``overwrite``). ``pad_to``: compile every chunk for at least this many points
    (padded as the last chunk is), so that several small studies share one program; the
    results do not depend on it."""
    out = Path(out_dir) if out_dir is not None else None
    study, points, groups = plan(study, adapter)   # a bad value fails before the folder is claimed
    plans = [(g, *_chunks(len(g.points), study.chunk, pad_to)) for g in groups]
    # a chunk that cannot fit is refused before any work (runners that estimate their size)
    require_all_fit([need for g, _, size in plans if hasattr(g.runner, "needs") for need in g.runner.needs(size)])
    if out is not None:
        # the validated declaration: "0.5" typed on the command line and 0.5 in Python are one study
        inputs = adapter.inputs(study) if hasattr(adapter, "inputs") else None   # e.g. a saved agent
        record_config(out, study, overwrite=overwrite, inputs=inputs)   # claims the folder before any work
        if (out / RESULTS).exists() and (out / SUMMARY).exists() and not overwrite:
            return artifacts.read_table(out / RESULTS), artifacts.read_table(out / SUMMARY)
    keys = adapter.keys(study.seed, study.seeds)
    total = sum(len(c) for _, c, _ in plans)
    parts = [out / PARTS / f"g{gi:03d}_c{ci:04d}.csv" for gi, (_, cs, _) in enumerate(plans)
             for ci in range(len(cs))] if out is not None else []
    done = sum(p.exists() for p in parts)
    if 0 < done < len(parts):
        report.note(f"resuming: {done} of {len(parts)} chunks are already in {out / PARTS}")
    rows_by_chunk: list[list[dict]] = []
    record = {"groups": []}
    t_start = time.perf_counter()
    with progress_bar(total, f"sweep {study.system}", enabled=progress, initial=done) as bar:
        k = 0
        for gi, (g, chunks, size) in enumerate(plans):
            c0, s0, t0 = compilations(), _COMPILES["seconds"], time.perf_counter()
            computed = 0
            for ci, rng in enumerate(chunks):
                part = parts[k] if out is not None else None
                k += 1
                if part is not None and part.exists():
                    rows_by_chunk.append(artifacts.read_table(part))
                    continue
                work = _work_folder(out, gi, ci) if out is not None else None
                rows = _chunk_rows(study, adapter, points, g, rng, size, keys, work, progress)
                if part is not None:
                    part.parent.mkdir(parents=True, exist_ok=True)
                    _write_table(part, rows)
                    rows = artifacts.read_table(part)
                rows_by_chunk.append(rows)
                computed += 1
                bar.update(1)
            record["groups"].append(dict(shape=g.shape, policies=list(g.runner.policies), points=len(g.points),
                                         chunk_size=size, chunks=len(chunks), chunks_computed=computed,
                                         compilations=compilations() - c0,
                                         compile_seconds=_COMPILES["seconds"] - s0,
                                         seconds=time.perf_counter() - t0))
    rows = sorted((r for rs in rows_by_chunk for r in rs), key=lambda r: r["point"])  # stable
    summary = summarize(rows, study, adapter)
    if out is not None:
        _write_table(out / RESULTS, rows)
        _write_table(out / SUMMARY, summary)
        artifacts._atomic_write_bytes(out / "study.toml", study_toml(study).encode())
        artifacts.write_json(out / RECORD, dict(study=study, points=len(points), seconds=time.perf_counter() - t_start,
                                                devices=study.devices, policy_label=adapter.policy_label,
                                                count_column=count_column(adapter),
                                                metric_labels=dict(getattr(adapter, "metric_labels", {})),
                                                **record))
        study_plots.default_figures(out, study, adapter, summary)
    return rows, summary


def table(rows: Sequence[Mapping[str, Any]]):
    """Rows as a pandas DataFrame when pandas is installed, else a dict of columns; a value
    a row lacks (a baseline's ``train_seed``) is ``None`` (NaN in a numeric column), as an
    empty cell read back from the CSVs is, so a study gives the same table with or without
    an output folder."""
    cols = _columns(rows)
    data = {c: [None if r.get(c, "") == "" else r[c] for r in rows] for c in cols}
    try:
        import pandas as pd
    except ImportError:
        return data
    return pd.DataFrame(data, columns=cols)


__all__ = ["run", "plan", "work_folders", "summarize", "table", "compilations", "Group", "MAX_CHUNK"]
