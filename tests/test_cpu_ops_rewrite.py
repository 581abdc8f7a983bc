"""optimize's rewrites onto our library's fused CPU ops (AddLayerNorm, DepthwiseConv, BiasGelu) on custom-op
exports: every residual LayerNorm and depthwise convolution rewritten, the same values (fp32,
1e-5) with the library's kernels and, without the library, with the ops' model-local functions;
decomposed exports (which must not need our library) are left alone."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from convbert_export.export.onnx import count_nodes
from factories import demo_export, optimized_export

ort = pytest.importorskip("onnxruntime")
TASK = "token-classification"  # per-token outputs: every position's values are compared


def _feeds():
    rng = np.random.default_rng(3)
    ids = rng.integers(5, 90, (3, 19)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 12:] = 0
    mask[2, 3:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}


def _run_without_library(directory):
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(directory / "model.onnx"), options, providers=["CPUExecutionProvider"])
    return session.run(None, _feeds())[0]


def _run(directory):
    from convbert_export.runtime import create_runner

    with create_runner(directory, custom_ops="required") as runner:
        return next(iter(runner.run(_feeds()).values()))


@pytest.fixture(scope="module")
def variants():
    return (optimized_export(TASK, dynamic_conv="custom-op"),
            optimized_export(TASK, dynamic_conv="custom-op", cpu_ops=False))


def test_every_residual_norm_and_depthwise_conv_is_one_op(variants):
    fused, plain = variants
    config = json.loads((fused / "config.json").read_text())
    layers = config["num_hidden_layers"]
    counts = count_nodes(onnx.load(str(fused / "model.onnx")))
    assert counts["com.convbert_export::AddLayerNorm"] == 2 * layers + 1  # + the embeddings' norm
    assert counts["com.convbert_export::DepthwiseConv"] == layers
    assert counts["com.convbert_export::BiasGelu"] == layers and "com.microsoft::BiasGelu" not in counts
    assert "Conv" not in counts and "InstanceNormalization" not in counts
    assert counts.get("Transpose", 0) == 0  # the depthwise half's two transposes went with it
    steps = {s["step"]: s.get("rewritten") for s in json.loads((fused / "manifest.json").read_text())["transformations"]}
    assert steps["skiplayernorm-to-addlayernorm"] == 2 * layers + 1 and steps["depthwise-to-depthwiseconv"] == layers
    assert steps["biasgelu-to-ours"] == layers
    assert count_nodes(onnx.load(str(plain / "model.onnx")))["Conv"] == layers


def test_kernels_compute_what_the_standard_ops_do(variants, tmp_path):
    fused, plain = variants
    np.testing.assert_allclose(_run(fused), _run(plain), atol=1e-5, rtol=0)
    # and it was our kernels that ran, not the functions' bodies
    from convbert_export.custom_ops import library_path

    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library_path()))
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp_path / "profile")
    session = ort.InferenceSession(str(fused / "model.onnx"), options, providers=["CPUExecutionProvider"])
    session.run(None, _feeds())
    events = json.loads(open(session.end_profiling()).read())
    ran = {e["args"].get("op_name") for e in events if e.get("cat") == "Node"}
    assert {"AddLayerNorm", "DepthwiseConv", "BiasGelu", "DynamicConv"} <= ran
    assert not {"LayerNormalization", "Conv", "Erf"} & ran


def test_without_the_library_the_functions_compute_the_same(variants):
    fused, plain = variants
    np.testing.assert_allclose(_run_without_library(fused), _run(plain), atol=1e-5, rtol=0)


def test_decomposed_exports_do_not_start_needing_the_library():
    directory = optimized_export(TASK)
    assert demo_export(TASK).is_dir()
    model = onnx.load(str(directory / "model.onnx"))
    assert not any(node.domain == "com.convbert_export" for node in model.graph.node)
    steps = [s["step"] for s in json.loads((directory / "manifest.json").read_text())["transformations"]]
    assert "skiplayernorm-to-addlayernorm" not in steps and "depthwise-to-depthwiseconv" not in steps
