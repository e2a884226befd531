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
# (each CLI call builds its programs anew; subprocesses and notebook kernels start cold).
# Each test process (each xdist worker) therefore keeps JAX's persistent compilation cache
# in a fresh folder of its own, removed at exit: a hit is the same executable (the key
# covers program, options, devices and versions), so no result changes, and nothing is
# written under ~/.cache. One folder per process: the subprocesses and kernels a test
# starts share it only while that test waits, so no two processes write it at once (JAX
# locks the folder only with a size limit, which needs the filelock package). Tests that
# check the cache itself give their own folder.
_XLA_CACHE = tempfile.mkdtemp(prefix="jaxtwin-tests-xla-")
atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
os.environ["JAXTWIN_CACHE_DIR"] = _XLA_CACHE          # the CLI, also in subprocesses
os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE  # library calls in subprocesses, kernels
jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)   # library calls in this process

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
