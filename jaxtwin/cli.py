"""``jaxtwin <system> ...``: a thin dispatcher over the experiment modules.

Each system's options live with its experiment (``jaxtwin.<system>.experiments``,
function ``cli(argv, prog) -> int``), so ``jaxtwin <system> --help`` lists them.
"""
from __future__ import annotations

import argparse
import importlib
import sys

SYSTEMS = {
    "coevodt": ("jaxtwin.coevodt.experiments", "Co-EvoDT: co-evolving DT agents (REINFORCE + evolution + LSTM forecaster)"),
    "civic": ("jaxtwin.civic.experiments", "CIVIC: immersion-aware allocation with a shared credit pool (PPO + baselines)"),
    "syncgame": ("jaxtwin.syncgame.experiments", "Sync game: replicator dynamics + Nash/Stackelberg differential games"),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jaxtwin`` console script."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="jaxtwin",
        description="JAX-accelerated digital-twin resource-management simulators. "
                    "Run `jaxtwin <system> --help` for a system's options.",
        epilog="Compiled programs are cached on disk so later runs start faster: "
               "$JAXTWIN_CACHE_DIR (empty: no cache), else ~/.cache/jaxtwin/xla "
               "($XDG_CACHE_HOME/jaxtwin/xla).",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("system", nargs="?", choices=sorted(SYSTEMS),
                        help="; ".join(f"{k}: {v[1]}" for k, v in SYSTEMS.items()))
    parser.add_argument("args", nargs=argparse.REMAINDER, help="options of the system")
    ns = parser.parse_args(argv[:1] if argv and not argv[0].startswith("-") else argv)
    if ns.version:
        from jaxtwin import __version__
        print(__version__)
        return 0
    if ns.system is None:
        parser.print_help()
        return 2
    from jaxtwin.core.compile_cache import enable_compilation_cache

    enable_compilation_cache()  # before any JAX work: later runs load compiled programs from disk
    module = importlib.import_module(SYSTEMS[ns.system][0])
    return int(module.cli(argv[1:], prog=f"jaxtwin {ns.system}") or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
