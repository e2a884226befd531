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
on a CPU backend with more than one device, solves the batch one system at a
time (``lax.map``: every LAPACK call unbatched, run inline); elsewhere it is
the ordinary batched solve. Same LU with partial pivoting either way.

jaxlib only hands a batch to the pool when ``batch * cost`` reaches 2e5 flops
(``cost ~ n^3`` for LU and QR) and more than one chunk results, so small
batches of small systems run inline anyway; the guard does not rely on that.
Every dense solve of ``jaxtwin.syncgame`` goes through :func:`solve` (tested on
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


@solve.def_vmap
def _solve_vmap(axis_size, in_batched, a, b):
    a_batched, b_batched = in_batched
    a = a if a_batched else jnp.broadcast_to(a, (axis_size, *a.shape))
    b = b if b_batched else jnp.broadcast_to(b, (axis_size, *b.shape))
    if _split_cpu():
        return jax.lax.map(lambda ab: solve(*ab), (a, b)), True
    return jax.vmap(jnp.linalg.solve)(a, b), True


__all__ = ["solve"]
