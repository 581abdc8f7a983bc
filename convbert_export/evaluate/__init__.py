"""Task metrics on labeled data: the reference and every export, side by side (``evaluate``)."""

from .data import BadRow, parse_columns, read_rows
from .run import EvaluationReport, EvaluationSettings, evaluate, write_evaluation

__all__ = ["BadRow", "EvaluationReport", "EvaluationSettings", "evaluate", "parse_columns", "read_rows",
           "write_evaluation"]
