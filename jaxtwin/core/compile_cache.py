"""A persistent XLA compilation cache for the ``jaxtwin`` command line.

Compiling the experiments' programs is much of a run's wall time
(``jaxtwin coevodt --mode all --runs 10`` at paper size on a 2-core CPU: 52 s
the first time, 23 s once its programs are cached). JAX can keep compiled programs on disk and load them in a later
process; the cache key covers the program, the compile options, the devices
and the jax/jaxlib versions, so a hit is the same executable. ``jaxtwin``
turns it on before any JAX work (:func:`enable_compilation_cache`); library
users can call the same function, or set JAX's own
``JAX_COMPILATION_CACHE_DIR``.

Where: ``$JAXTWIN_CACHE_DIR`` if set (an empty value turns the cache off),
else ``$XDG_CACHE_HOME/jaxtwin/xla`` (``~/.cache/jaxtwin/xla``). Only programs
that took at least ``jax_persistent_cache_min_compile_time_secs`` (JAX's
default: 1 s) to compile are stored. Deleting the folder is always safe.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path

import jax

CACHE_ENV = "JAXTWIN_CACHE_DIR"


def default_cache_dir() -> Path | None:
    """``$JAXTWIN_CACHE_DIR`` (``None`` when set empty: no cache), else the XDG cache folder."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return Path(value).expanduser() if value.strip() else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxtwin" / "xla"


def enable_compilation_cache(path: str | Path | None = None) -> Path | None:
    """Store compiled programs under ``path`` (default :func:`default_cache_dir`) and reuse them.

    Call before the first compilation. Returns the folder in use, or ``None``
    when the cache is off. A cache folder the user already gave JAX
    (``JAX_COMPILATION_CACHE_DIR``) is kept. A folder that cannot be created
    leaves the cache off with a warning: a run never fails for want of a cache.
    """
    current = jax.config.jax_compilation_cache_dir
    if current:
        return Path(current)
    folder = default_cache_dir() if path is None else Path(path)
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        warnings.warn(f"jaxtwin: compilation cache off, cannot create {folder}: {err}", stacklevel=2)
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    return folder


__all__ = ["CACHE_ENV", "default_cache_dir", "enable_compilation_cache"]
