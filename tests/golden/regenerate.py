"""Rewrite the pinned CSVs: ``python -m tests.golden.regenerate [case ...]``."""
from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from tests.golden.cases import CASES

HERE = Path(__file__).resolve().parent


def run_case(name: str, out: Path) -> None:
    """Run every command of ``name`` into ``out``."""
    from jaxtwin.cli import main

    for argv in CASES[name]:
        rc = main([*argv, "--out", str(out)])
        if rc != 0:
            raise SystemExit(f"{name}: {' '.join(argv)} exited {rc}")


def main(names: list[str]) -> None:
    for name in names or sorted(CASES):
        with tempfile.TemporaryDirectory() as tmp:
            run_case(name, Path(tmp))
            dest = HERE / name
            shutil.rmtree(dest, ignore_errors=True)
            for csv in sorted(Path(tmp).rglob("*.csv")):
                target = dest / csv.relative_to(tmp)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(csv, target)
        print(f"{name}: {len(list(dest.rglob('*.csv')))} CSVs")


if __name__ == "__main__":
    main(sys.argv[1:])
