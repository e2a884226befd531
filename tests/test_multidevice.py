"""``--devices``: experiments spread over 2 or 4 CPU devices give the one-device CSVs.

Each comparison runs in a subprocess, with
``XLA_FLAGS=--xla_force_host_platform_device_count=4`` (the flag must be set
before JAX starts) or with ``--devices 2`` splitting the CPU itself, runs the
tiny experiment on one device and on several in that one process (so shared
programs compile once) and the parent compares every CSV byte for byte: the
sharded path runs the same jitted programs with the batch axis partitioned by
GSPMD, so each run/seed computes the same operations on the same values (see
``jaxtwin/core/sharding.py``).

The same operations are not always rounded alike, though: XLA's CPU backend
always allows fused multiply-adds, and whether LLVM folds a product into an add
depends on how it vectorised the loop for the batch one device holds. That is
how Co-EvoDT's capacity update came out 1 ulp apart on 1 and 2 devices (fixed
in ``coevodt.env.transition``; the same program at batch 4 and 2 on one device
showed it, and ``--xla_cpu_max_isa=AVX``, which has no FMA, made it vanish).
At these sizes every CSV is identical; at paper size (``jaxtwin coevodt --mode
all --runs 10``, 2 devices) training metrics and population scores still are,
while the random baseline's per-episode means and the pretrained LSTM's
holdout RMSE differ in the last bits (relative 1.6e-7 and 1e-5; see README).
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

from jaxtwin.cli import main

COEVODT_TINY = ["--runs", "3", "--episodes", "10", "--evolve-freq", "5", "--forecast.online-every", "5",
                "--pop-size", "3", "--tournament-k", "2", "--n-replace", "1", "--baseline-episodes", "10",
                "--eval-episodes", "3", "--eval-per-member", "1", "--convergence-window", "5",
                "--episode-len", "12", "--forecast.window", "4", "--forecast.epochs", "1",
                "--bootstrap-resamples", "200", "--no-progress"]   # 3 runs on 2 or 4 devices: a padded lane
CIVIC_TINY = ["--agent.total-timesteps", "512", "--agent.num-envs", "8", "--agent.num-steps", "32",
              "--agent.chunks", "2", "--eval-episodes", "6", "--no-progress"]


def _run_four_devices(code: str, timeout: int = 600) -> str:
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    env.pop("JAX_COORDINATOR_ADDRESS", None)
    prelude = "import jax\nassert jax.local_device_count() == 4, jax.devices()\n"
    r = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], capture_output=True,
                       text=True, env=env, timeout=timeout)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    return r.stdout


def _cli_both(out: Path, argv: list[str]) -> str:
    """Code running ``jaxtwin <argv> --devices D --out out/dD`` for D in 1, 4."""
    return f"""
        from jaxtwin.cli import main
        argv = {argv!r}
        for d in ("1", "4"):
            assert main([*argv, "--devices", d, "--out", {str(out)!r} + "/d" + d]) == 0
    """


def assert_same_csvs(one: Path, other: Path) -> int:
    """Every CSV under ``one`` exists under ``other`` with identical bytes; returns the count."""
    files = sorted(p.relative_to(one) for p in one.rglob("*.csv"))
    assert files and files == sorted(p.relative_to(other) for p in other.rglob("*.csv"))
    for f in files:
        assert (one / f).read_bytes() == (other / f).read_bytes(), f"{f} differs between the device counts"
    return len(files)


def test_coevodt_cli_devices_2_matches_one_and_resumes_across_device_counts(tmp_path):
    """No XLA_FLAGS: ``--devices 2`` on a CPU-only host splits the CPU into 2 devices before JAX
    starts (``sharding.prepare_devices``) and runs the Online mode (LSTM pretraining, AR(1) fit
    and fine-tunes, sharded) with 3 runs (one padded lane): every CSV is byte-identical to
    ``--devices 1``. Then a checkpoint written from the sharded carry resumes on 1 device (and
    vice versa) to the uninterrupted results; the programs are the CLI's (same protocol, same
    run count), so nothing compiles again. With jaxlib's batched LAPACK AR(1) fit, 2 devices on
    2 pool threads could hang here."""
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    for var in ("XLA_FLAGS", "JAX_COORDINATOR_ADDRESS"):
        env.pop(var, None)
    code = textwrap.dedent(f"""
        import jax
        from jaxtwin.cli import main

        argv = ["coevodt", "--mode", "Online", *{COEVODT_TINY!r}]
        assert main([*argv, "--devices", "2", "--out", {str(tmp_path)!r} + "/d2"]) == 0
        assert jax.local_device_count() == 2, jax.devices()
        assert main([*argv, "--devices", "1", "--out", {str(tmp_path)!r} + "/d1"]) == 0

        import dataclasses   # after the CLI started JAX: importing the experiments creates arrays
        from pathlib import Path
        import numpy as np
        import pytest
        import jaxtwin.coevodt.experiments as exp
        from jaxtwin.coevodt.forecast import ForecastConfig

        cfg1 = exp.CoEvoDTConfig(runs=3, episodes=10, evolve_freq=5, pop_size=3, tournament_k=2, n_replace=1,
                                 baseline_episodes=10, eval_episodes=3, eval_per_member=1, convergence_window=5,
                                 episode_len=12, bootstrap_resamples=200,
                                 forecast=ForecastConfig(online_every=5, window=4, epochs=1))
        whole = exp.train_mode(cfg1, "Online", progress=False)
        real_run_chunks = exp.run_chunks

        def interrupted(chunk_fn, carry, n_chunks, **kw):
            def stop_after_first(i, c, m):
                kw["on_chunk"](i, c, m)
                raise KeyboardInterrupt
            return real_run_chunks(chunk_fn, carry, n_chunks, **{{**kw, "on_chunk": stop_after_first}})

        for first, second in ((2, 1), (1, 2)):
            ckpt = Path({str(tmp_path)!r}) / f"ckpt_{{first}}_{{second}}.msgpack"
            exp.run_chunks = interrupted
            with pytest.raises(KeyboardInterrupt):
                exp.train_mode(dataclasses.replace(cfg1, devices=first), "Online", progress=False, checkpoint=ckpt)
            exp.run_chunks = real_run_chunks
            assert ckpt.exists()
            resumed = exp.train_mode(dataclasses.replace(cfg1, devices=second), "Online", progress=False,
                                     checkpoint=ckpt)
            for key in ("trained", "baseline", "final_scores", "best", "train", "forecast"):
                flat = dict(jax.tree_util.tree_leaves_with_path(whole[key]))
                other = dict(jax.tree_util.tree_leaves_with_path(resumed[key]))
                assert flat.keys() == other.keys() and flat
                for path, x in flat.items():
                    if jax.tree_util.keystr(path) in ("['loss']", "['train_loss']"):
                        # reported training losses (REINFORCE, LSTM pretraining; in no output file):
                        # float32 means of the forward pass that come out differently rounded in
                        # the partitioned program (measured <= 2.4e-7); parameters and results agree
                        np.testing.assert_allclose(x, other[path], rtol=0, atol=1e-6)
                    else:
                        np.testing.assert_array_equal(x, other[path])
        print("RESUME_OK")
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0 and "RESUME_OK" in r.stdout, r.stdout[-3000:] + r.stderr[-6000:]
    # 4 per-run CSVs x 3 runs, the aggregate, the ablation
    assert assert_same_csvs(tmp_path / "d1", tmp_path / "d2") == 4 * 3 + 2


def test_civic_evaluation_four_devices_match_one():
    """``evaluate_policies`` with its seeds sharded over 4 devices (6 seeds: two padded lanes)
    returns the one-device rows exactly (the CLI path is the slow test below)."""
    out = _run_four_devices("""
        from jaxtwin.civic.env import CivicEnv
        from jaxtwin.civic.tables import evaluate_policies
        from jaxtwin.civic.baselines import make_baseline
        env = CivicEnv(2, 1, 8, cooperative=True)
        pols = {n: make_baseline(n, env) for n in ("Average", "Random-GCP", "Max-GCP")}
        rows = {d: evaluate_policies(env, env.default_params, pols, 6, jax.random.PRNGKey(3), devices=d)
                for d in (1, 4)}
        assert len(rows[1]) == 18 and rows[1] == rows[4], (rows[1], rows[4])
        print("CIVIC_OK")
    """)
    assert "CIVIC_OK" in out


@pytest.mark.slow
def test_civic_withdraw_cli_four_devices_match_one(tmp_path):
    """Evaluation seeds sharded over 4 devices (6 seeds: two padded lanes): identical CSVs."""
    _run_four_devices(_cli_both(tmp_path, ["civic", "experiment", "withdraw", "--n-msps", "2", "--horizon", "8",
                                           "--ratios", "1.0", "inf", *CIVIC_TINY]))
    assert assert_same_csvs(tmp_path / "d1", tmp_path / "d4") >= 3  # results, summary, train metrics


@pytest.mark.slow
def test_coevodt_online_and_sensitivity_four_devices_match_one(tmp_path):
    _run_four_devices(_cli_both(tmp_path, ["coevodt", "--mode", "Online", "--sensitivity", "--sensitivity-runs", "2",
                                           "--sensitivity-mode", "NoPred", *COEVODT_TINY]))
    # 4 per-run CSVs x 3 runs, aggregate, ablation, sensitivity.csv; the study's results, summary, part
    assert assert_same_csvs(tmp_path / "d1", tmp_path / "d4") == 3 * 4 + 3 + 3
    assert (tmp_path / "d4" / "sensitivity.csv").exists()


@pytest.mark.slow
def test_civic_adapt_and_coop_four_devices_match_one(tmp_path):
    _run_four_devices(_cli_both(tmp_path / "adapt", ["civic", "experiment", "adapt", "--n-msps", "2", "--horizon", "8",
                                                     *CIVIC_TINY]))
    assert_same_csvs(tmp_path / "adapt" / "d1", tmp_path / "adapt" / "d4")
    _run_four_devices(_cli_both(tmp_path / "coop", ["civic", "experiment", "coop", "--msps", "2", "--horizons", "8",
                                                    *CIVIC_TINY]))
    assert_same_csvs(tmp_path / "coop" / "d1", tmp_path / "coop" / "d4")


def test_syncgame_sensitivity_four_devices_match_one(tmp_path):
    """3 sweep points of one study on 4 devices (one padded lane): the same solutions
    to float64 rounding (the partitioned program fuses the Newton LU differently:
    measured differences are in the last one or two bits, 1e-15 relative)."""
    from jaxtwin.core.artifacts import read_csv

    _run_four_devices(_cli_both(tmp_path, ["syncgame", "sensitivity", "--studies", "r", "--max-grid-points", "3",
                                           "--sens-n-grid", "21", "--no-progress"]))
    one, four = (read_csv(tmp_path / d / "sensitivity_r.csv") for d in ("d1", "d4"))
    assert len(one) == len(four) == 3 * 4
    for a, b in zip(one, four):
        assert a.keys() == b.keys() and a["converged"] == b["converged"] == "True"
        for k in a:
            if k not in ("study", "converged"):
                assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-12, abs=1e-12), (k, a[k], b[k])
    assert (tmp_path / "d1" / "findings.csv").read_bytes() == (tmp_path / "d4" / "findings.csv").read_bytes()


@pytest.mark.parametrize("system,argv,cls", [
    ("coevodt", ["coevodt"], "CoEvoDTConfig"),
    ("civic", ["civic", "experiment", "coop"], "CivicConfig"),
    ("syncgame", ["syncgame", "sensitivity"], "SyncGameConfig"),
])
def test_devices_flag_rejects_negative_and_too_many(tmp_path, capsys, system, argv, cls):
    too_many = jax.local_device_count() + 1
    assert main([*argv, "--devices", str(too_many), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"error: {cls}.devices={too_many}" in err and "jax.local_device_count()" in err
    assert main([*argv, "--devices", "-1", "--out", str(tmp_path)]) == 2
    assert f"error: {cls}.devices=-1: must be >= 0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # rejected before any work


def test_devices_is_a_config_file_field(tmp_path):
    from jaxtwin.core.config import build_config, load_config_file
    from jaxtwin.civic.experiments import CivicConfig
    from jaxtwin.coevodt.experiments import CoEvoDTConfig
    from jaxtwin.syncgame.experiments import SyncGameConfig

    path = tmp_path / "c.toml"
    path.write_text("devices = 0\n")
    for cls in (CoEvoDTConfig, CivicConfig, SyncGameConfig):
        assert build_config(cls, load_config_file(path)).devices == 0
