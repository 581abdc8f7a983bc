"""Validation of exports against the PyTorch reference."""

from .check import ValidationReport, ValidationSettings, validate

__all__ = ["ValidationReport", "ValidationSettings", "validate"]

from .._callable_module import make_callable  # noqa: E402

make_callable(__name__, "validate")  # convbert_export.validate(...) calls validate()
