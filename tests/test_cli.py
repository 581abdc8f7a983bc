"""The console script in a fresh interpreter: every command listed and loadable."""

from __future__ import annotations

import subprocess
import sys

from convbert_export.cli import COMMANDS


def _run(*args: str) -> subprocess.CompletedProcess:
    code = "import sys; from convbert_export.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120)


def test_help_lists_every_command():
    result = _run("--help")
    assert result.returncode == 0, result.stderr
    for name in COMMANDS:
        assert name in result.stdout, name


def test_each_command_loads_in_a_fresh_interpreter():
    for name in COMMANDS:
        result = _run(name, "--help")
        assert result.returncode == 0, (name, result.stderr[-2000:])
        assert "Usage:" in result.stdout


def test_unknown_command_is_a_usage_error():
    result = _run("frobnicate")
    assert result.returncode == 2 and "No such command" in result.stderr
