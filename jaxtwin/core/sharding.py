"""Spread independent runs, seeds and sweep points over devices.

A vmapped batch of independent work (runs, seeds, scenarios, sweep points) is
split along its leading axis over a 1-D device mesh (``jax.sharding.Mesh`` +
``NamedSharding``): the batch is padded to a multiple of the device count (the
padding repeats lane 0, so padded lanes compute something valid), placed with
``NamedSharding(mesh, P("batch"))``, and the *same* jitted program is called;
XLA's SPMD partitioner then runs each device's slice of the batch. Outputs are
trimmed back to the true batch size.

Why the global jitted program and not ``shard_map``: GSPMD keeps the meaning
of the single-device program, so results do not depend on the device count.
That matters for the ``rbg``/``unsafe_rbg`` key implementations, whose
``vmap`` draws every lane's bits from the batch's *first* key
(``rng_bit_generator`` batching rule): a per-device ``vmap`` (``shard_map``)
would draw from each shard's first key and change every run's random numbers.
Padding at the end of the batch leaves the lanes before it unchanged.

The outputs are pinned to the batch sharding (``jit(call, out_shardings=...)``,
:func:`sharded_jit`): without that, GSPMD tends to replicate a program whose
random bits come from one key (rbg under vmap) and every device computes every
lane; with it the bulk of the work is split (measured on the Co-EvoDT group
program with 4 devices: per-device FLOPs 1/2.9 of the whole with ``unsafe_rbg``,
1/4 with ``threefry2x32``, whose keys are per lane).

Entry points:

* :func:`sharded_call` ``(call, devices, in_axes, out_axes)``: wrap an already
  vmapped call (typically ``jax.jit(jax.vmap(fn))``) so its batch is spread over
  ``devices`` devices (``1``: the call itself; ``0``: every device). The generic
  helper for sweeps: ``sharded_call(jax.jit(jax.vmap(solve)), cfg.devices)(grid)``.
* :func:`sharded_vmap` ``(fn, devices=..., in_axes=...)``: ``jit(vmap(fn))`` sharded.
* :func:`sharded_jit`, :func:`shard_batch`, :func:`replicate`, :func:`to_host`: the pieces, for host
  loops that keep a sharded carry between jitted calls (pad and place once,
  trim and gather only when saving).
* :func:`select_devices`, :func:`require_devices`: the ``devices`` config field
  (``0`` = all, ``N`` = the first ``N`` local devices) and its validation.
* :func:`initialize_distributed`: ``jax.distributed`` from environment variables,
  for runs across hosts (``devices=0`` then spans every process's devices).
* :func:`prepare_devices`, :func:`cli_devices`: what a CLI calls before any JAX
  work: ``jax.distributed`` when configured, and a CPU-only host split into
  one device per core (``0``) or N devices so ``--devices`` uses its cores.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxtwin.core.config import ConfigError, load_config_file, require_int

BATCH_AXIS = "batch"

DEVICES_HELP = ("devices to spread runs/seeds over: 0 = all (every process's devices under "
                "jax.distributed, started when JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and "
                "JAX_PROCESS_ID are set; on a CPU-only host, one device per core), N = the first N "
                "local devices (a CPU is split into N), 1 = no sharding; results do not depend on it")


# ---------------------------------------------------------------- devices
def initialize_distributed() -> bool:
    """Start ``jax.distributed`` when ``JAX_COORDINATOR_ADDRESS`` is set.

    Reads ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0),
    ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``; returns whether it
    initialised. Call once per process before any other JAX work (a second
    call is a no-op).
    """
    addr = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if not addr:
        return False
    if jax.distributed.is_initialized():
        return True
    try:
        n_proc, proc_id = int(os.environ["JAX_NUM_PROCESSES"]), int(os.environ["JAX_PROCESS_ID"])
    except (KeyError, ValueError) as err:
        raise ConfigError("JAX_COORDINATOR_ADDRESS is set: JAX_NUM_PROCESSES and JAX_PROCESS_ID "
                          f"must be set to integers too ({err})") from None
    jax.distributed.initialize(coordinator_address=addr, num_processes=n_proc, process_id=proc_id)
    return True


def cpu_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cli_devices(namespace: Any, config_file: str | None = None) -> int:
    """The ``devices`` count a CLI invocation asks for, read without starting JAX:
    the ``--devices`` flag, else the config file's ``devices``, else 1."""
    requested = vars(namespace).get("devices")
    if requested is None and config_file:
        requested = load_config_file(config_file).get("devices")
    return requested if isinstance(requested, int) and not isinstance(requested, bool) else 1


def prepare_devices(requested: int) -> None:
    """Before any JAX work in a CLI: start ``jax.distributed`` when configured
    (:func:`initialize_distributed`) and let ``--devices`` use a CPU's cores.

    On one host, JAX sees a CPU as a single device whose programs mostly run
    on one core; ``requested`` (``0``: one per core, ``N > 1``: N) splits it
    into that many devices (``jax_num_cpu_devices``), so sharded runs use
    every core (Co-EvoDT's 10 runs on a 2-core CPU: about 2x faster). It only
    affects the CPU platform: with an accelerator, ``jax.devices()`` are the
    accelerators still. Left alone: under ``jax.distributed``, when
    ``XLA_FLAGS`` already sets ``--xla_force_host_platform_device_count``, or
    when a backend has already started (then :func:`require_devices` reports
    how many devices there are).
    """
    if initialize_distributed() or requested == 1:
        return
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    count = requested or cpu_cores()
    if count > 1:
        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError:  # a backend is already up: its device count stands
            pass


def require_devices(obj: Any, name: str = "devices") -> None:
    """Validate a device-count field: an int, ``0`` (all) or ``1..jax.local_device_count()``.

    Counts of 0 and 1 are accepted without starting a JAX backend, so building
    a default config stays cheap and leaves ``jax.distributed`` startable.
    """
    require_int(obj, name, minimum=0)
    n = getattr(obj, name)
    if n > 1 and n > jax.local_device_count():
        raise ConfigError(f"{type(obj).__name__}.{name}={n}: only {jax.local_device_count()} local "
                          f"device(s) (jax.local_device_count()); use 0 for all of them")


def select_devices(count: int) -> list[jax.Device]:
    """``0``: every device (all processes under ``jax.distributed``); ``N``: the first N local devices."""
    if count == 0:
        return list(jax.devices())
    local = jax.local_devices()
    if count < 0 or count > len(local):
        raise ConfigError(f"devices={count}: need 0 (all) or 1..{len(local)} local devices")
    return list(local[:count])


def batch_mesh(devices: Sequence[jax.Device] | int | None = None) -> Mesh:
    """A 1-D mesh named ``"batch"``: over ``devices`` (a list, or a count for
    :func:`select_devices`; default every device)."""
    if devices is None:
        devices = 0
    devs = select_devices(devices) if isinstance(devices, int) else list(devices)
    return Mesh(np.asarray(devs), (BATCH_AXIS,))


def _as_mesh(devices: Mesh | Sequence[jax.Device] | int | None) -> Mesh:
    return devices if isinstance(devices, Mesh) else batch_mesh(devices)


# ---------------------------------------------------------------- placement
def _is_key(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _place(x, sharding: NamedSharding):
    """Put ``x`` (same value on every process) onto ``sharding``, also across hosts."""
    if sharding.is_fully_addressable:
        return jax.device_put(x, sharding)
    if _is_key(x):
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(_place(jax.random.key_data(x), sharding), impl=impl)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])


def _pad_leading(x, size: int):
    x = x if isinstance(x, jax.Array) else jnp.asarray(x)
    pad = size - x.shape[0]
    if pad == 0:
        return x
    # repeat lane 0 so padded lanes compute something valid (no NaN traps); appended
    # at the end so the real lanes (and rbg bit streams, which are prefix-stable) stay put
    filler = jnp.broadcast_to(x[:1], (pad,) + x.shape[1:])
    return jnp.concatenate([x, filler], axis=0)


def batch_size(tree) -> int:
    """The common leading-axis size of every leaf of ``tree`` (error if they differ)."""
    sizes = {np.shape(leaf)[0] for leaf in jax.tree.leaves(tree)}
    if len(sizes) != 1:
        raise ValueError(f"sharding: batched arguments need one common leading size, got {sorted(sizes)}")
    return sizes.pop()


def padded_size(n: int, mesh: Mesh) -> int:
    """``n`` rounded up to a multiple of the mesh's device count."""
    d = mesh.devices.size
    return -(-n // d) * d


def shard_batch(tree, mesh: Mesh):
    """Pad every leaf's leading axis to a multiple of the device count and shard it.

    Returns ``(placed_tree, n)`` with ``n`` the true batch size (for :func:`to_host`).
    """
    n = batch_size(tree)
    size = padded_size(n, mesh)
    sharding = NamedSharding(mesh, PartitionSpec(BATCH_AXIS))
    return jax.tree.map(lambda x: _place(_pad_leading(x, size), sharding), tree), n


def replicate(tree, mesh: Mesh):
    """Every leaf of ``tree`` copied onto every device of ``mesh`` (unbatched arguments)."""
    sharding = NamedSharding(mesh, PartitionSpec())
    return jax.tree.map(lambda x: _place(x, sharding), tree)


def _gather(x):
    """A globally complete array: all-gathered across processes when needed."""
    if not isinstance(x, jax.Array) or x.is_fully_addressable:
        return x
    from jax.experimental import multihost_utils

    if _is_key(x):
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(jnp.asarray(multihost_utils.process_allgather(
            jax.random.key_data(x), tiled=True)), impl=impl)
    return jnp.asarray(multihost_utils.process_allgather(x, tiled=True))


def _trim(x, n: int, axis: int | None):
    if _on_split_cpu(x):
        x = _assembled_on_host(x)
    if axis is None or n is None:
        return x
    return jax.lax.slice_in_dim(x, 0, n, axis=axis) if x.shape[axis] != n else x


def _on_split_cpu(x) -> bool:
    """An array spread over several CPU devices (a split CPU)."""
    return (isinstance(x, jax.Array) and len(x.sharding.device_set) > 1
            and all(d.platform == "cpu" for d in x.sharding.device_set))


def _assembled_on_host(x):
    """``x`` copied shard by shard through the host onto one device. Why: any program on an
    array spread over a split CPU that moves data between its devices (the slice that trims
    the padding is an all-gather) runs each device's part on a thread of XLA's intra-op pool,
    and the part that waits in the collective can starve the other of a thread: seen with
    jaxlib 0.10 as a 40 s rendezvous timeout that aborts the process (``--devices 2`` on a
    2-core CPU). Copies through the host need no collective; on a CPU they cost a memcpy."""
    if _is_key(x):
        return jax.random.wrap_key_data(jnp.asarray(np.asarray(jax.random.key_data(x))),
                                        impl=jax.random.key_impl(x))
    return jnp.asarray(np.asarray(x))


def _map_axes(fn, axes, tree):
    """``fn(leaf, axis)`` over ``tree`` with ``axes`` an int/None or a pytree prefix of them."""
    if axes is None or isinstance(axes, int):
        return jax.tree.map(lambda x: fn(x, axes), tree)
    return jax.tree.map(lambda ax, sub: jax.tree.map(lambda x: fn(x, ax), sub), axes, tree,
                        is_leaf=lambda a: a is None or isinstance(a, int))


def unshard(tree, n: int | None, axis: Any = 0):
    """Trim the padding (batch axis ``axis``, an int, None or a pytree prefix) and
    gather across processes; the result stays a tree of ``jax.Array`` (on a split CPU,
    each on one device: see :func:`_assembled_on_host`)."""
    return _map_axes(lambda x, ax: _trim(_gather(x), n, ax), axis, tree)


def to_host(tree, n: int | None = None, axis: Any = 0):
    """:func:`unshard` then NumPy (PRNG keys stay typed key arrays, gathered and trimmed)."""
    return jax.tree.map(lambda x: x if _is_key(x) else np.asarray(x), unshard(tree, n, axis))


# ---------------------------------------------------------------- wrappers
def output_shardings(mesh: Mesh, out_axes: Any = 0):
    """``NamedSharding`` (prefix) tree: the batch axis at ``out_axes`` (None: replicated)."""
    def spec(ax):
        return NamedSharding(mesh, PartitionSpec() if ax is None else PartitionSpec(*([None] * ax), BATCH_AXIS))
    if out_axes is None or isinstance(out_axes, int):
        return spec(out_axes)
    return jax.tree.map(spec, out_axes, is_leaf=lambda a: a is None or isinstance(a, int))


def sharded_jit(call: Callable[..., Any], mesh: Mesh, out_axes: Any = 0) -> Callable[..., Any]:
    """``jax.jit(call)`` with its outputs pinned to the batch sharding at ``out_axes``.

    Inputs are placed by the caller (:func:`shard_batch`, :func:`replicate`);
    pinning the outputs keeps GSPMD from replicating the whole program (see
    the module docstring). The meaning of ``call`` is unchanged.
    """
    return jax.jit(call, out_shardings=output_shardings(mesh, out_axes))


def sharded_call(call: Callable[..., Any], devices: Mesh | Sequence[jax.Device] | int | None = 0, *,
                 in_axes: Any = 0, out_axes: Any = 0) -> Callable[..., Any]:
    """Run the vmapped ``call`` with its batch spread over ``devices``.

    ``call(*args)`` must be a batch of independent work along axis 0 of every
    mapped argument (typically ``jax.jit(jax.vmap(fn, in_axes))``; jit it, or
    every op dispatches separately). ``in_axes``: per positional argument
    ``0`` (batched: padded and sharded) or ``None`` (replicated); one value
    for all. ``out_axes``: where the batch axis sits in the outputs (int, or a
    pytree prefix of ints/None for unbatched outputs). Outputs are trimmed to
    the true batch size and gathered across processes.

    ``devices``: ``1`` returns ``call`` itself (no placement, today's
    single-device behaviour); ``0`` every device; ``N`` the first N local
    devices; or a list of devices or a :class:`Mesh`.
    """
    if isinstance(devices, int) and devices == 1:
        return call
    mesh = _as_mesh(devices)
    pinned = sharded_jit(call, mesh, out_axes)

    def wrapped(*args):
        axes = tuple(in_axes) if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
        if len(axes) != len(args):
            raise ValueError(f"sharded_call: {len(axes)} in_axes for {len(args)} arguments")
        if any(ax not in (0, None) for ax in axes):
            raise ValueError("sharded_call: in_axes entries must be 0 or None")
        mapped = [a for a, ax in zip(args, axes) if ax == 0]
        if not mapped:
            raise ValueError("sharded_call: no batched argument (every in_axes entry is None)")
        n = batch_size(mapped)
        placed = [shard_batch(a, mesh)[0] if ax == 0 else replicate(a, mesh) for a, ax in zip(args, axes)]
        return unshard(pinned(*placed), n, out_axes)

    return wrapped


def sharded_vmap(fn: Callable[..., Any], *, mesh: Mesh | None = None, devices: int | None = None,
                 in_axes: Any = 0) -> Callable[..., Any]:
    """``jit(vmap(fn, in_axes))`` with the batch axis sharded over ``mesh`` (or
    ``devices``, see :func:`sharded_call`; default every device).

    Arguments mapped with axis 0 are padded to a multiple of the device count
    and sharded; unmapped arguments (``in_axes`` entry ``None``) are replicated.
    Outputs keep the batch axis first and are trimmed back to the true size.
    """
    target = mesh if mesh is not None else (0 if devices is None else devices)
    return sharded_call(jax.jit(jax.vmap(fn, in_axes=in_axes)), target, in_axes=in_axes, out_axes=0)
