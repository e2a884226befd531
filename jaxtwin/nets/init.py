"""Network initialisation that is safe to ``vmap`` over seeds on XLA's CPU runtime."""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax


def seedwise_init(network: nn.Module, *example_inputs) -> Callable[[jax.Array], Any]:
    """``init_params(key) -> params`` whose ``vmap`` initialises one seed at a time.

    Why: the orthogonal initialisers run LAPACK QR, and jaxlib 0.10.x's CPU
    LAPACK kernels split a *batched* call over XLA's intra-op thread pool and
    block their pool thread until the pieces finish. The network's QRs are
    independent, so the executor starts several at once, one per pool thread;
    on a 2-core CPU that leaves no thread to run the pieces and the program
    never finishes (PPO ``vmap``-ed over seeds at 2x128;
    ``lapack_sorgqr_ffi`` in ``jax::ParallelBatchMap``). Under ``vmap`` the
    parameters are built seed by seed (``lax.map``: every QR unbatched, run
    inline), bit for bit those of each seed initialised alone, on any backend;
    it runs once per training, so its cost does not matter.
    """
    @jax.custom_batching.custom_vmap
    def init_params(key: jax.Array):
        return network.init(key, *example_inputs)

    @init_params.def_vmap
    def _init_params_vmap(axis_size, in_batched, keys):
        params = jax.lax.map(init_params, keys)  # keys: the only input, so batched
        return params, jax.tree.map(lambda _: True, params)

    return init_params
