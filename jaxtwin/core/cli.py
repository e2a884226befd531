"""One command-line shell for every system: ``jaxtwin <system> [command] [options]``.

The experiment contract, the same for every system: a frozen, validated
config dataclass and ``run(config, out_dir, *, overwrite=False,
progress=True)``, which writes its results under ``out_dir`` (and its config
through :func:`jaxtwin.core.config.record_config`) and returns what the
command's report prints. A system's ``cli.py`` declares its commands as
:class:`Command` entries of one :class:`System`; this module turns them into
argparse parsers (every config field an option, see
:func:`~jaxtwin.core.config.add_dataclass_arguments`), adds the options every
command shares (``--config``, ``--out``, ``--overwrite/--no-overwrite``,
``--progress/--no-progress``) and the multi-device epilogue, and runs the
command: devices prepared before any JAX work, config built from defaults,
file and flags, one ``error: ...`` line and exit code 2 on a bad config
(exit code 1 on a :class:`~jaxtwin.core.errors.ResultError`).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol

from jaxtwin.core import artifacts, provenance, sharding
from jaxtwin.core.report import print_files
from jaxtwin.core.config import ConfigError, LineFormatter, Parser, add_dataclass_arguments, config_from_args
from jaxtwin.core.errors import ResultError
from jaxtwin.core.interrupt import EXIT_CODE, prompt_interrupt

MULTI_DEVICE_EPILOG = (
    "Multiple devices: --devices 0 spreads {batch} over every device (--devices N: the first N "
    "local ones); results match --devices 1. On a CPU-only host, --devices N splits the CPU into "
    "N devices (0: one per core) so the work uses every core. Across hosts: set "
    "JAX_COORDINATOR_ADDRESS=host:port (of process 0), JAX_NUM_PROCESSES and JAX_PROCESS_ID on "
    "every process and pass --devices 0; jax.distributed starts before any work, every process "
    "gathers the full results and writes the same artifacts (give each its own --out, or share "
    "one: writes are atomic).")


class RunFn(Protocol):
    """The experiment contract: run ``config`` into ``out_dir`` and return what the report shows."""

    def __call__(self, config: Any, out_dir: str | Path, *, overwrite: bool = False,
                 progress: bool = True) -> Any: ...


def first_line(obj: Any) -> str:
    """The first sentence-line of ``obj``'s docstring (or ``obj`` itself when it is a string)."""
    text = obj if isinstance(obj, str) else (getattr(obj, "__doc__", None) or "")
    return text.strip().split("\n\n")[0].replace("\n", " ")


@dataclass(frozen=True)
class Command:
    """One command of a system: its config class, its ``run`` and how the CLI presents it.

    ``select`` names a config field set by a positional argument whose values
    are the keys of ``choices`` (CIVIC's ``experiment coop``, the sync game's
    ``all``); each value's help is its docstring's first line (or the string).
    ``exclude`` hides config fields the command does not use from its options.
    ``out`` is the default output folder (None: ``--out`` is required).
    ``batch`` says what ``--devices`` spreads, for the epilogue. ``report``
    prints a short table of ``run``'s result on stdout.
    """

    config: type
    run: RunFn
    help: str = ""
    select: str | None = None
    choices: Mapping[str, Any] = field(default_factory=dict)
    exclude: tuple[str, ...] = ()
    out: str | None = None
    batch: str = "the batch"
    report: Callable[[Any, Path], None] | None = None

    def __post_init__(self):
        if not dataclasses.is_dataclass(self.config):
            raise TypeError(f"Command.config={self.config!r}: must be a dataclass")
        if (self.select is None) != (not self.choices):
            raise TypeError("Command: select and choices go together")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The command's positional (if any), its config's options and the shared ones."""
        if self.select is not None:
            listed = "\n".join(f"{k}: {first_line(v)}" for k, v in self.choices.items())
            parser.add_argument("_select", metavar=self.select, choices=list(self.choices),
                                help=listed.replace("%", "%%"))
        add_dataclass_arguments(parser, self.config, exclude=(*self.exclude, *([self.select] if self.select else [])))
        shared = parser.add_argument_group("run options")
        shared.add_argument("--config", dest="_config_file", metavar="FILE", default=None,
                            help="TOML (.toml) or JSON (.json) table of options; flags override it")
        if self.out is None:
            shared.add_argument("--out", dest="_out", metavar="DIR", required=True, help="output directory")
        else:
            shared.add_argument("--out", dest="_out", metavar="DIR", default=self.out,
                                help=f"output directory (default: {self.out})")
        shared.add_argument("--overwrite", dest="_overwrite", action=argparse.BooleanOptionalAction,
                            default=False, help="recompute finished pieces instead of skipping them "
                                                "(default: skip)")
        shared.add_argument("--progress", dest="_progress", action=argparse.BooleanOptionalAction,
                            default=True, help="show progress bars (default: on)")

    def usage(self) -> str:
        """``%(prog)s [{choice,...}] [options]``: the option list is in the help, not the usage line."""
        pick = f" {{{','.join(self.choices)}}}" if self.select else ""
        return f"%(prog)s{pick} [options]"

    def epilog(self) -> str | None:
        """The multi-device epilogue when the config has a ``devices`` field."""
        names = {f.name for f in dataclasses.fields(self.config)}
        return MULTI_DEVICE_EPILOG.format(batch=self.batch) if "devices" in names else None


@dataclass(frozen=True)
class System:
    """A system's commands: ``{"": command}`` for a system with a single command
    (``jaxtwin coevodt [options]``), else ``{name: command}`` subcommands
    (``jaxtwin civic train [options]``)."""

    description: str
    commands: Mapping[str, Command]

    def __post_init__(self):
        if not self.commands or ("" in self.commands and len(self.commands) > 1):
            raise TypeError("System.commands: one unnamed command, or named ones only")

    def parser(self, prog: str) -> argparse.ArgumentParser:
        """The argparse parser of ``jaxtwin <system>``."""
        single = self.commands.get("")
        parser = Parser(prog=prog, description=self.description, formatter_class=LineFormatter,
                                         usage=single.usage() if single else None,
                                         epilog=single.epilog() if single else None)
        if single is not None:
            single.add_arguments(parser)
            return parser
        sub = parser.add_subparsers(dest="_command", required=True, metavar="command")
        for name, command in self.commands.items():
            sp = sub.add_parser(name, help=command.help.replace("%", "%%"), description=command.help or None,
                                formatter_class=LineFormatter,
                                usage=command.usage(), epilog=command.epilog())
            command.add_arguments(sp)
        return parser

    def main(self, argv: list[str], prog: str) -> int:
        """Parse ``argv``, run the command and print its report; returns the exit code."""
        ns = self.parser(prog).parse_args(argv)
        name = getattr(ns, "_command", "")
        command = self.commands[name]
        what = " ".join(p for p in (prog, name, getattr(ns, "_select", "")) if p)

        def start():
            sharding.prepare_devices(sharding.cli_devices(ns, ns._config_file))  # before any JAX work
            overrides = {command.select: ns._select} if command.select else {}
            try:
                config = config_from_args(command.config, ns, config_file=ns._config_file, overrides=overrides)
            except TypeError as err:  # a value the dataclass itself cannot take
                raise ConfigError(f"{command.config.__name__}: {err}") from None
            return lambda: command.run(config, ns._out, overwrite=ns._overwrite, progress=ns._progress)

        return run_guarded(what, ns._out, start, command.report)


def run_guarded(what: str, out: str | Path, start: Callable[[], Callable[[], Any]],
                report: Callable[[Any, Path], None] | None = None) -> int:
    """The CLI's one way to run: ``start()`` builds the work (config errors here), ``--out``
    is checked, the work runs with a prompt Ctrl-C, then the report, the files written and
    the time. A :class:`ConfigError` is one ``error:`` line and exit 2, a
    :class:`ResultError` exit 1, an interruption exit 130 with how to resume."""
    def stopped() -> str:
        kept = [f for f in artifacts.written_since_claim(out) if not f.name.endswith("config.json")]
        if not kept:
            return f"interrupted: {what} stopped before any work finished; rerun the same command to start it"
        return (f"interrupted: {what} stopped; the {len(kept)} files of finished work (results, checkpoints) "
                f"in {out} are kept: rerun the same command to resume from them")

    t0 = time.perf_counter()
    try:
        work = start()
        provenance.check_output_dir(out)  # a bad --out fails before any work
        with prompt_interrupt(stopped):
            result = work()
    except KeyboardInterrupt:
        print(stopped(), file=sys.stderr)
        return EXIT_CODE
    except ConfigError as err:
        provenance.release_unused_claim(out)   # bad input leaves no record that refuses the fix
        print(f"error: {err}", file=sys.stderr)
        return 2
    except ResultError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    if report is not None:
        report(result, Path(out))
    print_files(out)
    print(f"{what}: done in {time.perf_counter() - t0:.1f} s; results in {out}")
    return 0
