"""Frozen, validated configuration dataclasses and their command-line form.

Configs are frozen dataclasses that check themselves in ``__post_init__`` with
the helpers below, so a bad value fails at construction with the field named.
:func:`add_dataclass_arguments` turns any such config (nested configs become
dotted options, ``--env.T 30``) into argparse options whose help text comes from
``field(metadata={"help": ...})``; :func:`config_from_args` builds the config
back from the parsed flags over a base (defaults or a TOML/JSON file).
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


def _bool(text: str) -> bool:
    low = text.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def add_dataclass_arguments(parser: argparse.ArgumentParser, cls: type, *,
                            prefix: str = "", exclude: typing.Collection[str] = ()) -> None:
    """Add one ``--option`` per field of the dataclass ``cls`` (recursively).

    Supported field types: int, float, str, bool, Literal, Optional of those,
    ``tuple[T, ...]`` (space-separated values) and nested dataclasses
    (``--outer.inner``). Defaults are suppressed so only given flags are set.
    """
    hints = typing.get_type_hints(cls)
    defaults = cls() if all(
        f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        for f in dataclasses.fields(cls)) else None
    for f in dataclasses.fields(cls):
        if f.name in exclude or not f.init:
            continue
        tp, optional = _unwrap_optional(hints[f.name])
        dest = f"{prefix}{f.name}"
        flag = "--" + dest.replace("_", "-")
        helptext = f.metadata.get("help", "")
        default = getattr(defaults, f.name) if defaults is not None else None
        if dataclasses.is_dataclass(tp):
            add_dataclass_arguments(parser, tp, prefix=f"{dest}.")
            continue
        if default is not None and not dataclasses.is_dataclass(default):
            helptext = f"{helptext} (default: {default})".strip()
        kwargs: dict[str, Any] = dict(dest=dest, default=argparse.SUPPRESS, help=helptext)
        origin = get_origin(tp)
        if tp is bool:
            kwargs.update(type=_bool, metavar="{true,false}")
        elif origin is Literal:
            choices = get_args(tp)
            kwargs.update(type=type(choices[0]), choices=choices)
        elif origin is tuple:
            args = get_args(tp)
            kwargs.update(type=_parser_for(args[0], False), nargs="+")
        elif tp in (int, float, str):
            kwargs.update(type=_parser_for(tp, optional))
        else:
            continue  # not expressible as a flag; settable from a config file
        parser.add_argument(flag, **kwargs)


def _set_nested(values: dict[str, Any], dotted: str, value: Any) -> None:
    head, _, rest = dotted.partition(".")
    if rest:
        _set_nested(values.setdefault(head, {}), rest, value)
    else:
        values[head] = value


def build_config(cls: type, values: typing.Mapping[str, Any], base: Any = None) -> Any:
    """``cls`` from nested ``values`` over ``base`` (or the defaults); validates.

    Unknown keys raise :class:`ConfigError` naming them; tuples given as lists
    are converted.
    """
    base = cls() if base is None else base
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown option(s) {sorted(unknown)}; valid: {sorted(names)}")
    hints = typing.get_type_hints(cls)
    updates = {}
    for name, value in values.items():
        tp, _ = _unwrap_optional(hints[name])
        if dataclasses.is_dataclass(tp) and isinstance(value, typing.Mapping):
            updates[name] = build_config(tp, value, getattr(base, name))
        elif get_origin(tp) is tuple and isinstance(value, list):
            updates[name] = tuple(value)
        else:
            updates[name] = value
    return dataclasses.replace(base, **updates)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (``.toml``) or JSON file of option values."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist")
    if path.suffix == ".toml":
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    if path.suffix == ".json":
        return json.loads(path.read_text())
    raise ConfigError(f"config file {path}: use .toml or .json")


def config_from_args(cls: type, namespace: argparse.Namespace, *,
                     config_file: str | Path | None = None,
                     exclude: typing.Collection[str] = ()) -> Any:
    """The config from defaults, then ``config_file``, then the given flags."""
    base = build_config(cls, load_config_file(config_file)) if config_file else cls()
    values: dict[str, Any] = {}
    for dest, value in vars(namespace).items():
        if dest.split(".")[0] in {f.name for f in dataclasses.fields(cls)} and dest not in exclude:
            _set_nested(values, dest, value)
    return build_config(cls, values, base)
