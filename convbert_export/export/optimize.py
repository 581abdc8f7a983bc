"""Optimized variants of an export directory: graph fusions, INT8 (dynamic or static QDQ), FP16.

``optimize(export_dir, output_dir, settings)`` reads an export directory, writes a new
self-contained one (tokenizer and config copied, ``model.onnx`` replaced, manifest ``precision``
and ``transformations`` recording every step, fresh checksums) and validates it against the
PyTorch reference with tolerances fit for the precision. The steps, in order:

1. ``pointwise-conv-to-matmul`` (ours): the 1x1 convolution of each separable convolution
   becomes Transpose + MatMul + Add in (batch, sequence, channels) layout, so INT8 quantization
   (MatMul only) covers it; the depthwise convolution stays a Conv (ConvInteger is slower).
2. ``attention-to-multiheadattention`` (ours): the self-attention half of the mixed block
   (Reshape/Transpose x3, MatMul, Div, Add mask, Softmax, MatMul, Transpose) becomes ONE
   ``com.microsoft::MultiHeadAttention`` node fed by the Q/K/V projections and the padding mask.
   ONNX Runtime's own attention fusion does not match ConvBERT (the attention output is
   concatenated with the convolution heads), so this rewrite is ours.
3. ``ort-transformer-optimizer``: ``onnxruntime.transformers.optimizer`` (model_type ``bert``)
   fuses Add + LayerNormalization into SkipLayerNormalization and the Erf GELU (+ bias) into
   BiasGelu.
4. ``int8-dynamic`` (``quantize_dynamic``, MatMul with constant weights only) or ``int8-static``
   (``quantize_static``, QDQ, calibrated on texts through the export's tokenizer): LayerNorm,
   Softmax, the dynamic convolution, the embedding Gather and the classifier Gemm stay float.
5. ``fp16``: weights and activations in float16, with LayerNormalization / SkipLayerNormalization
   and every Softmax (the attention's and the dynamic convolution's) kept float32; graph inputs
   and outputs stay float32 unless ``keep_io_fp32=False``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..errors import InvalidInputError, ValidationFailedError
from ..fileio import atomic_directory, is_within
from ..manifest import UNCHECKED, Manifest, file_checksums, load_manifest, verify_checksums, write_manifest
from ..progress import QUIET, Progress

INT8_MODES = (None, "dynamic", "static")
MS_DOMAIN = "com.microsoft"
MODEL_FILES = ("model.onnx", "model.onnx.data")


@dataclass(frozen=True)
class OptimizeSettings:
    """What to do to an export.

    Attributes:
        fuse: run the graph rewrites (pointwise conv -> MatMul, attention -> MultiHeadAttention)
            and ONNX Runtime's transformer optimizer (SkipLayerNormalization, BiasGelu).
        attention: fuse the attention half into ``com.microsoft::MultiHeadAttention``.
        pack: merge the projections that read the same tensor (query, key, value, conv_out)
            into one wide MatMul + Split.
        int8: ``None``, ``"dynamic"`` (weights int8, activations quantized per call) or
            ``"static"`` (QDQ with calibrated activation ranges).
        fp16: float16 weights and activations (for GPUs); exclusive with ``int8``.
        openvino: write an OpenVINO variant instead (``f32``, ``bf16``, ``int8``, ``int8-bf16``; see
            :mod:`convbert_export.export.openvino`); exclusive with ``int8`` and ``fp16``.
        calibration: JSON-lines file of texts (``{"text": ...}`` per line, optionally
            ``text_pair``) for static INT8; ``None``: the packaged validation texts.
        calibration_batches: at most this many batches of 8 texts are used for calibration.
        per_channel: per-output-channel weight scales (int8).
        reduce_range: 7-bit weights (for CPUs without VNNI; slower where VNNI exists).
        keep_io_fp32: fp16 models keep float32 graph inputs/outputs (casts inside).
        validate: validate the result against the reference (the manifest's source).
        min_agreement: task agreement threshold (argmax/top-5/span) for int8 and fp16.
        min_cosine: hidden-state cosine threshold for int8 and fp16.
        atol, rtol: value tolerances; ``None``: 1e-4 for fused fp32, 2e-2 for fp16, and for
            int8 values are reported but not checked (the thresholds above decide).
    """

    fuse: bool = True
    attention: bool = True
    pack: bool = True
    int8: str | None = None
    fp16: bool = False
    openvino: str | None = None
    calibration: str | Path | None = None
    calibration_batches: int = 16
    per_channel: bool = True
    reduce_range: bool = False
    keep_io_fp32: bool = True
    validate: bool = True
    min_agreement: float = 0.99
    min_cosine: float = 0.999
    atol: float | None = None
    rtol: float | None = None

    def check(self) -> None:
        if self.int8 not in INT8_MODES:
            raise InvalidInputError(f"unknown int8 mode {self.int8!r}; expected one of: dynamic, static (or None)")
        if self.int8 and self.fp16:
            raise InvalidInputError("int8 and fp16 are exclusive: choose --int8 (CPU) or --fp16 (GPU), not both")
        if self.openvino is not None:
            from .openvino import get_variant

            get_variant(self.openvino)
            if self.int8 or self.fp16 or not self.fuse:
                raise InvalidInputError(
                    "--openvino writes an OpenVINO variant; --int8, --fp16 and --no-fuse are ONNX Runtime variants' "
                    "options: use one or the other"
                )
        if self.calibration is not None and not Path(self.calibration).is_file():
            raise InvalidInputError(f"calibration file {str(self.calibration)!r} does not exist; expected JSON lines of texts")
        if self.calibration is not None and self.int8 != "static":
            raise InvalidInputError("--calibration is used by static INT8 only: add --int8 static")
        if not self.keep_io_fp32 and not self.fp16:
            raise InvalidInputError("--fp16-io needs --fp16 (float16 inputs/outputs of a float16 model)")
        if not self.per_channel and not self.int8:
            raise InvalidInputError("--no-per-channel needs --int8 (it sets the int8 weight scales)")
        if self.reduce_range and not self.int8:
            raise InvalidInputError("reduce_range needs int8 (it narrows the int8 weights to 7 bits)")
        if self.int8 == "static" and self.calibration_batches < 1:
            raise InvalidInputError(f"calibration_batches must be 1 or more, got {self.calibration_batches}")
        for name in ("min_agreement", "min_cosine"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"{name} must be within [0, 1], got {value}")

    @property
    def precision(self) -> str:
        if self.openvino:
            from .openvino import get_variant

            return get_variant(self.openvino).precision
        if self.int8:
            return f"int8-{self.int8}"
        return "fp16" if self.fp16 else "fp32"

    def tolerances(self) -> tuple[float, float]:
        """(atol, rtol) used by validation."""
        from ..validate.settings import PRECISION_DEFAULTS

        # int8: values reported, not checked (the agreement thresholds decide)
        default = PRECISION_DEFAULTS["fp32-fused" if self.precision == "fp32" else self.precision][:2]
        return (default[0] if self.atol is None else self.atol, default[1] if self.rtol is None else self.rtol)


@dataclass
class OptimizeResult:
    path: Path
    precision: str
    transformations: list[dict]
    node_counts: dict
    size_bytes: int
    source_size_bytes: int
    elapsed_s: float
    report: object = None

    def to_dict(self) -> dict:
        return {
            "path": str(self.path),
            "precision": self.precision,
            "transformations": self.transformations,
            "node_counts": self.node_counts,
            "size_bytes": self.size_bytes,
            "source_size_bytes": self.source_size_bytes,
            "elapsed_s": round(self.elapsed_s, 3),
            "validation": self.report.to_dict() if self.report is not None else None,
        }


# ------------------------------------------------------------------------------ graph helpers


class _Graph:
    """Producer/consumer maps and initializer lookup over an onnx GraphProto."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        self.inits = {t.name: t for t in self.graph.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                self.consumers.setdefault(inp, []).append(node)
        self.outputs = {o.name for o in self.graph.output}
        self._counter = 0

    def const(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def single_consumer(self, name: str) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in self.outputs else None

    def parent(self, node: onnx.NodeProto, index: int, op_type: str) -> onnx.NodeProto | None:
        if index >= len(node.input):
            return None
        found = self.producer.get(node.input[index])
        return found if found is not None and found.op_type == op_type else None

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"opt_{stem}_{self._counter}"

    def add_initializer(self, array: np.ndarray, stem: str) -> str:
        name = self.fresh(stem)
        tensor = numpy_helper.from_array(array, name)
        self.graph.initializer.append(tensor)
        self.inits[name] = tensor
        return name


def _attr(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _replace_nodes(graph: onnx.GraphProto, remove: set[int], insert: dict[int, list[onnx.NodeProto]]) -> None:
    """Rebuild the node list: drop ids in ``remove``; put ``insert[id]`` where node ``id`` was."""
    nodes = []
    for node in graph.node:
        key = id(node)
        if key in insert:
            nodes.extend(insert[key])
        if key not in remove:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def _remove_dead(model: onnx.ModelProto) -> None:
    """Drop nodes whose outputs nobody reads, and unused initializers."""
    graph = model.graph
    changed = True
    while changed:
        used = {o.name for o in graph.output}
        for node in graph.node:
            used.update(node.input)
        keep = [n for n in graph.node if any(o in used for o in n.output if o)]
        changed = len(keep) != len(graph.node)
        if changed:
            del graph.node[:]
            graph.node.extend(keep)
    used = {o.name for o in graph.output}
    for node in graph.node:
        used.update(node.input)
    keep_inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_inits)


# ------------------------------------------------------------------------------ our rewrites


def pointwise_conv_to_matmul(model: onnx.ModelProto) -> int:
    """Rewrite ``Transpose(Add(Conv1x1(x, W), b), perm=[0,2,1])`` as ``MatMul(Transpose(x), W^T) + b``.

    The separable convolution's pointwise half runs in (B, C, S) layout between two transposes;
    as a MatMul in (B, S, C) layout it is quantizable by ``quantize_dynamic(MatMul)`` and one
    transpose disappears. Returns the number of rewritten convolutions.
    """
    g = _Graph(model)
    remove: set[int] = set()
    insert: dict[int, list[onnx.NodeProto]] = {}
    count = 0
    for conv in list(g.graph.node):
        if conv.op_type != "Conv" or len(conv.input) < 2:
            continue
        weight = g.const(conv.input[1])
        if weight is None or weight.ndim != 3 or weight.shape[2] != 1 or _attr(conv, "group", 1) != 1:
            continue
        if any(v != 1 for v in (_attr(conv, "strides") or [1])) or any(v != 0 for v in (_attr(conv, "pads") or [0])):
            continue
        conv_bias = g.const(conv.input[2]) if len(conv.input) > 2 and conv.input[2] else None
        user = g.single_consumer(conv.output[0])
        add = None
        if user is not None and user.op_type == "Add":
            other = user.input[1] if user.input[0] == conv.output[0] else user.input[0]
            bias = g.const(other)
            if bias is not None and bias.size == weight.shape[0] and bias.shape[-1:] in ((1,),):
                add, conv_bias = user, (bias.reshape(-1) if conv_bias is None else conv_bias + bias.reshape(-1))
                user = g.single_consumer(user.output[0])
        if user is None or user.op_type != "Transpose" or list(_attr(user, "perm") or []) != [0, 2, 1]:
            continue
        x = conv.input[0]
        xt = g.fresh("pw_in")
        mm = g.fresh("pw_mm")
        w_name = g.add_initializer(np.ascontiguousarray(weight[:, :, 0].T), "pw_weight")  # (Cin, Cout)
        new = [helper.make_node("Transpose", [x], [xt], perm=[0, 2, 1], name=g.fresh("pw_transpose"))]
        if conv_bias is not None:
            b_name = g.add_initializer(conv_bias.astype(weight.dtype), "pw_bias")
            new += [
                helper.make_node("MatMul", [xt, w_name], [mm], name=g.fresh("pw_matmul")),
                helper.make_node("Add", [mm, b_name], [user.output[0]], name=g.fresh("pw_add")),
            ]
        else:
            new.append(helper.make_node("MatMul", [xt, w_name], [user.output[0]], name=g.fresh("pw_matmul")))
        insert[id(conv)] = new
        remove.update({id(conv), id(user)} | ({id(add)} if add is not None else set()))
        count += 1
    if count:
        _replace_nodes(g.graph, remove, insert)
        _remove_dead(model)
    return count


def pack_projections(model: onnx.ModelProto) -> int:
    """Merge MatMuls that read the same tensor (query, key, value, conv_out) into one wide MatMul.

    ``Add(MatMul(x, W_i), b_i)`` for i = 1..n over the same ``x`` become ``Split(Add(MatMul(x,
    concat(W_i)), concat(b_i)))``: one GEMM of width sum(N_i) instead of n narrow ones, and one
    quantization of ``x`` shared by it. Returns the number of packed groups.
    """
    g = _Graph(model)
    remove: set[int] = set()
    insert: dict[int, list[onnx.NodeProto]] = {}
    count = 0
    for name, users in list(g.consumers.items()):
        members = []
        for mm in users:
            if mm.op_type != "MatMul" or mm.input[0] != name or mm.input[1] not in g.inits:
                continue
            weight = g.const(mm.input[1])
            add = g.single_consumer(mm.output[0])
            bias = None
            if add is not None and add.op_type == "Add":
                other = add.input[1] if add.input[0] == mm.output[0] else add.input[0]
                bias = g.const(other)
            if weight.ndim != 2 or bias is None or bias.shape != (weight.shape[1],):
                continue
            members.append((mm, add, weight, bias))
        if len(members) < 2 or len({m[2].shape[0] for m in members}) != 1 or len({m[2].dtype for m in members}) != 1:
            continue
        first = min(members, key=lambda m: list(g.graph.node).index(m[0]))[0]
        weight = g.add_initializer(np.concatenate([m[2] for m in members], axis=1), "packed_weight")
        bias = g.add_initializer(np.concatenate([m[3] for m in members]).astype(members[0][2].dtype), "packed_bias")
        sizes = g.add_initializer(np.array([m[2].shape[1] for m in members], dtype=np.int64), "packed_split")
        mm_out, add_out = g.fresh("packed_mm"), g.fresh("packed_add")
        insert[id(first)] = [
            helper.make_node("MatMul", [name, weight], [mm_out], name=g.fresh("packed_matmul")),
            helper.make_node("Add", [mm_out, bias], [add_out], name=g.fresh("packed_bias_add")),
            helper.make_node("Split", [add_out, sizes], [m[1].output[0] for m in members], axis=-1,
                             name=g.fresh("packed_split")),
        ]
        for mm, add, _, _ in members:
            remove.update({id(mm), id(add)})
        count += 1
    if count:
        _replace_nodes(g.graph, remove, insert)
        _remove_dead(model)
    return count


def _heads_of(g: _Graph, reshape: onnx.NodeProto) -> int | None:
    """Number of heads a (B, S, H, D) Reshape produces, read from its shape input."""
    shape = g.const(reshape.input[1])
    if shape is not None and shape.size == 4 and shape[2] > 0:
        return int(shape[2])
    concat = g.producer.get(reshape.input[1])
    if concat is None or concat.op_type != "Concat" or len(concat.input) != 4:
        return None
    heads, size = g.const(concat.input[2]), g.const(concat.input[3])
    if heads is not None and heads.size == 1 and int(heads.reshape(-1)[0]) > 0:
        return int(heads.reshape(-1)[0])
    if size is None or size.size != 1 or int(size.reshape(-1)[0]) <= 0:
        return None
    # (B, S, -1, D): the width of the projection feeding the Reshape, over D
    node = g.producer.get(reshape.input[0])
    if node is not None and node.op_type == "Add":
        node = g.parent(node, 0, "MatMul") or g.parent(node, 1, "MatMul")
    weight = g.const(node.input[1]) if node is not None and node.op_type == "MatMul" else None
    if weight is None or weight.ndim != 2 or weight.shape[1] % int(size.reshape(-1)[0]):
        return None
    return weight.shape[1] // int(size.reshape(-1)[0])


def attention_to_mha(model: onnx.ModelProto) -> int:
    """Fuse each self-attention half into ``com.microsoft::MultiHeadAttention``.

    Matches ``Softmax(Add(Div(MatMul(Tq, Tk), scale), mask)) -> MatMul(., Tv) -> Transpose``
    with Tq/Tv = Transpose(Reshape(q|v, (B,S,H,D)), [0,2,1,3]), Tk = Transpose(Reshape(k),
    [0,2,3,1]) and the additive mask ``Unsqueeze(Mul(Sub(1, Cast(mask)), min))``. The fused node
    reads the projections q, k, v (B, S, H*D) and the padding mask as int32 key_padding_mask;
    its output is reshaped to (B, S, H, D) for the consumers of the old Transpose.
    """
    g = _Graph(model)
    remove: set[int] = set()
    insert: dict[int, list[onnx.NodeProto]] = {}
    mask_casts: dict[str, str] = {}
    count = 0
    for softmax in list(g.graph.node):
        if softmax.op_type != "Softmax" or _attr(softmax, "axis", -1) not in (-1, 3):
            continue
        add = g.parent(softmax, 0, "Add")
        if add is None:
            continue
        div = g.parent(add, 0, "Div")
        mask_index = 1
        if div is None:
            div, mask_index = g.parent(add, 1, "Div"), 0
        if div is None:
            continue
        scale = g.const(div.input[1])
        qk = g.parent(div, 0, "MatMul")
        if scale is None or scale.size != 1 or qk is None:
            continue
        tq, tk = g.parent(qk, 0, "Transpose"), g.parent(qk, 1, "Transpose")
        av = g.single_consumer(softmax.output[0])
        if tq is None or tk is None or av is None or av.op_type != "MatMul" or av.input[0] != softmax.output[0]:
            continue
        tv = g.parent(av, 1, "Transpose")
        out_t = g.single_consumer(av.output[0])
        if tv is None or out_t is None or out_t.op_type != "Transpose":
            continue
        perms = [list(_attr(t, "perm") or []) for t in (tq, tk, tv, out_t)]
        if perms != [[0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3], [0, 2, 1, 3]]:
            continue
        rq, rk, rv = (g.parent(t, 0, "Reshape") for t in (tq, tk, tv))
        if rq is None or rk is None or rv is None:
            continue
        heads = _heads_of(g, rq)
        if heads is None:
            continue
        # the additive mask: Unsqueeze(Mul(Sub(1, Cast(m)), big_negative)) (possibly via more Unsqueezes)
        mask_node = g.producer.get(add.input[mask_index])
        while mask_node is not None and mask_node.op_type == "Unsqueeze":
            mask_node = g.producer.get(mask_node.input[0])
        if mask_node is None or mask_node.op_type != "Mul":
            continue
        sub = g.parent(mask_node, 0, "Sub") or g.parent(mask_node, 1, "Sub")
        cast = g.parent(sub, 1, "Cast") if sub is not None else None
        one = g.const(sub.input[0]) if sub is not None else None
        if cast is None or one is None or float(one.reshape(-1)[0]) != 1.0:
            continue
        raw_mask = cast.input[0]
        if raw_mask not in mask_casts:
            name = g.fresh("key_padding_mask")
            mask_casts[raw_mask] = name
            insert.setdefault(id(softmax), []).append(
                helper.make_node("Cast", [raw_mask], [name], to=TensorProto.INT32, name=g.fresh("mask_cast"))
            )
        mha_out = g.fresh("mha_out")
        insert.setdefault(id(softmax), []).extend([
            helper.make_node(
                "MultiHeadAttention",
                [rq.input[0], rk.input[0], rv.input[0], "", mask_casts[raw_mask]],
                [mha_out],
                domain=MS_DOMAIN,
                num_heads=heads,
                scale=float(1.0 / float(scale.reshape(-1)[0])),
                name=g.fresh("MultiHeadAttention"),
            ),
            helper.make_node("Reshape", [mha_out, rq.input[1]], [out_t.output[0]], name=g.fresh("mha_reshape")),
        ])
        remove.update({id(n) for n in (softmax, add, div, qk, av, out_t)})
        count += 1
    if count:
        _replace_nodes(g.graph, remove, insert)
        if not any(o.domain == MS_DOMAIN for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
        _remove_dead(model)
    return count


def ort_transformer_fusions(model: onnx.ModelProto) -> tuple[onnx.ModelProto, dict]:
    """ONNX Runtime's transformer optimizer (model_type bert, python fusions only)."""
    import logging

    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False  # it requires int32 inputs and BERT's position ids
    options.enable_attention = False  # ours (above); ORT's pattern does not match ConvBERT
    logger = logging.getLogger("onnxruntime.transformers")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        optimized = optimize_model(model, model_type="bert", num_heads=0, hidden_size=0, opt_level=0,
                                   optimization_options=options)
    finally:
        logger.setLevel(previous)
    stats = {k: v for k, v in optimized.get_fused_operator_statistics().items() if v}
    return optimized.model, stats


# ------------------------------------------------------------------------------ precision


def _float_sensitive_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of nodes int8 must leave alone (Gather, normalization, softmax, the dynamic conv)."""
    names = []
    for node in model.graph.node:
        if node.op_type in ("Gather", "LayerNormalization", "SkipLayerNormalization", "Softmax", "Gemm", "DynamicConv"):
            names.append(node.name)
    return names


def _name_nodes(model: onnx.ModelProto) -> None:
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)


def quantize_int8_dynamic(src: Path, dst: Path, settings: OptimizeSettings) -> dict:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(src), str(dst),
        op_types_to_quantize=["MatMul"],
        per_channel=settings.per_channel,
        reduce_range=settings.reduce_range,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=_float_sensitive_nodes(onnx.load(str(src), load_external_data=False)),
        extra_options={"MatMulConstBOnly": True},
    )
    return {"step": "int8-dynamic", "tool": "onnxruntime.quantization.quantize_dynamic", "ops": ["MatMul"],
            "weights": "int8 symmetric", "per_channel": settings.per_channel, "reduce_range": settings.reduce_range,
            "kept_float": ["Gather", "LayerNormalization", "SkipLayerNormalization", "Softmax", "Gemm",
                           "dynamic convolution", "activation x activation MatMul"]}


def calibration_feeds(export_dir: Path, manifest: Manifest, path: str | Path | None, max_batches: int, batch_size: int = 8):
    """Tokenized calibration batches (feeds dicts) from a JSON-lines file or the packaged texts."""

    from ..tokenization import Tokenizer, validation_texts

    if path is None:
        items = validation_texts()
    else:
        from ..fileio import read_jsonl

        items = []
        for number, item in read_jsonl(path, 'an object with a "text" (or "question") string per line'):
            if not isinstance(item.get("text", item.get("question")), str):
                raise InvalidInputError(f"{path}:{number}: expected an object with a \"text\" string")
            items.append(item)
    texts = [(it["text"], it.get("text_pair")) for it in items if isinstance(it.get("text"), str)]
    texts += [(it["question"], it["context"]) for it in items if "question" in it and "context" in it]
    if not texts:
        raise InvalidInputError(f"no calibration texts found in {path or 'the packaged validation texts'}")
    tokenizer = Tokenizer.from_pretrained(export_dir)
    max_len = min(int(manifest.model["max_position_embeddings"]), tokenizer.model_max_length or 10**9)
    from ..tasks import get_task

    multiple_choice = get_task(manifest.task).multiple_choice
    texts = texts[: max_batches * batch_size]
    singles = [a for a, b in texts if b is None]
    pairs = [(a, b) for a, b in texts if b is not None]

    def encode(padding: str, length: int) -> list[dict]:
        encodings = []
        if singles:
            encodings.append(tokenizer(singles, truncation=True, max_length=length, padding=padding))
        if pairs:
            encodings.append(tokenizer([a for a, _ in pairs], [b for _, b in pairs], truncation=True,
                                       max_length=length, padding=padding))
        return encodings

    # every batch gets the same shape (calibrators such as Percentile stack the batches):
    # pad all texts to the longest one, and fill the last batch by wrapping around
    length = max(enc["input_ids"].shape[1] for enc in encode("longest", max_len))
    rows = {k: np.concatenate([np.asarray(enc[k], dtype=np.int64) for enc in encode("max_length", length)])
            for k in ("input_ids", "attention_mask", "token_type_ids")}
    count = rows["input_ids"].shape[0]
    batches = max(1, min(max_batches, -(-count // batch_size)))
    order = np.arange(batches * batch_size) % count
    feeds = []
    for index in range(batches):
        take = order[index * batch_size:(index + 1) * batch_size]
        batch = {k: v[take] for k, v in rows.items()}
        if multiple_choice:
            batch = {k: v[:, None, :] for k, v in batch.items()}
        feeds.append(batch)
    return feeds


def quantize_int8_static(src: Path, dst: Path, settings: OptimizeSettings, feeds: list[dict]) -> dict:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self, batches):
            self._batches = iter(batches)

        def get_next(self):
            return next(self._batches, None)

    quantize_static(
        str(src), str(dst), Reader(feeds),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=["MatMul"],
        per_channel=settings.per_channel,
        reduce_range=settings.reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=_float_sensitive_nodes(onnx.load(str(src), load_external_data=False)),
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"MatMulConstBOnly": True, "ActivationSymmetric": False, "WeightSymmetric": True},
    )
    return {"step": "int8-static", "tool": "onnxruntime.quantization.quantize_static", "format": "QDQ", "ops": ["MatMul"],
            "activations": "uint8 asymmetric (MinMax calibration)", "weights": "int8 symmetric",
            "per_channel": settings.per_channel, "calibration_batches": len(feeds),
            "calibration_texts": str(settings.calibration) if settings.calibration else "packaged validation texts",
            "kept_float": ["Gather", "LayerNormalization", "SkipLayerNormalization", "Softmax", "Gemm",
                           "dynamic convolution", "activation x activation MatMul"]}


FP16_KEEP_FP32 = ["LayerNormalization", "SkipLayerNormalization", "Softmax", "Range", "Erf"]


def to_fp16(model: onnx.ModelProto, keep_io_fp32: bool) -> tuple[onnx.ModelProto, dict]:
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(FP16_KEEP_FP32))
    converted = convert_float_to_float16(model, keep_io_types=keep_io_fp32, op_block_list=block,
                                         disable_shape_infer=False)
    return converted, {"step": "fp16", "tool": "onnxruntime.transformers.float16", "kept_fp32": FP16_KEEP_FP32,
                       "io": "float32" if keep_io_fp32 else "float16"}


# ------------------------------------------------------------------------------ the pipeline


def optimize_model_proto(model: onnx.ModelProto, settings: OptimizeSettings) -> tuple[onnx.ModelProto, list[dict]]:
    """The float graph rewrites (steps 1-3) on an in-memory model."""
    steps: list[dict] = []
    if not settings.fuse:
        return model, steps
    count = pointwise_conv_to_matmul(model)
    steps.append({"step": "pointwise-conv-to-matmul", "tool": "convbert_export", "rewritten": count})
    if settings.attention:
        count = attention_to_mha(model)
        steps.append({"step": "attention-to-multiheadattention", "tool": "convbert_export", "rewritten": count})
    if settings.pack:
        count = pack_projections(model)
        steps.append({"step": "pack-projections", "tool": "convbert_export", "packed_groups": count})
    model, stats = ort_transformer_fusions(model)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    steps.append({"step": "ort-transformer-optimizer", "tool": "onnxruntime.transformers.optimizer",
                  "model_type": "bert", "fusions": stats})
    return model, steps


class _QuietRootLogger:
    """Raise the root logger to ERROR inside the block."""

    def __enter__(self):
        import logging

        self._logger = logging.getLogger()
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)
        return False


def _save(model: onnx.ModelProto, directory: Path) -> None:
    from .onnx import save_model

    save_model(model, directory)


def optimize(
    export_dir: str | Path,
    output_dir: str | Path,
    settings: OptimizeSettings | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
    validation=None,
    model=None,
) -> OptimizeResult:
    """Write an optimized, validated copy of ``export_dir`` to ``output_dir``.

    ``validation`` (a :class:`~convbert_export.validate.ValidationSettings`) overrides the
    validation grid; tolerances and thresholds always come from ``settings``. ``model`` is the
    reference (a reference_model head or a checkpoint directory); None: the manifest's source.

    Raises :class:`ValidationFailedError` (after writing nothing) when the variant misses its
    tolerances or thresholds; the error carries the report.
    """
    from .onnx import count_nodes

    settings = settings or OptimizeSettings()
    settings.check()
    progress = progress or QUIET
    reference = model  # `model` is the ONNX graph below
    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    if manifest.precision != "fp32" or manifest.backend != "onnxruntime":
        raise InvalidInputError(
            f"{export_dir} is already a {manifest.precision} {manifest.backend} variant; optimize the fp32 export it "
            "came from"
        )
    if settings.openvino and manifest.transformations:
        raise InvalidInputError(
            f"{export_dir} is an ONNX Runtime-optimized graph (fused com.microsoft ops); make OpenVINO variants from "
            "the plain fp32 export it came from"
        )
    source_model = export_dir / "model.onnx"
    if not source_model.is_file():
        raise InvalidInputError(f"export directory {str(export_dir)!r} has no model.onnx")
    problems = verify_checksums(export_dir, manifest)
    if problems:
        raise InvalidInputError(
            f"export directory {str(export_dir)!r} does not match its manifest: {'; '.join(problems)}; re-export the model"
        )
    if is_within(output_dir, export_dir) and Path(output_dir).resolve() != export_dir.resolve():
        raise InvalidInputError(
            f"output {str(output_dir)!r} is inside the export directory {str(export_dir)!r}, whose checksums it "
            "would break; choose an --output outside it"
        )
    if is_within(export_dir, output_dir) and Path(output_dir).resolve() != export_dir.resolve():
        raise InvalidInputError(
            f"output {str(output_dir)!r} would replace the export directory {str(export_dir)!r} it reads; "
            "choose another --output"
        )
    started = time.perf_counter()
    source_size = sum(p.stat().st_size for p in export_dir.glob("model.onnx*"))
    with atomic_directory(output_dir, force=force) as tmp:
        for path in sorted(export_dir.iterdir()):
            if path.is_file() and path.name not in UNCHECKED and path.name not in MODEL_FILES:
                shutil.copyfile(path, tmp / path.name)
        backend, backend_options, counts = "onnxruntime", {}, None
        if settings.openvino:
            from .openvino import get_variant, write_openvino_variant

            steps, backend_options, counts = write_openvino_variant(
                source_model, manifest, tmp, get_variant(settings.openvino), progress)
            backend = "openvino"
        else:
            model, steps = _write_onnx_variant(source_model, export_dir, manifest, tmp, settings, progress)
        outputs = manifest.outputs
        if settings.fp16 and not settings.keep_io_fp32:
            outputs = tuple(replace(o, dtype="float16") for o in outputs)
        new_manifest = replace(
            manifest,
            precision=settings.precision,
            outputs=outputs,
            transformations=tuple(manifest.transformations) + tuple(steps),
            source=manifest.source,
            # dynamic int8 quantizes activations with one scale per batch: a text's result
            # depends on its batch-mates (measured: up to 0.085 on conv-bert-base hidden states)
            batch_invariant=manifest.batch_invariant and settings.int8 != "dynamic",
            backend=backend,
            backend_options=backend_options,
            files=file_checksums(tmp),
        )
        write_manifest(tmp, new_manifest)
        report = None
        if settings.validate:
            report = _validate(tmp, settings, progress, display_path=output_dir, base=validation, model=reference)
            if not report.passed:
                raise ValidationFailedError(
                    f"the {settings.precision} variant of {export_dir} failed validation (nothing written): "
                    f"{report.summary()}", report)
        size = sum(p.stat().st_size for pattern in ("model.onnx*", "openvino_model.*") for p in tmp.glob(pattern))
        counts = counts if counts is not None else count_nodes(model)
    return OptimizeResult(Path(output_dir), settings.precision, list(steps), counts, size, source_size,
                          time.perf_counter() - started, report)


def _write_onnx_variant(source_model: Path, export_dir: Path, manifest: Manifest, tmp: Path,
                        settings: OptimizeSettings, progress: Progress) -> tuple[onnx.ModelProto, list[dict]]:
    """The ONNX Runtime variant: fusions, then fp16 or int8, saved into ``tmp``."""
    with progress.step("loading the model"):
        try:
            model = onnx.load(str(source_model))
        except (onnx.checker.ValidationError, OSError) as exc:  # e.g. external data outside the directory
            raise InvalidInputError(f"cannot load {source_model}: {exc}; re-export the model") from None
    with progress.step("fusing (pointwise conv, attention, SkipLayerNorm, BiasGelu)"):
        model, steps = optimize_model_proto(model, settings)
    _name_nodes(model)
    if settings.fp16:
        with progress.step("converting to float16"):
            model, step = to_fp16(model, settings.keep_io_fp32)
            steps.append(step)
    elif settings.int8:
        with tempfile.TemporaryDirectory(dir=tmp.parent, prefix=".optimize-") as work:
            float_path = Path(work) / "float.onnx"
            onnx.save_model(model, str(float_path))
            quiet_root = _QuietRootLogger()  # quantize_* log a pre-processing hint on the root logger
            if settings.int8 == "dynamic":
                with progress.step("quantizing (int8 dynamic, MatMul)"), quiet_root:
                    steps.append(quantize_int8_dynamic(float_path, Path(work) / "q.onnx", settings))
            else:
                feeds = calibration_feeds(export_dir, manifest, settings.calibration, settings.calibration_batches)
                with progress.step(f"calibrating and quantizing (int8 static QDQ, {len(feeds)} batches)"), quiet_root:
                    steps.append(quantize_int8_static(float_path, Path(work) / "q.onnx", settings, feeds))
            model = onnx.load(str(Path(work) / "q.onnx"))
    _save(model, tmp)
    return model, steps


def _validate(directory: Path, settings: OptimizeSettings, progress: Progress, display_path, base=None, model=None):
    from ..validate import ValidationSettings, validate

    atol, rtol = settings.tolerances()
    checks_thresholds = settings.precision != "fp32"
    vsettings = replace(
        base or ValidationSettings(),
        atol=atol, rtol=rtol,
        min_agreement=settings.min_agreement if checks_thresholds else None,
        min_cosine=settings.min_cosine if checks_thresholds else None,
    )
    return validate(directory, model, vsettings, progress=progress, raise_on_failure=False, display_path=display_path)


__all__ = ["OptimizeSettings", "OptimizeResult", "optimize", "optimize_model_proto", "pointwise_conv_to_matmul",
           "attention_to_mha", "pack_projections", "ort_transformer_fusions", "calibration_feeds", "INT8_MODES"]
