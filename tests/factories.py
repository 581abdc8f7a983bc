"""The one place tests get models and exports from.

Models (seeded weights, eval mode):

* ``seeded_model(config, seed)``: the reference-model head ``config.architectures[0]`` with
  transformers' initialization drawn from ``seed``; every builder below ends here.
* ``tiny_model(task)``: a one-layer, 32-wide ConvBERT for ``task`` over the demo vocabulary.
* ``make_model(task, values, seed)``: a head of config ``values`` (``GROUPED``, ``BASE``: export-
  sized, demo-vocabulary configs) with non-zero biases, so a dropped bias cannot pass unnoticed.
* ``tiny_config(name, **changes)`` over ``TINY_CONFIGS`` and ``randomize(model)``: the
  reference-model tests' configs (each exercises a branch of the model) and their weights.

Exports (each built ONCE per test process into a process-wide temporary directory, read-only by
convention: copy one before editing it; each directory is named after its task, as the Triton
writer, evaluate and the benchmark show it):

* ``tiny_export(task, dynamic_conv)``: ``tiny_model(task)`` exported (no validation); the engine
  tests' ``export_dir`` and the serving tests' ``serving_export``.
* ``demo_export(task, padding, dynamic_conv, validation=None)``: the demo preset's head; with
  ``validation`` (a ValidationSettings grid) the exporter validates it and writes its reports
  (tests/report), otherwise no validation. Every module that needs "a demo export" (evaluate,
  bench, optimize, OpenVINO, CLI, integrity) takes it from here.
* ``optimized_export(task, **settings)``: ``demo_export(task)`` optimized with
  ``OptimizeSettings(validate=False, **settings)`` (e.g. ``int8="dynamic"``).

What stays elsewhere, and why:

* tests/reference_model/reference_model_helpers.py keeps ``hf_twin`` and ``make_inputs``: they
  are the oracle side of the parity tests (transformers' model with our weights, the inputs both
  run on), not models under test.
* tests/runtime/conftest.py keeps ``make_checkpoint``: the pipeline parity tests compare against
  transformers' own pipelines, so their checkpoint must be written by transformers' classes and
  tokenizer (``save_pretrained``) and exported with padding "transformers"; building it from a
  factory here would test the project against itself.
"""

from __future__ import annotations

import atexit
import dataclasses
import shutil
import tempfile
import warnings
from pathlib import Path

MAX_POSITIONS = 64

# Export-sized configs over the demo vocabulary (8192 ids):
# embedding_size != hidden_size with num_groups > 1
GROUPED = dict(
    vocab_size=8192, hidden_size=32, embedding_size=16, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=64, num_groups=2, max_position_embeddings=64, conv_kernel_size=5, pad_token_id=0,
)
# base-shaped, tiny
BASE = dict(
    vocab_size=8192, hidden_size=32, embedding_size=32, num_hidden_layers=2, num_attention_heads=4,
    intermediate_size=37, max_position_embeddings=64, conv_kernel_size=9, pad_token_id=0,
)

# The reference-model tests' configs: name -> ConvBertConfig kwargs; each exercises a different
# branch of the model.
TINY_CONFIGS: dict[str, dict] = {
    # base-shaped but tiny: E == H, one group, 4 heads // head_ratio 2 = 2 heads
    "base": dict(vocab_size=99, embedding_size=32, hidden_size=32, num_hidden_layers=2,
                 num_attention_heads=4, intermediate_size=37, conv_kernel_size=9,
                 max_position_embeddings=64, pad_token_id=0),
    # embeddings_project (E != H) and GroupedLinearLayer (num_groups 2)
    "grouped": dict(vocab_size=99, embedding_size=16, hidden_size=48, num_hidden_layers=2,
                    num_attention_heads=4, intermediate_size=64, num_groups=2, conv_kernel_size=5,
                    max_position_embeddings=64, pad_token_id=0, hidden_act="gelu_new"),
    # num_attention_heads // head_ratio < 1: a single head
    "single_head": dict(vocab_size=99, embedding_size=24, hidden_size=24, num_hidden_layers=2,
                        num_attention_heads=1, head_ratio=2, intermediate_size=40, conv_kernel_size=3,
                        max_position_embeddings=64, pad_token_id=1, hidden_act="relu"),
}


def tiny_config(name: str = "base", **changes):
    from reference_model import ConvBertConfig

    return ConvBertConfig(**{**TINY_CONFIGS[name], **changes})


def randomize(model, seed: int = 0, std: float = 0.2):
    """Draw every parameter at random (LayerNorm weights around 1) so outputs are far from trivial."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator) * std
            param.copy_(1.0 + noise if name.endswith("LayerNorm.weight") else noise)
    return model


def seeded_model(config, seed: int = 0, generator=None):
    """The head ``config.architectures[0]`` with transformers' initialization (seeded), eval mode.
    ``generator``: draw from this torch.Generator instead of a fresh one seeded with ``seed``."""
    import torch

    from reference_model.modeling import MODEL_CLASSES
    from reference_model.presets import initialize_weights

    model = MODEL_CLASSES[config.architectures[0]](config)
    initialize_weights(model, config.initializer_range, generator or torch.Generator().manual_seed(seed))
    return model.eval()


def tiny_model(task: str):
    """A one-layer, 32-wide ConvBERT for ``task`` over the demo vocabulary (seeded weights)."""
    from reference_model.presets import preset_config

    config = dataclasses.replace(
        preset_config("demo", task), num_hidden_layers=1, hidden_size=32, embedding_size=32,
        num_attention_heads=2, intermediate_size=64, max_position_embeddings=MAX_POSITIONS,
    )
    return seeded_model(config)


def make_model(task: str, values: dict, seed: int = 0):
    """``task``'s head of config ``values`` (token-classification: 3 labels), seeded, with
    non-zero biases and LayerNorm shifts, so a dropped bias cannot pass unnoticed."""
    import torch

    import reference_model
    from convbert_export.tasks import get_task

    spec = get_task(task)
    extra = {"num_labels": 3} if task == "token-classification" else {}
    config = reference_model.ConvBertConfig(**values, architectures=[spec.architecture], **extra)
    generator = torch.Generator().manual_seed(seed)
    model = seeded_model(config, generator=generator)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 1:
                param.add_(0.02 * torch.randn(param.shape, generator=generator))
    return model


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


def demo_export(task: str, padding: str = "exact", dynamic_conv: str = "decomposed", validation=None) -> Path:
    """The demo preset's ``task`` head exported to a process-wide temporary directory (read-only
    by convention: copy it before editing). ``validation``: a ValidationSettings grid the exporter
    validates the export on (writing validation.json/.md/.html into it); None: not validated."""
    from convbert_export.export import ExportSettings, ModelSource, export_tasks

    key = (task, padding, dynamic_conv, validation)
    if key not in _CACHE:
        folder = f"demo-{padding}" if dynamic_conv == "decomposed" else f"demo-{padding}-{dynamic_conv}"
        if validation is not None:
            folder += f"-validated-{len(_CACHE)}"
        out = _root() / folder / task  # named after the task, as evaluate and the benchmark show it
        export_tasks(ModelSource.from_preset("demo"), [task], out,
                     ExportSettings(validate=validation is not None, padding=padding, dynamic_conv=dynamic_conv),
                     validation=validation)
        _CACHE[key] = out
    return _CACHE[key]


def optimized_export(task: str, dynamic_conv: str = "decomposed", **settings) -> Path:
    """``demo_export(task, dynamic_conv=...)`` optimized with ``OptimizeSettings(validate=False,
    **settings)`` into a process-wide temporary directory (read-only by convention)."""
    from convbert_export.optimize import OptimizeSettings, optimize

    key = ("optimized", task, dynamic_conv, tuple(sorted(settings.items())))
    if key not in _CACHE:
        # named "<task>-<setting names>" (e.g. "text-classification-int8"), as evaluate shows it
        out = _root() / f"optimized-{len(_CACHE)}" / "-".join([task, *sorted(settings)])
        optimize(demo_export(task, dynamic_conv=dynamic_conv), out, OptimizeSettings(validate=False, **settings))
        _CACHE[key] = out
    return _CACHE[key]
