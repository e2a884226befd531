"""Spread independent runs, seeds and sweep points over every local device.

``sharded_vmap(fn)`` behaves like ``jax.jit(jax.vmap(fn))`` but places the
batch axis across a 1-D device mesh (``jax.sharding.Mesh`` + ``NamedSharding``),
padding the batch to a multiple of the device count and dropping the padding
from the result. With one device it is exactly ``jit(vmap(fn))``. Across hosts,
call :func:`initialize_distributed` first (``jax.distributed``).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

BATCH_AXIS = "batch"


def batch_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``"batch"`` over ``devices`` (default: all devices)."""
    devs = np.asarray(jax.devices() if devices is None else list(devices))
    return Mesh(devs, (BATCH_AXIS,))


def initialize_distributed() -> bool:
    """Start ``jax.distributed`` when ``JAX_COORDINATOR_ADDRESS`` is set.

    Reads ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``; returns whether it initialised. Call once per process,
    before any other JAX work.
    """
    addr = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not addr:
        return False
    jax.distributed.initialize(
        coordinator_address=addr,
        num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
        process_id=int(os.environ["JAX_PROCESS_ID"]),
    )
    return True


def _pad_leading(x: jax.Array, size: int) -> jax.Array:
    pad = size - x.shape[0]
    if pad == 0:
        return x
    # repeat the first element so padded lanes compute something valid (no NaN traps)
    filler = jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])
    return jnp.concatenate([x, filler], axis=0)


def sharded_vmap(fn: Callable[..., Any], *, mesh: Mesh | None = None,
                 in_axes: Any = 0) -> Callable[..., Any]:
    """``jit(vmap(fn, in_axes))`` with the batch axis sharded over ``mesh``.

    Arguments mapped with axis 0 are padded to a multiple of the device count
    and sharded; unmapped arguments (``in_axes`` entry ``None``) are replicated.
    Outputs keep the batch axis first and are trimmed back to the true size.
    """
    mesh = batch_mesh() if mesh is None else mesh
    n_dev = mesh.devices.size
    vfn = jax.jit(jax.vmap(fn, in_axes=in_axes))
    batched = NamedSharding(mesh, PartitionSpec(BATCH_AXIS))
    replicated = NamedSharding(mesh, PartitionSpec())

    def call(*args):
        axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        sizes = {leaf.shape[0] for a, ax in zip(args, axes) if ax == 0 for leaf in jax.tree.leaves(a)}
        if len(sizes) != 1:
            raise ValueError(f"sharded_vmap: mapped arguments need one common batch size, got {sorted(sizes)}")
        n = sizes.pop()
        padded_n = -(-n // n_dev) * n_dev
        placed = []
        for a, ax in zip(args, axes):
            if ax == 0:
                a = jax.tree.map(lambda x: jax.device_put(_pad_leading(jnp.asarray(x), padded_n), batched), a)
            elif ax is None:
                a = jax.tree.map(lambda x: jax.device_put(x, replicated), a)
            else:
                raise ValueError("sharded_vmap: in_axes entries must be 0 or None")
            placed.append(a)
        out = vfn(*placed)
        return jax.tree.map(lambda x: x[:n], out)

    return call
