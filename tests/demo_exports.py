"""Demo-preset exports shared by the hardening tests (issue 11): each task exported once per
test process, without validation (the tests that need validation run it themselves)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
from pathlib import Path

_ROOT: Path | None = None
_CACHE: dict[tuple, Path] = {}


def demo_export(task: str, padding: str = "exact") -> Path:
    """The demo preset's ``task`` head exported to a process-wide temporary directory (read-only
    by convention: copy it before editing)."""
    global _ROOT
    from convbert_export.export import ExportSettings, ModelSource, export_tasks

    key = (task, padding)
    if key not in _CACHE:
        if _ROOT is None:
            _ROOT = Path(tempfile.mkdtemp(prefix="convbert-demo-exports-"))
            atexit.register(shutil.rmtree, _ROOT, True)
        out = _ROOT / f"{task}-{padding}"
        export_tasks(ModelSource.from_preset("demo"), [task], out, ExportSettings(validate=False, padding=padding))
        _CACHE[key] = out
    return _CACHE[key]
