"""Dense linear solves that stay safe when a CPU is split into several devices.

jaxlib's CPU LAPACK kernels spread a *batched* call over XLA's intra-op
thread pool and block their calling thread until the pieces finish. When a
CPU is split into several devices (``--devices`` on a CPU-only host, or
``XLA_FLAGS=--xla_force_host_platform_device_count``), each device's program
runs on a thread of that same pool; with as many devices as pool threads,
every thread can end up blocked inside a batched LAPACK call waiting for
pieces no thread is left to run: the program hangs (seen with jaxlib 0.10.2,
``lapack_dgetrf_ffi`` / ``lapack_sgesdd_ffi`` in ``jax::ParallelBatchMap``,
two devices on a 2-core CPU).

:func:`solve` is ``jnp.linalg.solve`` for one system whose ``vmap`` rule,
on a CPU backend with more than one device, solves a batch that jaxlib would
hand to the pool one system at a time (``lax.map``: every LAPACK call
unbatched, run inline); elsewhere it is the ordinary batched solve. Same LU
with partial pivoting either way.

Which batches reach the pool: jaxlib 0.10's kernels (``GetLapackBatchChunkSize``
in ``jaxlib/cpu/lapack_kernels.cc``) cut a batch into chunks of at least 2e5
flops (cost ``n^3`` for the LU, ``n^2 k`` for the triangular solves of ``k``
right-hand sides) and run it inline on the calling thread when that leaves one
chunk, i.e. when ``batch <= ceil(2e5 / cost)``. Such batches cannot block and
stay batched: mapping them costs time for nothing (measured: a 64-point 2-VSP
collocation sweep, 12x12 solves, sharded over 2 CPU devices took 94-112 ms
with every solve mapped against 55 ms batched).

Every dense solve of ``jaxtwin.syncgame`` goes through :func:`solve` (checked on
the lowered programs, ``tests/syncgame/test_lapack_guard.py``). Not covered:
lineax's GMRES (``SolverOptions(linear_solver="gmres")``) solves its small
Hessenberg least-squares problem by a batched QR inside lineax; with ``krylov_dim``
40 that is a 41x40 QR per point, which jaxlib splits over the pool from 3 points
per device on, so prefer ``linear_solver="dense"`` when sweeping over several
CPU devices.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


# jaxlib's smallest chunk of work handed to the pool (flops; see the module doc)
POOL_MIN_WORK = 200_000


def reaches_pool(batch: int, n: int, k: int = 1) -> bool:
    """Whether jaxlib 0.10 would spread ``batch`` LU solves of ``n x n`` systems with
    ``k`` right-hand sides over its thread pool (more than one chunk of work)."""
    cost = max(n ** 3, n * n * k)
    return batch > -(-POOL_MIN_WORK // cost)


def _split_cpu() -> bool:
    """Whether JAX's default backend is a CPU split into several devices."""
    return jax.default_backend() == "cpu" and jax.local_device_count() > 1


@jax.custom_batching.custom_vmap
def solve(a: jax.Array, b: jax.Array) -> jax.Array:
    """``x`` with ``a @ x = b`` for one square ``a`` (``f[n, n]``) and ``b`` (``f[n]``, or
    ``f[n, k]`` for ``k`` right-hand sides at once).

    Forward-mode differentiable; not reverse-mode (a ``custom_vmap`` function has no
    transpose rule). Meant for Newton steps, which are never reverse-differentiated.
    """
    return jnp.linalg.solve(a, b)


def _broadcast(axis_size, in_batched, a, b):
    a_batched, b_batched = in_batched
    a = a if a_batched else jnp.broadcast_to(a, (axis_size, *a.shape))
    b = b if b_batched else jnp.broadcast_to(b, (axis_size, *b.shape))
    return a, b


def _rhs(a, b) -> int:
    """Right-hand sides per system (``b`` a vector or a matrix per ``a``)."""
    return 1 if b.ndim == a.ndim - 1 else b.shape[-1]


@solve.def_vmap
def _solve_vmap(axis_size, in_batched, a, b):
    a, b = _broadcast(axis_size, in_batched, a, b)
    if not _split_cpu():
        return jax.vmap(jnp.linalg.solve)(a, b), True
    if reaches_pool(axis_size, a.shape[-1], _rhs(a, b)):
        return jax.lax.map(lambda ab: solve(*ab), (a, b)), True
    return _inline_batch(a, b), True


@jax.custom_batching.custom_vmap
def _inline_batch(a: jax.Array, b: jax.Array) -> jax.Array:
    """One batched LAPACK solve of a batch small enough to run inline (split CPU only).

    Its own ``vmap`` rule keeps counting: under a further ``vmap`` the batches merge
    into one while the total stays inline, else the outer axis is mapped."""
    return jax.vmap(jnp.linalg.solve)(a, b)


@_inline_batch.def_vmap
def _inline_batch_vmap(axis_size, in_batched, a, b):
    a, b = _broadcast(axis_size, in_batched, a, b)
    if reaches_pool(axis_size * a.shape[1], a.shape[-1], _rhs(a, b)):
        return jax.lax.map(lambda ab: _inline_batch(*ab), (a, b)), True
    flat = lambda x: x.reshape((-1, *x.shape[2:]))  # noqa: E731
    return _inline_batch(flat(a), flat(b)).reshape(b.shape), True


__all__ = ["solve"]
