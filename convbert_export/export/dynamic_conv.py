"""The two ONNX lowerings of the span-based dynamic convolution.

The reference model computes the convolution through one registered torch op,
``torch.ops.convbert.dynamic_conv(value, kernel_logits, kernel_size, num_heads)``. The exporter
maps that op to ONE custom node, ``com.convbert_export::DynamicConv`` (translation below), and
gives the model a model-local ONNX function of the same domain and name whose body is the
decomposed lowering. Then:

* ``decomposed``: the function is inlined, leaving only default-domain operators;
* ``custom-op``: the node stays, with a ``plugin_namespace`` attribute (so TensorRT 10.15+ picks
  our plugin over the function), and the function stays too, so a runtime without our library
  still runs the model (ONNX Runtime uses a registered kernel over a local function, and the
  body when none is registered).

The decomposed body (per layer, S = sequence, H heads of D, kernel K, p = (K-1)/2)::

    w   = Softmax(Reshape(kernel_logits, [0, 0, H, K]), axis=-1)       # (B, S, H, K)
    w_j = Split(w, axis=3, num_outputs=K)                             # K x (B, S, H, 1)
    v   = Pad(Reshape(value, [0, 0, H, D]), p zeros before/after on axis 1)  # (B, S+2p, H, D)
    out = Reshape(Sum_j Slice(v, j, j-2p, axis=1) * w_j, [0, 0, H*D])  # (B, S, H*D)

2K + 6 compute nodes (24 for K = 9) against ~29 index-arithmetic nodes of the ``unfold``
lowering, and no Gather: every slice is a strided view. See tools/bench_dynamic_conv.py.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from ..custom_ops import DOMAIN, OP_TYPE, PLUGIN_NAMESPACE
from ..manifest import DYNAMIC_CONV_MODES

MODES = DYNAMIC_CONV_MODES
INT64_MAX = 2**63 - 1


def register_schema() -> None:
    """Register the DynamicConv OpSchema with onnx (onnxscript emits only ops it has a schema for)."""
    try:
        onnx.defs.get_schema(OP_TYPE, 1, DOMAIN)
        return
    except onnx.defs.SchemaError:
        pass
    param = onnx.defs.OpSchema.FormalParameter
    attr = onnx.defs.OpSchema.Attribute
    kind = onnx.defs.OpSchema.AttrType
    schema = onnx.defs.OpSchema(
        OP_TYPE,
        DOMAIN,
        1,
        doc="ConvBERT span-based dynamic convolution with the kernel softmax inside "
        "(see custom_ops/README.md).",
        inputs=[param("value", "T", "(B, S, H*D)"), param("kernel_logits", "T", "(B, S, H*K)")],
        outputs=[param("output", "T", "(B, S, H*D)")],
        type_constraints=[("T", ["tensor(float)", "tensor(float16)"], "float tensors")],
        attributes=[
            attr("kernel_size", kind.INT, "odd kernel width K"),
            attr("num_heads", kind.INT, "number of convolution heads H"),
            attr("head_size", kind.INT, "channels per head D"),
            attr("plugin_namespace", kind.STRING, "TensorRT plugin namespace (ignored by kernels)"),
        ],
    )
    onnx.defs.register_schema(schema)


def make_translation(head_size: int):
    """An onnxscript translation of ``convbert::dynamic_conv`` to one custom-domain node."""
    from onnxscript.values import Opset

    register_schema()
    custom = Opset(DOMAIN, 1)

    def dynamic_conv(value, kernel_logits, kernel_size: int, num_heads: int):
        return custom.DynamicConv(
            value,
            kernel_logits,
            kernel_size=kernel_size,
            num_heads=num_heads,
            head_size=head_size,
            plugin_namespace=PLUGIN_NAMESPACE,
        )

    return dynamic_conv


def _const_ints(name: str, values: list[int]) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [len(values)], values)
    )


def decomposed_function(kernel_size: int, num_heads: int, head_size: int, opset: int) -> onnx.FunctionProto:
    """The model-local function ``com.convbert_export::DynamicConv`` with the decomposed body."""
    k, h, d = kernel_size, num_heads, head_size
    p = (k - 1) // 2
    nodes = [
        _const_ints("logits_shape", [0, 0, h, k]),
        _const_ints("value_shape", [0, 0, h, d]),
        _const_ints("out_shape", [0, 0, h * d]),
        _const_ints("pads", [0, p, 0, 0, 0, p, 0, 0]),
        _const_ints("seq_axis", [1]),
        helper.make_node("Reshape", ["kernel_logits", "logits_shape"], ["logits4"]),
        helper.make_node("Softmax", ["logits4"], ["weights"], axis=-1),
        helper.make_node("Split", ["weights"], [f"w{j}" for j in range(k)], axis=3, num_outputs=k),
        helper.make_node("Reshape", ["value", "value_shape"], ["value4"]),
        helper.make_node("Pad", ["value4", "pads"], ["padded"], mode="constant"),
    ]
    for j in range(k):
        end = j - 2 * p if j < 2 * p else INT64_MAX
        nodes += [
            _const_ints(f"start{j}", [j]),
            _const_ints(f"end{j}", [end]),
            helper.make_node("Slice", ["padded", f"start{j}", f"end{j}", "seq_axis"], [f"shift{j}"]),
            helper.make_node("Mul", [f"shift{j}", f"w{j}"], [f"term{j}"]),
        ]
    nodes += [
        helper.make_node("Sum", [f"term{j}" for j in range(k)], ["acc"]),
        helper.make_node("Reshape", ["acc", "out_shape"], ["output"]),
    ]
    return helper.make_function(
        DOMAIN,
        OP_TYPE,
        inputs=["value", "kernel_logits"],
        outputs=["output"],
        nodes=nodes,
        opset_imports=[helper.make_opsetid("", opset)],
        attributes=["kernel_size", "num_heads", "head_size", "plugin_namespace"],
    )


def dynamic_conv_nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for n in model.graph.node if n.domain == DOMAIN and n.op_type == OP_TYPE]


def apply_mode(model: onnx.ModelProto, mode: str, *, kernel_size: int, num_heads: int, head_size: int) -> onnx.ModelProto:
    """Attach the decomposed function to an exported model and lower per ``mode``."""
    from ..errors import lookup

    lookup(MODES, mode, "dynamic-conv mode")
    opset = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    del model.functions[:]
    model.functions.append(decomposed_function(kernel_size, num_heads, head_size, opset))
    if not any(o.domain == DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(DOMAIN, 1))
    if mode == "custom-op":
        return model
    from onnx import inliner

    inlined = inliner.inline_local_functions(model)
    del inlined.functions[:]
    kept = [o for o in inlined.opset_import if o.domain != DOMAIN]
    del inlined.opset_import[:]
    inlined.opset_import.extend(kept)
    return inlined
