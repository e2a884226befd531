"""Errors that end a run with one line for the user instead of a traceback.

:class:`~jaxtwin.core.config.ConfigError` (a bad option, file or folder; exit
code 2) lives with the config helpers; :class:`ResultError` is for a run whose
computation finished but whose results cannot be saved as if they were fine
(an unconverged solve, say): the CLI prints ``error: <message>`` and exits
with code 1. The message names what failed, by how much, and the option that
changes the outcome.
"""
from __future__ import annotations


class ResultError(RuntimeError):
    """A run's results cannot be trusted as they are; the message says why and what to do."""
