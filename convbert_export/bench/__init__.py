"""Latency benchmark of export directories (and the PyTorch reference), interleaved in one process.

Shared by ``convbert-export benchmark`` and ``tools/bench.py``. Every directory (export or
TensorRT engine) runs through the one runner path (``runtime/factory.py``) and is timed as
``runner.run(feeds)``. For every (batch, sequence) of the grid, each backend is warmed up, then timed call by call in ROUND-ROBIN order (the order
rotates every repeat), so all backends see the same machine noise and their ratios hold on a
shared 2-core machine. ONNX Runtime sessions run with ``session.intra_op.allow_spinning = 0``
and a short pause separates timed calls, so one backend's idle worker threads (ORT's, or
OpenMP's in torch) do not slow the next one.

Also measured in the same run: the machine's fp32 GEMM rate on the model's own matrix shapes (ONNX Runtime MatMul),
the model's FLOPs (analytic, from config.json) and the fp32 "GEMM floor" = the time those
GEMMs alone take, which no fp32 backend can beat.

The package: run.py (settings, runners from the factory, interleaved timing, results) and
floor.py (FLOPs and the fp32 GEMM floor).
"""

from .floor import GemmFloor, model_flops, model_gemms
from .run import (
    REFERENCE_NAME,
    BenchResult,
    BenchSettings,
    Timing,
    benchmark,
    make_feeds,
    open_backend,
    open_reference,
    parse_int_list,
    time_interleaved,
    write_html,
    write_json,
    write_reports,
)

__all__ = ["BenchSettings", "BenchResult", "benchmark", "time_interleaved", "model_flops", "model_gemms", "GemmFloor",
           "write_json", "write_html", "write_reports", "parse_int_list", "Timing", "make_feeds", "open_backend", "open_reference", "REFERENCE_NAME"]
