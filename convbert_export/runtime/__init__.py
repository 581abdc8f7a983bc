"""Serving: runners (one protocol per backend), task pipelines and the micro-batcher.

Nothing here imports torch; onnxruntime and TensorRT load when a runner starts.

    from convbert_export.runtime import Pipeline, MicroBatcher
    pipe = Pipeline.from_export("out/onnx")      # export directory: ONNX Runtime (cpu by default)
    pipe = Pipeline.from_export("out/engine")    # engine directory (engine.json): TrtRunner
"""

from __future__ import annotations

_LAZY = {
    "Runner": ("convbert_export.runtime.base", "Runner"),
    "TensorMeta": ("convbert_export.runtime.base", "TensorMeta"),
    "ModelLimits": ("convbert_export.runtime.base", "ModelLimits"),
    "OrtRunner": ("convbert_export.runtime.ort", "OrtRunner"),
    "OrtSettings": ("convbert_export.runtime.ort", "OrtSettings"),
    "TrtRunner": ("convbert_export.runtime.trt", "TrtRunner"),
    "TorchRunner": ("convbert_export.runtime.torch_ref", "TorchRunner"),
    "Pipeline": ("convbert_export.runtime.pipeline", "Pipeline"),
    "is_engine_dir": ("convbert_export.runtime.pipeline", "is_engine_dir"),
    "MicroBatcher": ("convbert_export.runtime.batcher", "MicroBatcher"),
}

# backend name -> (module, class): one entry per Runner class (ARCHITECTURE convention 4)
RUNNERS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("convbert_export.runtime.ort", "OrtRunner"),
    "torch": ("convbert_export.runtime.torch_ref", "TorchRunner"),
    "tensorrt": ("convbert_export.runtime.trt", "TrtRunner"),
}

__all__ = list(_LAZY) + ["RUNNERS"]


from .._lazy import lazy_attributes  # noqa: E402

__getattr__ = lazy_attributes(__name__, _LAZY, globals())
