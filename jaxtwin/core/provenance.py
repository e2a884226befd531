"""What produced an output folder: a fingerprint checked before any work, and a list of
the files written under it.

Every run claims its output folder through :func:`claim_output` (called by
:func:`jaxtwin.core.config.record_config`) before it computes anything. The
claim writes a record (``config.json``) holding the config, the versions of the
packages that compute the results and a SHA-256 fingerprint of both. A later
run into the same folder:

* with the same fingerprint skips what is finished and resumes checkpoints;
* with another fingerprint is refused (:class:`~jaxtwin.core.config.ConfigError`
  naming every field that differs), so old results are never relabelled with
  new options and a checkpoint is never resumed under other options;
* with another fingerprint and ``overwrite`` first deletes every file the old
  run wrote (the list kept beside the record), then recomputes.

Fields that do not change results (``devices``: results are identical on any
device count) are left out of the fingerprint, as are a command's selector
fields where pieces of several commands share a folder (the sync game's steps).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Collection

from jaxtwin.core.config import ConfigError

NOT_RESULTS = ("devices",)  # config fields that never change what a run writes
VERSIONED = ("jaxtwin", "jax", "jaxlib", "flax", "optax", "diffrax", "optimistix", "lineax", "numpy", "gymnax")


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: tree}


def versions() -> dict[str, str | None]:
    """The versions of the packages that compute jaxtwin's results, and JAX's x64 flag."""
    from importlib import metadata

    import jax

    found: dict[str, str | None] = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    found["jax_enable_x64"] = str(bool(jax.config.jax_enable_x64))
    return found


def fingerprint_fields(config: Any, ignore: Collection[str] = (),
                       inputs: dict[str, str] | None = None) -> dict[str, Any]:
    """The flat ``{dotted field: value}`` table a fingerprint hashes: the config's fields
    (less those named in ``ignore`` or under them, and :data:`NOT_RESULTS` at any depth),
    ``inputs.<name>`` (fingerprints of what the run reads, such as a trained agent) and
    ``versions.<package>``."""
    from jaxtwin.core.artifacts import to_jsonable

    def kept(k: str) -> bool:
        return k.split(".")[-1] not in NOT_RESULTS and not any(
            k == name or k.startswith(name + ".") for name in ignore)

    fields = {k: v for k, v in _flatten(to_jsonable(config)).items() if kept(k)}
    fields.update({f"inputs.{k}": v for k, v in (inputs or {}).items()})
    fields.update({f"versions.{k}": v for k, v in versions().items()})
    return fields


def fingerprint(fields: dict[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``fields``."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``"field=old there, new here"`` for every field whose value differs."""
    missing = object()
    diffs = []
    for k in sorted(set(old) | set(new)):
        a, b = old.get(k, missing), new.get(k, missing)
        if a != b:
            shown = lambda v: "(absent)" if v is missing else repr(v)  # noqa: E731
            diffs.append(f"{k}={shown(a)} there, {shown(b)} here")
    return diffs


def check_output_dir(out_dir: str | os.PathLike) -> Path:
    """Create ``out_dir`` and prove a file can be written there, before any work.

    A path that is a file, a folder that cannot be created or written (``/proc``,
    read-only, no space left) is a one-line :class:`ConfigError` naming it.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".jaxtwin-write-test-{os.getpid()}"
        with open(probe, "wb") as fh:
            fh.write(b"\0" * 4096)  # a first result's worth: fails when the disk is full
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write there ({err.strerror or err})") from None
    return out


def _manifest(record: Path) -> Path:
    return record.with_name(f".{record.name}.files")


def written_files(record: str | os.PathLike) -> list[Path]:
    """The files the run that wrote ``record`` has written so far (that still exist)."""
    record = Path(record)
    path = _manifest(record)
    if not path.exists():
        return []
    names = dict.fromkeys(line for line in path.read_text().splitlines() if line)
    return [record.parent / n for n in names if (record.parent / n).is_file()]


def _read_record(record: str | os.PathLike) -> dict[str, Any]:
    """The record's JSON table ({} when it is missing or unreadable)."""
    try:
        data = json.loads(Path(record).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def record_fingerprint(record: str | os.PathLike) -> str | None:
    """The fingerprint stored in ``record`` (None when there is none)."""
    return _read_record(record).get("fingerprint")


def discard(record: str | os.PathLike) -> None:
    """Delete ``record`` and every file its run wrote: results that depend on something
    being recomputed (an evaluation of an agent that is trained again)."""
    record = Path(record)
    _remove_old_outputs(record)
    record.unlink(missing_ok=True)


def _remove_old_outputs(record: Path) -> None:
    for path in written_files(record):
        path.unlink()
    _manifest(record).unlink(missing_ok=True)
    for folder in sorted({p for p in record.parent.rglob("*") if p.is_dir()}, reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()  # empty folders the old run made


def _old_fields(record: Path) -> dict[str, Any] | None:
    fields = _read_record(record).get("fingerprint_fields")
    return fields if isinstance(fields, dict) else None


_FRESH: dict[Path, Path] = {}   # folder -> the record this process wrote where there was none


def release_unused_claim(out_dir: str | os.PathLike) -> bool:
    """Undo this process's claim of ``out_dir`` when the claim was new and the run wrote
    nothing but its record: a run stopped by bad input leaves no record behind to refuse
    the corrected command with. Returns whether it did."""
    from jaxtwin.core import artifacts

    out = Path(out_dir).resolve()
    record = _FRESH.pop(out, None)
    if record is None:
        return False
    written = [f for f in artifacts.written_since_claim(out) if f.exists()]
    if any(f != record.resolve() for f in written):
        return False
    record.unlink(missing_ok=True)
    _manifest(record).unlink(missing_ok=True)
    return True


def claim_output(out_dir: str | os.PathLike, config: Any, *, name: str = "config.json",
                 overwrite: bool = False, ignore: Collection[str] = (),
                 inputs: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Check ``out_dir`` and its earlier record ``name``, then write the new record.

    Returns the record's path. Raises :class:`ConfigError` when the folder holds
    results of other options and ``overwrite`` is off (the message lists the
    fields that differ); with ``overwrite`` the old run's files are deleted first.
    Files written under ``out_dir`` from here on are listed beside the record.
    """
    from jaxtwin.core import artifacts

    out = check_output_dir(out_dir)
    record = out / name
    fields = fingerprint_fields(config, ignore, inputs)
    if record.exists():
        old = _old_fields(record)
        diffs = ["(a record without a fingerprint)"] if old is None else differences(old, fields)
        if diffs and not overwrite:
            raise ConfigError(
                f"--out {out} holds results of other options: {'; '.join(diffs)}. Rerun with those "
                "options to resume or reuse them, pass --overwrite to delete them and recompute, "
                "or choose another --out")
        if diffs:
            _remove_old_outputs(record)
    _FRESH.pop(out.resolve(), None)
    if not record.exists():
        _FRESH[out.resolve()] = record
    artifacts.track_writes(out, _manifest(record))  # before the record: it is this run's first file
    artifacts.write_json(record, {"config": config, **(extra or {}),
                                  "fingerprint": fingerprint(fields), "fingerprint_fields": fields,
                                  "environment": artifacts.environment_info()})
    return record
