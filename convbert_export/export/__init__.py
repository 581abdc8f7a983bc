"""Export ConvBERT task heads to self-contained, validated ONNX export directories.

``export`` writes one task; ``export_tasks`` writes several (one sub-directory each). Both write
into a temporary directory beside the output and rename it into place, so an interrupted export
never leaves a half-written directory, and both refuse an existing output without ``force``.

The exporter is ``exporter.py``; onnx.py (torch -> ONNX), dynamic_conv.py (the two lowerings)
and openvino.py (OpenVINO variants) beside it. Optimization is its own package,
:mod:`convbert_export.optimize` (``export.optimize`` re-exports it).
"""

from .exporter import (  # noqa: F401
    PADDING_MODES,
    ExportResult,
    ExportSettings,
    ModelSource,
    _resolve_tasks,
    export,
    export_model,
    export_tasks,
)
from .exporter import __all__  # noqa: F401

from .._callable_module import make_callable  # noqa: E402

make_callable(__name__, "export")  # convbert_export.export(...) calls export()
