"""The benchmark library, command and tools on a tiny export (no timing assertions)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from convbert_export.bench import BenchSettings, benchmark, model_flops, parse_int_list
from convbert_export.errors import InvalidInputError
import factories

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_export():
    return factories.demo_export("feature-extraction")  # the shared, process-wide demo export


def test_benchmark_interleaves_backends_and_reports_the_documented_fields(demo_export, tmp_path):
    settings = BenchSettings(batches=(1, 2), sequences=(8, 300), repeats=3, warmup=1, pause_s=0.0,
                             torch_reference=True)
    result = benchmark([demo_export, demo_export], settings)
    data = result.to_dict()
    names = [b["name"] for b in data["backends"]]
    assert names[0] == "pytorch-eager-fp32" and len(set(names)) == 3  # the same dir twice gets two names
    # 300 is capped at the demo's 128 positions
    assert {(r["batch"], r["sequence"]) for r in data["results"]} == {(1, 8), (1, 128), (2, 8), (2, 128)}
    for row in data["results"]:
        assert row["repeats"] == 3
        assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"]
        assert row["throughput_seq_per_s"] == pytest.approx(1000 * row["batch"] / row["p50_ms"], rel=1e-2)
        assert row["speedup_vs_reference"] > 0
    assert [(f["batch"], f["sequence"]) for f in data["floor"]] == [(1, 8), (1, 128), (2, 8), (2, 128)]
    for floor in data["floor"]:
        assert floor["fp32_floor_ms"] > 0 and floor["gemm_gflops_per_s"] > 0
        assert floor["gflop"] >= floor["gemm_gflop"] > 0
    assert any("allow_spinning=0" in note for note in data["notes"])
    assert "pytorch-eager-fp32" in result.table()
    json.dumps(data)  # serializable


def test_benchmark_command_writes_json(demo_export, tmp_path):
    from convbert_export.cli import main

    out = tmp_path / "bench.json"
    code = main(["benchmark", str(demo_export), "--batch", "1", "--sequence", "16", "--repeats", "2",
                 "--no-floor", "--json-out", str(out), "-q"])
    assert code == 0
    data = json.loads(out.read_text())
    assert set(data) >= {"settings", "machine", "notes", "backends", "results", "floor"}
    assert data["results"][0]["speedup_vs_reference"] is None and data["floor"] == []
    assert data["settings"]["threads"] == 2
    assert main(["benchmark", str(demo_export), "--batch", "0"]) == 2


def test_flops_match_the_published_count_and_scale():
    import reference_model

    config = dict(reference_model.PRESETS["conv-bert-base"])
    # 21.2 GFLOP per forward at 1 x 128 (issue 6's independent count)
    assert model_flops(config, 1, 128) / 1e9 == pytest.approx(21.2, rel=0.01)
    # linear in batch, super-linear in sequence (attention)
    assert model_flops(config, 8, 128) == pytest.approx(8 * model_flops(config, 1, 128))
    assert model_flops(config, 1, 512) > 4 * model_flops(config, 1, 128)


def test_bad_grids_are_refused():
    with pytest.raises(InvalidInputError, match="comma-separated"):
        parse_int_list("1,x", "--batch")
    with pytest.raises(InvalidInputError, match="positive"):
        parse_int_list("0", "--batch")
    with pytest.raises(InvalidInputError, match="at least one"):
        benchmark([], BenchSettings())


def test_lowering_tool_layers_match_the_definition():
    spec = importlib.util.spec_from_file_location("bench_lowerings", ROOT / "tools" / "bench_lowerings.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    import onnxruntime as ort

    rng = np.random.default_rng(3)
    value = rng.standard_normal((2, 13, tool.HEADS * tool.HEAD_SIZE)).astype(np.float32)
    logits = rng.standard_normal((2, 13, tool.HEADS * tool.KERNEL)).astype(np.float32)
    model = tool.ours_layer_model("decomposed")
    assert tool.node_count(model) == 2 * tool.KERNEL + 7
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"value": value, "kernel_logits": logits})[0]
    np.testing.assert_allclose(got, tool.reference_span_conv(value, logits), atol=1e-5)
