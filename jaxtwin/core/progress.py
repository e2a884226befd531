"""Progress for long jitted programs: run a compiled chunk function repeatedly
from the host, one progress-bar tick per chunk, without recompiling."""
from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
from tqdm.auto import tqdm


def run_chunks(
    chunk_fn: Callable[[Any, jax.Array], tuple[Any, Any]],
    carry: Any,
    n_chunks: int,
    *,
    desc: str = "",
    disable: bool | None = None,
    on_chunk: Callable[[int, Any, Any], None] | None = None,
    start: int = 0,
) -> tuple[Any, Any]:
    """Call ``chunk_fn(carry, chunk_index)`` for ``chunk_index in [start, n_chunks)``.

    ``chunk_fn`` should be ``jax.jit``-ed with fixed shapes, so it compiles once.
    Metrics returned by each chunk are concatenated along the leading axis.
    ``on_chunk(i, carry, metrics)`` runs on the host after each chunk (e.g. to
    checkpoint). ``disable=None`` hides the bar when stderr is not a terminal.
    """
    outs = []
    bar = tqdm(range(start, n_chunks), desc=desc, disable=disable, leave=False)
    for i in bar:
        carry, metrics = chunk_fn(carry, jnp.asarray(i, jnp.int32))
        jax.block_until_ready(metrics)
        outs.append(metrics)
        if on_chunk is not None:
            on_chunk(i, carry, metrics)
    if not outs:
        return carry, None
    stacked = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=0), *outs)
    return carry, stacked
