"""Every experiment at test size writes the tables it wrote before the code was
reorganised into one package per system (``tests/golden/``).

Each case runs the CLI commands of :data:`tests.golden.cases.CASES` and
compares every CSV against the pinned copy: the same files, the same header,
the same rows, text cells equal and numbers equal to float32 round-off (the
pinned values come from the same programs; a rewrite that changes results
fails here). Columns that measure wall time are skipped.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest

from tests.golden.cases import CASES, VOLATILE_COLUMNS
from tests.golden.regenerate import run_case

GOLDEN = Path(__file__).resolve().parent / "golden"
# Every case runs under `pytest -m slow`. The default run checks three of them without running
# their commands a second time: tests/coevodt/test_experiments.py::test_tiny_run_matches_the_golden_tables
# (coevodt_all), tests/civic/test_experiments.py::test_coop_experiment_end_to_end_and_skip
# (civic_coop) and ::test_noncoop_is_a_study_on_the_engine (civic_noncoop) run the same
# commands for their own checks and compare with compare_tables.
FAST: set[str] = set()


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def _same_cell(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    if math.isnan(x) and math.isnan(y):
        return True
    return math.isclose(x, y, rel_tol=2e-6, abs_tol=1e-9)


def compare_tables(golden: Path, produced: Path) -> list[str]:
    """Differences between two CSV trees (empty when they agree)."""
    problems = []
    want = sorted(p.relative_to(golden) for p in golden.rglob("*.csv"))
    got = sorted(p.relative_to(produced) for p in produced.rglob("*.csv"))
    if want != got:
        problems.append(f"files differ: missing {sorted(set(want) - set(got))}, new {sorted(set(got) - set(want))}")
    for rel in sorted(set(want) & set(got)):
        a, b = _rows(golden / rel), _rows(produced / rel)
        if not a or not b or a[0] != b[0]:
            problems.append(f"{rel}: header {a[:1]} != {b[:1]}")
            continue
        if len(a) != len(b):
            problems.append(f"{rel}: {len(a) - 1} rows pinned, {len(b) - 1} produced")
            continue
        keep = [i for i, name in enumerate(a[0]) if name not in VOLATILE_COLUMNS]
        for n, (ra, rb) in enumerate(zip(a[1:], b[1:]), start=1):
            bad = [a[0][i] for i in keep if not _same_cell(ra[i], rb[i])]
            if bad:
                problems.append(f"{rel} row {n}: {', '.join(f'{c}={ra[a[0].index(c)]!r}->{rb[a[0].index(c)]!r}' for c in bad[:4])}")
                break
    return problems


@pytest.mark.parametrize("case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in sorted(CASES)])
def test_outputs_match_the_pinned_tables(case, tmp_path):
    run_case(case, tmp_path)
    problems = compare_tables(GOLDEN / case, tmp_path)
    assert not problems, "\n".join(problems)
