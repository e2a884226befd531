"""``python -m benchmarks {env,...,gpu,all} [options]``."""
from __future__ import annotations

import argparse
import importlib
import sys

BENCHMARKS = {
    "env": "benchmarks.env",
    "coevodt": "benchmarks.coevodt",
    "civic": "benchmarks.civic",
    "syncgame": "benchmarks.syncgame",
    "ppo": "benchmarks.ppo_throughput",
    "sweep": "benchmarks.sweep",
    "gpu": "benchmarks.gpu",
}
NOT_IN_ALL = ("gpu",)  # it reruns the others' pieces at GPU sizes, in its own processes


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark (or all) and print their tables and RESULT lines."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="Timing against reference implementations.")
    parser.add_argument("name", choices=[*BENCHMARKS, "all"])
    parser.add_argument("rest", nargs=argparse.REMAINDER, help="options of the benchmark (see NAME --help)")
    ns = parser.parse_args(argv)
    names = [n for n in BENCHMARKS if n not in NOT_IN_ALL] if ns.name == "all" else [ns.name]
    # a CPU-only host becomes one JAX device per core before any JAX work, so the benchmarks
    # that shard (coevodt, syncgame: --devices) can use every core even after another one ran;
    # single-device programs run on device 0 as before
    from jaxtwin.core.sharding import prepare_devices

    prepare_devices(0)
    for name in names:
        importlib.import_module(BENCHMARKS[name]).main(ns.rest if ns.name != "all" else [])
    return 0


if __name__ == "__main__":
    sys.exit(main())
