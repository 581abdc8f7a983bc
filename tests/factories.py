"""The one place tests get models and exports from.

* ``tiny_model(task)``: a one-layer, 32-wide ConvBERT over the demo vocabulary (seeded weights).
* ``demo_export(task, padding)``: the demo preset's head exported ONCE per test process (no
  validation) into a process-wide temporary directory; read-only by convention (copy it before
  editing). Every module that needs "a demo export" takes it from here instead of exporting
  the preset again.

Reference-model parity helpers (tiny configs, transformers twins) stay in
tests/reference_model/reference_model_helpers.py; transformers-saved checkpoints for the
pipeline parity tests in tests/runtime/conftest.py.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
from pathlib import Path

MAX_POSITIONS = 64


def tiny_model(task: str):
    """A one-layer, 32-wide ConvBERT for ``task`` over the demo vocabulary (seeded weights)."""
    import torch

    from reference_model.modeling import MODEL_CLASSES
    from reference_model.presets import initialize_weights, preset_config

    config = dataclasses.replace(
        preset_config("demo", task), num_hidden_layers=1, hidden_size=32, embedding_size=32,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=MAX_POSITIONS,
    )
    model = MODEL_CLASSES[config.architectures[0]](config)
    initialize_weights(model, config.initializer_range, torch.Generator().manual_seed(0))
    return model.eval()


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
