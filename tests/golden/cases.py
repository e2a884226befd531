"""Tiny end-to-end runs of every experiment whose CSV outputs are pinned.

The CSVs under ``tests/golden/<case>/`` were written by these exact commands
before the code moved into one package per system (issue 10); the test
``tests/test_golden_outputs.py`` reruns them and requires the same tables.
When a change is *meant* to alter results, regenerate with
``python -m tests.golden.regenerate`` and say why in the commit.
"""
from __future__ import annotations

TINY_AGENT = ["--agent.total-timesteps", "512", "--agent.num-envs", "8", "--agent.num-steps", "32",
              "--agent.chunks", "2", "--eval-episodes", "2", "--no-progress"]
TINY_COEVO = ["--runs", "2", "--episodes", "10", "--evolve-freq", "5", "--forecast.online-every", "5",
              "--pop-size", "3", "--tournament-k", "2", "--n-replace", "1", "--baseline-episodes", "10",
              "--eval-episodes", "3", "--eval-per-member", "1", "--convergence-window", "5",
              "--episode-len", "12", "--forecast.window", "4", "--forecast.epochs", "1",
              "--bootstrap-resamples", "200", "--no-progress"]
TINY_SYNC = ["--n-grid", "21", "--sens-n-grid", "21", "--max-grid-points", "2", "--T", "10", "--no-progress"]

# case name -> list of CLI invocations (without --out, which the runner appends)
CASES: dict[str, list[list[str]]] = {
    "coevodt_all": [["coevodt", "--mode", "all", *TINY_COEVO]],
    "civic_coop": [["civic", "experiment", "coop", "--msps", "2", "--horizons", "8", *TINY_AGENT]],
    "civic_withdraw": [["civic", "experiment", "withdraw", "--n-msps", "2", "--horizon", "8",
                        "--ratios", "1.0", "inf", *TINY_AGENT]],
    "civic_noncoop": [["civic", "experiment", "noncoop", "--noncoop-msps", "1", "--noncoop-requests", "6", "8",
                       *TINY_AGENT]],
    "civic_tolerance": [["civic", "experiment", "tolerance", "--n-msps", "1", "--noncoop-requests", "6",
                         "--tolerance-trials", "2", *TINY_AGENT]],
    "civic_adapt": [["civic", "experiment", "adapt", "--n-msps", "2", "--horizon", "8", *TINY_AGENT]],
    "civic_train_evaluate": [["civic", "train", "--n-msps", "2", "--horizon", "8", *TINY_AGENT],
                             ["civic", "evaluate", "--n-msps", "2", "--horizon", "8", *TINY_AGENT]],
    "syncgame_all": [["syncgame", "all", "--studies", "r", "N", *TINY_SYNC]],
}

# columns that measure wall time, not results
VOLATILE_COLUMNS = {"seconds", "wall_seconds", "wall_s", "sps", "steps_per_second"}
