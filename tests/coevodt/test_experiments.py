"""Co-EvoDT experiment: tiny end-to-end CLI run, artifacts and columns, resume, bad options."""
from __future__ import annotations

import json

import jax
import numpy as np
import pytest

from jaxtwin.cli import main
from jaxtwin.core.artifacts import read_csv
from jaxtwin.core.config import ConfigError
from jaxtwin.coevodt.experiments import ABLATION_COLUMNS, AGGREGATE_COLUMNS, SUMMARY_COLUMNS, CoEvoDTConfig
from jaxtwin.coevodt.sensitivity import sensitivity_adapter, sensitivity_scenarios, sensitivity_study
from tests.golden.cases import CASES
from tests.golden.regenerate import run_case
from tests.test_golden_outputs import GOLDEN, compare_tables

TINY = ["--runs", "2", "--episodes", "10", "--evolve-freq", "5", "--forecast.online-every", "5",
        "--pop-size", "3", "--tournament-k", "2", "--n-replace", "1", "--baseline-episodes", "10",
        "--eval-episodes", "3", "--eval-per-member", "1", "--convergence-window", "5",
        "--episode-len", "12", "--forecast.window", "4", "--forecast.epochs", "1",
        "--bootstrap-resamples", "200", "--no-progress"]


def _columns(path):
    with open(path) as fh:
        return fh.readline().strip().split(",")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """The golden case ``coevodt_all`` (``coevodt --mode all`` at TINY), run once for the module."""
    out = tmp_path_factory.mktemp("coevodt")
    assert CASES["coevodt_all"] == [["coevodt", "--mode", "all", *TINY]]
    run_case("coevodt_all", out)
    return out


def test_tiny_run_matches_the_golden_tables(tiny_run):
    """The default run's golden-output check for Co-EvoDT (the same command as
    ``tests/test_golden_outputs.py[coevodt_all]``, which runs under ``-m slow``): runs
    first, before the tests below rerun commands into the folder."""
    problems = compare_tables(GOLDEN / "coevodt_all", tiny_run)
    assert not problems, "\n".join(problems)


def test_every_artifact_exists_with_its_columns(tiny_run):
    out = tiny_run
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["runs"] == 2 and cfg["config"]["env"]["alpha_p"] == 0.05
    for mode in ("NoPred", "PretrainOnly", "Online"):
        d = out / mode
        for r in range(2):
            assert _columns(d / f"summary_run{r}.csv") == list(SUMMARY_COLUMNS)
            rows = read_csv(d / f"summary_run{r}.csv")
            assert [row["scenario"] for row in rows] == ["baseline", "trained"]
            per_ep = read_csv(d / f"per_episode_metrics_run{r}.csv")
            assert len(per_ep) == 10 and {"qoe", "latency", "cost", "return_infra", "member_user"} <= set(per_ep[0])
            scores = read_csv(d / f"population_scores_run{r}.csv")
            assert len(scores) == 2 * 3 * 3  # one evolution (after episode 5) + final, 3 agents x 3 members
            assert sum(row["best"] == "True" for row in scores) == 3
            rmse = d / f"lstm_comparison_rmse_run{r}.csv"
            if mode == "NoPred":
                assert not rmse.exists()
            else:
                assert [row["forecaster"] for row in read_csv(rmse)] == ["lstm", "naive", "ar1", "exp_smoothing", "oracle"]
        assert _columns(d / f"aggregate_results_mode_{mode}.csv") == list(AGGREGATE_COLUMNS)
        agg = read_csv(d / f"aggregate_results_mode_{mode}.csv")
        assert [row["metric"] for row in agg] == ["qoe", "latency", "cost"]
        assert all(np.isfinite(float(row["trained_mean"])) for row in agg)
        pngs = {"returns.png", "baseline_vs_trained.png", "greedy_episode.png"}
        if mode != "NoPred":
            pngs.add("lstm_holdout.png")
        assert pngs <= {p.name for p in d.glob("*.png")}
        assert not (d / "checkpoint.msgpack").exists()
    assert _columns(out / "ablation.csv") == list(ABLATION_COLUMNS)
    ablation = read_csv(out / "ablation.csv")
    assert len(ablation) == 3 * 3 + 3 * 3  # each mode vs baseline, each pair of modes, 3 metrics
    # all modes share run seeds, hence the same random baseline
    base = [float(r["mean_b"]) for r in ablation if r["b"] == "baseline" and r["metric"] == "qoe"]
    assert max(base) - min(base) < 1e-12


def test_rerun_skips_finished_modes(tiny_run, capsys):
    out = tiny_run
    stamp = (out / "Online" / "summary_run0.csv").stat().st_mtime_ns
    assert main(["coevodt", "--mode", "Online", "--out", str(out), *TINY]) == 0
    assert (out / "Online" / "summary_run0.csv").stat().st_mtime_ns == stamp
    assert "Online" in capsys.readouterr().out


def test_bad_options_exit_2(tmp_path, capsys):
    assert main(["coevodt", "--episodes", "13", "--out", str(tmp_path)]) == 2
    assert "error: ProtocolConfig.episodes=13" in capsys.readouterr().err
    assert main(["coevodt", "--env.alpha-p", "-1", "--out", str(tmp_path)]) == 2
    assert "EnvParams.alpha_p" in capsys.readouterr().err


def test_config_file_and_sensitivity_scenarios(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"runs": 3, "env": {"alpha_i": 0.1}}))
    with pytest.raises(ConfigError):
        CoEvoDTConfig(runs=0)
    from jaxtwin.core.config import build_config, load_config_file
    cfg = build_config(CoEvoDTConfig, load_config_file(path))
    assert cfg.runs == 3 and cfg.env.alpha_i == 0.1
    scen = sensitivity_scenarios(cfg)
    assert len(scen) == 7
    values = {(n, round(f, 2)): getattr(p, n) for n, f, p in scen[1:]}
    assert values[("alpha_i", 0.7)] == pytest.approx(0.07) and values[("alpha_p", 1.3)] == pytest.approx(0.065)


def test_sensitivity_is_a_study_declaration_of_the_experiment(tmp_path):
    """The +-delta sweep is one zipped study (7 scenarios, one shape group) on the engine; its
    fixed values are exactly where the experiment departs from the spec, and the
    experiment's adapter builds each scenario's params and protocol (nothing compiles here)."""
    from jaxtwin.core import engine
    from jaxtwin.core.study import load_study, study_toml
    from jaxtwin.coevodt.forecast import ForecastConfig

    cfg = CoEvoDTConfig(runs=2, episodes=10, evolve_freq=5, pop_size=3, tournament_k=2, n_replace=1,
                        episode_len=12, convergence_window=5, forecast=ForecastConfig(online_every=5, epochs=1),
                        env=CoEvoDTConfig().env.replace(load_gain=0.4), sensitivity_runs=3,
                        sensitivity_mode="NoPred", seed=7)
    study = sensitivity_study(cfg)
    assert study.zipped == (("alpha_p", "alpha_i", "alpha_u"),) and study.policies == ("NoPred",)
    assert (study.seeds, study.seed) == (3, 7)
    assert dict(study.fixed) == {"load_gain": 0.4, "episodes": 10, "evolve_freq": 5, "pop_size": 3,
                                 "tournament_k": 2, "n_replace": 1, "episode_len": 12, "convergence_window": 5,
                                 "forecast.online_every": 5, "forecast.epochs": 1}
    _, points, groups = engine.plan(study, sensitivity_adapter(cfg))
    assert len(points) == 7 and len(groups) == 1
    runner = groups[0].runner
    assert runner.cfg == cfg.protocol()
    for (name, factor, p), params in zip(sensitivity_scenarios(cfg), groups[0].params):
        assert params == p, (name, factor)
    path = tmp_path / "s.toml"
    path.write_text(study_toml(study))
    assert load_study(path) == study


def test_notebook_runs(run_notebook):
    nb = run_notebook("coevodt.ipynb")
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) >= 2


def _tiny_config():
    from jaxtwin.coevodt.forecast import ForecastConfig
    return CoEvoDTConfig(runs=2, episodes=10, evolve_freq=5, pop_size=3, tournament_k=2, n_replace=1,
                         baseline_episodes=10, eval_episodes=3, eval_per_member=1, convergence_window=5,
                         episode_len=12, bootstrap_resamples=200,
                         forecast=ForecastConfig(online_every=5, window=4, epochs=1))


def test_resume_from_checkpoint_matches_uninterrupted(tiny_run, tmp_path, monkeypatch):
    """Interrupt after the first group, resume from the checkpoint: same results as one go.

    Uses the tiny CLI config, so the programs compiled for ``tiny_run`` are reused.
    """
    import jaxtwin.coevodt.experiments as exp

    cfg = _tiny_config()
    whole = exp.train_mode(cfg, "NoPred", progress=False)
    ckpt = tmp_path / "checkpoint.msgpack"
    real_run_chunks = exp.run_chunks

    def interrupted(chunk_fn, carry, n_chunks, **kw):
        on_chunk = kw["on_chunk"]

        def stop_after_first(i, c, m):
            on_chunk(i, c, m)
            raise KeyboardInterrupt

        return real_run_chunks(chunk_fn, carry, n_chunks, **{**kw, "on_chunk": stop_after_first})

    monkeypatch.setattr(exp, "run_chunks", interrupted)
    with pytest.raises(KeyboardInterrupt):
        exp.train_mode(cfg, "NoPred", progress=False, checkpoint=ckpt)
    monkeypatch.setattr(exp, "run_chunks", real_run_chunks)
    assert ckpt.exists()
    resumed = exp.train_mode(cfg, "NoPred", progress=False, checkpoint=ckpt)
    for key in ("trained", "baseline", "final_scores"):
        for a, b in zip(jax.tree.leaves(whole[key]), jax.tree.leaves(resumed[key])):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(whole["train"]["episode_return"], resumed["train"]["episode_return"])


@pytest.mark.slow
def test_sensitivity_sweep_writes_csv_and_png(tmp_path):
    """The sweep through the CLI: the engine's files under sensitivity/; every scenario's runs
    those of the protocol run for that scenario alone with the runs' keys (common random
    numbers across scenarios: with rbg keys a vmapped batch draws its bits from its first
    key, so the flat scenario x run batch used before gave each scenario other draws), and
    sensitivity.csv's means, stds and CIs exactly those of the runs in results.csv."""
    assert main(["coevodt", "--mode", "NoPred", "--sensitivity", "--sensitivity-runs", "2",
                 "--sensitivity-mode", "NoPred", "--out", str(tmp_path), *TINY]) == 0
    rows = read_csv(tmp_path / "sensitivity.csv")
    assert [(r["parameter"], round(float(r["factor"]), 2)) for r in rows] == [
        ("nominal", 1.0), ("alpha_p", 0.7), ("alpha_p", 1.3), ("alpha_i", 0.7), ("alpha_i", 1.3),
        ("alpha_u", 0.7), ("alpha_u", 1.3)]
    assert (tmp_path / "sensitivity.png").exists()
    for name in ("results.csv", "summary.csv", "study.json", "study.toml"):
        assert (tmp_path / "sensitivity" / name).exists(), name
    # alpha_i scales the infra action: a weaker action leaves random-policy latency higher
    base = {(r["parameter"], round(float(r["factor"]), 2)): float(r["baseline_latency_mean"]) for r in rows}
    assert base[("alpha_i", 0.7)] > base[("alpha_i", 1.3)]

    from jaxtwin.core.stats import t_ci_halfwidth
    from jaxtwin.coevodt.experiments import run_keys
    from jaxtwin.coevodt.protocol import Protocol

    from jaxtwin.coevodt.forecast import ForecastConfig
    cfg = CoEvoDTConfig(runs=2, episodes=10, evolve_freq=5, pop_size=3, tournament_k=2, n_replace=1,   # TINY
                        baseline_episodes=10, eval_episodes=3, eval_per_member=1, convergence_window=5,
                        episode_len=12, forecast=ForecastConfig(online_every=5, window=4, epochs=1))
    per_point = read_csv(tmp_path / "sensitivity" / "results.csv")
    alone = jax.jit(jax.vmap(Protocol(cfg.protocol(), "NoPred").run, in_axes=(0, None)))
    for k, (_, _, params) in enumerate(sensitivity_scenarios(cfg)):
        res = alone(run_keys(cfg, 2), params)   # the scenario's runs on their own
        runs = [r for r in per_point if int(r["point"]) == k]
        assert [int(r["run"]) for r in runs] == [0, 1]
        for s in ("baseline", "trained"):
            for m in ("qoe", "latency", "cost"):
                per_run = np.asarray([float(r[f"{s}_{m}"]) for r in runs])
                np.testing.assert_allclose(per_run, np.asarray(res[s][m]).mean(1), rtol=1e-6, err_msg=f"{k} {s} {m}")
                got = [float(rows[k][f"{s}_{m}_{stat}"]) for stat in ("mean", "std", "ci95")]
                assert got == [per_run.mean(), per_run.std(ddof=1), t_ci_halfwidth(per_run)], (k, s, m)


def test_rerun_with_other_options_is_refused_before_any_work(tiny_run, capsys):
    """Issue 11: a rerun into a finished folder, or a resume, with other options never keeps the
    old results under the new config: it is refused naming the fields (mode may differ: modes
    are separate pieces)."""
    def files():
        return {p: (p.read_bytes(), p.stat().st_mtime_ns if p.parent != tiny_run else 0)
                for p in tiny_run.rglob("*") if p.is_file() and p.name != "config.json" and p.name[0] != "."}

    before = files()
    capsys.readouterr()
    assert main(["coevodt", "--mode", "all", "--out", str(tiny_run), *TINY, "--env.alpha-p", "0.5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "env.alpha_p=0.05 there, 0.5 here" in err
    assert main(["coevodt", "--mode", "NoPred", "--out", str(tiny_run), *TINY, "--seed", "3",
                 "--policy-lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "policy_lr=0.005 there, 0.5 here" in err and "seed=42 there, 3 here" in err
    assert files() == before
    # same options, one mode: reused, not recomputed (the mode folders' files keep their
    # times), and ablation.csv still compares every finished mode
    assert main(["coevodt", "--mode", "NoPred", "--out", str(tiny_run), *TINY]) == 0
    assert files() == before
