"""``validate ENGINE_DIR`` and ``benchmark ENGINE_DIR`` run the engine through the same runner
path (runtime/factory.py) as an export on ONNX Runtime: they pass where the engine can run, and
fail in one line (exit 2) where it cannot (no GPU, not an RTX GPU)."""

from __future__ import annotations

import pytest

from convbert_export.cli import main
from convbert_export.errors import ConvBertExportError


def _startable(engine) -> str | None:
    """None when the engine runs here, else the runner's own one-line error."""
    from convbert_export.runtime.trt import TrtRunner

    try:
        with TrtRunner(engine):
            return None
    except ConvBertExportError as exc:
        return str(exc)


@pytest.mark.tensorrt
def test_validate_and_benchmark_an_engine_directory(rtx_engine, capsys):
    engine = rtx_engine("text-classification", "decomposed")
    problem = _startable(engine)
    code = main(["validate", str(engine), "-q"])
    err = capsys.readouterr().err
    bench = main(["benchmark", str(engine), "--batch", "1", "--sequence", "8", "--repeats", "1", "--warmup", "0",
                  "--no-floor", "-q"])
    bench_err = capsys.readouterr().err
    if problem is None:  # a GPU that runs the engine: both work like on ONNX Runtime
        assert code == 0, err
        assert bench == 0, bench_err
        return
    assert code == 2 and err.startswith("error: cannot validate on 'tensorrt': ") and err.count("\n") == 1, err
    assert problem.splitlines()[0] in err
    assert bench == 2 and bench_err.startswith("error: ") and bench_err.count("\n") == 1, bench_err
    assert problem.splitlines()[0] in bench_err
    # an ONNX Runtime provider is refused for an engine directory, as by Pipeline.from_export
    assert main(["validate", str(engine), "--provider", "cpu", "-q"]) == 2
    assert "only on TensorRT; got provider='cpu'" in capsys.readouterr().err
