"""``python -m benchmarks gpu``: issue 13's GPU figures in one command, in under 8 minutes.

Runs, each in its own process with a time guard (:mod:`benchmarks.gpu_pieces`):

* ``env`` — CoEvoEnv random rollouts at 2^20..2^24 episodes (target >= 1e9 env steps/s);
* ``coevodt`` — the 3-mode x 10-run Co-EvoDT study at the default size, cold and warm
  (target < 15 s), then with its CSVs and figures;
* ``civic`` — the CIVIC coop experiment as it runs (its study on the engine, one MSP count
  at a time): 9 scenarios x 2 agents x 3 PPO seeds, 1M env steps each, as 6 vmapped
  programs (horizons padded), then every policy's evaluation, compile included
  (target < 3 min);
* ``ppo`` — PPO env steps/s on CIVIC at 1024..16384 envs;
* ``sweep`` — the study engine against a loop over points, 1024 seeds.

Each piece has a share of the time (:data:`BUDGETS`, 420 s in all; the whole is
guarded at 470 s): a soft budget it checks before each step (it skips what would
not fit, and says so) and a hard one after which its process is killed, keeping
the figures it printed. One table names the
device (``jax.devices()[0].device_kind``) and the sizes used; ``--json`` (default
``gpu_figures.json``) gets every figure.

With no accelerator the pieces run at CPU sizes, scaled down — a check that the
code runs, not GPU figures (the table says so) — and ``--quick`` runs the
smallest sizes anywhere.

    python -m benchmarks gpu [--quick] [--pieces env coevodt civic ppo sweep] [--json PATH] [--total S]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from benchmarks.common import print_table

PIECE_NAMES = ("env", "coevodt", "civic", "ppo", "sweep")
BUDGETS = {"env": 30.0, "coevodt": 100.0, "civic": 200.0, "ppo": 45.0, "sweep": 45.0}
"""Seconds per piece, start-up included (420 in all, under ``TOTAL_S``). Piece ``i`` may run
until ``sum(BUDGETS[:i+1])`` seconds after the start, so time a piece leaves goes to the next;
CIVIC gets most because each of its 18 trainings compiles its own program."""
TOTAL_S = 470.0
"""The whole command's guard: under 8 minutes."""
STARTUP_S = 10.0
"""What a piece's soft budget leaves of its hard one: process start, JAX start, the last call."""
ROOT = Path(__file__).resolve().parent.parent


def run_piece(cmd: list[str], timeout_s: float, echo=print) -> dict:
    """Run one piece's command; collect its ``DEVICE`` and ``FIGURE`` lines and echo the rest.
    Past ``timeout_s`` the process group is killed; what it printed before is kept."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                            cwd=ROOT, env=env, start_new_session=True)
    out = dict(device=None, figures=[], tail=[])

    def read():
        for line in proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("FIGURE "):
                fig = json.loads(line[len("FIGURE "):])
                out["figures"].append(fig)
                if fig.get("value") is not None:
                    echo(f"  > {fig['name']}: {_fmt(fig['value'])} {fig['unit']}")
            elif line.startswith("DEVICE "):
                out["device"] = json.loads(line[len("DEVICE "):])
            else:
                out["tail"] = (out["tail"] + [line])[-20:]
                echo("  | " + line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        rc = proc.wait(timeout=timeout_s)
        status = "ok" if rc == 0 else f"failed (exit {rc})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the group this call started: the piece and its children
        proc.wait()
        status = f"stopped by the time guard at {timeout_s:.0f} s"
    reader.join(timeout=5)
    return dict(out, status=status, seconds=time.perf_counter() - t0)


def _fmt(v) -> str:
    return f"{v:.3g}" if isinstance(v, float) else "-" if v is None else str(v)


def table_rows(pieces: dict, scale: str) -> list[list]:
    """Summary rows: every figure meant for the table, and a row for a piece that failed or stopped."""
    rows = []
    for name, res in pieces.items():
        for f in res.get("figures", []):
            if not f.get("table", True):
                continue
            met = ("yes" if f["met"] else "no") if f.get("met") is not None else "-"
            if scale != "gpu" and f.get("met") is not None:
                met = f"({met}: not GPU sizes)"
            rows.append([name, f["name"], _fmt(f["value"]), f["unit"], f.get("target", "-"), met,
                         f.get("note", "")])
        if res["status"] != "ok":
            shown = sum(1 for f in res.get("figures", []) if f.get("table", True))
            rows.append([name, "-", "-", "", "", "", f"{res['status']} ({shown} figure(s) kept)"])
    return rows


def main(argv: list[str] | None = None) -> dict:
    """Run the pieces under the time guard, print the table and write the JSON; returns the record."""
    p = argparse.ArgumentParser(prog="python -m benchmarks gpu", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smallest sizes on any device (a smoke run)")
    p.add_argument("--pieces", nargs="+", choices=PIECE_NAMES, default=list(PIECE_NAMES))
    p.add_argument("--json", default="gpu_figures.json", help="where the figures are written")
    p.add_argument("--total", type=float, default=TOTAL_S,
                   help=f"seconds for the whole command (default {TOTAL_S:.0f}); piece budgets shrink with it")
    ns = p.parse_args(argv)
    if not ns.total > 0:
        p.error(f"--total={ns.total}: must be > 0 seconds")
    t0 = time.perf_counter()
    deadline, factor = t0 + ns.total, min(1.0, ns.total / TOTAL_S)
    load_start = os.getloadavg()
    pieces, device, until = {}, None, t0
    for name in ns.pieces:
        until += BUDGETS[name] * factor
        now = time.perf_counter()
        if deadline - now < STARTUP_S + 5:
            pieces[name] = dict(status="skipped: no time left under the guard", figures=[], seconds=0.0)
            continue
        # its share plus what earlier pieces left (at least enough to start), never past the guard
        hard = min(max(until - now, STARTUP_S + 5), deadline - now)
        soft = max(hard - STARTUP_S, 1.0)
        print(f"[gpu] {name}: up to {hard:.0f} s (soft {soft:.0f} s)", flush=True)
        cmd = [sys.executable, "-m", "benchmarks.gpu_pieces", name, "--budget", f"{soft:.1f}"]
        pieces[name] = res = run_piece(cmd + (["--quick"] if ns.quick else []), hard)
        device = device or res["device"]
    scale = (device or {}).get("scale", "unknown")
    kind = f"{device['device_kind']} x{device['count']} ({device['platform']})" if device else "unknown"
    total_s = time.perf_counter() - t0
    print(f"\nGPU figures on {kind}; sizes: {scale}"
          + ("" if scale == "gpu" else " (no GPU: scaled-down sizes, NOT GPU figures)")
          + f"; {total_s:.0f} s in all (guard {ns.total:.0f} s); load average {load_start[0]:.2f} at start, "
            f"{os.getloadavg()[0]:.2f} at end")
    print_table(["piece", "figure", "value", "unit", "target", "met", "note"], table_rows(pieces, scale))
    record = dict(name="gpu", device=kind, device_record=device, scale=scale, total_s=total_s, guard_s=ns.total,
                  date=datetime.datetime.now().isoformat(timespec="seconds"),
                  loadavg=[round(load_start[0], 2), round(os.getloadavg()[0], 2)],
                  pieces={k: dict(status=v["status"], seconds=v["seconds"], figures=v.get("figures", []),
                                  **({"tail": v["tail"]} if v["status"] != "ok" and v.get("tail") else {}))
                          for k, v in pieces.items()})
    Path(ns.json).write_text(json.dumps(record, indent=1, default=float) + "\n")
    print(f"figures written to {ns.json}")
    return record


if __name__ == "__main__":
    main()
