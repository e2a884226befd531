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
