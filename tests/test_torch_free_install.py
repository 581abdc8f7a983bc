"""The base install serves without torch (issue 11): a fresh virtualenv gets `pip install .`
(onnxruntime, tokenizers, numpy, click from the registry or pip's cache), then `pip check`
passes, torch is absent, `predict` answers, and commands needing the `export` extra refuse in
one line with exit 2. Slow (a real pip install, ~60 s)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from factories import demo_export

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def _run(args, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run(args, capture_output=True, text=True, timeout=600, env=env, **kwargs)


@pytest.fixture(scope="module")
def base_venv(tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("torch-free") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    # a copy of the source tree, so the build never writes into the checkout
    source = tmp_path_factory.mktemp("src")
    subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], check=True, capture_output=True)
    import shutil

    for name in ("pyproject.toml", "README.md", "convbert_export", "reference_model"):
        target = source / name
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.so", "build"))
        else:
            shutil.copyfile(ROOT / name, target)
    result = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                   str(source)])
    if result.returncode != 0:
        pytest.fail(f"pip install . failed without torch:\n{result.stderr[-3000:]}")
    return venv


def test_base_install_has_no_torch_and_pip_check_passes(base_venv):
    python = str(base_venv / "bin" / "python")
    check = _run([python, "-m", "pip", "check", "--disable-pip-version-check"])
    assert check.returncode == 0, check.stdout + check.stderr
    for module in ("torch", "onnx", "transformers"):
        probe = _run([python, "-c", f"import {module}"])
        assert probe.returncode != 0, f"{module} is installed in the base install"


def test_base_install_predicts_and_refuses_export_in_one_line(base_venv, tmp_path):
    cli = str(base_venv / "bin" / "convbert-export")
    export = demo_export("text-classification")  # made by the full install running these tests
    result = _run([cli, "predict", str(export), "--text", "a fine movie", "-q"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["result"]["label"] in ("LABEL_0", "LABEL_1")
    for command in (["export", "--preset", "demo", "--task", "text-classification", "-o", "x"],
                    ["validate", str(export)]):
        result = _run([cli, *command], cwd=tmp_path)
        assert result.returncode == 2, (command, result.stderr)
        assert result.stderr.count("\n") == 1 and "convbert-export[export]" in result.stderr, result.stderr
        assert not (tmp_path / "x").exists()
