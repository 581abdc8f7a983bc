"""convbert-export: ConvBERT to ONNX and TensorRT, validated against the PyTorch reference.

Nothing heavy is imported here: torch, onnxruntime and TensorRT load on first use, so an app
that only serves an export directory never imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "ConvBertExportError": ("convbert_export.errors", "ConvBertExportError"),
    "Tokenizer": ("convbert_export.tokenization", "Tokenizer"),
    # callable subpackages: convbert_export.export(...) and .validate(...) call the functions
    "export": ("convbert_export.export", None),
    "validate": ("convbert_export.validate", None),
    "Pipeline": ("convbert_export.runtime.pipelines", "Pipeline"),
    "TASKS": ("convbert_export.tasks", "TASKS"),
    "get_task": ("convbert_export.tasks", "get_task"),
}

__all__ = ["__version__", *_LAZY]


from ._lazy import lazy_attributes  # noqa: E402

__getattr__ = lazy_attributes(__name__, _LAZY, globals())
