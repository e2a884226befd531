"""Ctrl-C stops a run inside a long compiled computation within seconds (issue 11)."""
import signal
import subprocess
import sys
import textwrap
import time

PROGRAM = textwrap.dedent("""
    import signal
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    import jax, jax.numpy as jnp
    from jaxtwin.core.interrupt import prompt_interrupt
    # minutes of work inside one XLA call: Python's own KeyboardInterrupt waits for it
    f = jax.jit(lambda x: jax.lax.fori_loop(0, 2_000_000_000, lambda i, v: v * 1.0000001 + 1e-9, x))
    with prompt_interrupt("interrupted: resume with the same command"):
        print("ready", flush=True)
        f(jnp.ones(())).block_until_ready()
    print("finished", flush=True)
""")


def test_sigint_inside_compiled_code_ends_the_process_promptly_with_one_line():
    proc = subprocess.Popen([sys.executable, "-c", PROGRAM], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert time.monotonic() - t0 < 5.0
    assert proc.returncode == 130 and out == ""
    assert err == "interrupted: resume with the same command\n"


def test_an_interruption_says_whether_any_finished_work_is_kept(tmp_path, capsys):
    """``run_guarded``: stopped before anything was written, it says so instead of promising a resume."""
    from jaxtwin.core.artifacts import write_csv
    from jaxtwin.core.cli import run_guarded
    from jaxtwin.core.config import record_config

    def work(out, n_files):
        def run():
            record_config(out, {"n": n_files})
            for i in range(n_files):
                write_csv(out / f"part{i}.csv", [{"x": i}])
            raise KeyboardInterrupt
        return lambda: run

    assert run_guarded("jaxtwin demo", tmp_path / "a", work(tmp_path / "a", 0)) == 130
    assert capsys.readouterr().err == ("interrupted: jaxtwin demo stopped before any work finished; "
                                       "rerun the same command to start it\n")
    assert run_guarded("jaxtwin demo", tmp_path / "b", work(tmp_path / "b", 2)) == 130
    assert capsys.readouterr().err == (f"interrupted: jaxtwin demo stopped; the 2 files of finished work "
                                       f"(results, checkpoints) in {tmp_path / 'b'} are kept: rerun the same "
                                       "command to resume from them\n")


def test_a_ctrl_c_python_swallowed_still_stops_the_run_at_its_guard():
    """A SIGINT whose KeyboardInterrupt was lost (here caught and dropped, as Python drops one
    raised in a garbage-collection callback) stops the guarded work before it starts; after
    the CLI's run the handler and the memory are gone, so the next run is not affected."""
    import os

    import pytest

    from jaxtwin.core.interrupt import prompt_interrupt, remembered_interrupts

    import gc
    import sys

    before, hook = signal.getsignal(signal.SIGINT), sys.unraisablehook
    printed = []
    sys.unraisablehook = printed.append   # stands in for Python's printout of what it drops
    try:
        with remembered_interrupts():
            class Interrupted:   # a Ctrl-C that lands in a finaliser, which Python drops
                def __del__(self):
                    os.kill(os.getpid(), signal.SIGINT)
                    time.sleep(0.5)
            Interrupted()
            gc.collect()
            assert printed == []   # remembered, so not printed as "Exception ignored in ..."
            with pytest.raises(KeyboardInterrupt):
                with prompt_interrupt("stopped"):
                    pytest.fail("the work ran after a Ctrl-C")
    finally:
        sys.unraisablehook = hook
    assert signal.getsignal(signal.SIGINT) is before
    with prompt_interrupt("stopped"):
        ran = True
    assert ran
