"""Precision steps: int8 (dynamic, or static QDQ with calibration texts) and fp16, and the
calibration batches. The ops each keeps float are listed here, once."""

from __future__ import annotations

from pathlib import Path

import onnx

from ..errors import InvalidInputError
from ..manifest import Manifest
from .settings import OptimizeSettings

# int8 leaves these ops float (normalization, softmax, the embedding Gather, the classifier
# Gemm, the dynamic convolution); the report names them with what else stays float
INT8_KEEP_FLOAT = ("Gather", "LayerNormalization", "SkipLayerNormalization", "InstanceNormalization", "Softmax", "Gemm",
                   "DynamicConv")
INT8_KEPT_FLOAT_REPORT = [*INT8_KEEP_FLOAT[:-1], "dynamic convolution", "activation x activation MatMul"]


def _float_sensitive_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of nodes int8 must leave alone (Gather, normalization, softmax, the dynamic conv)."""
    return [node.name for node in model.graph.node if node.op_type in INT8_KEEP_FLOAT]


def _name_nodes(model: onnx.ModelProto) -> None:
    seen: set[str] = set()
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{index}"
        seen.add(node.name)


def quantize_int8_dynamic(src: Path, dst: Path, settings: OptimizeSettings) -> dict:
    """Dynamic int8 (MatMuls with constant weights); returns the manifest's transformation step."""
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
            "kept_float": INT8_KEPT_FLOAT_REPORT}


def calibration_feeds(export_dir: Path, manifest: Manifest, path: str | Path | None, max_batches: int, batch_size: int = 8):
    """Tokenized calibration batches (feeds dicts) from a JSON-lines file or the packaged texts
    (built by the task's :meth:`~convbert_export.inputs.TaskInputs.calibration`)."""
    from ..inputs import ModelDims, text_max_length
    from ..tasks import get_task
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
    inputs = get_task(manifest.task).model_inputs()
    pairs = inputs.calibration_pairs(items)
    if not pairs:
        raise InvalidInputError(f"no calibration texts found in {path or 'the packaged validation texts'}")
    tokenizer = Tokenizer.from_pretrained(export_dir)
    return inputs.calibration(tokenizer, pairs, text_max_length(ModelDims.of(manifest.model), tokenizer), max_batches,
                              batch_size)


def quantize_int8_static(src: Path, dst: Path, settings: OptimizeSettings, feeds: list[dict]) -> dict:
    """Static QDQ int8 calibrated on ``feeds``; returns the manifest's transformation step."""
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
            "kept_float": INT8_KEPT_FLOAT_REPORT}


FP16_KEEP_FP32 = ["LayerNormalization", "SkipLayerNormalization", "Softmax", "Range", "Erf"]


def to_fp16(model: onnx.ModelProto, keep_io_fp32: bool) -> tuple[onnx.ModelProto, dict]:
    """float16 weights and activations, FP16_KEEP_FP32 ops kept float32."""
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    block = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(FP16_KEEP_FP32))
    converted = convert_float_to_float16(model, keep_io_types=keep_io_fp32, op_block_list=block,
                                         disable_shape_infer=False)
    return converted, {"step": "fp16", "tool": "onnxruntime.transformers.float16", "kept_fp32": FP16_KEEP_FP32,
                       "io": "float32" if keep_io_fp32 else "float16"}
