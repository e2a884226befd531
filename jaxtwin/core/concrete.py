"""Host-side checks of user-given values that skip themselves inside traced code.

Parameters reach the simulators two ways: concrete (a user's call, an
experiment's setup), where a bad value must be named at once, and traced
(inside ``jit``/``vmap``), where values cannot be read and a check would cost
every compiled step. :func:`check_if_concrete` is the one rule for both: run the
validator when every leaf is concrete, skip it when any leaf is a tracer.
"""
from __future__ import annotations

import functools
from typing import Callable, TypeVar

import jax

T = TypeVar("T")


def is_concrete(tree) -> bool:
    """Whether no leaf of the pytree ``tree`` is a JAX tracer (its values can be read on the host)."""
    return not any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def check_if_concrete(validate: Callable[..., object], value: T, *args) -> T:
    """``validate(value, *args)`` when ``value`` is concrete (:func:`is_concrete`), nothing
    when it is traced; returns ``value``. The validator raises
    :class:`~jaxtwin.core.config.ConfigError` naming the bad field."""
    if is_concrete(value):
        validate(value, *args)
    return value


def compiled_when_concrete(fn: Callable, *, static_argnames: tuple[str, ...] = ()) -> Callable:
    """``fn`` run as one compiled program when every array argument is concrete (a user's
    call, which op by op would compile each primitive on its own: seconds for a training
    step's worth of them) and inline when any is traced (inside another program, which
    compiles it as part of itself, unchanged). ``static_argnames``: hashable arguments
    (configs) that fix the program."""
    jitted = jax.jit(fn, static_argnames=static_argnames)

    @functools.wraps(fn)
    def call(*args, **kwargs):
        dynamic = (args, {k: v for k, v in kwargs.items() if k not in static_argnames})
        return jitted(*args, **kwargs) if is_concrete(dynamic) else fn(*args, **kwargs)
    return call


__all__ = ["check_if_concrete", "compiled_when_concrete", "is_concrete"]
