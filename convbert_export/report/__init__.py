"""Renderers of validation results: Markdown for reviewers, plain tables for the terminal."""

from .validation import validation_markdown, validation_table, summary_table

__all__ = ["validation_markdown", "validation_table", "summary_table"]
