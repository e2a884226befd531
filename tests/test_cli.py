"""Top-level CLI dispatcher."""
import subprocess
import sys

from jaxtwin.cli import main


def test_version_and_help(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == __import__("jaxtwin").__version__
    assert main([]) == 2
    assert "coevodt" in capsys.readouterr().out


def test_unknown_system_is_an_error():
    r = subprocess.run([sys.executable, "-m", "jaxtwin", "nosuch"], capture_output=True, text=True)
    assert r.returncode == 2 and "invalid choice" in r.stderr


def test_compilation_cache_is_written_then_reused(tmp_path):
    """Two identical CLI runs in fresh processes: the first stores its compiled programs
    under $JAXTWIN_CACHE_DIR, the second finds every one of them (no new entries) and
    writes the same CSVs."""
    import os
    import subprocess
    import sys

    cache = tmp_path / "cache"
    env = dict(os.environ, JAXTWIN_CACHE_DIR=str(cache), JAX_PLATFORMS="cpu",
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")  # store every program: no threshold effects
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    argv = ["coevodt", "--mode", "NoPred", "--runs", "2", "--episodes", "10", "--evolve-freq", "5",
            "--forecast.online-every", "5", "--pop-size", "3", "--tournament-k", "2", "--n-replace", "1",
            "--baseline-episodes", "10", "--eval-episodes", "3", "--eval-per-member", "1",
            "--convergence-window", "5", "--episode-len", "12", "--forecast.window", "4",
            "--bootstrap-resamples", "200", "--no-progress"]
    entries = []
    for out in ("a", "b"):
        r = subprocess.run([sys.executable, "-m", "jaxtwin", *argv, "--out", str(tmp_path / out)],
                           capture_output=True, text=True, env=env, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        entries.append({p.name for p in cache.iterdir() if p.name.endswith("-cache")})
    assert entries[0], "the first run stored no compiled program"
    assert entries[1] == entries[0], f"the second run compiled anew: {sorted(entries[1] - entries[0])[:3]}"
    csvs = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.csv"))
    assert csvs
    for f in csvs:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_compilation_cache_folder_rules(tmp_path, monkeypatch):
    from jaxtwin.core.compile_cache import default_cache_dir

    monkeypatch.setenv("JAXTWIN_CACHE_DIR", "")
    assert default_cache_dir() is None
    monkeypatch.setenv("JAXTWIN_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("JAXTWIN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "jaxtwin" / "xla"
