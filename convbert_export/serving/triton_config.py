"""Triton model configs as ModelConfig dicts, and their config.pbtxt text.

:class:`TritonSettings` (how the repository is written), ``model_config`` (an export's
``onnxruntime_onnx`` or an engine's ``tensorrt_plan`` model: tensors from the manifest, dynamic
batching only where batching is safe) and ``step_configs`` (the tokenize/answer Python models
and the ensemble). ``config_text`` checks a config against Triton's own schema (tritonclient).
Copying files into the repository is ``serving/triton.py``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError, MissingDependencyError, check_int, lookup
from ..manifest import Manifest
from .triton_step import ANSWER_OUTPUT, TEXT_INPUT

__all__ = ["TritonSettings", "Source", "KINDS", "model_config", "step_configs", "config_text"]

KINDS = ("cpu", "gpu")

_DTYPES = {"int64": "TYPE_INT64", "int32": "TYPE_INT32", "float32": "TYPE_FP32",
           "float16": "TYPE_FP16", "bool": "TYPE_BOOL"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class TritonSettings:
    """How the repository is written.

    Attributes:
        name: the model name (one source only; default: the source directory's name).
        max_batch_size: the model's ``max_batch_size`` (largest batch Triton forms or accepts).
        instances: model instances per device (``instance_group.count``), for every model.
        kind: ``cpu`` or ``gpu`` (``instance_group.kind``; gpu adds ONNX Runtime's TensorRT
            accelerator to an onnxruntime model).
        max_queue_delay_us: how long the dynamic batcher waits to fill a batch.
        max_queue_size: requests waiting beyond this are rejected at once (queue policy).
        ensemble: also write the text-in/JSON-out Python steps and the ensemble.
        allow_unsafe_batching: enable dynamic batching on a leaking or batch-dependent export.
        repository_mount: where the repository is mounted inside the Triton container; the
            custom-op library path in ``model_operations`` is absolute under it.
    """

    name: str | None = None
    max_batch_size: int = 8
    instances: int = 1
    kind: str = "cpu"
    max_queue_delay_us: int = 1000
    max_queue_size: int = 64
    ensemble: bool = True
    allow_unsafe_batching: bool = False
    repository_mount: str = "/models"

    def __post_init__(self):
        for key in ("max_batch_size", "instances", "max_queue_size"):
            check_int(key, getattr(self, key), 1)
        check_int("max_queue_delay_us", self.max_queue_delay_us, 0)
        lookup(KINDS, self.kind, "kind")
        if self.name is not None and not _NAME.match(self.name):
            raise InvalidInputError(
                f"model name {self.name!r} is not a valid Triton model name; use letters, digits, '_', '-', '.'"
            )
        if not self.repository_mount.startswith("/"):
            raise InvalidInputError(f"repository_mount must be an absolute path, got {self.repository_mount!r}")


@dataclass(frozen=True)
class Source:
    """One model of the repository: its directory, name, manifest (and engine.json for an engine)."""

    directory: Path
    name: str
    manifest: Manifest
    engine: Any = None  # EngineInfo for an engine directory

    @property
    def batch_safe(self) -> bool:
        return self.manifest.padding == "exact" and self.manifest.batch_invariant


def _dims(axes, manifest: Manifest, batched: bool) -> list[int]:
    """Triton dims of a manifest tensor: -1 for dynamic axes, sizes the manifest knows."""
    sizes = {"hidden": manifest.model.get("hidden_size"), "vocab": manifest.model.get("vocab_size"),
             "num_labels": len(manifest.id2label) or None}
    dims = [int(sizes.get(axis) or -1) for axis in axes]
    return dims[1:] if batched else dims  # with max_batch_size > 0 the batch axis is implicit


def _dtype(dtype: str) -> str:
    return lookup(_DTYPES, dtype, "dtype for Triton")


def _tensors(specs, manifest: Manifest, batched: bool) -> list[dict]:
    return [{"name": spec.name, "data_type": _dtype(spec.dtype), "dims": _dims(spec.axes, manifest, batched)}
            for spec in specs]


def _instance_group(settings: TritonSettings, kind: str | None = None) -> list[dict]:
    return [{"count": settings.instances, "kind": "KIND_GPU" if (kind or settings.kind) == "gpu" else "KIND_CPU"}]


def _preferred_sizes(max_batch_size: int) -> list[int]:
    sizes, size = [], 1
    while size * 2 <= max_batch_size:
        size *= 2
        sizes.append(size)
    if max_batch_size not in sizes and max_batch_size > 1:
        sizes.append(max_batch_size)
    return sizes


def model_config(source: Source, settings: TritonSettings) -> tuple[dict, list[str]]:
    manifest, notes = source.manifest, []
    config: dict = {
        "name": source.name,
        "max_batch_size": settings.max_batch_size,
        "input": _tensors(manifest.inputs, manifest, batched=True),
        "output": _tensors(manifest.outputs, manifest, batched=True),
        "instance_group": _instance_group(settings, "gpu" if source.engine is not None else None),
    }
    if source.engine is not None:
        config["platform"] = "tensorrt_plan"
        longest = max(p.batch.max for p in source.engine.profiles)
        if settings.max_batch_size > longest:
            raise InvalidInputError(
                f"--max-batch-size {settings.max_batch_size} exceeds the engine's largest profile batch "
                f"({longest}); pass --max-batch-size {longest} or rebuild the engine with a larger profile"
            )
        if source.engine.backend != "tensorrt":
            notes.append(
                f"{source.name}: built with {source.engine.backend} {source.engine.backend_version}; Triton's "
                "tensorrt backend deserializes plans of its own TensorRT version only; build the engine "
                "with --backend tensorrt (the TensorRT of your Triton release) to serve it"
            )
    else:
        config["platform"] = "onnxruntime_onnx"
        if manifest.uses_custom_op or manifest.dynamic_conv.get("uses_custom_domain"):
            from ..custom_ops import library_filename

            config["model_operations"] = {"op_library_filename": [
                f"{settings.repository_mount.rstrip('/')}/{source.name}/1/{library_filename()}"]}
        if settings.kind == "gpu":
            precision = "FP16" if manifest.precision == "fp16" else "FP32"
            config["optimization"] = {"execution_accelerators": {"gpu_execution_accelerator": [
                {"name": "tensorrt", "parameters": {"precision_mode": precision,
                                                    "max_workspace_size_bytes": str(1 << 30)}}]}}
    if source.batch_safe or settings.allow_unsafe_batching:
        config["dynamic_batching"] = {
            "preferred_batch_size": _preferred_sizes(settings.max_batch_size),
            "max_queue_delay_microseconds": settings.max_queue_delay_us,
            "default_queue_policy": {"max_queue_size": settings.max_queue_size, "timeout_action": "REJECT"},
        }
        if not source.batch_safe:
            notes.append(f"{source.name}: dynamic batching enabled on a {_unsafe_reason(manifest)} as asked")
    else:
        fix = ("re-export with --padding exact" if manifest.padding != "exact"
               else "use an fp32, fp16 or static int8 variant")
        notes.append(
            f"{source.name}: no dynamic batching: the export is a {_unsafe_reason(manifest)}, so padded or "
            f"shared batches change answers; {fix} to batch, or pass --allow-unsafe-batching"
        )
    return config, notes


def _unsafe_reason(manifest: Manifest) -> str:
    if manifest.padding != "exact":
        return f"padding-leaking export (padding {manifest.padding!r})"
    return "batch-dependent export (batch_invariant false: dynamic int8)"


def step_configs(source: Source, settings: TritonSettings) -> list[dict]:
    """The tokenize and answer Python models and the ensemble, as ModelConfig dicts."""
    manifest, name = source.manifest, source.name
    model_inputs = _tensors(manifest.inputs, manifest, batched=False)
    model_outputs = _tensors(manifest.outputs, manifest, batched=False)
    text = {"name": TEXT_INPUT, "data_type": "TYPE_STRING", "dims": [1]}
    answer = {"name": ANSWER_OUTPUT, "data_type": "TYPE_STRING", "dims": [1]}
    params = {"max_rows": {"string_value": str(settings.max_batch_size)}}
    if source.engine is not None:  # the engine's profiles bound the sequence length
        longest = max(p.sequence.max for p in source.engine.profiles)
        params["max_length"] = {"string_value": str(longest)}
    tokenize = {"name": f"{name}_tokenize", "backend": "python", "max_batch_size": 0,
                "input": [text], "output": model_inputs, "instance_group": _instance_group(settings, "cpu"),
                "parameters": {"role": {"string_value": "tokenize"}, **params}}
    answer_cfg = {"name": f"{name}_answer", "backend": "python", "max_batch_size": 0,
                  "input": [text, *model_outputs], "output": [answer],
                  "instance_group": _instance_group(settings, "cpu"),
                  "parameters": {"role": {"string_value": "answer"}, **params}}
    step = lambda model, inputs, outputs: {  # noqa: E731
        "model_name": model, "model_version": -1,
        "input_map": {k: k for k in inputs}, "output_map": {k: k for k in outputs}}
    in_names = [t["name"] for t in model_inputs]
    out_names = [t["name"] for t in model_outputs]
    ensemble = {
        "name": f"{name}_text", "platform": "ensemble", "max_batch_size": 0,
        "input": [text], "output": [answer],
        "ensemble_scheduling": {"step": [
            step(f"{name}_tokenize", [TEXT_INPUT], in_names),
            step(name, in_names, out_names),
            step(f"{name}_answer", [TEXT_INPUT, *out_names], [ANSWER_OUTPUT]),
        ]},
    }
    return [tokenize, answer_cfg, ensemble]


def config_text(config: dict) -> str:
    """A ModelConfig dict as config.pbtxt text, checked against Triton's schema."""
    try:
        from google.protobuf import json_format, text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise MissingDependencyError(
            "writing Triton configs needs tritonclient: pip install 'convbert-export[triton]'"
        ) from exc
    message = json_format.ParseDict(config, model_config_pb2.ModelConfig())
    return text_format.MessageToString(message)
