"""Result files written atomically (temp file + rename) so an interrupted run
never leaves a half-written CSV/JSON/PNG, plus run metadata and resume checks.

Files get the permissions of an ordinary ``open`` (``0666`` less the umask), not
the ``0600`` of the temporary file. A folder claimed by a run
(:func:`jaxtwin.core.provenance.claim_output`) lists every file written under
it, so a rerun with other options can delete exactly what the old run wrote."""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np


_TRACKED: dict[Path, Path] = {}  # claimed output folder -> its list of written files
_WRITTEN: dict[Path, dict[Path, None]] = {}  # claimed output folder -> files written since the claim (ordered)


def track_writes(root: str | os.PathLike, manifest: str | os.PathLike) -> None:
    """From now on, list every file written under ``root`` (relative path, one per line)
    in ``manifest``."""
    root = Path(root).resolve()
    for inner in [r for r in _TRACKED if root in r.parents]:   # claims inside an earlier claim of root
        del _TRACKED[inner], _WRITTEN[inner]
    _TRACKED[root] = Path(manifest)
    _WRITTEN[root] = {}


def written_since_claim(root: str | os.PathLike) -> list[Path]:
    """The files written under ``root`` since it was last claimed, in order, each once
    (with those of folders claimed inside it, such as an experiment's engine studies)."""
    root = Path(root).resolve()
    if root not in _WRITTEN:
        return []
    inner = [f for r, fs in _WRITTEN.items() if root in r.parents for f in fs]
    return list(dict.fromkeys([*_WRITTEN[root], *inner]))


def _record_write(path: Path) -> None:
    path = path.resolve()
    roots = [r for r in _TRACKED if r == path.parent or r in path.parents]
    if roots:
        root = max(roots, key=lambda r: len(r.parts))  # the innermost claimed folder
        manifest = _TRACKED[root]
        rewritten = path in _WRITTEN[root]   # a checkpoint rewritten every chunk is listed once
        _WRITTEN[root][path] = None
        if path != manifest and not rewritten:
            with open(manifest, "a") as fh:
                fh.write(f"{path.relative_to(root)}\n")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    _IN_FLIGHT.add(tmp)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), 0o666 & ~_umask())
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        _IN_FLIGHT.discard(tmp)
    _record_write(path)


TMP_SUFFIX = ".tmp"
_IN_FLIGHT: set[str] = set()   # temporary files being written now


def remove_unfinished_writes() -> None:
    """Delete the temporary files of writes in progress (a process about to end at once,
    e.g. on Ctrl-C inside compiled code, leaves no ``.name.XXXX.tmp`` behind)."""
    for tmp in list(_IN_FLIGHT):
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _plain(value: Any) -> Any:
    """NumPy/JAX scalars and arrays -> plain Python for CSV/JSON."""
    if isinstance(value, (np.generic,)):
        return value.item()
    if hasattr(value, "shape") and hasattr(value, "tolist"):
        return np.asarray(value).tolist()
    return value


def write_csv(path: str | os.PathLike, rows: Sequence[Mapping[str, Any]],
              columns: Sequence[str] | None = None) -> Path:
    """Write ``rows`` (dicts) as a CSV atomically; ``columns`` fixes the order."""
    rows = list(rows)
    if columns is None:
        columns = list(rows[0].keys()) if rows else []
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        missing = set(columns) - set(row)
        if missing:
            raise ValueError(f"write_csv({path}): row lacks columns {sorted(missing)}")
        writer.writerow({c: _plain(row[c]) for c in columns})
    _atomic_write_bytes(Path(path), buf.getvalue().encode())
    return Path(path)


def write_columns_csv(path: str | os.PathLike, columns: Mapping[str, Iterable[Any]]) -> Path:
    """Write a dict of equal-length 1-D columns as a CSV atomically."""
    cols = {k: np.asarray(v).ravel() for k, v in columns.items()}
    lengths = {k: len(v) for k, v in cols.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"write_columns_csv({path}): columns differ in length {lengths}")
    n = next(iter(lengths.values()), 0)
    rows = [{k: cols[k][i] for k in cols} for i in range(n)]
    return write_csv(path, rows, list(cols))


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Read a CSV written by :func:`write_csv` as a list of string dicts."""
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def parse_cell(text: str) -> Any:
    """A CSV cell written by :func:`write_csv` back to its value: bool, int, float (exact:
    floats are written as their shortest repr) or the string itself."""
    if text in ("True", "False"):
        return text == "True"
    for tp in (int, float):
        try:
            return tp(text)
        except ValueError:
            pass
    return text


def read_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`write_csv` with every cell parsed (:func:`parse_cell`)."""
    return [{c: parse_cell(v) for c, v in r.items()} for r in read_csv(path)]


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, tuples, paths and arrays -> JSON-compatible structures."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    return _plain(obj)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` (dataclasses and arrays allowed) as indented JSON atomically."""
    text = json.dumps(to_jsonable(obj), indent=2, sort_keys=False, allow_nan=True)
    _atomic_write_bytes(Path(path), (text + "\n").encode())
    return Path(path)


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    _atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def environment_info() -> dict[str, Any]:
    """Versions and devices, stored beside results so they can be reproduced."""
    import jax

    versions = {}
    for name in ("jax", "jaxlib", "flax", "optax", "diffrax", "optimistix", "lineax", "numpy", "scipy"):
        try:
            mod = __import__(name)
            versions[name] = getattr(mod, "__version__", "?")
        except ImportError:
            versions[name] = None
    from jaxtwin import __version__

    return {
        "jaxtwin": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "devices": [str(d) for d in jax.devices()],
        "versions": versions,
    }


def all_exist(paths: Iterable[str | os.PathLike]) -> bool:
    """True when every path exists: the resume check for a finished piece of work."""
    return all(Path(p).exists() for p in paths)
