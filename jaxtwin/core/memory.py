"""Refuse a run whose arrays cannot fit, before anything is compiled.

An experiment estimates from its config the bytes its largest program will
allocate and calls :func:`require_fits`: a size that cannot fit ends in one
:class:`~jaxtwin.core.config.ConfigError` line naming the estimate, the memory
there is and the option that drives the size, instead of minutes of tracing
and compiling followed by XLA's ``RESOURCE_EXHAUSTED``. The estimates are the
experiments' own (they know what their programs allocate: ``syncgame/sizes.py``,
``civic/sizes.py``, ``coevodt/sizes.py``), each a :class:`Need` per program;
this module knows how much memory there is (:func:`available_bytes`), how
many lanes of a batch one device holds (:func:`lanes_per_device`) and refuses
(:func:`require_fits`, :func:`require_all_fit`).
"""
from __future__ import annotations

import math
import os
from typing import Iterable, NamedTuple

import jax

from jaxtwin.core.config import ConfigError

GB = 1e9
F32 = 4


class Need(NamedTuple):
    """What one program is estimated to allocate at its peak: ``nbytes``, ``what`` the
    program is (the message's subject) and ``option``, the settings that drive it
    (e.g. ``"--T or --n-grid"``). ``require_fits(*need)`` refuses it."""

    nbytes: float
    what: str
    option: str


def lanes_per_device(n: int, devices: int) -> int:
    """How many of ``n`` batched lanes (runs, seeds, grid points) one device holds when a
    ``devices`` config field (0: all; :mod:`jaxtwin.core.sharding`) spreads them.

    On a CPU every device, split or not, lives in the one host memory, so all ``n``
    count; on accelerators each device holds ``ceil(n / devices)`` (padding included).
    """
    all_devices = jax.devices()
    if all_devices[0].platform == "cpu" or devices == 1:
        return n
    return math.ceil(n / (len(all_devices) if devices == 0 else devices))


def available_bytes(device=None) -> int:
    """The bytes one device can hold.

    The device's ``memory_stats()['bytes_limit']`` where the backend reports
    it (GPUs, TPUs), else the host's physical memory (``os.sysconf``; the CPU
    backend reports no limit, and its arrays live in host memory).
    ``device`` defaults to the first of ``jax.devices()``.
    """
    return _limit(device)[0]


def _limit(device) -> tuple[int, str]:
    """``(bytes, where they are)`` of :func:`available_bytes`."""
    device = jax.devices()[0] if device is None else device
    try:
        stats = device.memory_stats() or {}
    except Exception:  # noqa: BLE001 - backends without memory stats raise differently
        stats = {}
    limit = stats.get("bytes_limit")
    if limit:
        return int(limit), f"{device.platform} device memory"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host physical memory"


def require_fits(nbytes: float, what: str, option: str, *, device=None) -> None:
    """Raise ``ConfigError`` when ``nbytes`` (an estimate of what ``what`` allocates)
    exceeds :func:`available_bytes`; the message gives the estimate and the memory
    in GB and names ``option``, the setting that drives the size (e.g. ``"--T"``)."""
    limit, where = _limit(device)
    if nbytes > limit:
        raise ConfigError(f"{what} needs about {_gb(nbytes)} GB, more than the {_gb(limit)} GB of "
                          f"{where}; lower {option}")


def require_all_fit(needs: Iterable[Need], *, device=None) -> None:
    """:func:`require_fits` for every :class:`Need`, the largest first, so the message
    names the program (and options) that is furthest out of reach."""
    for need in sorted(needs, key=lambda n: -n.nbytes):
        require_fits(*need, device=device)


def _gb(nbytes: float) -> str:
    gb = nbytes / GB
    return f"{gb:.3g}" if gb < 1000 else f"{gb:,.0f}"


__all__ = ["F32", "GB", "Need", "available_bytes", "lanes_per_device", "require_all_fit", "require_fits"]
