"""Rewrites onto our custom-op library's fused CPU ops (``custom_ops/``, domain
``com.convbert_export``), for exports that already need that library (``--dynamic-conv
custom-op``):

* :class:`DepthwiseToCustomOp`: ``Transpose(Conv(Transpose(Mul(x, mask)), W, group=C))`` (the
  separable convolution's depthwise half, run by ONNX Runtime in (B, C, S) layout between two
  transposes) as one ``DepthwiseConv(x, W[:, 0, :], mask)`` in (B, S, C) layout.
* :class:`BiasGeluToCustomOp`: ``com.microsoft::BiasGelu`` (exact, erf) as our vectorized
  ``BiasGelu`` (ONNX Runtime's CPU kernel takes ~200 us per 128 x 3072 call at 2 threads).
* :class:`SkipLayerNormToCustomOp`: ``com.microsoft::SkipLayerNormalization`` (residual Add +
  LayerNorm, whose ONNX Runtime CPU kernel is scalar) as one vectorized ``AddLayerNorm``.

Each op also gets a model-local function of the same name (the standard-op body), so shape
inference and the quantizer see through it, and ONNX Runtime without our library still runs the
model (slower), as with ``DynamicConv`` (``export/dynamic_conv.py``).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from ..custom_ops import ADD_LAYER_NORM_OP_TYPE, BIAS_GELU_OP_TYPE, DEPTHWISE_CONV_OP_TYPE, DOMAIN
from .graph import Fusion, _attr, _Graph
from .settings import MS_DOMAIN

DEPTHWISE_OP = DEPTHWISE_CONV_OP_TYPE
ADD_LAYER_NORM_OP = ADD_LAYER_NORM_OP_TYPE
BIAS_GELU_OP = BIAS_GELU_OP_TYPE


def _opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _declare(model: onnx.ModelProto, function: onnx.FunctionProto) -> None:
    if not any(f.domain == function.domain and f.name == function.name for f in model.functions):
        model.functions.append(function)
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))


def depthwise_function(channels: int, kernel_size: int, opset: int) -> onnx.FunctionProto:
    """``DepthwiseConv(x (B,S,C), weight (C,K), mask (B,S,1))`` as Mul, Transpose, Conv, Transpose."""
    pad = (kernel_size - 1) // 2
    nodes = [
        helper.make_node("Constant", [], ["axis1"], value_ints=[1]),
        helper.make_node("Mul", ["x", "mask"], ["masked"]),
        helper.make_node("Transpose", ["masked"], ["channels_first"], perm=[0, 2, 1]),
        helper.make_node("Unsqueeze", ["weight", "axis1"], ["weight3"]),
        helper.make_node("Conv", ["channels_first", "weight3"], ["conv"], group=channels, kernel_shape=[kernel_size],
                         pads=[pad, pad], strides=[1], dilations=[1]),
        helper.make_node("Transpose", ["conv"], ["y"], perm=[0, 2, 1]),
    ]
    return helper.make_function(DOMAIN, DEPTHWISE_OP, ["x", "weight", "mask"], ["y"], nodes,
                                [helper.make_opsetid("", opset)])


def add_layer_norm_function(opset: int) -> onnx.FunctionProto:
    """``AddLayerNorm(x, skip, gamma, beta, bias)`` as Add, Add, LayerNormalization(epsilon)."""
    epsilon = onnx.AttributeProto()
    epsilon.name, epsilon.ref_attr_name, epsilon.type = "epsilon", "epsilon", onnx.AttributeProto.FLOAT
    norm = helper.make_node("LayerNormalization", ["total", "gamma", "beta"], ["y"], axis=-1)
    norm.attribute.append(epsilon)
    nodes = [
        helper.make_node("Add", ["x", "skip"], ["summed"]),
        helper.make_node("Add", ["summed", "bias"], ["total"]),
        norm,
    ]
    return helper.make_function(DOMAIN, ADD_LAYER_NORM_OP, ["x", "skip", "gamma", "beta", "bias"], ["y"], nodes,
                                [helper.make_opsetid("", opset)], attributes=["epsilon"])


def bias_gelu_function(opset: int) -> onnx.FunctionProto:
    """``BiasGelu(x, bias)`` = ``0.5 * z * (1 + Erf(z / sqrt(2)))``, ``z = x + bias``."""
    nodes = [
        helper.make_node("Constant", [], ["root2"], value_float=float(np.sqrt(2.0))),
        helper.make_node("Constant", [], ["one"], value_float=1.0),
        helper.make_node("Constant", [], ["half"], value_float=0.5),
        helper.make_node("Add", ["x", "bias"], ["z"]),
        helper.make_node("Div", ["z", "root2"], ["scaled"]),
        helper.make_node("Erf", ["scaled"], ["erf"]),
        helper.make_node("Add", ["erf", "one"], ["cdf2"]),
        helper.make_node("Mul", ["z", "cdf2"], ["twice"]),
        helper.make_node("Mul", ["twice", "half"], ["y"]),
    ]
    return helper.make_function(DOMAIN, BIAS_GELU_OP, ["x", "bias"], ["y"], nodes, [helper.make_opsetid("", opset)])


class BiasGeluToCustomOp(Fusion):
    """``com.microsoft::BiasGelu(x, bias)`` (bias a float32 constant vector) -> ours."""

    anchors = ("BiasGelu",)

    def match(self, g: _Graph, node):
        if node.domain != MS_DOMAIN or len(node.input) != 2:
            return None
        bias = g.const(node.input[1])
        if bias is None or bias.ndim != 1 or bias.dtype != np.float32:
            return None
        return node

    def fuse(self, g: _Graph, node):
        new = helper.make_node(BIAS_GELU_OP, list(node.input), [node.output[0]], domain=DOMAIN, name=g.fresh("bias_gelu"))
        return [new], node, [node]

    def finish(self, model: onnx.ModelProto) -> None:
        _declare(model, bias_gelu_function(_opset(model)))


class DepthwiseToCustomOp(Fusion):
    """``Transpose(Conv(Transpose(Mul(x, mask), [0,2,1]), W (C,1,K), group=C, pads p,p), [0,2,1])``
    -> ``DepthwiseConv(x, W[:, 0, :], mask)``; ``mask`` is (B, S, 1) (an Unsqueeze on the last
    axis of a 2-D tensor). One (C, K) per model (the function's Conv attributes are constants)."""

    anchors = ("Conv",)

    def apply(self, model: onnx.ModelProto) -> int:
        self._shape: tuple[int, int] | None = None
        self._model = model
        return super().apply(model)

    def match(self, g: _Graph, conv):
        weight = g.const(conv.input[1]) if len(conv.input) > 1 else None
        if weight is None or weight.ndim != 3 or weight.shape[1] != 1 or weight.dtype != np.float32:
            return None
        channels, kernel = weight.shape[0], weight.shape[2]
        pad = (kernel - 1) // 2
        if kernel % 2 == 0 or _attr(conv, "group", 1) != channels or (len(conv.input) > 2 and conv.input[2]):
            return None
        if list(_attr(conv, "pads") or [0, 0]) != [pad, pad] or any(v != 1 for v in (_attr(conv, "strides") or [1])):
            return None
        if any(v != 1 for v in (_attr(conv, "dilations") or [1])) or _attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            return None
        before = g.parent(conv, 0, "Transpose")
        after = g.single_consumer(conv.output[0])
        if before is None or after is None or after.op_type != "Transpose":
            return None
        if list(_attr(before, "perm") or []) != [0, 2, 1] or list(_attr(after, "perm") or []) != [0, 2, 1]:
            return None
        if g.single_consumer(before.output[0]) is None:
            return None
        mul = g.parent(before, 0, "Mul")
        if mul is None or g.single_consumer(mul.output[0]) is None:
            return None
        for x, mask in ((mul.input[0], mul.input[1]), (mul.input[1], mul.input[0])):
            unsqueeze = g.producer.get(mask)
            axes = g.const(unsqueeze.input[1]) if unsqueeze is not None and unsqueeze.op_type == "Unsqueeze" and len(unsqueeze.input) > 1 else None
            if axes is not None and axes.reshape(-1).tolist() in ([2], [-1]) and g.const(x) is None:
                break
        else:
            return None
        if self._shape is None:
            self._shape = (channels, kernel)
        if self._shape != (channels, kernel):
            return None
        return conv, before, after, mul, x, mask, weight

    def fuse(self, g: _Graph, match):
        conv, before, after, mul, x, mask, weight = match
        w = g.add_initializer(np.ascontiguousarray(weight[:, 0, :]), "depthwise_weight")
        node = helper.make_node(DEPTHWISE_OP, [x, w, mask], [after.output[0]], domain=DOMAIN, name=g.fresh("depthwise"))
        return [node], mul, [mul, before, conv, after]

    def finish(self, model: onnx.ModelProto) -> None:
        _declare(model, depthwise_function(*self._shape, _opset(model)))


class SkipLayerNormToCustomOp(Fusion):
    """Residual Add + LayerNorm as one vectorized ``AddLayerNorm(x, skip, gamma, beta, bias)``
    (a missing beta or bias becomes zeros). Two forms: ONNX Runtime's fused
    ``com.microsoft::SkipLayerNormalization(x, skip, gamma[, beta[, bias]])``, and
    ``LayerNormalization(Add(x, skip), gamma[, beta], axis=-1)`` as exported (ONNX Runtime's
    optimizer leaves that when its shape inference cannot see through a custom op), where an
    ``Add(MatMul, constant bias)`` feeding the sum becomes the bias input. Only nodes whose
    mean / inverse-std / sum outputs nobody reads."""

    anchors = ("SkipLayerNormalization", "LayerNormalization")

    @staticmethod
    def _unused(g: _Graph, names) -> bool:
        return not any(name and (name in g.consumers or name in g.outputs) for name in names)

    def _vector(self, g: _Graph, name: str, size: int | None):
        value = g.const(name)
        if value is None or value.ndim != 1 or value.dtype != np.float32 or (size is not None and value.shape[0] != size):
            return None
        return value

    def match(self, g: _Graph, node):
        if not self._unused(g, node.output[1:]):
            return None
        if node.op_type == "SkipLayerNormalization":
            if node.domain != MS_DOMAIN or len(node.input) < 3:
                return None
            gamma = self._vector(g, node.input[2], None)
            if gamma is None:
                return None
            extras = [node.input[i] if len(node.input) > i and node.input[i] else None for i in (3, 4)]
            if any(name is not None and self._vector(g, name, gamma.shape[0]) is None for name in extras):
                return None
            return node, [node.input[0], node.input[1], node.input[2], *extras], gamma.shape[0], [node], float(_attr(node, "epsilon", 1e-12))
        if node.domain not in ("", "ai.onnx") or _attr(node, "axis", -1) != -1:
            return None
        gamma = self._vector(g, node.input[1], None)
        beta = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if gamma is None or (beta is not None and self._vector(g, beta, gamma.shape[0]) is None):
            return None
        add = g.parent(node, 0, "Add")
        if add is None or g.single_consumer(add.output[0]) is None or any(g.const(i) is not None for i in add.input):
            return None
        x, skip, bias, absorbed = add.input[0], add.input[1], None, [add]
        for first, second in ((x, skip), (skip, x)):
            inner = g.producer.get(first)
            if inner is not None and inner.op_type == "Add" and g.single_consumer(first) is not None:
                constant = [i for i in inner.input if self._vector(g, i, gamma.shape[0]) is not None]
                if len(constant) == 1 and len(inner.input) == 2:
                    x, skip, bias = next(i for i in inner.input if i != constant[0]), second, constant[0]
                    absorbed.append(inner)
                    break
        return node, [x, skip, node.input[1], beta, bias], gamma.shape[0], [node, *absorbed], float(_attr(node, "epsilon", 1e-5))

    def fuse(self, g: _Graph, match):
        node, inputs, hidden, obsolete, eps = match
        inputs = [name if name is not None else g.add_initializer(np.zeros(hidden, np.float32), "zeros") for name in inputs]
        new = helper.make_node(ADD_LAYER_NORM_OP, inputs, [node.output[0]], domain=DOMAIN, epsilon=eps,
                               name=g.fresh("add_layer_norm"))
        return [new], node, obsolete

    def finish(self, model: onnx.ModelProto) -> None:
        _declare(model, add_layer_norm_function(_opset(model)))


def depthwise_to_custom_op(model: onnx.ModelProto) -> int:
    """Apply :class:`DepthwiseToCustomOp`; returns the number of rewritten convolutions."""
    return DepthwiseToCustomOp().apply(model)


def bias_gelu_to_custom_op(model: onnx.ModelProto) -> int:
    """Apply :class:`BiasGeluToCustomOp`; returns the number of rewritten activations."""
    return BiasGeluToCustomOp().apply(model)


def skip_layer_norm_to_custom_op(model: onnx.ModelProto) -> int:
    """Apply :class:`SkipLayerNormToCustomOp`; returns the number of rewritten normalizations."""
    return SkipLayerNormToCustomOp().apply(model)
