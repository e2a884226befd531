"""Lazy public namespaces: ``import jaxtwin.civic`` stays cheap, and a name is
imported from its defining module the first time it is used."""
from __future__ import annotations

import importlib
import sys
from typing import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[list[str], Callable, Callable]:
    """``(__all__, __getattr__, __dir__)`` for ``package`` exporting ``exports``.

    ``exports`` maps each public name to the module that defines it (relative
    names such as ``".env"`` resolve against ``package``; a module maps to
    itself when its name and the export agree, e.g. ``"civic": "jaxtwin.civic"``).
    """
    names = sorted(exports)

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(exports[name], package)
        value = module if module.__name__.rsplit(".", 1)[-1] == name and not hasattr(module, name) \
            else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__():
        return names

    return names, __getattr__, __dir__
