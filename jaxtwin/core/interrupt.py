"""Ctrl-C that stops a run promptly and says how to resume it.

Python delivers SIGINT as ``KeyboardInterrupt`` only between bytecodes, so a run
inside a long XLA compilation or a compiled chunk would ignore Ctrl-C until
that returns (measured: ~13 s during a compilation). :func:`prompt_interrupt`
also wakes a watchdog thread through :func:`signal.set_wakeup_fd` (written by
the C-level handler at once, while the main thread is still inside XLA, which
releases the GIL): if the main thread has not stopped ``grace_s`` seconds
later, the watchdog prints the message and ends the process. That is safe
because every result file is written atomically (temp file + rename) and every
checkpoint is a finished chunk, so nothing half-written is left for a rerun.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

EXIT_CODE = 130  # the shell's convention for a process ended by SIGINT
_SEEN = threading.Event()   # a SIGINT arrived under remembered_interrupts


@contextmanager
def remembered_interrupts() -> Iterator[None]:
    """Within the block (the CLI's whole run), SIGINT raises ``KeyboardInterrupt`` as
    Python's default handler does and is also remembered, so :func:`prompt_interrupt`
    stops at its start after one that Python swallowed: a signal that lands while a
    callback runs during garbage collection is printed as ``Exception ignored in
    ... _xla_gc_callback`` and lost (seen once in 17 interrupts during start-up, when
    the run then finished as if nothing had happened). Since it is remembered, that
    printout (a traceback of the signal handler) is left out: the run's one line says
    what happened."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def remember(signum, frame):
        _SEEN.set()
        raise KeyboardInterrupt

    def quiet_when_remembered(unraisable):
        if not (isinstance(unraisable.exc_value, KeyboardInterrupt) and _SEEN.is_set()):
            previous_hook(unraisable)

    _SEEN.clear()
    previous, previous_hook = signal.signal(signal.SIGINT, remember), sys.unraisablehook
    sys.unraisablehook = quiet_when_remembered
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
        _SEEN.clear()


@contextmanager
def prompt_interrupt(message: str | Callable[[], str], grace_s: float = 1.0) -> Iterator[threading.Event]:
    """Within the block, a Ctrl-C ends the process within ``grace_s`` seconds after
    printing ``message`` (or what ``message()`` returns then) on stderr, even if the main
    thread is inside compiled code.

    The main thread still gets ``KeyboardInterrupt`` when it reaches Python code
    first; its handler sets the yielded event so the watchdog stands down. Outside
    the main thread (or where signals cannot be set) the block runs unguarded.
    """
    handled = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield handled
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous_fd = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except ValueError:  # pragma: no cover - not the main interpreter
        os.close(read_fd)
        os.close(write_fd)
        yield handled
        return
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                signum = os.read(read_fd, 1)
            except OSError:
                return
            if not signum or done.is_set():
                return
            if signum[0] == signal.SIGINT and not handled.wait(grace_s) and not done.is_set():
                from jaxtwin.core.artifacts import remove_unfinished_writes

                remove_unfinished_writes()   # a write the main thread will not finish
                print(message() if callable(message) else message, file=sys.stderr, flush=True)
                os._exit(EXIT_CODE)

    watchdog = threading.Thread(target=watch, name="jaxtwin-interrupt", daemon=True)
    watchdog.start()
    try:
        if _SEEN.is_set():   # an earlier Ctrl-C that Python swallowed (remembered_interrupts)
            raise KeyboardInterrupt
        yield handled
    except KeyboardInterrupt:
        handled.set()
        raise
    finally:
        done.set()
        signal.set_wakeup_fd(previous_fd)
        os.close(write_fd)  # wakes the watchdog with an empty read
        watchdog.join(timeout=1.0)
        os.close(read_fd)
