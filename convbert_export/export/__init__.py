"""Export ConvBERT task heads to self-contained, validated ONNX export directories.

``export`` writes one task; ``export_tasks`` writes several (one sub-directory each). Both write
into a temporary directory beside the output and rename it into place, so an interrupted export
never leaves a half-written directory, and both refuse an existing output without ``force``.

The exporter is ``exporter.py``; onnx.py (torch -> ONNX), dynamic_conv.py (the two lowerings)
and openvino.py (OpenVINO variants) beside it. Optimization is its own package,
:mod:`convbert_export.optimize` (``export.optimize`` re-exports it).
"""

_NAMES = ("PADDING_MODES", "ExportResult", "ExportSettings", "ModelSource", "_resolve_tasks", "export",
          "export_model", "export_tasks")
_LAZY = {name: ("convbert_export.export.exporter", name) for name in _NAMES}
__all__ = ["ExportResult", "ExportSettings", "ModelSource", "export", "export_model", "export_tasks", "PADDING_MODES"]

from .._lazy import lazy_attributes  # noqa: E402

__getattr__ = lazy_attributes(__name__, _LAZY, globals())

from .._callable_module import make_callable  # noqa: E402

make_callable(__name__, "export")  # convbert_export.export(...) calls export()
