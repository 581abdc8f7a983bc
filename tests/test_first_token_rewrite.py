"""optimize's FirstTokenOnly rewrite: a head that reads position 0 gets the last layer's token-wise
tail computed for that position alone, with the same values (fp32, 1e-5); graphs whose per-token
tensors are read elsewhere, or that broadcast along the positions, are left alone."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convbert_export.optimize.rewrites import first_token_only
from factories import demo_export, optimized_export

ort = pytest.importorskip("onnxruntime")
HIDDEN = 16


def _tail_model(extra_outputs=(), position_rank=3):
    """x -> MatMul -> Add(pos) -> LayerNorm -> MatMul -> Gelu -> MatMul -> SkipLN -> Gather(axis 1, 0) -> MatMul."""
    rng = np.random.default_rng(0)

    def init(name, *shape):
        return numpy_helper.from_array(rng.normal(0, 0.3, shape).astype(np.float32), name)

    inits = [init("w0", HIDDEN, HIDDEN), init("w1", HIDDEN, 4 * HIDDEN), init("b1", 4 * HIDDEN), init("w2", 4 * HIDDEN, HIDDEN),
             init("gamma", HIDDEN), init("beta", HIDDEN), init("head", HIDDEN, 3),
             numpy_helper.from_array(np.array(0, dtype=np.int64), "zero")]
    nodes = [
        helper.make_node("MatMul", ["x", "w0"], ["proj"]),
        helper.make_node("Add", ["proj", "pos"], ["with_pos"]),
        helper.make_node("LayerNormalization", ["with_pos", "gamma", "beta"], ["ln"], axis=-1, epsilon=1e-12),
        helper.make_node("MatMul", ["ln", "w1"], ["up"]),
        helper.make_node("BiasGelu", ["up", "b1"], ["act"], domain="com.microsoft"),
        helper.make_node("MatMul", ["act", "w2"], ["down"]),
        helper.make_node("SkipLayerNormalization", ["down", "ln", "gamma", "beta"], ["hidden"], domain="com.microsoft",
                         epsilon=1e-12),
        helper.make_node("Gather", ["hidden", "zero"], ["first"], axis=1),
        helper.make_node("MatMul", ["first", "head"], ["logits"]),
    ]
    pos_shape = ["batch", "sequence", HIDDEN] if position_rank == 3 else ["sequence", HIDDEN]
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", HIDDEN]),
              helper.make_tensor_value_info("pos", TensorProto.FLOAT, pos_shape)]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3])]
    outputs += [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "sequence", HIDDEN]) for name in extra_outputs]
    graph = helper.make_graph(nodes, "tail", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)])


def _run(model, feeds):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # run the graph as written
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, feeds)


def _feeds(position_rank=3, shape=(3, 9)):
    rng = np.random.default_rng(1)
    pos_shape = (*shape, HIDDEN) if position_rank == 3 else (shape[1], HIDDEN)
    return {"x": rng.normal(0, 1, (*shape, HIDDEN)).astype(np.float32),
            "pos": rng.normal(0, 1, pos_shape).astype(np.float32)}


@pytest.mark.parametrize("shape", [(3, 9), (1, 1)])
def test_the_token_wise_tail_runs_on_position_zero_with_the_same_values(shape):
    model = _tail_model()
    feeds = _feeds(shape=shape)
    before = _run(model, feeds)
    assert first_token_only(model) == 3  # w0, w1, w2 (the head's MatMul reads the Gather already)
    onnx.checker.check_model(model)
    slices = [node for node in model.graph.node if node.op_type == "Slice"]
    assert sorted(node.input[0] for node in slices) == ["pos", "x"]
    np.testing.assert_allclose(_run(model, feeds)[0], before[0], atol=1e-5, rtol=0)


def test_a_per_token_output_keeps_its_producers_whole():
    model = _tail_model(extra_outputs=("ln",))
    feeds = _feeds()
    before = _run(model, feeds)
    # the feed-forward still shrinks to position 0; "ln" and what it needs stay whole
    assert first_token_only(model) == 2
    sliced = {node.input[0] for node in model.graph.node if node.op_type == "Slice"}
    assert sliced == {"ln"}
    for got, want in zip(_run(model, feeds), before):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_an_activation_broadcast_along_the_positions_stops_the_walk():
    model = _tail_model(position_rank=2)  # pos is (sequence, hidden): its axis 1 is not the positions
    feeds = _feeds(position_rank=2)
    before = _run(model, feeds)
    assert first_token_only(model) == 2  # w1, w2; the Add of pos and the MatMul before it stay whole
    assert {node.input[0] for node in model.graph.node if node.op_type == "Slice"} == {"with_pos"}
    np.testing.assert_allclose(_run(model, feeds)[0], before[0], atol=1e-5, rtol=0)


def _session(directory):
    from convbert_export.runtime import create_runner

    return create_runner(directory)


def test_text_classification_export_is_pruned_and_keeps_exact_batching():
    pruned, whole = optimized_export("text-classification"), optimized_export("text-classification", first_token=False)
    manifest = onnx.load(str(pruned / "model.onnx"), load_external_data=False)
    assert sum(node.op_type == "Slice" for node in manifest.graph.node) > sum(
        node.op_type == "Slice" for node in onnx.load(str(whole / "model.onnx"), load_external_data=False).graph.node)
    rng = np.random.default_rng(2)
    ids = rng.integers(5, 90, (4, 21)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 15:] = 0
    mask[3, 4:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    with _session(pruned) as a, _session(whole) as b:
        got, want = a.run(feeds), b.run(feeds)
        np.testing.assert_allclose(got["logits"], want["logits"], atol=1e-5, rtol=0)
        # a text alone gives what it gives in the padded batch
        alone = a.run({k: v[3:4, :4] for k, v in feeds.items()})
        np.testing.assert_allclose(alone["logits"][0], got["logits"][3], atol=1e-5, rtol=0)


@pytest.mark.parametrize("task", ["token-classification", "feature-extraction"])
def test_per_token_heads_are_left_alone(task):
    import json

    steps = json.loads((optimized_export(task) / "manifest.json").read_text())["transformations"]
    assert [s["rewritten"] for s in steps if s["step"] == "first-token-only"] == [0]
    assert demo_export(task).is_dir()


def test_openvino_variants_get_the_rewrite_and_the_same_logits(tmp_path):
    pytest.importorskip("openvino")
    from convbert_export.manifest import load_manifest
    from convbert_export.optimize import OptimizeSettings, optimize

    out = tmp_path / "ov-f32"  # from a custom-op export: the rewritten graph's functions are inlined too
    result = optimize(demo_export("text-classification", dynamic_conv="custom-op"), out, OptimizeSettings(openvino="f32"))
    assert result.report.passed
    steps = [s for s in load_manifest(out).transformations if s["step"] == "first-token-only"]
    assert steps and steps[0]["rewritten"] == 3
    assert not list(tmp_path.glob(".first-token-*"))  # the rewritten graph's folder is gone
    with _session(out) as a, _session(demo_export("text-classification")) as b:
        feeds = {"input_ids": np.array([[2, 40, 41, 42, 3]]), "attention_mask": np.ones((1, 5), np.int64),
                 "token_type_ids": np.zeros((1, 5), np.int64)}
        np.testing.assert_allclose(a.run(feeds)["logits"], b.run(feeds)["logits"], atol=1e-5, rtol=0)
