"""``jaxtwin <system> ...``: a registry of systems over one command-line shell.

Each entry of :data:`SYSTEMS` names a system's CLI module and a one-line
summary for ``jaxtwin --help``. The module defines ``SYSTEM``, a
:class:`jaxtwin.core.cli.System` of that system's commands (its config
dataclasses and ``run`` functions), so ``jaxtwin <system> --help`` lists
every option. A new system is its package plus one line here (see
CONTRIBUTING.md).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from jaxtwin.core.config import LineFormatter, Parser
from jaxtwin.core.interrupt import EXIT_CODE, remembered_interrupts

# commands over every system: name -> (function in jaxtwin.sweep_cli, summary)
TOOLS: dict[str, tuple[str, str]] = {
    "sweep": ("sweep_main", "a study of your own: a grid over any fields of a system (`jaxtwin sweep --help`)"),
    "plot": ("plot_main", "any view of a finished study's summary (`jaxtwin plot --help`)"),
}

# name -> (module defining SYSTEM, summary for `jaxtwin --help`)
SYSTEMS: dict[str, tuple[str, str]] = {
    "coevodt": ("jaxtwin.coevodt.cli", "Co-EvoDT: co-evolving DT agents (REINFORCE + evolution + LSTM forecaster)"),
    "civic": ("jaxtwin.civic.cli", "CIVIC: immersion-aware allocation with a shared credit pool (PPO + baselines)"),
    "syncgame": ("jaxtwin.syncgame.cli", "Sync game: replicator dynamics + Nash/Stackelberg differential games"),
}


def _prepare_devices_early(argv: list[str]) -> None:
    """Split a CPU for ``--devices`` before the system's modules are imported:
    importing gymnax (under every environment) starts JAX's backend, after
    which the device count is fixed. Options the full parser will reject are
    left for it to report."""
    from jaxtwin.core import sharding
    from jaxtwin.core.config import ConfigError

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--devices", type=int, default=None)
    pre.add_argument("--config", dest="_config_file", default=None)
    try:
        ns, _ = pre.parse_known_args(argv)
        sharding.prepare_devices(sharding.cli_devices(ns, ns._config_file))
    except (ConfigError, SystemExit):
        pass


def console() -> None:
    """The ``jaxtwin`` console script: :func:`main`, then exit with its code. After an
    interruption the process ends at once (``os._exit``, streams flushed): XLA's threads
    may still be mid-computation, and the interpreter's teardown under them crashed once
    in 7 interrupts (a segfault after the clean message). Every result is on disk by then."""
    code = main()
    if code == EXIT_CODE:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


def main(argv: list[str] | None = None) -> int:
    """The ``jaxtwin`` command line (``argv``: its arguments; default ``sys.argv[1:]``);
    returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = Parser(
        prog="jaxtwin", formatter_class=LineFormatter,
        description="JAX-accelerated digital-twin resource-management simulators. "
                    "Run `jaxtwin <system> --help` for a system's options.",
        epilog="Compiled programs are cached on disk so later runs start faster: "
               "$JAXTWIN_CACHE_DIR (empty: no cache), else ~/.cache/jaxtwin/xla "
               "($XDG_CACHE_HOME/jaxtwin/xla).",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("system", nargs="?", choices=[*SYSTEMS, *TOOLS],
                        help="\n".join(f"{k}: {v[1]}" for k, v in {**SYSTEMS, **TOOLS}.items()))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="options of the system")
    ns = parser.parse_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    if ns.version:
        from jaxtwin import __version__
        print(__version__)
        return 0
    if ns.system is None:
        parser.print_help()
        return 2
    try:
        with remembered_interrupts():   # a Ctrl-C during the imports is not lost
            from jaxtwin.core.compile_cache import enable_compilation_cache

            enable_compilation_cache()  # before any JAX work: later runs load compiled programs from disk
            _prepare_devices_early(argv[1:])
            if ns.system in TOOLS:
                return int(getattr(importlib.import_module("jaxtwin.sweep_cli"), TOOLS[ns.system][0])(argv[1:]))
            system = importlib.import_module(SYSTEMS[ns.system][0]).SYSTEM
            return int(system.main(argv[1:], prog=f"jaxtwin {ns.system}") or 0)
    except KeyboardInterrupt:  # before the run started (imports): nothing to resume
        print(f"interrupted: jaxtwin {ns.system} stopped before it started", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
