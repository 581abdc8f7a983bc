"""The one place tests get models and exports from.

* ``tiny_model(task)``: a one-layer, 32-wide ConvBERT over the demo vocabulary (seeded weights).
* ``tiny_export(task, dynamic_conv)``: ``tiny_model(task)`` exported ONCE per test process (no
  validation) to ``<process-wide temporary directory>/tiny-<dynamic_conv>/<task>`` (the directory
  is named after the task, as the Triton writer names its models); read-only by convention. The
  engine tests' ``export_dir`` and the serving tests' ``serving_export`` fixtures are this.
* ``demo_export(task, padding, dynamic_conv)``: the demo preset's head exported ONCE per test
  process (no validation) into a process-wide temporary directory; read-only by convention (copy
  it before editing). Every module that needs "a demo export" (test_openvino's included) takes it
  from here instead of exporting the preset again.

Reference-model parity helpers (tiny configs, transformers twins) stay in
tests/reference_model/reference_model_helpers.py; transformers-saved checkpoints for the
pipeline parity tests in tests/runtime/conftest.py (a different model: transformers' own classes,
its tokenizer, padding "transformers"; nothing there is the same as a factory here).
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
import warnings
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


def _root() -> Path:
    global _ROOT
    if _ROOT is None:
        _ROOT = Path(tempfile.mkdtemp(prefix="convbert-demo-exports-"))
        atexit.register(shutil.rmtree, _ROOT, True)
    return _ROOT


def tiny_export(task: str, dynamic_conv: str = "decomposed") -> Path:
    """``tiny_model(task)`` exported (no validation) to a process-wide temporary directory named
    ``task`` (read-only by convention: copy it before editing)."""
    import convbert_export

    key = ("tiny", task, dynamic_conv)
    if key not in _CACHE:
        out = _root() / f"tiny-{dynamic_conv}" / task
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            convbert_export.export(tiny_model(task), task, out, dynamic_conv=dynamic_conv, validate=False)
        _CACHE[key] = out
    return _CACHE[key]


def demo_export(task: str, padding: str = "exact", dynamic_conv: str = "decomposed") -> Path:
    """The demo preset's ``task`` head exported to a process-wide temporary directory (read-only
    by convention: copy it before editing)."""
    from convbert_export.export import ExportSettings, ModelSource, export_tasks

    key = (task, padding, dynamic_conv)
    if key not in _CACHE:
        out = _root() / (f"{task}-{padding}" if dynamic_conv == "decomposed" else f"{task}-{padding}-{dynamic_conv}")
        export_tasks(ModelSource.from_preset("demo"), [task], out,
                     ExportSettings(validate=False, padding=padding, dynamic_conv=dynamic_conv))
        _CACHE[key] = out
    return _CACHE[key]
