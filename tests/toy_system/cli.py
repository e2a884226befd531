"""``jaxtwin toy [options]``: the toy system's one command."""
from __future__ import annotations

from pathlib import Path

from jaxtwin.core.cli import Command, System
from tests.toy_system.experiments import ToyConfig, run


def report(rows: list[dict], out: Path) -> None:
    """Mean number of heads over the episodes."""
    print(f"mean heads {sum(int(r['heads']) for r in rows) / len(rows):.3f} over {len(rows)} episodes")


SYSTEM = System(
    description="Toy: episodes of coin flips (the example of CONTRIBUTING.md).",
    commands={"": Command(ToyConfig, run, out="results/toy", batch="the episodes", report=report)},
)
