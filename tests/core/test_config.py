"""Config validation messages and the dataclass <-> CLI mapping."""
import argparse
from dataclasses import dataclass, field
from typing import Literal, Optional

import pytest

from jaxtwin.core.config import (
    ConfigError, add_dataclass_arguments, config_from_args, require_choice, require_int,
    require_positive, require_range,
)


@dataclass(frozen=True)
class Inner:
    rate: float = field(default=0.5, metadata={"help": "a rate"})

    def __post_init__(self):
        require_range(self, "rate", 0.0, 1.0)


@dataclass(frozen=True)
class Outer:
    runs: int = field(default=3, metadata={"help": "number of runs"})
    mode: Literal["a", "b"] = "a"
    flag: bool = False
    weights: tuple[float, ...] = (1.0, 2.0)
    limit: Optional[float] = None
    inner: Inner = Inner()

    def __post_init__(self):
        require_int(self, "runs", minimum=1)
        require_positive(self, "weights")
        require_choice(self, "mode", ("a", "b"))


def _parse(argv):
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Outer)
    p.add_argument("--config")
    return p, p.parse_args(argv)


def test_flags_build_a_validated_config(tmp_path):
    _, ns = _parse(["--runs", "5", "--mode", "b", "--flag", "--weights", "3", "4",
                    "--limit", "2.5", "--inner.rate", "0.25"])
    cfg = config_from_args(Outer, ns, exclude=("config",))
    assert cfg == Outer(runs=5, mode="b", flag=True, weights=(3.0, 4.0), limit=2.5, inner=Inner(0.25))


def test_config_file_then_flags_override(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('runs = 7\nweights = [5.0]\n[inner]\nrate = 0.1\n')
    _, ns = _parse(["--runs", "2"])
    cfg = config_from_args(Outer, ns, config_file=f, exclude=("config",))
    assert cfg.runs == 2 and cfg.weights == (5.0,) and cfg.inner.rate == 0.1


def test_bad_values_name_the_field(tmp_path):
    _, ns = _parse(["--runs", "0"])
    with pytest.raises(ConfigError, match=r"Outer.runs=0: must be >= 1"):
        config_from_args(Outer, ns, exclude=("config",))
    _, ns = _parse(["--inner.rate", "2"])
    with pytest.raises(ConfigError, match=r"Inner.rate=2.0"):
        config_from_args(Outer, ns, exclude=("config",))
    with pytest.raises(ConfigError, match=r"Outer.weights"):
        Outer(weights=(1.0, float("nan")))
    f = tmp_path / "bad.toml"
    f.write_text("nope = 1\n")
    with pytest.raises(ConfigError, match="unknown option"):
        config_from_args(Outer, argparse.Namespace(), config_file=f)


def test_help_lists_fields_with_defaults():
    p, _ = _parse([])
    text = p.format_help()
    assert "--runs" in text and "number of runs (default: 3)" in text and "--inner.rate" in text
