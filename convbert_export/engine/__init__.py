"""TensorRT engines: build a plan from an export directory (TensorRT or TensorRT for RTX).

    from convbert_export.engine import EngineSettings, build_engine, parse_profile
    build_engine("out/onnx", "out/engine", EngineSettings(backend="tensorrt-rtx"))

Nothing here imports TensorRT or CUDA until a build starts. Run an engine directory with
``convbert_export.runtime.trt.TrtRunner``.
"""

from __future__ import annotations

_LAZY = {
    "build_engine": ("convbert_export.engine.builder", "build_engine"),
    "EngineSettings": ("convbert_export.engine.settings", "EngineSettings"),
    "Profile": ("convbert_export.engine.profiles", "Profile"),
    "AxisRange": ("convbert_export.engine.profiles", "AxisRange"),
    "parse_profile": ("convbert_export.engine.profiles", "parse_profile"),
    "default_profiles": ("convbert_export.engine.profiles", "default_profiles"),
    "EngineInfo": ("convbert_export.engine.metadata", "EngineInfo"),
    "read_engine_info": ("convbert_export.engine.metadata", "read_engine_info"),
    "BACKENDS": ("convbert_export.engine.backends", "BACKENDS"),
}

__all__ = list(_LAZY)


from .._lazy import lazy_attributes  # noqa: E402

__getattr__ = lazy_attributes(__name__, _LAZY, globals())
