"""Sizes refused up front: a Co-EvoDT run whose programs cannot fit the memory ends in one
error line naming the estimate, the memory and the option, before anything is written or
compiled; the estimates follow XLA's own count."""
import jax
import pytest

import jaxtwin.coevodt.experiments as exp
from jaxtwin.cli import main
from jaxtwin.core.memory import available_bytes
from jaxtwin.coevodt.forecast import ForecastConfig
from jaxtwin.coevodt.sizes import run_needs, run_terms
from tests.helpers import xla_bytes


@pytest.mark.parametrize("argv, what, option", [
    (["--runs", "100000", "--baseline-episodes", "100000"], "PretrainOnly: the setup program of 100000 runs",
     "--baseline-episodes or --episode-len (or --runs)"),
    (["--mode", "NoPred", "--eval-episodes", "1000000000"], "NoPred: the finish program of 10 runs",
     "--eval-episodes or --episode-len (or --runs)"),
    (["--mode", "Online", "--policy-hidden", "100000", "100000"], "Online: the group program",
     "--pop-size or --policy-hidden (or --runs)"),
    (["--mode", "NoPred", "--sensitivity", "--sensitivity-runs", "10000000"], "sensitivity: 70000000 whole runs",
     "(or --sensitivity-runs)"),
])
def test_cli_refuses_a_run_that_cannot_fit(tmp_path, capsys, argv, what, option):
    out = tmp_path / "out"
    assert main(["coevodt", *argv, "--no-progress", "--out", str(out)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err + captured.out, captured
    assert err.startswith(f"error: coevodt {what}"), err
    gb = float(err.split("needs about ")[1].split(" GB")[0].replace(",", ""))
    assert gb > 1000 and f"more than the {available_bytes() / 1e9:.3g} GB of " in err, err
    assert err.endswith(option), err
    assert not out.exists() or not any(out.rglob("*"))


def test_default_config_fits():
    needs = run_needs(exp.CoEvoDTConfig(sensitivity=True))
    assert len(needs) == 3 * 3 + 1 and all(0 < n.nbytes < min(available_bytes(), 2e9) for n in needs)


def test_estimates_follow_xla_memory_analysis():
    """NoPred at 160 baseline and 300 evaluation episodes, 2 runs: the baseline episodes
    dominate setup, the greedy episodes finish (measured 0.99 and 1.00 times XLA's)."""
    cfg = exp.CoEvoDTConfig(runs=2, episodes=10, evolve_freq=5, pop_size=3, tournament_k=2, n_replace=1,
                            baseline_episodes=160, eval_episodes=300, eval_per_member=1, convergence_window=5,
                            episode_len=12, forecast=ForecastConfig(online_every=5, window=4, epochs=1))
    setup, _, finish = exp._compiled(cfg.protocol(), "NoPred")
    keys = exp.run_keys(cfg)
    carry, _ = jax.eval_shape(setup, keys, cfg.env)
    terms = run_terms(cfg, "NoPred")
    for name, program, args in (("setup", setup, (keys, cfg.env)), ("finish", finish, (carry, cfg.env))):
        est = cfg.runs * sum(b for _, b in terms[name])
        xla = xla_bytes(program.lower(*args).compile())
        assert 0.9 < est / xla < 1.3, (name, est, xla)


def test_sweep_refuses_a_chunk_that_cannot_fit(tmp_path, capsys):
    """A Co-EvoDT study's runner estimates each mode's programs for its chunk's points x runs:
    1e6 baseline episodes of 1000 steps per run is refused before the folder is claimed."""
    from jaxtwin.cli import main

    out = tmp_path / "sweep"
    argv = ["sweep", "coevodt", "--grid", "alpha_i=0.04,0.12", "--set", "baseline_episodes=1000000",
            "--set", "episode_len=1000", "--no-progress", "--out", str(out)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in captured.err + captured.out, captured
    assert err.startswith("error: coevodt sweep: the NoPred setup program of 2 points x 5 runs"), err
    # named as the study's fields, as the command set them (not `--baseline-episodes`)
    assert err.endswith("lower baseline_episodes or episode_len (or --chunk or --seeds)"), err
    assert not out.exists() or not any(out.rglob("*"))
