"""Our graph rewrites, each a :class:`~convbert_export.optimize.graph.Fusion` (match, fuse,
apply), and ONNX Runtime's transformer optimizer.

* :class:`PointwiseConvToMatMul`: the separable convolution's 1x1 half as a MatMul (quantizable).
* :class:`PackProjections`: MatMuls reading the same tensor as one wide MatMul + Split.
* :class:`AttentionToMha`: the self-attention half as ``com.microsoft::MultiHeadAttention``.
* :class:`LayerNormAsInstanceNorm`: (Skip)LayerNormalization as InstanceNormalization over
  (rows, 1, hidden) + Mul + Add, for ONNX Runtime's CPU provider (see the class).

The functions of the same names (``pointwise_conv_to_matmul(model) -> count`` ...) apply them.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from .graph import Fusion, _attr, _Graph, _replace_nodes
from .settings import MS_DOMAIN


class PointwiseConvToMatMul(Fusion):
    """Rewrite ``Transpose(Add(Conv1x1(x, W), b), perm=[0,2,1])`` as ``MatMul(Transpose(x), W^T) + b``.

    The separable convolution's pointwise half runs in (B, C, S) layout between two transposes;
    as a MatMul in (B, S, C) layout it is quantizable by ``quantize_dynamic(MatMul)`` and one
    transpose disappears.
    """

    anchors = ("Conv",)

    def match(self, g: _Graph, conv):
        if len(conv.input) < 2:
            return None
        weight = g.const(conv.input[1])
        if weight is None or weight.ndim != 3 or weight.shape[2] != 1 or _attr(conv, "group", 1) != 1:
            return None
        if any(v != 1 for v in (_attr(conv, "strides") or [1])) or any(v != 0 for v in (_attr(conv, "pads") or [0])):
            return None
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
            return None
        return conv, add, user, weight, conv_bias

    def fuse(self, g: _Graph, match):
        conv, add, user, weight, conv_bias = match
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
        return new, conv, [conv, user] + ([add] if add is not None else [])


class PackProjections(Fusion):
    """Merge MatMuls that read the same tensor (query, key, value, conv_out) into one wide MatMul.

    ``Add(MatMul(x, W_i), b_i)`` for i = 1..n over the same ``x`` become ``Split(Add(MatMul(x,
    concat(W_i)), concat(b_i)))``: one GEMM of width sum(N_i) instead of n narrow ones, and one
    quantization of ``x`` shared by it. Candidates are tensors, not nodes.
    """

    def candidates(self, g: _Graph):
        return list(g.consumers.items())

    def match(self, g: _Graph, candidate):
        name, users = candidate
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
            return None
        return name, members

    def fuse(self, g: _Graph, match):
        name, members = match
        first = min(members, key=lambda m: list(g.graph.node).index(m[0]))[0]
        weight = g.add_initializer(np.concatenate([m[2] for m in members], axis=1), "packed_weight")
        bias = g.add_initializer(np.concatenate([m[3] for m in members]).astype(members[0][2].dtype), "packed_bias")
        sizes = g.add_initializer(np.array([m[2].shape[1] for m in members], dtype=np.int64), "packed_split")
        mm_out, add_out = g.fresh("packed_mm"), g.fresh("packed_add")
        new = [
            helper.make_node("MatMul", [name, weight], [mm_out], name=g.fresh("packed_matmul")),
            helper.make_node("Add", [mm_out, bias], [add_out], name=g.fresh("packed_bias_add")),
            helper.make_node("Split", [add_out, sizes], [m[1].output[0] for m in members], axis=-1,
                             name=g.fresh("packed_split")),
        ]
        return new, first, [node for mm, add, _, _ in members for node in (mm, add)]


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


class AttentionToMha(Fusion):
    """Fuse each self-attention half into ``com.microsoft::MultiHeadAttention``.

    Matches ``Softmax(Add(Div(MatMul(Tq, Tk), scale), mask)) -> MatMul(., Tv) -> Transpose``
    with Tq/Tv = Transpose(Reshape(q|v, (B,S,H,D)), [0,2,1,3]), Tk = Transpose(Reshape(k),
    [0,2,3,1]) and the additive mask ``Unsqueeze(Mul(Sub(1, Cast(mask)), min))``. The fused node
    reads the projections q, k, v (B, S, H*D) and the padding mask as int32 key_padding_mask
    (one Cast per mask, shared); its output is reshaped to (B, S, H, D) for the consumers of the
    old Transpose.
    """

    anchors = ("Softmax",)

    def apply(self, model: onnx.ModelProto) -> int:
        self._mask_casts: dict[str, str] = {}
        return super().apply(model)

    def match(self, g: _Graph, softmax):
        if _attr(softmax, "axis", -1) not in (-1, 3):
            return None
        add = g.parent(softmax, 0, "Add")
        if add is None:
            return None
        div = g.parent(add, 0, "Div")
        mask_index = 1
        if div is None:
            div, mask_index = g.parent(add, 1, "Div"), 0
        if div is None:
            return None
        scale = g.const(div.input[1])
        qk = g.parent(div, 0, "MatMul")
        if scale is None or scale.size != 1 or qk is None:
            return None
        tq, tk = g.parent(qk, 0, "Transpose"), g.parent(qk, 1, "Transpose")
        av = g.single_consumer(softmax.output[0])
        if tq is None or tk is None or av is None or av.op_type != "MatMul" or av.input[0] != softmax.output[0]:
            return None
        tv = g.parent(av, 1, "Transpose")
        out_t = g.single_consumer(av.output[0])
        if tv is None or out_t is None or out_t.op_type != "Transpose":
            return None
        perms = [list(_attr(t, "perm") or []) for t in (tq, tk, tv, out_t)]
        if perms != [[0, 2, 1, 3], [0, 2, 3, 1], [0, 2, 1, 3], [0, 2, 1, 3]]:
            return None
        rq, rk, rv = (g.parent(t, 0, "Reshape") for t in (tq, tk, tv))
        if rq is None or rk is None or rv is None:
            return None
        heads = _heads_of(g, rq)
        if heads is None:
            return None
        # the additive mask: Unsqueeze(Mul(Sub(1, Cast(m)), big_negative)) (possibly via more Unsqueezes)
        mask_node = g.producer.get(add.input[mask_index])
        while mask_node is not None and mask_node.op_type == "Unsqueeze":
            mask_node = g.producer.get(mask_node.input[0])
        if mask_node is None or mask_node.op_type != "Mul":
            return None
        sub = g.parent(mask_node, 0, "Sub") or g.parent(mask_node, 1, "Sub")
        cast = g.parent(sub, 1, "Cast") if sub is not None else None
        one = g.const(sub.input[0]) if sub is not None else None
        if cast is None or one is None or float(one.reshape(-1)[0]) != 1.0:
            return None
        return softmax, add, div, qk, av, out_t, rq, rk, rv, heads, scale, cast.input[0]

    def fuse(self, g: _Graph, match):
        softmax, add, div, qk, av, out_t, rq, rk, rv, heads, scale, raw_mask = match
        new = []
        if raw_mask not in self._mask_casts:
            name = g.fresh("key_padding_mask")
            self._mask_casts[raw_mask] = name
            new.append(helper.make_node("Cast", [raw_mask], [name], to=TensorProto.INT32, name=g.fresh("mask_cast")))
        mha_out = g.fresh("mha_out")
        new += [
            helper.make_node(
                "MultiHeadAttention",
                [rq.input[0], rk.input[0], rv.input[0], "", self._mask_casts[raw_mask]],
                [mha_out],
                domain=MS_DOMAIN,
                num_heads=heads,
                scale=float(1.0 / float(scale.reshape(-1)[0])),
                name=g.fresh("MultiHeadAttention"),
            ),
            helper.make_node("Reshape", [mha_out, rq.input[1]], [out_t.output[0]], name=g.fresh("mha_reshape")),
        ]
        return new, softmax, [softmax, add, div, qk, av, out_t]

    def finish(self, model: onnx.ModelProto) -> None:
        if not any(o.domain == MS_DOMAIN for o in model.opset_import):
            model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))


class LayerNormAsInstanceNorm(Fusion):
    """Rewrite ``LayerNormalization`` and ``com.microsoft::SkipLayerNormalization`` (last axis,
    constant 1-D gamma/beta) as ``Add(Mul(Reshape(InstanceNormalization(Reshape(x, (-1, 1,
    hidden)), 1, 0), shape(x)), gamma), beta)``, the skip and bias inputs as plain Adds first.

    Why: ONNX Runtime's CPU LayerNormalization kernel (``layer_norm_impl.cc``) walks each row
    with a scalar loop, a serial float sum and a division per element, and SkipLayerNormalization
    measures the same (1.32 wheel). Measured on 2 EPYC
    cores (``tools/bench_layernorm.py``), 128 x 768, 2 threads: SkipLayerNormalization 392 us per call,
    the rewrite 70 us; conv-bert-base int8 at 1x128 went from ~28 to ~24 ms.
    InstanceNormalization is a standard op with a two-pass (mean, then centred variance)
    vectorized kernel, so the result stays within float rounding of the fused op.

    Only nodes whose mean / inverse-std outputs are unused are rewritten; SkipLayerNormalization's
    fourth output (input + skip + bias) becomes the name of the sum the rewrite computes.
    """

    anchors = ("LayerNormalization", "SkipLayerNormalization")

    def apply(self, model: onnx.ModelProto) -> int:
        self._shared: dict[str, str] = {}
        return super().apply(model)

    def match(self, g: _Graph, node):
        used = [bool(name) and (name in g.consumers or name in g.outputs) for name in node.output]
        skip = node.op_type == "SkipLayerNormalization"
        if skip and node.domain != MS_DOMAIN or not skip and node.domain not in ("", "ai.onnx"):
            return None
        if any(used[1:3]) or (not skip and _attr(node, "axis", -1) != -1):
            return None
        gamma_at, beta_at = (2, 3) if skip else (1, 2)
        gamma = g.const(node.input[gamma_at]) if len(node.input) > gamma_at else None
        beta = g.const(node.input[beta_at]) if len(node.input) > beta_at and node.input[beta_at] else None
        if gamma is None or gamma.ndim != 1 or gamma.dtype != np.float32:
            return None
        if (len(node.input) > beta_at and node.input[beta_at]) and (beta is None or beta.shape != gamma.shape):
            return None
        return node, skip, gamma.shape[0], used

    def _const(self, g: _Graph, key: str, array: np.ndarray) -> str:
        if key not in self._shared:
            self._shared[key] = g.add_initializer(array, "ln")
        return self._shared[key]

    def fuse(self, g: _Graph, match):
        node, skip, hidden, used = match
        eps = float(_attr(node, "epsilon", 1e-12 if skip else 1e-5))
        new = []
        x = node.input[0]
        if skip:
            # the bias first: x is usually a MatMul's output, and ONNX Runtime folds a constant
            # bias Add into the MatMul before it (DynamicQuantizeMatMul, Gemm)
            terms = ([node.input[4]] if len(node.input) > 4 and node.input[4] else []) + [node.input[1]]
            for index, term in enumerate(terms):
                last = index == len(terms) - 1
                out = node.output[3] if last and len(used) > 3 and used[3] else g.fresh("ln_sum")
                new.append(helper.make_node("Add", [x, term], [out], name=g.fresh("ln_skip_add")))
                x = out
        rows = self._const(g, f"rows{hidden}", np.array([-1, 1, hidden], dtype=np.int64))
        one = self._const(g, "one", np.ones(1, dtype=np.float32))
        zero = self._const(g, "zero", np.zeros(1, dtype=np.float32))
        shape, flat, normed, back, scaled = (g.fresh(stem) for stem in ("ln_shape", "ln_rows", "ln_norm", "ln_back", "ln_scaled"))
        gamma_at, beta_at = (2, 3) if skip else (1, 2)
        has_beta = len(node.input) > beta_at and bool(node.input[beta_at])
        new += [
            helper.make_node("Shape", [x], [shape], name=g.fresh("ln_shape")),
            helper.make_node("Reshape", [x, rows], [flat], name=g.fresh("ln_reshape")),
            helper.make_node("InstanceNormalization", [flat, one, zero], [normed], epsilon=eps, name=g.fresh("ln_instance_norm")),
            helper.make_node("Reshape", [normed, shape], [back], name=g.fresh("ln_reshape_back")),
            helper.make_node("Mul", [back, node.input[gamma_at]], [scaled if has_beta else node.output[0]], name=g.fresh("ln_gamma")),
        ]
        if has_beta:
            new.append(helper.make_node("Add", [scaled, node.input[beta_at]], [node.output[0]], name=g.fresh("ln_beta")))
        return new, node, [node]


# ---- the head reads only the first token: compute the last layer's tail for it alone -----------

#: Ops that compute each position of axis 1 from the same position of their inputs alone, with
#: the inputs that may be activations (the others must be constants). None: every input.
_TOKENWISE: dict[tuple[str, str], tuple[int, ...] | None] = {
    ("", "MatMul"): (0,),
    ("", "Add"): None, ("", "Sub"): None, ("", "Mul"): None, ("", "Div"): None,
    ("", "Gelu"): (0,), ("", "Erf"): (0,), ("", "Tanh"): (0,), ("", "Relu"): (0,), ("", "Sigmoid"): (0,),
    ("", "Sqrt"): (0,), ("", "Cast"): (0,), ("", "Identity"): (0,),
    ("", "LayerNormalization"): (0,),
    (MS_DOMAIN, "BiasGelu"): (0,), (MS_DOMAIN, "FastGelu"): (0,), (MS_DOMAIN, "Gelu"): (0,),
    (MS_DOMAIN, "SkipLayerNormalization"): (0, 1),
}
_RANK_OF_INPUT0 = {"MatMul", "Gelu", "Erf", "Tanh", "Relu", "Sigmoid", "Sqrt", "Cast", "Identity",
                   "LayerNormalization", "BiasGelu", "FastGelu", "SkipLayerNormalization"}


def _ranks(model: onnx.ModelProto, g: _Graph) -> dict[str, int]:
    """Tensor ranks: graph inputs, initializers, value_info, then propagated through the ops above."""
    ranks: dict[str, int] = {}
    for value in list(model.graph.input) + list(model.graph.value_info) + list(model.graph.output):
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            ranks[value.name] = len(value.type.tensor_type.shape.dim)
    for name in g.inits:
        ranks[name] = len(g.inits[name].dims)
    for node in model.graph.node:
        if node.op_type == "Constant":
            value = g.const(node.output[0])
            if value is not None:
                ranks[node.output[0]] = value.ndim
        if not node.output or node.output[0] in ranks:
            continue
        known = [ranks.get(name) for name in node.input if name]
        if node.op_type in _RANK_OF_INPUT0 and known and known[0] is not None:
            ranks[node.output[0]] = known[0]
        elif node.op_type in ("Add", "Sub", "Mul", "Div") and known and None not in known:
            ranks[node.output[0]] = max(known)
    return ranks


class FirstTokenOnly(Fusion):
    """When a head reads only position 0 (``Gather(hidden, 0, axis=1)``: the classification and
    multiple-choice heads), compute the token-wise tail before it (the last layer's output
    projection, feed-forward and norms) for that position alone.

    Every op between the last token-mixing op (attention, the convolutions) and the Gather
    computes position ``s`` from position ``s`` of its inputs, so slicing those inputs to
    ``[:, 0:1]`` computes the same numbers (to float rounding of a 1-row GEMM) and skips the rest:
    on conv-bert-base that is ~90% of the last layer's multiply-adds. Nodes whose output something
    else reads (another head, a graph output such as hidden states) are left whole, so the rewrite
    changes nothing in a graph that returns per-token outputs.
    """

    def candidates(self, g: _Graph):
        found = []
        for node in g.graph.node:
            if node.op_type != "Gather" or node.domain not in ("", "ai.onnx") or _attr(node, "axis", 0) != 1:
                continue
            index = g.const(node.input[1])
            if index is not None and index.size == 1 and int(index.reshape(-1)[0]) == 0:
                found.append(node)
        return found

    def apply(self, model: onnx.ModelProto) -> int:
        g = _Graph(model)
        ranks = _ranks(model, g)
        heads = self.candidates(g)
        if not heads:
            return 0
        nodes = list(g.graph.node)  # held: protobuf wrappers keep their id() only while referenced
        order = {id(node): index for index, node in enumerate(nodes)}
        pruned: dict[int, onnx.NodeProto] = {}
        readers = {id(node) for node in heads}

        def activations(node):
            allowed = _TOKENWISE.get((node.domain if node.domain != "ai.onnx" else "", node.op_type), ())
            names = [(i, name) for i, name in enumerate(node.input) if name and g.const(name) is None]
            if allowed is None:
                return names, True
            return names, all(i in allowed for i, _ in names)

        def eligible(node) -> bool:
            key = (node.domain if node.domain != "ai.onnx" else "", node.op_type)
            if key not in _TOKENWISE:
                return False
            if node.op_type == "MatMul" and (g.const(node.input[1]) is None or g.const(node.input[1]).ndim != 2):
                return False
            if node.op_type == "LayerNormalization" and _attr(node, "axis", -1) not in (-1, ranks.get(node.input[0], 0) - 1):
                return False
            names, ok = activations(node)
            rank = ranks.get(node.output[0])
            if not ok or not names or rank is None or rank < 2:
                return False
            if any(ranks.get(name) != rank for _, name in names):
                return False  # a broadcast activation: its axis 1 is not the positions
            constants = [] if node.op_type == "MatMul" else [g.const(name) for name in node.input if name]
            if any(value is not None and value.ndim > 1 for value in constants):
                return False  # a constant that varies along the positions
            used = [name for name in node.output if name and (name in g.consumers or name in g.outputs)]
            if not used or any(name in g.outputs for name in used):
                return False
            return all(id(user) in pruned or id(user) in readers for name in used for user in g.consumers[name])

        changed = True
        while changed:  # to a fixed point, latest nodes first
            changed = False
            for node in reversed(nodes):
                if id(node) not in pruned and eligible(node):
                    pruned[id(node)] = node
                    changed = True
        if not any(node.op_type == "MatMul" for node in pruned.values()):
            return 0  # nothing worth a Slice
        starts = g.add_initializer(np.array([0], dtype=np.int64), "first_start")
        ends = g.add_initializer(np.array([1], dtype=np.int64), "first_end")
        axes = g.add_initializer(np.array([1], dtype=np.int64), "first_axis")
        sliced: dict[str, str] = {}
        insert: dict[int, list[onnx.NodeProto]] = {}
        for node in sorted(pruned.values(), key=lambda n: order[id(n)]):
            for index, name in activations(node)[0]:
                source = g.producer.get(name)
                if source is not None and id(source) in pruned:
                    continue
                if name not in sliced:
                    sliced[name] = g.fresh("first_token")
                    insert.setdefault(id(node), []).append(
                        helper.make_node("Slice", [name, starts, ends, axes], [sliced[name]], name=g.fresh("first_slice")))
                node.input[index] = sliced[name]
        _replace_nodes(g.graph, set(), insert)
        # the tensors now hold one position (types stay: the quantizer reads them)
        shrunk = {name for node in pruned.values() for name in node.output}
        for value in model.graph.value_info:
            if value.name in shrunk and value.type.tensor_type.HasField("shape"):
                dims = value.type.tensor_type.shape.dim
                if len(dims) > 1:
                    dims[1].Clear()
                    dims[1].dim_value = 1
        return sum(1 for node in pruned.values() if node.op_type in ("MatMul",))


def first_token_only(model: onnx.ModelProto) -> int:
    """Apply :class:`FirstTokenOnly`; returns the number of MatMuls that now run on one position."""
    return FirstTokenOnly().apply(model)


def layernorm_as_instancenorm(model: onnx.ModelProto) -> int:
    """Apply :class:`LayerNormAsInstanceNorm`; returns the number of rewritten normalizations."""
    return LayerNormAsInstanceNorm().apply(model)


def pointwise_conv_to_matmul(model: onnx.ModelProto) -> int:
    """Apply :class:`PointwiseConvToMatMul`; returns the number of rewritten convolutions."""
    return PointwiseConvToMatMul().apply(model)


def pack_projections(model: onnx.ModelProto) -> int:
    """Apply :class:`PackProjections`; returns the number of packed groups."""
    return PackProjections().apply(model)


def attention_to_mha(model: onnx.ModelProto) -> int:
    """Apply :class:`AttentionToMha`; returns the number of fused attention blocks."""
    return AttentionToMha().apply(model)


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
