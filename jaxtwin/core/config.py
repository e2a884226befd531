"""Frozen, validated configuration dataclasses and their command-line form.

Configs are frozen dataclasses that check themselves in ``__post_init__`` with
the helpers below, so a bad value fails at construction with the field named.
:func:`add_dataclass_arguments` turns any such config (nested configs become
dotted options, ``--env.T 30``; booleans ``--flag/--no-flag``) into argparse
options whose help text comes from ``field(metadata={"help": ...})``;
:func:`config_from_args` builds the config back from the parsed flags over a
base (defaults or a TOML/JSON file, :func:`load_config_file`), and
:func:`record_config` claims the output folder and writes the ``config.json``
every run leaves beside its results. The command-line shell built on these is :mod:`jaxtwin.core.cli`.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the field and value."""


def _fail(obj: Any, name: str, msg: str) -> None:
    raise ConfigError(f"{type(obj).__name__}.{name}={getattr(obj, name)!r}: {msg}")


def require_finite(obj: Any, *names: str) -> None:
    """Each named field is a finite real number (or a sequence of them)."""
    for name in names:
        vals = getattr(obj, name)
        for v in (vals if isinstance(vals, (tuple, list)) else (vals,)):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                _fail(obj, name, "must be a finite number")


def require_positive(obj: Any, *names: str, allow_zero: bool = False) -> None:
    """Each named field is finite and > 0 (>= 0 with ``allow_zero``)."""
    require_finite(obj, *names)
    for name in names:
        vals = getattr(obj, name)
        for v in (vals if isinstance(vals, (tuple, list)) else (vals,)):
            if v < 0 or (v == 0 and not allow_zero):
                _fail(obj, name, "must be >= 0" if allow_zero else "must be > 0")


def require_int(obj: Any, *names: str, minimum: int | None = None) -> None:
    """Each named field is an int (not bool), optionally ``>= minimum``."""
    for name in names:
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, int):
            _fail(obj, name, "must be an integer")
        if minimum is not None and v < minimum:
            _fail(obj, name, f"must be >= {minimum}")


def require_range(obj: Any, name: str, lo: float, hi: float, *,
                  lo_open: bool = False, hi_open: bool = False) -> None:
    """Field ``name`` lies in the interval from ``lo`` to ``hi`` (closed unless told)."""
    require_finite(obj, name)
    vals = getattr(obj, name)
    for v in (vals if isinstance(vals, (tuple, list)) else (vals,)):
        bad_lo = v <= lo if lo_open else v < lo
        bad_hi = v >= hi if hi_open else v > hi
        if bad_lo or bad_hi:
            _fail(obj, name, f"must be in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}")


def require_choice(obj: Any, name: str, choices: typing.Iterable[Any]) -> None:
    """Field ``name`` is one of ``choices``."""
    choices = tuple(choices)
    if getattr(obj, name) not in choices:
        _fail(obj, name, f"must be one of {choices}")


# ---------------------------------------------------------------- CLI mapping
def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _parser_for(tp: Any, optional: bool):
    def parse(text: str):
        if optional and text.lower() in ("none", "null"):
            return None
        return tp(text)
    parse.__name__ = getattr(tp, "__name__", "value")
    return parse


def _defaults(cls: type) -> Any:
    """``cls()`` when every field has a default (for the help text), else None."""
    if all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
           for f in dataclasses.fields(cls) if f.init):
        return cls()
    return None


def _summary(cls: type) -> str:
    return (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")


class LineFormatter(argparse.HelpFormatter):
    """Wraps help text as argparse does, but keeps its line breaks (one choice per line)."""

    def _split_lines(self, text, width):
        wrap = super()._split_lines
        return [line for part in text.splitlines() for line in wrap(part, width)]


class Parser(argparse.ArgumentParser):
    """argparse with errors in the one-line form of every other error:
    ``error: jaxtwin civic train: argument --horizon: invalid int value: 'x' (see ... --help)``."""

    def error(self, message: str):
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, *,
                            prefix: str = "", exclude: typing.Collection[str] = (),
                            group: Any = None) -> None:
    """Add one ``--option`` per field of the dataclass ``cls`` (recursively).

    Supported field types: int, float, str, bool (``--flag/--no-flag``),
    Literal, Optional of those (``none`` gives None), ``tuple[T, ...]``
    (space-separated values) and nested dataclasses (``--outer.inner``, listed
    in a help section of their own). Defaults are suppressed so only given
    flags are set; other field types are left to config files.
    """
    hints = typing.get_type_hints(cls)
    defaults = _defaults(cls)
    target = parser if group is None else group
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.init:
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        dest = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(tp):
            sub = parser.add_argument_group(f"{tp.__name__} (--{dest.replace('_', '-')}.*)", _summary(tp))
            add_dataclass_arguments(parser, tp, prefix=f"{dest}.", group=sub)
            continue
        helptext = f.metadata.get("help", "")
        default = getattr(defaults, f.name) if defaults is not None else None
        if default is not None:
            shown = " ".join(map(str, default)) if isinstance(default, tuple) else default
            helptext = f"{helptext} (default: {shown})".strip()
        kwargs: dict[str, Any] = dict(dest=dest, default=argparse.SUPPRESS, help=helptext.replace("%", "%%"))
        origin = get_origin(tp)
        if tp is bool:
            kwargs.update(action=argparse.BooleanOptionalAction)
        elif origin is Literal:
            choices = get_args(tp)
            kwargs.update(type=type(choices[0]), choices=choices)
        elif origin is tuple and get_args(tp)[-1] is Ellipsis and get_args(tp)[0] in (int, float, str):
            elem = get_args(tp)[0]
            kwargs.update(type=_parser_for(elem, False), nargs="+", metavar=elem.__name__.upper())
        elif tp in (int, float, str):
            kwargs.update(type=_parser_for(tp, optional), metavar=tp.__name__.upper())
        else:
            continue  # not expressible as a flag; settable from a config file
        target.add_argument("--" + dest.replace("_", "-"), **kwargs)


def _set_nested(values: dict[str, Any], dotted: str, value: Any) -> None:
    head, _, rest = dotted.partition(".")
    if rest:
        _set_nested(values.setdefault(head, {}), rest, value)
    else:
        values[head] = value


def _scalar(where: str, tp: Any, value: Any) -> Any:
    """``value`` checked against the scalar field type ``tp`` (ints widen to float)."""
    kinds = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    ok = {bool: lambda v: isinstance(v, bool),
          int: lambda v: isinstance(v, int) and not isinstance(v, bool),
          float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
          str: lambda v: isinstance(v, str)}
    if tp in ok:
        if not ok[tp](value):
            raise ConfigError(f"{where}={value!r}: must be {kinds[tp]}")
        return float(value) if tp is float else value
    if get_origin(tp) is Literal and value not in get_args(tp):
        raise ConfigError(f"{where}={value!r}: must be one of {get_args(tp)}")
    return value


def _field_value(cls: type, name: str, hint: Any, value: Any, base_value: Any) -> Any:
    """A field's value from nested ``values`` (a table, a list or a scalar), type-checked."""
    where = f"{cls.__name__}.{name}"
    tp, optional = _unwrap_optional(hint)
    if value is None and optional:
        return None
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, typing.Mapping):
            raise ConfigError(f"{where}={value!r}: must be a table of {tp.__name__} options")
        return build_config(tp, value, base_value)
    if get_origin(tp) is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}={value!r}: must be a list")
        args = get_args(tp)
        if args[-1] is Ellipsis:
            args = args[:1] * len(value)
        elif len(args) != len(value):
            raise ConfigError(f"{where}={value!r}: must have {len(args)} entries")
        return tuple(_scalar(where, a, v) for a, v in zip(args, value))
    return _scalar(where, tp, value)


def build_config(cls: type, values: typing.Mapping[str, Any], base: Any = None) -> Any:
    """``cls`` from nested ``values`` over ``base`` (or the defaults); validates.

    Unknown keys, a scalar where a table belongs (``env = 3``), a string where
    a number belongs and so on raise :class:`ConfigError` naming the field;
    lists become tuples and integers given for float fields become floats.
    """
    base = cls() if base is None else base
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown option(s) {sorted(unknown)}; valid: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    updates = {name: _field_value(cls, name, hints[name], value, getattr(base, name))
               for name, value in values.items()}
    return dataclasses.replace(base, **updates)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON (``.json``) table of option values.

    Every problem with the file (missing, unreadable, not parseable, not a
    table at the top) is a one-line :class:`ConfigError` naming the file and,
    where the parser gives one, the line.
    """
    path = Path(path)
    if path.suffix not in (".toml", ".json"):
        raise ConfigError(f"config file {path}: use a .toml or .json file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        reason = "does not exist" if isinstance(err, FileNotFoundError) else f"cannot be read ({err})"
        raise ConfigError(f"config file {path} {reason}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path}: invalid TOML: {err}") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"config file {path}: invalid JSON: {err.msg} (line {err.lineno}, "
                          f"column {err.colno})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: must hold a table of options at the top, "
                          f"not a {type(data).__name__}")
    return data


def config_from_args(cls: type, namespace: argparse.Namespace, *,
                     config_file: str | Path | None = None,
                     exclude: typing.Collection[str] = (),
                     overrides: typing.Mapping[str, Any] | None = None) -> Any:
    """The config from defaults, then ``config_file``, then the given flags, then ``overrides``.

    Namespace entries that are not fields of ``cls`` (``--out`` and the like)
    and the ``exclude``d ones are ignored; errors in the file name it.
    """
    base = None
    if config_file:
        try:
            base = build_config(cls, load_config_file(config_file))
        except ConfigError as err:
            msg = str(err)
            raise ConfigError(msg if msg.startswith("config file") else f"config file {config_file}: {msg}") from None
    names = {f.name for f in dataclasses.fields(cls)}
    values: dict[str, Any] = {}
    for dest, value in vars(namespace).items():
        if dest.split(".")[0] in names and dest not in exclude:
            _set_nested(values, dest, value)
    for dest, value in (overrides or {}).items():
        _set_nested(values, dest, value)
    return build_config(cls, values, base)


def record_config(out_dir: str | Path, config: Any, *, name: str = "config.json",
                  overwrite: bool = False, ignore: typing.Collection[str] = (),
                  inputs: dict[str, str] | None = None, **extra: Any) -> Path:
    """Claim ``out_dir`` for ``config`` and write ``out_dir/name``: the config, ``extra``
    fields, the environment (package versions, devices) and the fingerprint of the config
    and versions. Call it before any computation: a folder that holds results of other
    options is refused (or, with ``overwrite``, emptied of them) here, so nothing is
    computed in vain or saved under the wrong label. ``ignore`` names config fields left
    out of the fingerprint (with the fields under them), ``inputs`` adds the fingerprints
    of what the run reads (see :mod:`jaxtwin.core.provenance`). Every experiment records
    its config through this one function, so the file has one layout for every system."""
    from jaxtwin.core import provenance

    return provenance.claim_output(out_dir, config, name=name, overwrite=overwrite, ignore=ignore,
                                   inputs=inputs, extra=extra)
