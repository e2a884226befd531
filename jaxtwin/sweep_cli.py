"""``jaxtwin sweep <system> ...`` and ``jaxtwin plot DIR ...`` (see :mod:`jaxtwin.studies`)."""
from __future__ import annotations

import argparse
from pathlib import Path

from jaxtwin.core import sharding
from jaxtwin.core.cli import MULTI_DEVICE_EPILOG, run_guarded
from jaxtwin.core.config import ConfigError, LineFormatter, Parser
from jaxtwin.core.report import print_table, warn

SWEEP_EPILOG = (
    "Axes: --grid FIELD=v1,v2,... or --grid FIELD=lo:hi:n (n evenly spaced values; geometric with "
    "--log FIELD); several --grid axes form their Cartesian product (zip them in a --study file). "
    "--set FIELD=v fixes a field at every point. `jaxtwin sweep <system> --list-fields` lists the "
    "fields; shape fields (MSPs, horizon, VSPs, grid nodes, protocol sizes) compile one program per "
    "value, every other field runs in one vmapped program. Outputs in --out: results.csv (one row per "
    "point x policy x seed), summary.csv (mean, std, 95% CI per point x policy), study.json, "
    "study.toml, and figures (one axis: metric vs axis with CI bands; two axes: heatmaps). An "
    "interrupted sweep rerun into the same --out continues from its last finished chunk; a finished "
    "one is read back unless --overwrite; another declaration into the same --out is refused. "
    + MULTI_DEVICE_EPILOG.format(batch="each chunk's points"))


def shipped_study(name: str) -> Path:
    """``name`` as a path, or a declaration shipped in :mod:`jaxtwin.studies` (``civic_budget_threshold``)."""
    path = Path(name)
    if path.exists() or path.suffix:
        return path
    shipped = Path(__file__).parent / "studies" / f"{name}.toml"
    if not shipped.exists():
        names = sorted(p.stem for p in shipped.parent.glob("*.toml"))
        raise ConfigError(f"--study {name}: no such file, nor a shipped study ({', '.join(names)})")
    return shipped


def sweep_parser() -> argparse.ArgumentParser:
    """The parser of ``jaxtwin sweep``."""
    from jaxtwin.studies import ADAPTERS

    p = Parser(prog="jaxtwin sweep", formatter_class=LineFormatter, epilog=SWEEP_EPILOG,
               description="Run a declared study: a grid over any parameter fields of a system, the "
                           "policies/schemes/modes at each point, and the seeds.")
    p.add_argument("system", choices=list(ADAPTERS), help="the system to sweep")
    p.add_argument("--grid", action="append", default=[], metavar="FIELD=VALUES", help="an axis (repeatable)")
    p.add_argument("--log", action="append", default=[], metavar="FIELD", help="space this lo:hi:n axis geometrically")
    p.add_argument("--set", dest="fixed", action="append", default=[], metavar="FIELD=V",
                   help="fix a field at every point (repeatable)")
    p.add_argument("--study", metavar="FILE", help="a TOML declaration, or the name of a shipped one "
                   "(jaxtwin/studies: civic_budget_threshold, syncgame_delta_r, coevodt_alpha_load); "
                   "command-line options add to it")
    p.add_argument("--policies", metavar="A,B,...", help="policies (CIVIC), schemes (syncgame) or modes "
                   "(coevodt) to run; `all` for every valid one (default: the system's usual set)")
    p.add_argument("--seeds", type=int, metavar="N", help="seeds (episodes, runs) per point and policy "
                   "(default: the system's; the sync game has none)")
    p.add_argument("--seed", type=int, metavar="S", help="master seed (default 0)")
    p.add_argument("--chunk", type=int, metavar="N", help="points per compiled call (0: up to 256)")
    p.add_argument("--devices", type=int, default=1, metavar="N", help=sharding.DEVICES_HELP)
    p.add_argument("--out", metavar="DIR", help="output directory (required unless --list-fields)")
    p.add_argument("--overwrite", action=argparse.BooleanOptionalAction, default=False,
                   help="recompute instead of reading back a finished study (default: off)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    p.add_argument("--list-fields", action="store_true", help="list the fields a study may vary and exit")
    return p


def _report(result, out: Path) -> None:
    rows, summary, study, adapter = result
    pol = adapter.policy_label
    metrics = [m for m in adapter.plot_metrics if summary and f"{m}_mean" in summary[0]][:3]
    cols = [*study.axis_names, pol, *(f"{m}_mean" for m in metrics)]
    shown = summary if len(summary) <= 40 else summary[:40]
    print_table(shown, cols, title=f"{study.system} study: {len(summary)} point x {pol} rows"
                + ("" if len(summary) <= 40 else " (first 40; all in summary.csv)"))
    if rows and "converged" in rows[0]:
        bad = sum(1 for r in rows if r["converged"] is False)
        if bad:
            warn(f"{bad} of {len(rows)} rows did not converge (converged=False in results.csv)")


def sweep_main(argv: list[str]) -> int:
    """``jaxtwin sweep``: returns the exit code."""
    from jaxtwin import studies as sw
    from jaxtwin.core import engine, study as st

    ns = sweep_parser().parse_args(argv)
    if ns.list_fields:
        for name, text in sw.fields(ns.system).items():
            print(f"{name}: {text}")
        return 0
    if not ns.out:
        sweep_parser().error("--out DIR is required")

    def start():
        sharding.prepare_devices(ns.devices)
        base = st.load_study(shipped_study(ns.study)) if ns.study else None
        study = st.merge_cli(base, ns.system, ns.grid, ns.log, ns.fixed,
                             None if ns.policies is None else [p.strip() for p in ns.policies.split(",") if p.strip()],
                             ns.seeds, ns.seed, ns.chunk, ns.devices)
        sharding.require_devices(study, "devices")
        adapter = sw.adapter(ns.system)

        def work():
            rows, summary = engine.run(study, adapter, ns.out, overwrite=ns.overwrite, progress=ns.progress)
            return rows, summary, st.validate(study, adapter), adapter
        return work

    return run_guarded(f"jaxtwin sweep {ns.system}", ns.out, start, _report)


def plot_main(argv: list[str]) -> int:
    """``jaxtwin plot DIR --x FIELD [--y FIELD] --metric M [--where FIELD=V ...]``."""
    from jaxtwin.core import study_plots
    from jaxtwin.core.study import parse_assignment

    p = Parser(prog="jaxtwin plot", formatter_class=LineFormatter,
               description="Plot any view of a finished study (a `jaxtwin sweep` output folder).")
    p.add_argument("dir", help="the study's output folder")
    p.add_argument("--x", required=True, metavar="FIELD", help="the axis along x")
    p.add_argument("--y", metavar="FIELD", help="a second axis: draw a heatmap")
    p.add_argument("--metric", required=True, metavar="M", help="the metric (a column of results.csv)")
    p.add_argument("--where", action="append", default=[], metavar="FIELD=V", help="keep rows with this value")
    p.add_argument("--png", metavar="FILE", help="output file (default: in DIR, named after the view)")
    ns = p.parse_args(argv)
    try:
        where = dict(parse_assignment(t, "--where") for t in ns.where)
        path = study_plots.plot_study(ns.dir, ns.x, ns.metric, y=ns.y, where=where, path=ns.png)
    except ConfigError as err:
        print(f"error: {err}")
        return 2
    print(f"wrote {path}")
    return 0
