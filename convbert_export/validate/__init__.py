"""Validation of exports (and engine directories) against the PyTorch reference.

settings.py (ValidationSettings, thresholds), cases.py (inputs), compare.py (metrics),
graph.py (manifest vs graph), padding.py (padding effect), report.py (ValidationReport and its
files), check.py (``validate`` and ``compare_runners``: two Runners, every case, every output).
"""

from .check import compare_runners, validate
from .report import ValidationReport
from .settings import ValidationSettings

__all__ = ["ValidationReport", "ValidationSettings", "validate", "compare_runners"]

from .._callable_module import make_callable  # noqa: E402

make_callable(__name__, "validate")  # convbert_export.validate(...) calls validate()
