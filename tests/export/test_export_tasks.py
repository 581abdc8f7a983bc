"""Export + validate every task head, in both dynamic-conv modes, and check the directory."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from convbert_export import export
from convbert_export.custom_ops import DOMAIN, OP_TYPE, PLUGIN_NAMESPACE
from convbert_export.manifest import load_manifest, verify_checksums
from convbert_export.tasks import TASKS
from convbert_export.tokenization import demo_vocab_dir

from export_helpers import FAST_GRID
from factories import BASE, GROUPED, make_model

TASK_NAMES = list(TASKS)


@pytest.fixture(scope="module")
def decomposed_exports(tmp_path_factory):
    """Every task of the grouped config (embedding != hidden, num_groups 2), decomposed mode."""
    root = tmp_path_factory.mktemp("decomposed")
    results = {}
    for task in TASK_NAMES:
        model = make_model(task, GROUPED)
        results[task] = (model, export(model, task, root / task, validation=FAST_GRID, tokenizer_dir=demo_vocab_dir()))
    return results


@pytest.fixture(scope="module")
def custom_op_exports(tmp_path_factory):
    """Every task of the base-shaped config, custom-op mode (validated with the library if it builds)."""
    root = tmp_path_factory.mktemp("custom")
    results = {}
    for task in TASK_NAMES:
        model = make_model(task, BASE, seed=1)
        results[task] = (model, export(model, task, root / task, dynamic_conv="custom-op", validation=FAST_GRID,
                                       tokenizer_dir=demo_vocab_dir()))
    return results


@pytest.mark.parametrize("task", TASK_NAMES)
def test_decomposed_export_validates(decomposed_exports, task):
    _, result = decomposed_exports[task]
    report = result.report
    assert report.passed, report.failures
    data = json.loads((result.path / "validation.json").read_text())
    assert data["passed"] is True
    assert {o["name"] for o in data["outputs"]} == set(TASKS[task].output_names)
    for out in data["outputs"]:
        assert out["max_abs"] <= 1e-5 and out["elements"] > 0
    cases = data["cases"]
    assert any("b=5" in c for c in cases) and any("s=1" in c.split()[-1] for c in cases)
    assert any(c.startswith("texts") for c in cases), "the packaged texts must run through the tokenizer"
    assert "validation.md" in [p.name for p in result.path.iterdir()]


@pytest.mark.parametrize("task", TASK_NAMES)
def test_decomposed_graph_is_standard_onnx(decomposed_exports, task):
    _, result = decomposed_exports[task]
    model = onnx.load(str(result.path / "model.onnx"))
    onnx.checker.check_model(model, full_check=True)
    assert all(node.domain in ("", "ai.onnx") for node in model.graph.node)
    assert not model.functions
    assert {o.domain for o in model.opset_import} <= {"", "ai.onnx"}
    assert max(o.version for o in model.opset_import) >= 17
    ops = {node.op_type for node in model.graph.node}
    assert "LayerNormalization" in ops
    assert "Gather" not in {n.op_type for n in model.graph.node if "conv" in n.name.lower() and "DynamicConv" in n.name}


@pytest.mark.parametrize("task", TASK_NAMES)
def test_custom_op_export_validates(custom_op_exports, task):
    _, result = custom_op_exports[task]
    assert result.report.passed, result.report.failures
    model = onnx.load(str(result.path / "model.onnx"))
    nodes = [n for n in model.graph.node if n.domain == DOMAIN and n.op_type == OP_TYPE]
    assert len(nodes) == 2  # one per layer
    for node in nodes:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["plugin_namespace"] == PLUGIN_NAMESPACE.encode()
        assert attrs["kernel_size"] == 9 and attrs["num_heads"] == 2 and attrs["head_size"] == 8
    functions = [(f.domain, f.name) for f in model.functions]
    assert functions == [(DOMAIN, OP_TYPE)], "the decomposed body must ship as a model-local function"
    manifest = load_manifest(result.path)
    assert manifest.dynamic_conv["mode"] == "custom-op"
    assert manifest.dynamic_conv["domain"] == DOMAIN and manifest.dynamic_conv["plugin_namespace"] == PLUGIN_NAMESPACE


def test_custom_op_export_validates_without_the_library(custom_op_exports):
    """The model-local function alone (no library registered) reproduces the reference."""
    from convbert_export.validate import ValidationSettings, validate

    for task in TASK_NAMES:
        model, result = custom_op_exports[task]
        settings = ValidationSettings(sequences=(1, 7, 0), num_choices=(2,), use_library=False, texts=False)
        report = validate(result.path, model, settings, write=False)
        assert report.passed and report.library.startswith("not loaded"), (task, report.failures, report.library)


@pytest.mark.parametrize("task", ["feature-extraction", "multiple-choice"])
def test_manifest_and_checksums(decomposed_exports, task):
    _, result = decomposed_exports[task]
    manifest = load_manifest(result.path)
    assert manifest.task == task and manifest.padding == "exact" and manifest.opset >= 17
    assert manifest.dynamic_conv["mode"] == "decomposed"
    assert set(manifest.versions) >= {"torch", "onnx", "convbert_export"}
    assert {"model.onnx", "config.json", "vocab.txt"} <= set(manifest.files)
    assert verify_checksums(result.path) == []
    axes = {spec.name: spec.axes for spec in manifest.inputs}
    expected = ("batch", "num_choices", "sequence") if task == "multiple-choice" else ("batch", "sequence")
    assert axes == {name: expected for name in ("input_ids", "attention_mask", "token_type_ids")}
    graph = onnx.load(str(result.path / "model.onnx")).graph
    dims = [d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    assert tuple(dims) == expected


def test_checksum_detects_a_changed_file(decomposed_exports, tmp_path):
    import shutil

    _, result = decomposed_exports["text-classification"]
    copy = tmp_path / "copy"
    shutil.copytree(result.path, copy)
    with open(copy / "config.json", "a") as handle:
        handle.write(" ")
    problems = verify_checksums(copy)
    assert len(problems) == 1 and problems[0].startswith("config.json: sha256")


def test_mlm_export_stores_the_tied_embedding_once(decomposed_exports):
    model, result = decomposed_exports["fill-mask"]
    assert model.generator_lm_head.weight is model.convbert.embeddings.word_embeddings.weight
    n_params = sum(p.numel() for p in model.parameters())  # counts the shared matrix once
    size = (result.path / "model.onnx").stat().st_size
    assert size <= 4 * n_params + 200_000, (size, 4 * n_params)


def test_dynamic_shapes_beyond_the_trace_shape(decomposed_exports):
    """Batch 7, sequence 64 (max) and sequence 1 run and match the reference."""
    import onnxruntime as ort
    import torch

    model, result = decomposed_exports["token-classification"]
    session = ort.InferenceSession(str(result.path / "model.onnx"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(3)
    for batch, seq in [(7, 64), (3, 1), (1, 33)]:
        feeds = {
            "input_ids": rng.integers(0, 8192, (batch, seq)).astype(np.int64),
            "attention_mask": np.ones((batch, seq), np.int64),
            "token_type_ids": rng.integers(0, 2, (batch, seq)).astype(np.int64),
        }
        got = session.run(None, feeds)[0]
        with torch.no_grad():
            ref = model(**{k: torch.from_numpy(v) for k, v in feeds.items()})["logits"].numpy()
        np.testing.assert_allclose(got, ref, atol=1e-5, rtol=1e-5)
