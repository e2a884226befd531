"""Progress is visible when stderr is not a terminal: plain periodic lines with time left."""
import io

import jax
import jax.numpy as jnp

from jaxtwin.core import progress


def test_plain_lines_report_the_start_the_end_and_time_left():
    out = io.StringIO()
    bar = progress.PlainProgress(4, "train", stream=out, every_s=0.0)
    for _ in range(4):
        bar.update(1)
    lines = out.getvalue().splitlines()
    assert lines[0] == "train: 0/4 chunk (the first one compiles)"
    assert lines[1].startswith("train: 1/4 chunk (25%), ") and "elapsed, ~" in lines[1] and lines[1].endswith("left")
    assert lines[-1].startswith("train: 4/4 chunk (100%), ") and "left" not in lines[-1]


def test_plain_lines_are_rate_limited_but_the_last_always_comes():
    out = io.StringIO()
    bar = progress.PlainProgress(100, "sweep", stream=out, every_s=3600.0)
    for _ in range(100):
        bar.update(1)
    assert len(out.getvalue().splitlines()) == 2     # the first line and the last


def test_without_a_terminal_the_bar_is_plain_lines(capsys):
    carry, metrics = progress.run_chunks(jax.jit(lambda c, i: (c + i, c[None])), jnp.zeros(()), 3, desc="demo")
    assert float(carry) == 3.0 and metrics.shape == (3,)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "demo: 0/3 chunk (the first one compiles)" and err[-1].startswith("demo: 3/3 chunk (100%)")
    progress.run_chunks(jax.jit(lambda c, i: (c, c[None])), jnp.zeros(()), 2, desc="quiet", progress=False)
    assert capsys.readouterr().err == ""
