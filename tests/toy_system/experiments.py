"""Toy system: episodes of coin flips, every episode in one vmapped, jitted program.

The experiment contract of every jaxtwin system: a frozen, validated config
dataclass (nested configs become ``--coin.p``-style options) and
``run(config, out_dir, *, overwrite, progress)`` writing tidy CSVs and
``config.json`` under ``out_dir``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import jax
import jax.numpy as jnp

from jaxtwin.core import artifacts, sharding
from jaxtwin.core.config import record_config, require_int, require_range


@dataclass(frozen=True)
class CoinConfig:
    """The coin: its probability of heads."""

    p: float = field(default=0.5, metadata={"help": "probability of heads"})

    def __post_init__(self):
        require_range(self, "p", 0.0, 1.0)


@dataclass(frozen=True)
class ToyConfig:
    """Options of the toy experiment."""

    episodes: int = field(default=8, metadata={"help": "episodes (one row of results.csv each)"})
    flips: int = field(default=10, metadata={"help": "coin flips per episode"})
    antithetic: bool = field(default=False, metadata={"help": "use 1 - u for every uniform draw u"})
    seed: int = field(default=0, metadata={"help": "master seed"})
    devices: int = field(default=1, metadata={"help": sharding.DEVICES_HELP})
    coin: CoinConfig = field(default_factory=CoinConfig)

    def __post_init__(self):
        require_int(self, "episodes", "flips", minimum=1)
        require_int(self, "seed", minimum=0)
        sharding.require_devices(self, "devices")


def heads(key: jax.Array, p: float, flips: int, antithetic: bool) -> jax.Array:
    """Number of heads in ``flips`` flips of a coin with P(heads) = ``p`` (pure, jittable)."""
    u = jax.random.uniform(key, (flips,))
    u = 1.0 - u if antithetic else u
    return jnp.sum(u < p)


def run(config: ToyConfig, out_dir, *, overwrite: bool = False, progress: bool = True) -> list[dict]:
    """Every episode in one program; ``results.csv`` (``episode, heads``) and ``config.json``.
    A finished run is skipped unless ``overwrite``."""
    out = Path(out_dir)
    record_config(out, config, overwrite=overwrite)  # first: refuses a folder of other options
    done = out / "results.csv"
    if done.exists() and not overwrite:
        return artifacts.read_csv(done)
    keys = jax.random.split(jax.random.PRNGKey(config.seed), config.episodes)
    one = jax.vmap(lambda k: heads(k, config.coin.p, config.flips, config.antithetic))
    counts = sharding.sharded_call(jax.jit(one), config.devices)(keys)
    rows = [{"episode": i, "heads": int(c)} for i, c in enumerate(counts)]
    artifacts.write_csv(done, rows)
    return rows
