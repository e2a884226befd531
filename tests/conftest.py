"""Shared test fixtures: small configs, notebook execution."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# the CLI caches compiled programs under ~/.cache by default; tests (and the subprocesses
# they start, which inherit this) must not write there: tests that check the cache give
# their own folder
os.environ["JAXTWIN_CACHE_DIR"] = ""

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
