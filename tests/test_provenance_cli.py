"""Reruns into an existing --out through the real CLI (issue 11's table): other options are
refused naming the fields, before any computation and without touching the old files; the
same options reuse them; --overwrite recomputes."""
import json

from jaxtwin.cli import main
from tests.civic.test_experiments import TINY_AGENT
from tests.syncgame.test_experiments import TINY as SYNC_TINY


def _snapshot(out):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(out.rglob("*")) if p.is_file()}


def test_syncgame_rerun_with_another_grid_is_refused(tmp_path, capsys):
    out = tmp_path / "sg"
    assert main(["syncgame", "trajectories", "--out", str(out), *SYNC_TINY]) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert main(["syncgame", "all", "--out", str(out), *SYNC_TINY, "--n-grid", "31"]) == 2
    err = capsys.readouterr().err
    assert "holds results of other options: n_grid=21 there, 31 here" in err and "--overwrite" in err
    assert _snapshot(out) == before                      # nothing recomputed, nothing relabelled
    assert main(["syncgame", "ess", "--out", str(out), *SYNC_TINY]) == 0   # same options: shares it
    assert main(["syncgame", "trajectories", "--out", str(out), *SYNC_TINY, "--n-grid", "31",
                 "--overwrite"]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["n_grid"] == 31
    assert not (out / "ess.csv").exists() and not (out / "ess.png").exists()   # the old run's files went


def test_civic_train_with_more_steps_over_a_finished_agent_is_refused(tmp_path, capsys):
    out = tmp_path / "agent"
    args = ["--out", str(out), "--n-msps", "2", "--horizon", "8", *TINY_AGENT]
    assert main(["civic", "train", *args]) == 0
    assert main(["civic", "evaluate", *args]) == 0
    before = _snapshot(out)
    capsys.readouterr()
    assert main(["civic", "train", *args, "--agent.total-timesteps", "1024"]) == 2
    assert "agent.total_timesteps=512 there, 1024 here" in capsys.readouterr().err
    assert main(["civic", "train", *args, "--seed", "7"]) == 2
    assert "seed=0 there, 7 here" in capsys.readouterr().err
    assert _snapshot(out) == before
    # retraining discards the evaluation of the old agent instead of leaving it beside the new one
    assert main(["civic", "train", *args, "--seed", "7", "--overwrite"]) == 0
    assert not (out / "evaluation.csv").exists() and not (out / "evaluation_config.json").exists()


def test_bad_input_found_after_the_claim_leaves_no_record(tmp_path, capsys):
    """A run stopped by bad input leaves nothing that refuses the corrected command; an
    earlier run's record in the folder stays."""
    from jaxtwin.core.provenance import claim_output, release_unused_claim

    out = tmp_path / "w"
    # the budget check runs in the experiment, after the folder is claimed
    assert main(["civic", "experiment", "withdraw", "--budget-factor", "5000", "--out", str(out)]) == 2
    assert "budget_factor=5000.0" in capsys.readouterr().err
    assert not (out / "config.json").exists() and not (out / ".config.json.files").exists()
    kept = tmp_path / "kept"
    claim_output(kept, {"a": 1})
    (kept / "results.csv").write_text("x\n")
    claim_output(kept, {"a": 1})         # a rerun of the same options: the record was there
    assert not release_unused_claim(kept) and (kept / "config.json").exists()
