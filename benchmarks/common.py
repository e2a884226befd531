"""Timing and reporting shared by the benchmarks."""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Sequence

import jax


def device_name() -> str:
    """The default JAX device in words, e.g. ``cpu (2 cores)`` or the GPU name."""
    import os

    d = jax.devices()[0]
    if d.platform == "cpu":
        return f"cpu ({os.cpu_count()} cores, {jax.device_count()} device(s))"
    return f"{d.platform}: {getattr(d, 'device_kind', str(d))} x{jax.device_count()}"


def time_jax(fn: Callable[..., Any], *args, repeats: int = 3) -> tuple[float, float]:
    """``(compile_s, steady_s)`` of a jitted ``fn``: first call (compile + run) minus
    the best of ``repeats`` later calls, and that best time."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return max(first - best, 0.0), best


def steady_cpu_s(fn: Callable[..., Any], *args, repeats: int = 3) -> float:
    """Least process CPU time (all threads) of ``repeats`` calls of an already compiled ``fn``:
    with the wall time, it says how many cores a call kept busy."""
    best = float("inf")
    for _ in range(repeats):
        c0 = time.process_time()
        jax.block_until_ready(fn(*args))
        best = min(best, time.process_time() - c0)
    return best


def time_call(fn: Callable[[], Any], repeats: int = 1) -> float:
    """Best wall time of ``fn()`` over ``repeats`` calls."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A plain aligned text table."""
    cells = [[f"{c:.4g}" if isinstance(c, float) else str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def print_result(name: str, jaxtwin_s: float, reference_s: float, config: dict, **extra: Any) -> dict:
    """Print and return the ``RESULT {json}`` line (ratio = reference_s / jaxtwin_s)."""
    result = dict(name=name, jaxtwin_s=jaxtwin_s, reference_s=reference_s,
                  ratio=reference_s / jaxtwin_s if jaxtwin_s > 0 else float("inf"),
                  device=device_name(), config=config, **extra)
    print("RESULT " + json.dumps(result))
    return result
