"""Declared studies: a grid over named parameter fields of a system, the
policies (schemes, modes) run at each point, and the seeds.

A :class:`Study` is data: ``axes`` (field name -> values; Cartesian product by
default, ``zipped`` groups of axes varying together), ``fixed`` values applied
at every point, ``policies`` and ``seeds``. :func:`expand` turns it into
points; :func:`validate` checks it against a system's :class:`Adapter` before
any compilation (unknown field, wrong type, empty axis, out-of-range value:
:class:`~jaxtwin.core.config.ConfigError` naming the field and listing the
valid ones). :mod:`jaxtwin.core.engine` runs it.

On the command line an axis is ``FIELD=v1,v2,...`` or ``FIELD=lo:hi:n``
(``n`` values evenly spaced, geometrically with ``--log FIELD``); the same
declaration as a TOML file (:func:`load_study`, :func:`study_toml`)::

    system = "civic"
    seeds = 64
    policies = ["all"]
    [axes]
    budget_factor = {lo = 0.4, hi = 1.2, n = 9}
    threshold = [0.7, 0.8, 0.85, 0.9]
    [fixed]
    n_msps = 3
"""
from __future__ import annotations

import itertools
import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from jaxtwin.core.config import ConfigError

ALL = "all"
REPLICATE_MARK = "#"
"""A runner's policy ``"DRL#2"`` is policy ``DRL``, training ``2``: its rows get ``train_seed`` 2."""


@dataclass(frozen=True)
class AxisField:
    """A field a study may vary: ``kind`` ``"param"`` (a leaf of the vmapped parameters:
    any number of values run in one program) or ``"shape"`` (fixes array shapes or the
    program: each value is its own compiled group)."""

    name: str
    type: type
    default: Any
    kind: str = "param"
    help: str = ""
    choices: tuple = ()   # a str field's valid values


class GroupRunner(Protocol):
    """The compiled work of one shape group (see :class:`Adapter`)."""

    policies: tuple[str, ...]
    metrics: tuple[str, ...]

    def params(self, values: Mapping[str, Any]) -> Any:
        """The validated parameter pytree of one point (``ConfigError`` names a bad field)."""

    def __call__(self, stacked_params: Any, keys: Any) -> Mapping[str, Any]:
        """Metrics ``[point, policy, seed]`` for params stacked over points."""

    # Optional: ``needs(chunk) -> list[Need]`` (peak bytes for ``chunk`` points, checked first);
    # ``checkpoints = True``: called with ``workdir=OUT/work/gGGG/cCCCC`` (None without a
    # folder) to keep what resumes a chunk, and ``progress`` for bars inside a long chunk.


class Adapter(Protocol):
    """What the engine needs of a system (one small module per system)."""

    system: str
    fields: Mapping[str, AxisField]
    policy_label: str          # "policy", "scheme" or "mode"
    seed_label: str            # "seed" (evaluation episode) or "run"
    stochastic: bool           # False: one deterministic solve per point, no seeds
    default_seeds: int
    plot_metrics: tuple[str, ...]

    def policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """Every policy valid for a shape group (``all`` expands to these)."""

    def default_policies(self, shape: Mapping[str, Any]) -> tuple[str, ...]:
        """What runs when the study names none."""

    def keys(self, seed: int, n: int) -> Any:
        """``n`` evaluation keys from the master ``seed`` (shared by every point and policy)."""

    def group(self, shape: Mapping[str, Any], fixed_params: Mapping[str, Any],
              policies: tuple[str, ...], n_seeds: int, devices: int) -> GroupRunner:
        """The runner of one shape group (builds, does not compile)."""

    # Optional: ``inputs(study) -> {name: fingerprint}`` of files the study reads (a saved
    # agent: a rerun over changed inputs is refused); ``padded(study) -> names``: shape fields
    # run in one program padded to the largest value (``params`` gets each point's own).


@dataclass(frozen=True)
class Study:
    """A declared study (see the module doc). ``axes`` is a tuple of ``(field, values)``
    in declaration order; ``chunk`` is points per compiled call (0: all points of a group
    in one call, up to 256); ``seeds`` 0 is the system's default (``Adapter.default_seeds``);
    ``devices`` spreads a chunk's points (not fingerprinted)."""

    system: str
    axes: tuple[tuple[str, tuple], ...] = ()
    zipped: tuple[tuple[str, ...], ...] = ()
    fixed: tuple[tuple[str, Any], ...] = ()
    policies: tuple[str, ...] = ()
    seeds: int = 0
    seed: int = 0
    chunk: int = 0
    devices: int = 1

    def __post_init__(self):
        names = [n for n, _ in self.axes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"Study.axes: {', '.join(dup)} declared more than once")
        for name, values in self.axes:
            if len(values) == 0:
                raise ConfigError(f"Study.axes: {name} has no values")
        for group in self.zipped:
            unknown = [n for n in group if n not in names]
            if unknown:
                raise ConfigError(f"Study.zipped: {', '.join(unknown)} not among the axes ({', '.join(names)})")
            lengths = {n: len(dict(self.axes)[n]) for n in group}
            if len(set(lengths.values())) > 1:
                raise ConfigError(f"Study.zipped: zipped axes need equal lengths, got {lengths}")
        zipped_names = [n for g in self.zipped for n in g]
        if len(zipped_names) != len(set(zipped_names)):
            raise ConfigError(f"Study.zipped: an axis is in more than one zipped group: {self.zipped}")
        clash = sorted(set(names) & {n for n, _ in self.fixed})
        if clash:
            raise ConfigError(f"Study.fixed: {', '.join(clash)} is also an axis")
        for name in ("seeds", "chunk", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ConfigError(f"Study.{name}={v!r}: must be an integer >= 0")

    @property
    def axis_names(self) -> tuple[str, ...]:
        """The varied fields in declaration order."""
        return tuple(n for n, _ in self.axes)


def expand(study: Study) -> list[dict[str, Any]]:
    """The study's points in a fixed order: the Cartesian product over independent axes
    (zipped groups vary together), the first axis slowest."""
    axes = dict(study.axes)
    zipped = {n: g for g in study.zipped for n in g}
    blocks, seen = [], set()
    for name in study.axis_names:
        if name in seen:
            continue
        group = zipped.get(name, (name,))
        seen.update(group)
        blocks.append([dict(zip(group, vals)) for vals in zip(*(axes[n] for n in group))])
    return [{k: v for part in combo for k, v in part.items()} for combo in itertools.product(*blocks)]


# ------------------------------------------------------------------ validation
def _coerce(field_: AxisField, value: Any, where: str) -> Any:
    """``value`` as the field's type, or ``ConfigError`` naming ``where``."""
    tp = field_.type
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
            return value.lower() in ("true", "1")
    elif tp is int:
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return int(value)
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str) and (not field_.choices or value in field_.choices):
            return value
        if isinstance(value, str):
            raise ConfigError(f"{where}: {value!r} is not one of {', '.join(map(repr, field_.choices))}")
    elif tp is float:
        if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    raise ConfigError(f"{where}: {value!r} is not a valid {tp.__name__}")


def _known(adapter: Adapter, name: str, where: str) -> AxisField:
    if name not in adapter.fields:
        raise ConfigError(f"{where}: unknown field {name!r} of {adapter.system}; valid fields: "
                          + ", ".join(sorted(adapter.fields)))
    return adapter.fields[name]


def validate(study: Study, adapter: Adapter) -> Study:
    """``study`` with every value coerced to its field's type; raises ``ConfigError``
    naming the field for an unknown field, a wrong type, a bad policy or a deterministic
    system given seeds. Value ranges are checked by the runners (:func:`points`)."""
    axes = tuple((n, tuple(_coerce(_known(adapter, n, "study axis"), v, f"study axis {n}") for v in vals))
                 for n, vals in study.axes)
    fixed = tuple((n, _coerce(_known(adapter, n, "study fixed value"), v, f"study fixed value {n}"))
                  for n, v in study.fixed)
    seeds = study.seeds or adapter.default_seeds
    if not adapter.stochastic and seeds != 1:
        raise ConfigError(f"Study.seeds={study.seeds}: {adapter.system} solves are deterministic; "
                          "leave seeds out (or 1)")
    return Study(study.system, axes, study.zipped, fixed, tuple(study.policies), seeds, study.seed,
                 study.chunk, study.devices)


def shape_of(point: Mapping[str, Any], study: Study, adapter: Adapter) -> dict[str, Any]:
    """The shape fields of a point (declared value, else fixed, else the field's default)."""
    fixed = dict(study.fixed)
    return {n: point.get(n, fixed.get(n, f.default)) for n, f in adapter.fields.items() if f.kind == "shape"}


def group_policies(study: Study, adapter: Adapter, shape: Mapping[str, Any]) -> tuple[str, ...]:
    """The policies a shape group runs: the declared ones; ``all``: every valid one except
    the adapter's ``trained_policies`` (which train at every point), unless also named."""
    valid = adapter.policies(shape)
    if not study.policies:
        return adapter.default_policies(shape)
    named = [p for p in study.policies if p != ALL]
    bad = [p for p in named if p not in valid]
    if bad:
        where = ", ".join(f"{k}={v}" for k, v in shape.items())
        raise ConfigError(f"Study.policies: {', '.join(map(repr, bad))} not valid for {adapter.system} "
                          f"({where}); valid: {', '.join(valid)}")
    if ALL in study.policies:
        trained = set(getattr(adapter, "trained_policies", ()))
        return tuple(dict.fromkeys([p for p in valid if p not in trained] + named))
    return tuple(dict.fromkeys(named))


# ------------------------------------------------------------------ parsing
def parse_axis(text: str, *, log: bool = False) -> tuple[str, tuple]:
    """``FIELD=v1,v2,...`` or ``FIELD=lo:hi:n`` -> ``(field, values)`` (strings are kept
    for lists so the adapter's type decides; ranges are floats)."""
    name, sep, spec = text.partition("=")
    name = name.strip().replace("-", "_")
    if not sep or not name or not spec.strip():
        raise ConfigError(f"--grid {text!r}: expected FIELD=v1,v2,... or FIELD=lo:hi:n")
    if ":" in spec:
        return name, _range(name, *spec.split(":"), log=log, where=f"--grid {text!r}")
    if log:
        raise ConfigError(f"--log {name}: only a lo:hi:n range can be log-spaced")
    return name, tuple(v.strip() for v in spec.split(",") if v.strip())


def _range(name: str, *parts: Any, log: bool, where: str) -> tuple[float, ...]:
    if len(parts) != 3:
        raise ConfigError(f"{where}: a range is lo:hi:n")
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
    except ValueError:
        raise ConfigError(f"{where}: a range is lo:hi:n with numbers lo, hi and an integer n") from None
    if n < 1 or not (math.isfinite(lo) and math.isfinite(hi)):
        raise ConfigError(f"{where}: need finite lo, hi and n >= 1")
    if log:
        if lo <= 0 or hi <= 0:
            raise ConfigError(f"{where}: a log range needs lo, hi > 0")
        return tuple(float(v) for v in np.geomspace(lo, hi, n))
    return tuple(float(v) for v in np.linspace(lo, hi, n))


def parse_assignment(text: str, option: str) -> tuple[str, str]:
    """``FIELD=value`` -> ``(field, value)``."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise ConfigError(f"{option} {text!r}: expected FIELD=value")
    return name.strip().replace("-", "_"), value.strip()


_STUDY_KEYS = ("system", "axes", "zipped", "fixed", "policies", "seeds", "seed", "chunk", "log")


_RANGE_KEYS = {"lo", "hi", "n", "log"}


def _flat(table: Mapping[str, Any], *, ranges: bool) -> dict[str, Any]:
    """``{"agent": {"lr": v}}`` (TOML's reading of ``agent.lr = v``) as ``{"agent.lr": v}``;
    in ``axes`` a table of range keys is a range, not a nesting."""
    out = {}
    for name, v in table.items():
        if isinstance(v, Mapping) and not (ranges and set(v) & _RANGE_KEYS):
            out.update({f"{name}.{k}": x for k, x in _flat(v, ranges=ranges).items()})
        else:
            out[name] = v
    return out


def study_from_mapping(data: Mapping[str, Any], where: str) -> Study:
    """A :class:`Study` from a parsed TOML/JSON mapping (see the module doc)."""
    unknown = sorted(set(data) - set(_STUDY_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; valid: {', '.join(_STUDY_KEYS)}")
    if "system" not in data:
        raise ConfigError(f"{where}: missing `system`")
    for key in ("axes", "fixed"):
        if not isinstance(data.get(key, {}), Mapping):
            raise ConfigError(f"{where}: `{key}` must be a table of field = value(s), not {data[key]!r}")
    log = set(data.get("log", ()))
    axes = []
    for name, spec in _flat(data.get("axes", {}), ranges=True).items():
        if isinstance(spec, Mapping):
            extra = sorted(set(spec) - _RANGE_KEYS)
            if extra or not {"lo", "hi", "n"} <= set(spec):
                raise ConfigError(f"{where}: axes.{name} must be a list or {{lo, hi, n[, log]}}")
            axes.append((name, _range(name, spec["lo"], spec["hi"], spec["n"],
                                      log=bool(spec.get("log", name in log)), where=f"{where}: axes.{name}")))
        elif isinstance(spec, (list, tuple)):
            axes.append((name, tuple(spec)))
        else:
            axes.append((name, (spec,)))
    try:
        return Study(system=str(data["system"]), axes=tuple(axes),
                     zipped=tuple(tuple(g) for g in data.get("zipped", ())),
                     fixed=tuple(_flat(data.get("fixed", {}), ranges=False).items()),
                     policies=tuple(data.get("policies", ())), seeds=data.get("seeds", 0),
                     seed=data.get("seed", 0), chunk=data.get("chunk", 0))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from None


def load_study(path: str | Path) -> Study:
    """Read a study declaration from a TOML file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except OSError as err:
        raise ConfigError(f"study file {path}: {err.strerror or err}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"study file {path}: not valid TOML ({err})") from None
    return study_from_mapping(data, f"study file {path}")


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf" if v < 0 else "nan")
    if isinstance(v, int):
        return str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _toml_key(name: str) -> str:
    """A bare key where TOML allows one; ``"agent.lr"`` quoted (bare, TOML would nest it)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_value(name)


def study_toml(study: Study) -> str:
    """The declaration as TOML text that :func:`load_study` reads back to an equal study."""
    lines = [f"system = {_toml_value(study.system)}", f"seeds = {study.seeds}", f"seed = {study.seed}",
             f"chunk = {study.chunk}", f"policies = {_toml_value(list(study.policies))}",
             f"zipped = {_toml_value([list(g) for g in study.zipped])}", "", "[axes]"]
    lines += [f"{_toml_key(n)} = {_toml_value(list(v))}" for n, v in study.axes]
    lines += ["", "[fixed]"] + [f"{_toml_key(n)} = {_toml_value(v)}" for n, v in study.fixed]
    return "\n".join(lines) + "\n"


def merge_cli(base: Study | None, system: str, grid: Sequence[str], log: Sequence[str],
              fixed: Sequence[str], policies: Sequence[str] | None, seeds: int | None,
              seed: int | None, chunk: int | None, devices: int) -> Study:
    """The study of ``jaxtwin sweep``: a ``--study`` file (``base``) with the command line's
    axes, fixed values and options added (a repeated axis replaces the file's)."""
    log_set = {n.replace("-", "_") for n in log}
    axes = dict(base.axes) if base else {}
    for text in grid:
        name, values = parse_axis(text, log=text.partition("=")[0].strip().replace("-", "_") in log_set)
        axes[name] = values
    unused = log_set - set(axes)
    if unused:
        raise ConfigError(f"--log {', '.join(sorted(unused))}: not a --grid axis")
    fixed_map = dict(base.fixed) if base else {}
    fixed_map.update(parse_assignment(t, "--set") for t in fixed)
    if base and base.system != system:
        raise ConfigError(f"--study declares system {base.system!r}, the command {system!r}")
    return Study(system, tuple(axes.items()), base.zipped if base else (), tuple(fixed_map.items()),
                 tuple(policies) if policies is not None else (base.policies if base else ()),
                 seeds if seeds is not None else (base.seeds if base else 0),
                 seed if seed is not None else (base.seed if base else 0),
                 chunk if chunk is not None else (base.chunk if base else 0), devices)
