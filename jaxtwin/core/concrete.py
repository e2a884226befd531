"""Host-side checks of user-given values that skip themselves inside traced code.

Parameters reach the simulators two ways: concrete (a user's call, an
experiment's setup), where a bad value must be named at once, and traced
(inside ``jit``/``vmap``), where values cannot be read and a check would cost
every compiled step. :func:`check_if_concrete` is the one rule for both: run the
validator when every leaf is concrete, skip it when any leaf is a tracer.
"""
from __future__ import annotations

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


__all__ = ["check_if_concrete", "is_concrete"]
