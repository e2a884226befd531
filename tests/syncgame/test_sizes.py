"""Sizes refused up front: a sync-game run too large for the memory ends in one ConfigError
naming the option before anything compiles; the estimates follow XLA's own count."""
import time

import jax
import pytest

from jaxtwin.core.config import ConfigError
from jaxtwin.core.memory import available_bytes
from jaxtwin.syncgame.experiments import STEPS, SyncGameConfig, run
from jaxtwin.syncgame.nash import solve_nash
from jaxtwin.syncgame.params import as_float64, default_params
from jaxtwin.syncgame.pmp import SolverOptions, resolve_substeps
from jaxtwin.syncgame.sizes import nash_sweep_bytes, step_bytes


# T drives only the sweep solver's memory (its Tsit5 steps grow with T sigma); collocation's is T-free
# and collocation's grows linearly in the nodes, the sweep's quadratically
@pytest.mark.parametrize("change, option", [(dict(T=1e6, solver="pmp"), "--T"), (dict(n_grid=10**8), "--n-grid"),
                                            (dict(n_grid=100_001, solver="pmp"), "--n-grid"),
                                            (dict(sens_n_grid=10**7), "--sens-n-grid")])
def test_huge_sizes_are_refused_quickly_naming_the_option(tmp_path, change, option):
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=rf"^syncgame \w+: .* needs about [\d,.e+]+ GB, more than the .* GB of "
                                          rf".*; lower .*{option}"):
        run(SyncGameConfig(**change), tmp_path / "out", progress=False)
    assert time.perf_counter() - t0 < 10 and not (tmp_path / "out").exists()


def test_default_and_tiny_configs_fit():
    """By collocation the defaults' largest solve is the 7-point sensitivity batch (7 x 9 MB of
    40 x 40 blocks on 101 nodes); by the sweep solver it is the comparison's Stackelberg
    (jacfwd over 201 x 15 unknowns through the dense solves: about 5 GB). Tiny configs need little."""
    default = {step: step_bytes(SyncGameConfig(), step)[0] for step in STEPS}
    assert max(default, key=default.get) == "sensitivity" and 5e7 < default["sensitivity"] < 8e7
    sweep = {step: step_bytes(SyncGameConfig(solver="pmp"), step)[0] for step in STEPS}
    assert max(sweep, key=sweep.get) == "compare" and 4e9 < sweep["compare"] < 6e9
    assert all(b < available_bytes() for b in (*default.values(), *sweep.values()))
    tiny = SyncGameConfig(T=10.0, n_grid=21, sens_n_grid=21, solver="pmp")
    assert all(step_bytes(tiny, step)[0] < 1e8 for step in STEPS)


def test_sweep_estimate_follows_xla_memory_analysis():
    """The dense-Newton sweep solve: jacfwd's tangents through the dense forward solve (3 substeps)."""
    params = default_params(2, T=100.0)
    opts = resolve_substeps(params, SolverOptions(n_grid=21))
    assert opts.substeps == 3
    with jax.enable_x64(True):
        xla = jax.jit(lambda p: solve_nash(p, opts)).lower(as_float64(params)).compile().memory_analysis()
    assert 0.8 < nash_sweep_bytes(params, opts) / xla.temp_size_in_bytes < 1.3


def test_sweep_refuses_a_chunk_that_cannot_fit(tmp_path, capsys):
    """A sync-game study's runner estimates each scheme's chunk: 4 VSPs on 1e6 nodes is refused
    before the folder is claimed, naming the option."""
    from jaxtwin.cli import main

    out = tmp_path / "sweep"
    argv = ["sweep", "syncgame", "--grid", "r=0.05,0.1", "--set", "n_vsp=4", "--set", "n_grid=1000000",
            "--no-progress", "--out", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err + captured.out, captured
    assert err.startswith("error: syncgame sweep: the ") and err.endswith("; lower --chunk or n_grid"), err
    assert not out.exists() or not any(out.rglob("*"))
