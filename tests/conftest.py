"""Shared test fixtures: small configs, notebook execution."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import jax
import pytest

# Compiling is most of the suite's time, and many tests compile the same programs again
# (each CLI call builds its programs anew; subprocesses, notebook kernels and the other
# xdist worker start cold). All test processes therefore share one persistent compilation
# cache in a fresh folder, made by the first process to load this file (pytest's main
# process; the xdist workers and every subprocess inherit the variable) and removed when it
# exits: a hit is the same executable (the key covers program, options, devices and
# versions), so no result changes, and nothing is written under ~/.cache. JAX writes an
# entry in place, so a size limit is set: with one, JAX takes a file lock (the filelock
# package) around every read and write, and no process reads an entry being written.
# Tests that check the cache itself give their own folder.
_SHARED = "JAXTWIN_TEST_XLA_CACHE"
if not os.environ.get(_SHARED):
    os.environ[_SHARED] = tempfile.mkdtemp(prefix="jaxtwin-tests-xla-")
    atexit.register(shutil.rmtree, os.environ[_SHARED], ignore_errors=True)
_XLA_CACHE = os.environ[_SHARED]
os.environ["JAXTWIN_CACHE_DIR"] = _XLA_CACHE          # the CLI, also in subprocesses
os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE  # library calls in subprocesses, kernels
os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"] = str(8 << 30)   # on: the lock (also in subprocesses)
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)   # library calls in this process
jax.config.update("jax_compilation_cache_max_size", 8 << 30)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_notebook(tmp_path):
    """Execute a notebook under ``notebooks/`` top to bottom in a fresh kernel.

    Runs with the notebook's folder as working directory copy inside ``tmp_path``
    so outputs it writes do not touch the repository; returns the executed
    notebook, after checking that no cell printed a warning (a reader sees them).
    """
    import nbformat
    from nbclient import NotebookClient

    def _run(name: str, timeout: int = 600):
        nb = nbformat.read(ROOT / "notebooks" / name, as_version=4)
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
        warned = [out.get("text", "") for cell in nb.cells for out in cell.get("outputs", [])
                  if out.get("name") == "stderr" and "warning" in out.get("text", "").lower()]
        assert not warned, f"{name}: warnings in the outputs: {warned}"
        return nb

    return _run
