"""Validation of exports against the PyTorch reference."""

from .check import ValidationReport, ValidationSettings, validate

__all__ = ["ValidationReport", "ValidationSettings", "validate"]
