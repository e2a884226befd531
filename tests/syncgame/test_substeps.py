"""The float64 entry points pick enough Tsit5 substeps for fast replicators."""
import dataclasses

import jax.numpy as jnp

from jaxtwin.syncgame.params import default_params, stack_params
from jaxtwin.syncgame.pmp import MAX_STEP_TIMES_SIGMA, SolverOptions, resolve_substeps


def test_substeps_keep_step_times_sigma_at_most_one():
    assert MAX_STEP_TIMES_SIGMA == 1.0
    base = default_params(2, T=50.0)
    opts = SolverOptions(n_grid=101)                        # h = 0.5
    for sigma, want in ((0.5, 1), (2.0, 1), (2.1, 2), (4.0, 2), (10.0, 5)):
        got = resolve_substeps(base.replace(sigma=jnp.asarray(sigma)), opts)
        assert got.substeps == want, (sigma, got.substeps)
        assert dataclasses.replace(got, substeps=1) == opts  # nothing else changes


def test_substeps_never_lowered_and_batched_uses_the_largest_sigma():
    base = default_params(2, T=50.0)
    assert resolve_substeps(base, SolverOptions(n_grid=101, substeps=3)).substeps == 3
    batch = stack_params([base.replace(sigma=jnp.asarray(s)) for s in (0.1, 4.0, 1.0)])
    assert resolve_substeps(batch, SolverOptions(n_grid=101)).substeps == 2
