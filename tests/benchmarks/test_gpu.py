"""``python -m benchmarks gpu``'s time guard (benchmarks/gpu.py): a piece past its time is
killed and keeps the figures it printed, a failing piece is reported, unused time goes to
the next piece, and the table never presents CPU-sized figures as GPU ones."""
from __future__ import annotations

import json
import sys

import pytest

from benchmarks import gpu

FIG = dict(piece="env", name="fake steps/s", value=2.0e9, unit="env steps/s", target=">= 1e9 env steps/s",
           met=True, table=True)


def fake_piece(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_piece_past_its_time_is_killed_and_keeps_its_figures():
    code = (f"import json, time; print('DEVICE ' + json.dumps({{'platform': 'cpu', 'device_kind': 'cpu', "
            f"'count': 1, 'scale': 'cpu'}})); print('FIGURE ' + json.dumps({FIG!r}), flush=True); "
            "print('working', flush=True); time.sleep(60)")
    echoed = []
    res = gpu.run_piece(fake_piece(code), 3.0, echo=echoed.append)
    assert res["status"].startswith("stopped by the time guard") and res["seconds"] < 20
    assert res["figures"] == [FIG] and res["device"]["scale"] == "cpu"
    assert "  | working" in echoed and any("fake steps/s: 2e+09" in e for e in echoed)


def test_a_failing_piece_is_reported_with_its_output():
    res = gpu.run_piece(fake_piece("import sys; print('error: boom'); sys.exit(3)"), 30.0, echo=lambda s: None)
    assert res["status"] == "failed (exit 3)" and res["tail"] == ["error: boom"] and not res["figures"]
    rows = gpu.table_rows({"civic": res}, "gpu")
    assert rows == [["civic", "-", "-", "", "", "", "failed (exit 3) (0 figure(s) kept)"]]


def test_cpu_sized_figures_are_not_called_gpu_figures():
    res = dict(status="ok", figures=[FIG, dict(FIG, name="hidden", table=False),
                                     dict(FIG, name="skipped size", value=None, met=None, note="skipped")])
    gpu_rows = gpu.table_rows({"env": res}, "gpu")
    cpu_rows = gpu.table_rows({"env": res}, "cpu")
    assert [r[1] for r in gpu_rows] == ["fake steps/s", "skipped size"]
    assert gpu_rows[0][5] == "yes" and cpu_rows[0][5] == "(yes: not GPU sizes)"
    assert gpu_rows[1][2] == "-" and gpu_rows[1][6] == "skipped"


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.mark.parametrize("total,overrun,want", [
    # env uses half its 30 s: coevodt gets the other 15 on top of its 100
    (gpu.TOTAL_S, 0.0, dict(env=30, coevodt=115, civic=200, ppo=45, sweep=45)),
    # coevodt runs 150 s past its time (a slow kill): civic's share shrinks, the rest keep theirs
    (gpu.TOTAL_S, 150.0, dict(env=30, coevodt=115, civic=50, ppo=45, sweep=45)),
    # a short guard: each piece gets at least enough to start, and the last ones are skipped
    (40.0, 0.0, dict(env=15, coevodt=15, civic=15)),
])
def test_schedule_passes_unused_time_on_and_stops_at_the_guard(tmp_path, monkeypatch, total, overrun, want):
    clock, calls = FakeClock(), {}

    def run_piece(cmd, timeout_s, echo=print):
        name = cmd[cmd.index("benchmarks.gpu_pieces") + 1]
        calls[name] = timeout_s
        assert float(cmd[cmd.index("--budget") + 1]) == pytest.approx(timeout_s - gpu.STARTUP_S, abs=0.06)
        used = timeout_s / 2 if name == "env" else timeout_s + (overrun if name == "coevodt" else 0.0)
        clock.now += used
        return dict(status="ok", seconds=used, device=dict(platform="gpu", device_kind="H200", count=1,
                                                           scale="gpu"), figures=[FIG], tail=[])

    monkeypatch.setattr(gpu, "run_piece", run_piece)
    monkeypatch.setattr(gpu.time, "perf_counter", clock)
    out = tmp_path / "figures.json"
    record = gpu.main(["--json", str(out), "--total", str(total)])
    assert calls == pytest.approx(want)
    assert clock.now - 1000.0 <= total + overrun
    skipped = {n for n, p in record["pieces"].items() if p["status"].startswith("skipped")}
    assert skipped == set(gpu.PIECE_NAMES) - set(want)
    saved = json.loads(out.read_text())
    assert saved["device"] == "H200 x1 (gpu)" and saved["scale"] == "gpu"
    assert saved["pieces"]["env"]["figures"] == [FIG]


def test_bad_total_is_named(capsys):
    with pytest.raises(SystemExit):
        gpu.main(["--total", "0"])
    assert "--total=0.0: must be > 0 seconds" in capsys.readouterr().err


@pytest.mark.slow  # ~15 s: a real piece end to end (CoEvoEnv at the smallest size)
def test_quick_env_piece_end_to_end(tmp_path):
    record = gpu.main(["--quick", "--pieces", "env", "--json", str(tmp_path / "g.json")])
    figs = [f for f in record["pieces"]["env"]["figures"] if f["value"] is not None]
    assert record["pieces"]["env"]["status"] == "ok" and record["scale"] == "quick"
    assert figs and all(f["unit"] == "env steps/s" and f["value"] > 0 for f in figs)
