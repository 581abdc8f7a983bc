"""torch -> ONNX for one task head: trace with dynamic axes, lower the dynamic convolution, save.

The model is traced with ``torch.onnx.export(..., dynamo=True)`` at a small sample shape whose
axes are all declared dynamic (batch, sequence, num_choices), so the graph is right for every
batch >= 1 and every sequence length up to ``max_position_embeddings``. The dynamic convolution
arrives as one ``convbert::dynamic_conv`` op and is translated by :mod:`.dynamic_conv`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import onnx

from ..errors import ExportError
from ..tasks import INPUT_NAMES, TaskSpec
from . import dynamic_conv as dc

EXTERNAL_DATA_THRESHOLD = 2 * 1024**3 - 64 * 1024**2  # protobuf's 2 GB limit, with headroom
DEFAULT_OPSET = 18


def _wrap(model, spec: TaskSpec):
    import torch

    class ExportWrapper(torch.nn.Module):
        """Positional inputs, tuple outputs in TaskSpec order (what the exporter wants)."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            out = self.inner(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return tuple(out[name] for name in spec.output_names)

    return ExportWrapper(model).eval()


def sample_inputs(spec: TaskSpec, config, batch: int = 2, sequence: int = 8, num_choices: int = 3, seed: int = 0):
    """Small int64 inputs for tracing (the task's :meth:`~convbert_export.inputs.TaskInputs.sample`:
    random ids, right padding in one row, both token types) as torch tensors, in input order."""
    import torch

    from ..inputs import ModelDims

    feeds = spec.model_inputs().sample(ModelDims.of(config), batch, sequence, num_choices, seed)
    return tuple(torch.from_numpy(feeds[name]) for name in INPUT_NAMES)


def dynamic_shapes(spec: TaskSpec, config) -> dict:
    from torch.export import Dim

    batch = Dim("batch", min=1, max=1 << 20)
    sequence = Dim("sequence", min=1, max=config.max_position_embeddings)
    if spec.multiple_choice:
        choices = Dim("num_choices", min=1, max=1 << 10)
        axes = {0: batch, 1: choices, 2: sequence}
    else:
        axes = {0: batch, 1: sequence}
    return {name: axes for name in ("input_ids", "attention_mask", "token_type_ids")}


def trace_to_onnx(model, spec: TaskSpec, *, opset: int = DEFAULT_OPSET, mode: str = "decomposed", verbose: bool = False) -> onnx.ModelProto:
    """Export ``model`` (a reference_model head in eval mode) to an in-memory ONNX model."""
    import torch

    from reference_model import dynamic_conv as ref_dc  # noqa: F401  (registers the op)

    if opset < 17:
        raise ExportError(f"opset {opset} is too old: expected 17 or newer (LayerNorm must export as LayerNormalization)")
    config = model.config
    attn = _first_self_attention(model)
    wrapper = _wrap(model, spec)
    args = sample_inputs(spec, config)
    table = {torch.ops.convbert.dynamic_conv.default: dc.make_translation(attn.attention_head_size)}
    sink = io.StringIO()
    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(sink)
    logger = logging.getLogger("torch.onnx")
    previous = logger.level
    try:
        with quiet, warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            if not verbose:
                logger.setLevel(logging.ERROR)
            program = torch.onnx.export(
                wrapper,
                args,
                dynamo=True,
                input_names=list(spec.input_names),
                output_names=list(spec.output_names),
                dynamic_shapes=dynamic_shapes(spec, config),
                custom_translation_table=table,
                opset_version=opset,
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # the exporter raises many types; keep its message
        raise ExportError(f"tracing the {spec.name} head failed: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
    finally:
        logger.setLevel(previous)
    proto = program.model_proto
    produced = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if produced != opset:
        # torch's exporter keeps its own opset (with a warning only) when it cannot convert
        raise ExportError(
            f"opset {opset} is not supported by torch {torch.__version__.split('+')[0]}'s ONNX exporter: it produced "
            f"opset {produced}; choose an older --opset (the default, 18, always works)"
        )
    proto = dc.apply_mode(
        proto, mode, kernel_size=config.conv_kernel_size, num_heads=attn.num_attention_heads, head_size=attn.attention_head_size
    )
    if mode == "decomposed":
        proto = _fold_constants(proto)
    _name_axes(proto, spec)
    _tidy(proto)
    proto.producer_name = "convbert-export"
    return proto


def _tidy(model: onnx.ModelProto) -> None:
    """Checkpoint key names for initializers; node metadata reduced to the module path.

    The exporter names weights after the wrapper (``inner.convbert...``) and records the FX node
    and class hierarchy of every node (a third of a small model's file); the module path
    (``namespace``) is enough to map a node back to the model.
    """
    renames = {}
    for init in model.graph.initializer:
        if init.name.startswith("inner."):
            renames[init.name] = init.name[len("inner.") :]
            init.name = renames[init.name]
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if name in renames:
                node.input[i] = renames[name]
        keep = [(p.key, p.value) for p in node.metadata_props if p.key == "namespace"]
        del node.metadata_props[:]
        for key, value in keep:
            node.metadata_props.add(key=key, value=value.replace("inner.", "").replace("inner: ", ""))
    for value in model.graph.value_info:
        del value.metadata_props[:]


def _first_self_attention(model):
    for module in model.modules():
        if hasattr(module, "attention_head_size") and hasattr(module, "conv_kernel_size"):
            return module
    raise ExportError("the model has no ConvBERT self-attention layer; is it a reference_model head?")


def _fold_constants(model: onnx.ModelProto) -> onnx.ModelProto:
    """Turn the inlined functions' Constant nodes into initializers and drop duplicates."""
    import onnxscript.optimizer

    return onnxscript.optimizer.optimize(model)


def _name_axes(model: onnx.ModelProto, spec: TaskSpec) -> None:
    """Name every dynamic axis of the graph inputs/outputs as the TaskSpec does."""
    wanted = {**spec.inputs, **spec.outputs}
    for value in list(model.graph.input) + list(model.graph.output):
        axes = wanted.get(value.name)
        if axes is None:
            continue
        dims = value.type.tensor_type.shape.dim
        for dim, axis in zip(dims, axes):
            if not dim.HasField("dim_value"):
                dim.dim_param = axis


def save_model(model: onnx.ModelProto, directory: Path, name: str = "model.onnx") -> list[str]:
    """Save, with external data beside it when the model is too big for one protobuf."""
    path = Path(directory) / name
    size = model.ByteSize()
    if size > EXTERNAL_DATA_THRESHOLD:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=f"{name}.data", size_threshold=1024)
        return [name, f"{name}.data"]
    onnx.save_model(model, str(path))
    return [name]


def count_nodes(model: onnx.ModelProto) -> dict[str, int]:
    """Node counts by op type (Constant nodes excluded), for reports and tests."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.op_type == "Constant":
            continue
        key = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}::{node.op_type}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))
