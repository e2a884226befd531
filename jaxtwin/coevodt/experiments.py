"""Co-EvoDT experiment (spec coevodt §4-5): every run of a mode in one vmapped,
jitted program (split into one host call per evolution group for progress and
checkpoints), then per-run CSVs, cross-run aggregates with paired tests and
bootstrap CIs, the three-mode ablation, an optional +-30% sensitivity sweep on
the action coefficients, and the figures.

Layout under ``out_dir``: ``config.json``, ``ablation.csv``, optional
``sensitivity.csv``/``sensitivity.png`` with the study engine's files of that
sweep under ``sensitivity/`` (:mod:`jaxtwin.coevodt.sensitivity`), and per mode ``<MODE>/``:

- ``summary_run{r}.csv``: ``scenario,qoe_mean,qoe_std,latency_mean,latency_std,cost_mean,cost_std``
  (rows ``baseline``, ``trained``; std over episodes of the per-episode means);
- ``per_episode_metrics_run{r}.csv``: one row per training episode;
- ``lstm_comparison_rmse_run{r}.csv`` (not NoPred): ``forecaster,rmse`` on the holdout (with the oracle floor);
- ``population_scores_run{r}.csv``: fitness of every member at each evolution and at the end;
- ``aggregate_results_mode_{MODE}.csv``: per metric across runs (mean, std, paired t-test,
  bootstrap CI of trained - baseline, relative change %);
- ``returns.png``, ``baseline_vs_trained.png``, ``lstm_holdout.png`` (not NoPred),
  ``greedy_episode.png`` (figures from all runs, or run 0 for single-episode views).

Run ``r`` uses seed ``seed + r`` (run 0 uses the seed's SEED=42); all modes share
the run seeds so modes are compared pairwise.

``devices`` spreads the runs of a mode (and the scenario x run batch of the
sensitivity sweep) over devices (:mod:`jaxtwin.core.sharding`): the same jitted
programs run with the run axis sharded, so the results equal the single-device
ones (see ``tests/test_multidevice.py``). Checkpoints hold the
gathered, unpadded carry, so a run can resume under a different device count.
"""
from __future__ import annotations

import dataclasses
import functools
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from flax import serialization

from jaxtwin.core import artifacts, sharding, stats
from jaxtwin.core.config import ConfigError, record_config, require_choice, require_int, require_range
from jaxtwin.core.progress import run_chunks
from jaxtwin.coevodt import figures
from jaxtwin.coevodt.env import AGENTS, EnvParams, validate_params
from jaxtwin.coevodt.protocol import MODES, Protocol, ProtocolConfig, convergence
from jaxtwin.coevodt.forecast import FORECASTERS
from jaxtwin.coevodt.sizes import require_run_fits

METRICS = ("qoe", "latency", "cost")
SUMMARY_COLUMNS = ("scenario", "qoe_mean", "qoe_std", "latency_mean", "latency_std", "cost_mean", "cost_std")
AGGREGATE_COLUMNS = ("metric", "baseline_mean", "baseline_std", "trained_mean", "trained_std",
                     "diff_mean", "diff_ci_low", "diff_ci_high", "t", "p_value",
                     "relative_change_pct", "converged_runs", "n_runs")
ABLATION_COLUMNS = ("a", "b", "metric", "mean_a", "std_a", "mean_b", "std_b", "diff_mean",
                    "diff_ci_low", "diff_ci_high", "t", "p_value", "relative_change_pct", "n_runs")


@dataclass(frozen=True)
class CoEvoDTConfig(ProtocolConfig):
    """The Co-EvoDT experiment: the protocol's hyperparameters plus runs, modes and outputs."""

    mode: Literal["all", "NoPred", "PretrainOnly", "Online"] = field(
        default="all", metadata={"help": "forecast mode(s) to run"})
    runs: int = field(default=10, metadata={"help": "independent runs per mode (N_RUNS)"})
    seed: int = field(default=42, metadata={"help": "BASE_SEED; run r uses seed+r"})
    env: EnvParams = field(default_factory=EnvParams)
    sensitivity: bool = field(default=False, metadata={"help": "also run the +-delta sweep on alpha_p, alpha_i, alpha_u"})
    sensitivity_delta: float = field(default=0.3, metadata={"help": "relative perturbation of the sweep"})
    sensitivity_mode: Literal["NoPred", "PretrainOnly", "Online"] = field(
        default="Online", metadata={"help": "mode trained under each perturbed environment"})
    sensitivity_runs: int = field(default=5, metadata={"help": "runs per sensitivity scenario"})
    bootstrap_resamples: int = field(default=10_000, metadata={"help": "bootstrap resamples for CIs"})
    smooth_window: int = field(default=10, metadata={"help": "moving-average window of the return plot"})
    prng_impl: Literal["unsafe_rbg", "rbg", "threefry2x32"] = field(
        default="unsafe_rbg", metadata={"help": "PRNG implementation (rbg variants compile ~3x faster on CPU)"})
    devices: int = field(default=1, metadata={"help": sharding.DEVICES_HELP})

    def __post_init__(self):
        super().__post_init__()
        require_choice(self, "mode", ("all",) + MODES)
        require_int(self, "runs", "sensitivity_runs", "bootstrap_resamples", "smooth_window", minimum=1)
        require_int(self, "seed", minimum=0)
        require_range(self, "sensitivity_delta", 0.0, 1.0, lo_open=True, hi_open=True)
        sharding.require_devices(self, "devices")
        try:
            validate_params(self.env)
        except ConfigError as err:
            raise ConfigError(f"CoEvoDTConfig.env: {err}") from None

    def protocol(self) -> ProtocolConfig:
        """Just the protocol's fields (the static part of the jitted programs)."""
        names = [f.name for f in dataclasses.fields(ProtocolConfig)]
        return ProtocolConfig(**{n: getattr(self, n) for n in names})

    def modes(self) -> tuple[str, ...]:
        """Modes this config runs."""
        return MODES if self.mode == "all" else (self.mode,)


# ----------------------------------------------------------------- jitted work
def run_keys(cfg: CoEvoDTConfig, n: int | None = None) -> jax.Array:
    """One key per run, from ``seed + r``."""
    n = cfg.runs if n is None else n
    return jnp.stack([jax.random.key(cfg.seed + r, impl=cfg.prng_impl) for r in range(n)])


@functools.lru_cache(maxsize=16)
def _compiled(protocol_cfg: ProtocolConfig, mode: str):
    """Jitted, run-vmapped ``(setup, group, finish)`` of one mode (env params shared by all runs).

    Cached per (config, mode) so reruns in one process reuse compilations;
    ``setup`` and ``finish`` depend only on whether a forecaster exists, so
    PretrainOnly and Online share them (one compile fewer each).
    """
    p = Protocol(protocol_cfg, mode)
    if mode == "Online":
        setup, _, finish = _compiled(protocol_cfg, "PretrainOnly")
    else:
        setup = jax.jit(jax.vmap(p.setup, in_axes=(0, None)))
        finish = jax.jit(jax.vmap(p.finish, in_axes=(0, None)))

    def group(carry, g, env_params):
        carry, out = jax.vmap(p.train_group, in_axes=(0, None, None))(carry, g, env_params)
        return carry, jax.tree.map(lambda x: jnp.moveaxis(x, 0, 1), out)  # episode axis first

    return setup, jax.jit(group), finish


@functools.lru_cache(maxsize=16)
def _compiled_sharded(protocol_cfg: ProtocolConfig, mode: str, mesh):
    """:func:`_compiled` with outputs pinned to the run sharding of ``mesh`` (same programs;
    Online reuses PretrainOnly's wrapped setup and finish, as :func:`_compiled` does)."""
    setup, group, finish = _compiled(protocol_cfg, mode)
    group = sharding.sharded_jit(group, mesh, (0, 1))  # (carry [run, ...], metrics [episode, run, ...])
    if mode == "Online":
        setup, _, finish = _compiled_sharded(protocol_cfg, "PretrainOnly", mesh)
        return setup, group, finish
    return sharding.sharded_jit(setup, mesh, 0), group, sharding.sharded_jit(finish, mesh, 0)


def _key_leaf(x) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _save_checkpoint(path: Path, next_group: int, carry, report, train) -> None:
    """Atomically store the carry after a group, the setup report and the metrics so far."""
    host = jax.tree.map(lambda x: np.asarray(jax.random.key_data(x) if _key_leaf(x) else x),
                        {"carry": serialization.to_state_dict(carry), "report": report, "train": train})
    host["next_group"] = next_group
    artifacts._atomic_write_bytes(path, serialization.msgpack_serialize(host))


def _load_checkpoint(path: Path, carry_template, impl: str):
    state = serialization.msgpack_restore(path.read_bytes())
    carry_state = jax.tree.map(
        lambda t, x: jax.random.wrap_key_data(jnp.asarray(x), impl=impl) if _key_leaf(t) else jnp.asarray(x),
        serialization.to_state_dict(carry_template), state["carry"])
    carry = serialization.from_state_dict(carry_template, carry_state)
    return int(state["next_group"]), carry, state["report"], state["train"]


def train_mode(cfg: CoEvoDTConfig, mode: str, *, progress: bool = True,
               checkpoint: Path | None = None, setup_cache: dict | None = None) -> dict:
    """All runs of one mode; returns host arrays with a leading run axis.

    With ``checkpoint``, the carry is saved after every group and an existing
    checkpoint is resumed from. ``setup_cache`` shares the setup between
    PretrainOnly and Online: same run keys, so the same baseline and the same
    pretrained LSTM (computed once instead of twice).
    """
    setup, group, finish = _compiled(cfg.protocol(), mode)
    keys = run_keys(cfg)
    n = cfg.runs
    # devices > 1: the carry lives padded and run-sharded on the mesh between groups;
    # only what reaches the host (metrics, checkpoints, results) is trimmed and gathered
    mesh = None if cfg.devices == 1 else sharding.batch_mesh(cfg.devices)
    place = (lambda t: t) if mesh is None else (lambda t: sharding.shard_batch(t, mesh)[0])
    if mesh is not None:
        setup, group, finish = _compiled_sharded(cfg.protocol(), mode, mesh)
    env_params = cfg.env if mesh is None else sharding.replicate(cfg.env, mesh)
    start, train_parts = 0, None
    if checkpoint is not None and checkpoint.exists():
        template = jax.eval_shape(_compiled(cfg.protocol(), mode)[0], keys, cfg.env)[0]
        start, carry, report, train_parts = _load_checkpoint(checkpoint, template, cfg.prng_impl)
        carry = place(carry)
    else:
        kind = "forecast" if mode != "NoPred" else "plain"
        if setup_cache is not None and kind in setup_cache:
            carry, report = setup_cache[kind]
        else:
            carry, report = setup(place(keys), env_params)
            report = sharding.to_host(report, n)
            if setup_cache is not None:
                setup_cache[kind] = (carry, report)

    done = {"train": train_parts}

    def on_chunk(i, carry, metrics):
        metrics = sharding.to_host(metrics, n, axis=1)  # [episode, run, ...]
        prev = done["train"]
        done["train"] = metrics if prev is None else jax.tree.map(
            lambda a, b: np.concatenate([a, b]), prev, metrics)
        if checkpoint is not None:
            _save_checkpoint(checkpoint, i + 1, sharding.to_host(carry, n), report, done["train"])

    carry, _ = run_chunks(lambda c, g: group(c, g, env_params), carry, cfg.n_groups,
                          desc=f"Co-EvoDT {mode}", progress=progress,
                          on_chunk=on_chunk, start=start)
    final = sharding.to_host(finish(carry, env_params), n)
    train = jax.tree.map(lambda x: np.moveaxis(np.asarray(x), 0, 1), done["train"])  # run axis first
    delta, converged = convergence(train["mean_reward"], cfg.convergence_window, cfg.convergence_tol)
    return dict(report, train=train, convergence_delta=np.asarray(delta),
                converged=np.asarray(converged), **final)


# ----------------------------------------------------------------- artifacts
def _mode_files(cfg: CoEvoDTConfig, mode_dir: Path, mode: str) -> list[Path]:
    names = []
    for r in range(cfg.runs):
        names += [f"summary_run{r}.csv", f"per_episode_metrics_run{r}.csv", f"population_scores_run{r}.csv"]
        if mode != "NoPred":
            names.append(f"lstm_comparison_rmse_run{r}.csv")
    names += ["returns.png", "baseline_vs_trained.png", "greedy_episode.png"]
    if mode != "NoPred":
        names.append("lstm_holdout.png")
    names.append(f"aggregate_results_mode_{mode}.csv")  # written last: marks the mode finished
    return [mode_dir / n for n in names]


def _summary_rows(res: dict, r: int) -> list[dict]:
    rows = []
    for scenario in ("baseline", "trained"):
        row = {"scenario": scenario}
        for m in METRICS:
            x = res[scenario][m][r]
            row[f"{m}_mean"], row[f"{m}_std"] = float(x.mean()), float(x.std(ddof=1))
        rows.append(row)
    return rows


def write_run_artifacts(cfg: CoEvoDTConfig, res: dict, mode: str, mode_dir: Path) -> None:
    """The four per-run CSVs of every run."""
    tr = res["train"]
    for r in range(cfg.runs):
        artifacts.write_csv(mode_dir / f"summary_run{r}.csv", _summary_rows(res, r), SUMMARY_COLUMNS)
        cols = {"episode": np.arange(1, cfg.episodes + 1)}
        cols.update({m: tr[m][r] for m in METRICS})
        cols["mean_reward"] = tr["mean_reward"][r]
        cols.update({f"return_{a}": tr["episode_return"][r, :, i] for i, a in enumerate(AGENTS)})
        cols.update({f"member_{a}": tr["member"][r, :, i] for i, a in enumerate(AGENTS)})
        artifacts.write_columns_csv(mode_dir / f"per_episode_metrics_run{r}.csv", cols)
        rows = []
        for g in range(cfg.n_groups - 1):
            for i, a in enumerate(AGENTS):
                for j in range(cfg.pop_size):
                    rows.append(dict(stage="evolution", episode=(g + 1) * cfg.evolve_freq, agent=a,
                                     member=j, score=float(tr["evolution_scores"][r, g, i, j]), best=False))
        for i, a in enumerate(AGENTS):
            for j in range(cfg.pop_size):
                rows.append(dict(stage="final", episode=cfg.episodes, agent=a, member=j,
                                 score=float(res["final_scores"][r, i, j]), best=bool(res["best"][r, i] == j)))
        artifacts.write_csv(mode_dir / f"population_scores_run{r}.csv", rows,
                            ("stage", "episode", "agent", "member", "score", "best"))
        if mode != "NoPred":
            artifacts.write_csv(mode_dir / f"lstm_comparison_rmse_run{r}.csv",
                                [{"forecaster": f, "rmse": float(res["forecast"]["rmse"][r, k])}
                                 for k, f in enumerate(FORECASTERS)], ("forecaster", "rmse"))


def read_run_means(mode_dir: Path, runs: int) -> dict[str, dict[str, np.ndarray]]:
    """Per-run ``{scenario: {metric: f[runs]}}`` back from the summary CSVs (for resumed modes)."""
    out = {s: {m: np.zeros(runs) for m in METRICS} for s in ("baseline", "trained")}
    for r in range(runs):
        for row in artifacts.read_csv(mode_dir / f"summary_run{r}.csv"):
            for m in METRICS:
                out[row["scenario"]][m][r] = float(row[f"{m}_mean"])
    return out


def compare(a: np.ndarray, b: np.ndarray, resamples: int) -> dict:
    """Paired statistics of ``a - b`` across runs."""
    d = np.asarray(a, float) - np.asarray(b, float)
    ma, mb = stats.mean_std(a), stats.mean_std(b)
    if d.size >= 2:
        tt = stats.paired_ttest(a, b)
        t, p = tt.t, tt.p_value
    else:
        t = p = float("nan")
    lo, hi = stats.bootstrap_ci(d, n_resamples=resamples)
    return dict(mean_a=ma.mean, std_a=ma.std, mean_b=mb.mean, std_b=mb.std, diff_mean=float(d.mean()),
                diff_ci_low=lo, diff_ci_high=hi, t=t, p_value=p,
                relative_change_pct=100 * stats.relative_change(ma.mean, mb.mean), n_runs=int(d.size))


def write_aggregate(cfg: CoEvoDTConfig, means: dict, converged: np.ndarray, mode: str, mode_dir: Path) -> list[dict]:
    """``aggregate_results_mode_{MODE}.csv``: trained vs baseline per metric across runs."""
    rows = []
    for m in METRICS:
        c = compare(means["trained"][m], means["baseline"][m], cfg.bootstrap_resamples)
        rows.append(dict(metric=m, baseline_mean=c["mean_b"], baseline_std=c["std_b"],
                         trained_mean=c["mean_a"], trained_std=c["std_a"], diff_mean=c["diff_mean"],
                         diff_ci_low=c["diff_ci_low"], diff_ci_high=c["diff_ci_high"], t=c["t"],
                         p_value=c["p_value"], relative_change_pct=c["relative_change_pct"],
                         converged_runs=int(np.sum(converged)), n_runs=c["n_runs"]))
    artifacts.write_csv(mode_dir / f"aggregate_results_mode_{mode}.csv", rows, AGGREGATE_COLUMNS)
    return rows


def write_ablation(cfg: CoEvoDTConfig, out_dir: Path, modes: tuple[str, ...]) -> Path:
    """``ablation.csv``: every mode vs its baseline and every pair of modes (paired over runs)."""
    means = {m: read_run_means(out_dir / m, cfg.runs) for m in modes}
    rows = []
    for mode in modes:
        for metric in METRICS:
            rows.append(dict(a=mode, b="baseline", metric=metric,
                             **compare(means[mode]["trained"][metric], means[mode]["baseline"][metric],
                                       cfg.bootstrap_resamples)))
    for i, ma in enumerate(modes):
        for mb in modes[i + 1:]:
            for metric in METRICS:
                rows.append(dict(a=ma, b=mb, metric=metric,
                                 **compare(means[ma]["trained"][metric], means[mb]["trained"][metric],
                                           cfg.bootstrap_resamples)))
    return artifacts.write_csv(out_dir / "ablation.csv", rows, ABLATION_COLUMNS)


def run(config: CoEvoDTConfig, out_dir, *, overwrite: bool = False, progress: bool = True) -> dict:
    """Run every requested mode (skipping finished ones unless ``overwrite``) and write all artifacts.

    Returns ``{mode: aggregate rows}`` for the modes run or found. A size that cannot fit the
    memory is refused first (:mod:`jaxtwin.coevodt.sizes`).
    """
    require_run_fits(config)   # before anything is written or compiled
    out_dir = Path(out_dir)
    # modes and the sensitivity study are separate pieces: any subset may share a folder
    record_config(out_dir, config, overwrite=overwrite, ignore=("mode", "sensitivity"))
    results, setup_cache = {}, {}
    for mode in config.modes():
        mode_dir = out_dir / mode
        files = _mode_files(config, mode_dir, mode)
        ckpt = mode_dir / "checkpoint.msgpack"
        if overwrite and mode_dir.exists():
            shutil.rmtree(mode_dir)
        if artifacts.all_exist(files):
            results[mode] = artifacts.read_csv(files[-1])
            continue
        mode_dir.mkdir(parents=True, exist_ok=True)
        res = train_mode(config, mode, progress=progress, checkpoint=ckpt, setup_cache=setup_cache)
        write_run_artifacts(config, res, mode, mode_dir)
        figures.mode_figures(config, res, mode, mode_dir, METRICS)
        means = {s: {m: res[s][m].mean(1) for m in METRICS} for s in ("baseline", "trained")}
        results[mode] = write_aggregate(config, means, res["converged"], mode, mode_dir)
        ckpt.unlink(missing_ok=True)
    # every finished mode in the folder (all share these options), not just this run's
    write_ablation(config, out_dir, tuple(m for m in MODES if artifacts.all_exist(
        _mode_files(config, out_dir / m, m))))
    if config.sensitivity and (overwrite or not artifacts.all_exist(
            [out_dir / "sensitivity.csv", out_dir / "sensitivity.png"])):
        from jaxtwin.coevodt.sensitivity import run_sensitivity   # imports this module
        run_sensitivity(config, out_dir, overwrite=overwrite, progress=progress)
    return results
