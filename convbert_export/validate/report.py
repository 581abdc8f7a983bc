"""The validation result (:class:`ValidationReport`; validation.json is its ``to_dict``) and
the writer of validation.json / validation.md."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from pathlib import Path

from ..fileio import write_json_atomic, write_text_atomic
from .compare import Agreement, OutputStats


@dataclass
class ValidationReport:
    export_dir: str
    task: str
    dynamic_conv: str
    padding: str
    precision: str
    provider: str
    outputs: dict[str, OutputStats]
    agreement: Agreement
    failures: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    padding_effect: dict = field(default_factory=dict)
    library: str = ""
    elapsed_s: float = 0.0
    environment: dict = field(default_factory=dict)
    replay: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "task": self.task,
            "export_dir": self.export_dir,
            "dynamic_conv": self.dynamic_conv,
            "padding": self.padding,
            "precision": self.precision,
            "provider": self.provider,
            "custom_op_library": self.library,
            "outputs": [stats.to_dict() for stats in self.outputs.values()],
            "agreement": self.agreement.to_dict(),
            "padding_effect": self.padding_effect,
            "failures": self.failures,
            "cases": self.cases,
            "elapsed_s": round(self.elapsed_s, 3),
            "environment": self.environment,
            "replay": self.replay,
        }

    def summary(self) -> str:
        """One line per failure, for the error message."""
        return "; ".join(self.failures)


def write_reports(report: ValidationReport, directory: str | Path) -> None:
    """Write validation.json, validation.md and validation.html into ``directory`` (atomically)."""
    from ..report import html_report, validation_markdown

    write_json_atomic(Path(directory) / "validation.json", report.to_dict())
    write_text_atomic(Path(directory) / "validation.md", validation_markdown(report))
    write_text_atomic(Path(directory) / "validation.html", html_report(report.to_dict()))


def environment() -> dict:
    import onnxruntime

    from .. import __version__

    return {
        "convbert_export": __version__,
        "onnxruntime": onnxruntime.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
