"""The reference model stands alone: it imports nothing from convbert_export, its errors are
its own (convbert_export re-raises them as its errors of the same name), and what it
duplicates from the package (the demo vocabulary's size, the task -> head table) agrees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_reference_model_loads_without_convbert_export(tmp_path):
    code = ("import sys, reference_model; m = reference_model.from_preset('demo', 'fill-mask'); "
            "m.save_pretrained(sys.argv[1]); reference_model.load(sys.argv[1], task='ConvBertForMaskedLM'); "
            "print(sorted(n for n in sys.modules if n.split('.')[0] == 'convbert_export'))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "ckpt")], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_its_tables_agree_with_the_package():
    from convbert_export.tasks import TASKS
    from convbert_export.tokenization import demo_vocab_dir
    from reference_model.modeling import TASK_HEADS
    from reference_model.presets import DEMO_VOCAB_SIZE

    assert TASK_HEADS == {name: spec.architecture for name, spec in TASKS.items()}
    with open(Path(demo_vocab_dir()) / "vocab.txt", encoding="utf-8") as handle:
        assert sum(1 for _ in handle) == DEMO_VOCAB_SIZE


def test_its_errors_become_the_package_errors_at_the_boundary(tmp_path):
    import reference_model.errors as ref
    from convbert_export import errors
    from convbert_export.export import ModelSource

    with pytest.raises(ref.UnknownNameError, match="unknown task 'summarization'"):
        reference_model_load(tmp_path, "summarization")
    (tmp_path / "config.json").write_text('{"model_type": "convbert", "conv_kernel_size": 4}')
    with pytest.raises(errors.ConfigError, match="'conv_kernel_size'.*got 4") as info:
        ModelSource(checkpoint=tmp_path).load("fill-mask")
    assert isinstance(info.value.__cause__, ref.ConfigError)


def reference_model_load(path, task):
    import reference_model

    return reference_model.load(path, task=task)
