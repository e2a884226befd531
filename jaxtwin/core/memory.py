"""Refuse a run whose arrays cannot fit, before anything is compiled.

An experiment estimates from its config the bytes its largest program will
allocate and calls :func:`require_fits`: a size that cannot fit ends in one
:class:`~jaxtwin.core.config.ConfigError` line naming the estimate, the memory
there is and the option that drives the size, instead of minutes of tracing
and compiling followed by XLA's ``RESOURCE_EXHAUSTED``. The estimates are the
experiments' own (they know what their solvers allocate); this module only
knows how much memory there is.
"""
from __future__ import annotations

import os

import jax

from jaxtwin.core.config import ConfigError

GB = 1e9


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


def _gb(nbytes: float) -> str:
    gb = nbytes / GB
    return f"{gb:.3g}" if gb < 1000 else f"{gb:,.0f}"


__all__ = ["GB", "available_bytes", "require_fits"]
