"""Renderers of validation and evaluation results: Markdown for reviewers, plain tables for the
terminal, one self-contained HTML file with plots (plots need the ``report`` extra)."""

from .evaluation import evaluation_markdown, evaluation_table
from .html import html_report
from .validation import summary_table, validation_markdown, validation_table

__all__ = ["evaluation_markdown", "evaluation_table", "html_report", "summary_table", "validation_markdown",
           "validation_table"]
