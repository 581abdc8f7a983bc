"""One runner path: the backend registry, create_runner, and strict providers for validation
and benchmarks (a missing provider is one error line, never a silent fallback)."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from convbert_export.cli import main
from convbert_export.errors import UnknownNameError
from convbert_export.runtime import RUNNERS
from convbert_export.runtime.base import Runner, TensorMeta
from convbert_export.runtime.factory import backend_for, create_runner


class EchoRunner(Runner):
    """A throwaway backend: returns its input ids as floats (proves registration is one entry)."""

    def __init__(self, path, scale: float = 1.0):
        super().__init__(name="EchoRunner")
        self.path, self.scale = path, scale

    def start_impl(self):
        self.input_metadata = {"input_ids": TensorMeta("input_ids", np.dtype(np.int64), ("batch", "sequence"))}
        self.output_names = ("echo",)

    def close_impl(self):
        pass

    def run_impl(self, feeds):
        return {"echo": feeds["input_ids"].astype(np.float32) * self.scale}


def test_a_backend_is_one_registry_entry(monkeypatch, tmp_path):
    monkeypatch.setitem(RUNNERS, "echo", (__name__, "EchoRunner"))
    with create_runner(tmp_path, backend="echo", scale=2.0) as runner:
        assert runner.run({"input_ids": np.array([[1, 2]])})["echo"].tolist() == [[2.0, 4.0]]
    with pytest.raises(UnknownNameError, match=f"unknown backend 'nope'; expected one of: {', '.join(RUNNERS)}$"):
        create_runner(tmp_path, backend="nope")
    with pytest.raises(ValueError, match="takes no provider"):
        create_runner(tmp_path, backend="echo", provider="cuda")
    assert list(RUNNERS)[-1] == "echo" and backend_for(tmp_path) == "onnxruntime"
    (tmp_path / "engine.json").write_text("{}")
    assert backend_for(tmp_path) == "tensorrt"


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_validate_and_benchmark_refuse_a_missing_provider_in_one_line(artifacts, capsys, provider):
    from convbert_export.runtime.ort import PROVIDERS

    if PROVIDERS[provider] in onnxruntime.get_available_providers():
        pytest.skip(f"this onnxruntime has {PROVIDERS[provider]}")
    _, _, export = artifacts.get("text-classification")
    capsys.readouterr()
    assert main(["validate", str(export), "--provider", provider, "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot validate on {provider!r}") and err.count("\n") == 1, err
    assert "CPUExecutionProvider" in err and "--provider cpu" in err
    assert main(["benchmark", str(export), "--provider", provider, "--batch", "1", "--sequence", "8", "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and PROVIDERS[provider] in err and err.count("\n") == 1, err


def test_serving_still_falls_back_with_a_warning(artifacts):
    from convbert_export.runtime.ort import PROVIDERS

    if PROVIDERS["cuda"] in onnxruntime.get_available_providers():
        pytest.skip("this onnxruntime has the CUDA provider")
    _, _, export = artifacts.get("text-classification")
    runner = create_runner(export, provider="cuda")
    with pytest.warns(RuntimeWarning, match="falling back to 'cpu'"):
        runner.start()
    assert runner.provider == "cpu" and runner.describe()["backend"] == "onnxruntime CPUExecutionProvider"
    runner.close()
