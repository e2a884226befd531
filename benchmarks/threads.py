"""Timing a CPU reference at its fastest thread setting.

A reference library's default thread count is not its fastest setting in
general: on a small shared machine torch's intra-op threads contend (Co-EvoDT's
reference ran 16.4 s per run with torch's default 2 threads against 8.4 s with
1), and on a many-core machine all threads may win. Quoting a ratio against a
slow setting flatters jaxtwin, so the references are timed at 1 thread and at
every available thread, both figures are printed, and ratios divide by the
faster. ``--torch-threads N`` times only ``N``.

The timing loop takes its clocks and thread setters as arguments, so the
selection logic is tested with a fake timer and without torch.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, Sequence

THREADS_HELP = ("torch intra-op threads for the reference; default: time it at 1 thread and at all "
                "available threads and divide by the faster (both printed)")


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def thread_settings(override: int | None = None, available: int | None = None) -> tuple[int, ...]:
    """The thread counts to time: ``(override,)`` if given, else ``(1, available)``
    (just ``(1,)`` on one CPU). Raises ``ValueError`` naming a bad override."""
    if override is not None:
        if isinstance(override, bool) or not isinstance(override, int) or override < 1:
            raise ValueError(f"--torch-threads={override!r}: must be an integer >= 1")
        return (override,)
    n = available_cpus() if available is None else available
    return (1,) if n <= 1 else (1, n)


def time_at_threads(run: Callable[[], Any], settings: Sequence[int], *, set_threads: Callable[[int], None],
                    get_threads: Callable[[], int], clock: Callable[[], float] = time.perf_counter,
                    cpu_clock: Callable[[], float] = time.process_time,
                    own_times: Callable[[Any], tuple[float, float]] | None = None) -> tuple[dict, list[dict]]:
    """Call ``run()`` once at each thread count of ``settings``; returns ``(fastest, all)``,
    each timing a dict ``threads, wall_s, cpu_s, result``. The fastest is the least wall
    time (the first on ties). ``own_times(result) -> (wall_s, cpu_s)``, if given, replaces
    the clocks: for a reference that times only part of the call itself (SB3's
    ``learn`` without building the model). The thread count in force before is restored
    afterwards, also when ``run`` raises."""
    if not settings:
        raise ValueError("time_at_threads: settings must name at least one thread count")
    before = get_threads()
    timings = []
    try:
        for n in settings:
            set_threads(n)
            t0, c0 = clock(), cpu_clock()
            result = run()
            wall, cpu = (clock() - t0, cpu_clock() - c0) if own_times is None else own_times(result)
            timings.append(dict(threads=n, wall_s=wall, cpu_s=cpu, result=result))
    finally:
        set_threads(before)
    return min(timings, key=lambda t: t["wall_s"]), timings


def describe(timings: Sequence[dict], fastest: dict, per: float = 1.0, unit: str = "s") -> str:
    """One line naming every setting's wall and CPU time (divided by ``per``) and the one used."""
    parts = [f"{t['threads']} thread{'s' if t['threads'] > 1 else ''}: {t['wall_s'] / per:.3g} {unit} wall, "
             f"{t['cpu_s'] / per:.3g} CPU {unit}" for t in timings]
    return "; ".join(parts) + f" -> ratios divide by the fastest, {fastest['threads']} thread(s)"


def record(timings: Sequence[dict], fastest: dict, per: float = 1.0) -> dict:
    """The machine-readable part of a RESULT line: every setting timed and the one used."""
    return dict(reference_threads_timed={str(t["threads"]): dict(wall_s=t["wall_s"] / per, cpu_s=t["cpu_s"] / per)
                                         for t in timings},
                reference_threads_used=fastest["threads"])
