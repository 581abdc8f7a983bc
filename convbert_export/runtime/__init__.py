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
    "OpenVinoRunner": ("convbert_export.runtime.openvino", "OpenVinoRunner"),
    "OpenVinoSettings": ("convbert_export.runtime.openvino", "OpenVinoSettings"),
    "TorchRunner": ("convbert_export.runtime.torch_ref", "TorchRunner"),
    "Pipeline": ("convbert_export.runtime.pipelines", "Pipeline"),
    "PIPELINES": ("convbert_export.runtime.pipelines", "PIPELINES"),
    "is_engine_dir": ("convbert_export.runtime.factory", "is_engine_dir"),
    "create_runner": ("convbert_export.runtime.factory", "create_runner"),
    "runner_class": ("convbert_export.runtime.factory", "runner_class"),
    "MicroBatcher": ("convbert_export.runtime.batcher", "MicroBatcher"),
}

# backend name -> (module, class): one entry per Runner class (ARCHITECTURE convention 4).
# runtime/factory.py reads it: create_runner(path, backend=NAME) calls CLASS.from_dir(path, ...).
# A new backend (e.g. "openvino": ("convbert_export.runtime.openvino", "OpenVinoRunner")) is one
# line here plus its module.
RUNNERS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("convbert_export.runtime.ort", "OrtRunner"),
    "torch": ("convbert_export.runtime.torch_ref", "TorchRunner"),
    "tensorrt": ("convbert_export.runtime.trt", "TrtRunner"),
    "openvino": ("convbert_export.runtime.openvino", "OpenVinoRunner"),
}

__all__ = list(_LAZY) + ["RUNNERS"]


from .._lazy import lazy_attributes  # noqa: E402

__getattr__ = lazy_attributes(__name__, _LAZY, globals())
