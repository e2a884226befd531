"""Progress for long runs, visible wherever the output goes.

:func:`progress_bar` is the one progress display: a tqdm bar on a terminal (or a
widget in a notebook with ipywidgets), and plain periodic lines on stderr when
it is a file, a pipe or a log (``nohup``, CI, a notebook without widgets), so a
long job is never silent. Both say how much is done, the time so far and an
estimate of the time left; the first step of a jitted program includes its
compilation, which the first line says. :func:`run_chunks` drives a compiled
chunk function from the host with one tick per chunk, without recompiling.
"""
from __future__ import annotations

import importlib.util
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp

PLAIN_EVERY_S = 15.0  # at most one plain line per this many seconds (plus the first and last)


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    ip = shell.get_ipython() if shell is not None and hasattr(shell, "get_ipython") else None
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds >= 60 else f"{seconds} s"


class PlainProgress:
    """Periodic one-line progress reports on a stream: ``desc: 3/10 chunk (30%), 12 s elapsed,
    ~28 s left``. The first line comes at once (before compilation), then at most one line per
    ``every_s`` seconds, and always the last."""

    def __init__(self, total: int, desc: str, *, initial: int = 0, unit: str = "chunk",
                 stream=None, every_s: float = PLAIN_EVERY_S):
        self.total, self.desc, self.n, self.unit = total, desc, initial, unit
        self.stream = sys.stderr if stream is None else stream
        self.every_s, self.start_n = every_s, initial
        self.t0 = self.last = time.monotonic()
        first = " (the first one compiles)" if initial < total else ""
        self._line(f"{initial}/{total} {unit}{first}")

    def _line(self, text: str) -> None:
        print(f"{self.desc}: {text}", file=self.stream, flush=True)

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps done; print a line if one is due."""
        self.n += n
        now = time.monotonic()
        if now - self.last < self.every_s and self.n < self.total:
            return
        self.last = now
        elapsed = now - self.t0
        done = self.n - self.start_n
        left = elapsed / done * (self.total - self.n) if done else float("nan")
        pct = 100.0 * self.n / self.total if self.total else 100.0
        eta = f", ~{_clock(left)} left" if self.n < self.total and done else ""
        self._line(f"{self.n}/{self.total} {self.unit} ({pct:.0f}%), {_clock(elapsed)} elapsed{eta}")

    def close(self) -> None:
        """Nothing to tear down (the last update printed the final line)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Off:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def progress_bar(total: int, desc: str, *, enabled: bool = True, initial: int = 0, unit: str = "chunk"):
    """The progress display for ``total`` steps (``update(n)``, ``close()``, a context manager):
    tqdm on a terminal or a notebook with ipywidgets, plain periodic lines otherwise, nothing
    when ``enabled`` is false."""
    if not enabled:
        return _Off()
    if _in_notebook():
        if importlib.util.find_spec("ipywidgets") is None:  # tqdm's widget needs it (else it warns)
            return PlainProgress(total, desc, initial=initial, unit=unit)
        from tqdm.notebook import tqdm
        return tqdm(total=total, initial=initial, desc=desc, unit=unit)
    if sys.stderr.isatty():
        from tqdm.std import tqdm
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, dynamic_ncols=True)
    return PlainProgress(total, desc, initial=initial, unit=unit)


def run_chunks(
    chunk_fn: Callable[[Any, jax.Array], tuple[Any, Any]],
    carry: Any,
    n_chunks: int,
    *,
    desc: str = "",
    progress: bool = True,
    on_chunk: Callable[[int, Any, Any], None] | None = None,
    start: int = 0,
) -> tuple[Any, Any]:
    """Call ``chunk_fn(carry, chunk_index)`` for ``chunk_index in [start, n_chunks)``.

    ``chunk_fn`` should be ``jax.jit``-ed with fixed shapes, so it compiles once.
    Metrics returned by each chunk are concatenated along the leading axis.
    ``on_chunk(i, carry, metrics)`` runs on the host after each chunk (e.g. to
    checkpoint). ``progress`` shows :func:`progress_bar`.
    """
    outs = []
    with progress_bar(n_chunks, desc, enabled=progress, initial=start) as bar:
        for i in range(start, n_chunks):
            carry, metrics = chunk_fn(carry, jnp.asarray(i, jnp.int32))
            jax.block_until_ready(metrics)
            outs.append(metrics)
            if on_chunk is not None:
                on_chunk(i, carry, metrics)
            bar.update(1)
    if not outs:
        return carry, None
    stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *outs)
    return carry, stacked
