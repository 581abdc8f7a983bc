"""optimize's LayerNormAsInstanceNorm rewrite on hand-built graphs, run by ONNX Runtime before
and after: the same values (fp32, 1e-5), every supported form rewritten, the rest left alone."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from convbert_export.optimize.rewrites import layernorm_as_instancenorm

ort = pytest.importorskip("onnxruntime")
HIDDEN = 24


def _model(nodes, outputs, extra_inits=()):
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(1.0, 0.3, HIDDEN).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.normal(0.0, 0.3, HIDDEN).astype(np.float32), "beta"),
             numpy_helper.from_array(rng.normal(0.0, 0.3, HIDDEN).astype(np.float32), "bias"), *extra_inits]
    inputs = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "sequence", HIDDEN]) for name in ("x", "skip")]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["batch", "sequence", HIDDEN]) for o in outputs], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)])


def _run(model, feeds):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # run the graph as written
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"]).run(None, feeds)


def _feeds(shape=(3, 7)):
    rng = np.random.default_rng(1)
    return {name: (rng.normal(0.5, 2.0, (*shape, HIDDEN))).astype(np.float32) for name in ("x", "skip")}


@pytest.mark.parametrize("shape", [(3, 7), (1, 1), (2, 40)])
def test_every_form_is_rewritten_and_computes_the_same(shape):
    nodes = [
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln"], axis=-1, epsilon=1e-12),
        helper.make_node("LayerNormalization", ["skip", "gamma"], ["ln_nobeta"], axis=-1, epsilon=1e-5),
        helper.make_node("SkipLayerNormalization", ["ln", "skip", "gamma", "beta", "bias"], ["sln", "", "", "sum"],
                         domain="com.microsoft", epsilon=1e-12),
        helper.make_node("SkipLayerNormalization", ["sln", "sum", "gamma"], ["sln2"], domain="com.microsoft", epsilon=1e-12),
    ]
    model = _model(nodes, ["ln_nobeta", "sln2", "sum"])
    feeds = _feeds(shape)
    before = _run(model, feeds)
    assert layernorm_as_instancenorm(model) == 4
    onnx.checker.check_model(model)
    ops = [node.op_type for node in model.graph.node]
    assert "LayerNormalization" not in ops and "SkipLayerNormalization" not in ops
    assert ops.count("InstanceNormalization") == 4
    for got, want in zip(_run(model, feeds), before):
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0)


def test_forms_it_cannot_express_are_left_alone():
    nodes = [
        # the mean output is read: InstanceNormalization cannot give it
        helper.make_node("LayerNormalization", ["x", "gamma", "beta"], ["ln", "mean"], axis=-1),
        # normalizes over the last two axes
        helper.make_node("LayerNormalization", ["skip", "gamma2d"], ["ln2"], axis=1),
        # gamma is a graph input, not a constant
        helper.make_node("Add", ["x", "skip"], ["dyn_gamma"]),
    ]
    gamma2d = numpy_helper.from_array(np.ones((7, HIDDEN), np.float32), "gamma2d")
    model = _model(nodes, ["ln", "mean", "ln2"], [gamma2d])
    assert layernorm_as_instancenorm(model) == 0
    assert [node.op_type for node in model.graph.node].count("LayerNormalization") == 2
