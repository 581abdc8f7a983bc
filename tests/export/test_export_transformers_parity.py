"""Checkpoints saved by transformers: ONNX outputs equal transformers' outputs within 1e-5."""

from __future__ import annotations

import numpy as np
import pytest

from convbert_export.export import ExportSettings, ModelSource, export_tasks
from convbert_export.tasks import TASKS

from export_helpers import FAST_GRID
from factories import GROUPED

# transformers' class for each task: the architecture the task registry names
HF_CLASSES = {name: spec.architecture for name, spec in TASKS.items()}


@pytest.fixture(scope="module")
def hf_exports(tmp_path_factory, transformers):
    """Each head saved by transformers, exported with transformers' padding semantics."""
    import torch

    root = tmp_path_factory.mktemp("hf")
    out = {}
    for task, cls_name in HF_CLASSES.items():
        config = transformers.ConvBertConfig(**GROUPED, num_labels=2 if task == "question-answering" else 3)
        torch.manual_seed(5)
        ckpt = root / f"ckpt-{task}"
        getattr(transformers, cls_name)(config).save_pretrained(ckpt)
        # the oracle is the checkpoint as transformers loads it
        hf_model = getattr(transformers, cls_name).from_pretrained(ckpt).eval()
        settings = ExportSettings(padding="transformers")
        (result,) = export_tasks(ModelSource.from_checkpoint(ckpt), None, root / f"onnx-{task}", settings)
        assert result.task == task  # from config.json's architectures
        out[task] = (hf_model, result)
    return out


def _inputs(task: str, rng):
    shape = (2, 3, 19) if task == "multiple-choice" else (3, 19)
    ids = rng.integers(1, 8192, shape).astype(np.int64)
    mask = np.ones(shape, np.int64)
    mask.reshape(-1, shape[-1])[1, 11:] = 0  # right padding
    types = np.zeros(shape, np.int64)
    types[..., 9:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


@pytest.mark.parametrize("task", list(HF_CLASSES))
def test_onnx_matches_transformers(hf_exports, task):
    import onnxruntime as ort
    import torch

    hf_model, result = hf_exports[task]
    assert result.report.passed, result.report.failures
    session = ort.InferenceSession(str(result.path / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = _inputs(task, np.random.default_rng(0))
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
    with torch.no_grad():
        ref = hf_model(**{k: torch.from_numpy(v) for k, v in feeds.items()})
    for name in TASKS[task].output_names:
        np.testing.assert_allclose(got[name], ref[name].numpy(), atol=1e-5, rtol=0, err_msg=f"{task}/{name}")


def test_exact_padding_export_matches_transformers_text_by_text(tmp_path, transformers):
    """An exact-padding export of a transformers checkpoint gives, for each text of a padded
    batch, what transformers gives for the text alone."""
    import onnxruntime as ort
    import torch

    from convbert_export import export

    config = transformers.ConvBertConfig(**GROUPED)
    torch.manual_seed(6)
    transformers.ConvBertForTokenClassification(config).save_pretrained(tmp_path / "ckpt")
    hf_model = transformers.ConvBertForTokenClassification.from_pretrained(tmp_path / "ckpt").eval()
    result = export(tmp_path / "ckpt", None, tmp_path / "onnx", validation=FAST_GRID)
    session = ort.InferenceSession(str(result.path / "model.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1)
    lengths = [5, 17, 30]
    ids = np.zeros((3, 30), np.int64)
    mask = np.zeros((3, 30), np.int64)
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.integers(1, 8192, n)
        mask[row, :n] = 1
    batch = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
    for row, n in enumerate(lengths):
        with torch.no_grad():
            alone = hf_model(input_ids=torch.from_numpy(ids[row : row + 1, :n])).logits.numpy()
        np.testing.assert_allclose(batch[row : row + 1, :n], alone, atol=1e-5, rtol=0)
