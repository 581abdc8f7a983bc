"""optimize(): fused / int8 / fp16 variants of demo exports, validated against the reference."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import factories
from convbert_export.errors import InvalidInputError, ValidationFailedError
from convbert_export.export import ExportSettings, ModelSource, export_tasks
from convbert_export.export.onnx import count_nodes
from convbert_export.export.optimize import OptimizeSettings, optimize
from convbert_export.manifest import load_manifest, verify_checksums
from convbert_export.validate import ValidationSettings

LAYERS = 2  # the demo preset
GRID = ValidationSettings(batches=(1, 3), sequences=(1, 9, 0))  # 0: max_position_embeddings (128)



@pytest.fixture(scope="module")
def exports():
    """Unvalidated demo exports of two heads (validation of the variants covers them), shared
    with the other modules through tests/factories.py (read-only)."""
    return {task: factories.demo_export(task) for task in ("feature-extraction", "text-classification")}


def _run(path, feeds):
    import onnxruntime as ort

    session = ort.InferenceSession(str(path / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, feeds)[0]


def _feeds(seed=0, batch=3, seq=19):
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[1, 11:] = 0
    return {
        "input_ids": rng.integers(5, 8192, size=(batch, seq), dtype=np.int64) * mask,
        "attention_mask": mask,
        "token_type_ids": np.zeros((batch, seq), dtype=np.int64),
    }


def test_fused_variant_is_a_valid_directory_with_the_expected_fusions(exports, tmp_path):
    out = tmp_path / "fused"
    result = optimize(exports["feature-extraction"], out, OptimizeSettings(), validation=GRID)
    manifest = load_manifest(out)
    assert manifest.precision == "fp32"
    steps = [t["step"] for t in manifest.transformations]
    assert steps == ["pointwise-conv-to-matmul", "attention-to-multiheadattention", "pack-projections",
                     "ort-transformer-optimizer", "first-token-only", "layernorm-as-instancenorm"]
    assert verify_checksums(out) == []
    assert {"config.json", "vocab.txt", "model.onnx"} <= set(manifest.files)
    counts = count_nodes(onnx.load(str(out / "model.onnx")))
    # ONNX Runtime's optimizer fused every LayerNorm with its residual Add (+ the embeddings' Add)...
    assert manifest.transformations[3]["fusions"]["SkipLayerNormalization"] == 2 * LAYERS + 1
    # ...and each then became InstanceNormalization + Mul + Add (ORT's CPU LayerNorm kernels are scalar)
    assert manifest.transformations[5]["rewritten"] == 2 * LAYERS + 1
    assert counts["InstanceNormalization"] == 2 * LAYERS + 1
    assert "com.microsoft::SkipLayerNormalization" not in counts
    assert counts["com.microsoft::BiasGelu"] == LAYERS
    assert counts["com.microsoft::MultiHeadAttention"] == LAYERS
    assert counts["Conv"] == LAYERS  # only the depthwise convolutions remain
    assert counts["Softmax"] == LAYERS  # only the dynamic convolutions' softmax remains
    assert "LayerNormalization" not in counts
    # per layer: packed q/k/v/conv_out, pointwise, conv kernel, attention output, intermediate, output
    assert counts["MatMul"] == 6 * LAYERS
    assert counts["Split"] == 2 * LAYERS  # the packed projections' and the dynamic convolution's
    assert manifest.transformations[2]["packed_groups"] == LAYERS
    assert manifest.transformations[0]["rewritten"] == LAYERS
    # the fused graph computes what the exported one does, padding included
    feeds = _feeds()
    np.testing.assert_allclose(_run(out, feeds), _run(exports["feature-extraction"], feeds), atol=1e-4, rtol=1e-4)
    assert result.report.passed
    report = json.loads((out / "validation.json").read_text())
    assert report["precision"] == "fp32" and report["outputs"][0]["max_abs"] < 1e-4


def test_int8_dynamic_meets_the_thresholds(exports, tmp_path):
    out = tmp_path / "int8"
    result = optimize(exports["feature-extraction"], out, OptimizeSettings(int8="dynamic"), validation=GRID)
    counts = count_nodes(onnx.load(str(out / "model.onnx")))
    # packed q/k/v/conv_out, pointwise conv, conv kernel, attention out, intermediate, output
    assert counts["MatMulInteger"] == 6 * LAYERS
    assert "MatMul" not in counts  # every weight MatMul quantized; attention is inside MultiHeadAttention
    assert counts["Conv"] == LAYERS and "ConvInteger" not in counts
    data = result.report.to_dict()
    assert data["precision"] == "int8-dynamic" and data["passed"]
    assert data["agreement"]["value"] >= 0.999
    assert 0 < data["outputs"][0]["max_abs"] < 0.5  # reported: int8 differs from fp32, but little
    assert load_manifest(out).transformations[-1]["step"] == "int8-dynamic"
    assert verify_checksums(out) == []
    # per-batch activation scales: the export says its results depend on batch-mates
    assert load_manifest(out).batch_invariant is False
    assert load_manifest(exports["feature-extraction"]).batch_invariant is True
    from convbert_export.runtime.pipeline import Pipeline

    with pytest.warns(UserWarning, match="depend on batch-mates"):
        Pipeline.from_export(out, batch_size=4).close()
    # `convbert-export validate` on the variant judges it by its precision's thresholds
    from convbert_export.cli import main

    assert main(["validate", str(out), "--quiet"]) == 0
    again = json.loads((out / "validation.json").read_text())
    assert again["outputs"][0]["atol"] >= 1e9 and again["passed"]


def test_int8_static_qdq_meets_the_agreement_threshold(exports, tmp_path):
    out = tmp_path / "static"
    settings = OptimizeSettings(int8="static", calibration_batches=4)
    result = optimize(exports["text-classification"], out, settings, validation=GRID)
    counts = count_nodes(onnx.load(str(out / "model.onnx")))
    assert counts["QuantizeLinear"] > 0 and counts["DequantizeLinear"] > counts["QuantizeLinear"]
    assert counts["Gemm"] == 2  # the classifier head stays float
    data = result.report.to_dict()
    assert data["passed"] and data["agreement"]["value"] >= 0.99
    step = load_manifest(out).transformations[-1]
    assert step["step"] == "int8-static" and step["calibration_batches"] == 4


def test_int8_static_reads_a_calibration_file(exports, tmp_path):
    texts = tmp_path / "calib.jsonl"
    texts.write_text("\n".join(json.dumps({"text": f"the film number {i} was good"}) for i in range(10)) + "\n")
    out = tmp_path / "static-file"
    optimize(exports["text-classification"], out,
             OptimizeSettings(int8="static", calibration=texts, validate=False))
    step = load_manifest(out).transformations[-1]
    assert step["calibration_texts"] == str(texts) and step["calibration_batches"] == 2


def test_fp16_keeps_layernorm_and_softmax_fp32(exports, tmp_path):
    out = tmp_path / "fp16"
    result = optimize(exports["feature-extraction"], out, OptimizeSettings(fp16=True), validation=GRID)
    model = onnx.load(str(out / "model.onnx"))
    inits = {t.name: t.data_type for t in model.graph.initializer}
    matmul_weights = [n.input[1] for n in model.graph.node if n.op_type == "MatMul" and n.input[1] in inits]
    assert matmul_weights and all(inits[w] == onnx.TensorProto.FLOAT16 for w in matmul_weights)
    # every input of a normalization or softmax is float32: a float32 initializer, a Cast to
    # float, or the output of another node kept in float32
    kept = {"SkipLayerNormalization", "LayerNormalization", "Softmax"}
    producer = {out: node for node in model.graph.node for out in node.output}
    checked = 0
    for node in model.graph.node:
        if node.op_type not in kept:
            continue
        for name in filter(None, node.input):
            if name in inits:
                assert inits[name] == onnx.TensorProto.FLOAT, (node.name, name)
                continue
            source = producer[name]
            is_cast32 = source.op_type == "Cast" and source.attribute[0].i == onnx.TensorProto.FLOAT
            assert is_cast32 or source.op_type in kept, (node.name, name, source.op_type)
            checked += 1
    assert checked >= 3 * LAYERS
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    data = result.report.to_dict()
    assert data["passed"] and data["precision"] == "fp16" and "CPU" in data["provider"]
    assert data["agreement"]["value"] >= 0.999


def test_a_missed_threshold_fails_and_writes_nothing(exports, tmp_path):
    out = tmp_path / "strict"
    with pytest.raises(ValidationFailedError, match="cosine") as info:
        optimize(exports["feature-extraction"], out, OptimizeSettings(int8="dynamic", min_cosine=1.0),
                 validation=GRID)
    assert info.value.report is not None and not info.value.report.passed
    assert not out.exists()


def test_bad_settings_are_refused(exports, tmp_path):
    with pytest.raises(InvalidInputError, match="exclusive"):
        optimize(exports["feature-extraction"], tmp_path / "x", OptimizeSettings(int8="dynamic", fp16=True))
    with pytest.raises(InvalidInputError, match="static"):
        optimize(exports["feature-extraction"], tmp_path / "x", OptimizeSettings(int8="dynamic", calibration=__file__))
    with pytest.raises(InvalidInputError, match="^unknown int8 mode 'int4'; expected one of: dynamic, static$"):
        optimize(exports["feature-extraction"], tmp_path / "x", OptimizeSettings(int8="int4"))


def test_cli_optimize_json(exports, tmp_path):
    from convbert_export.cli import main

    out = tmp_path / "cli"
    assert main(["optimize", str(exports["feature-extraction"]), "--output", str(out), "--no-validate", "-q"]) == 0
    assert load_manifest(out).precision == "fp32"
    assert main(["optimize", str(exports["feature-extraction"]), "--output", str(out), "-q"]) == 2  # exists
    assert main(["optimize", str(out), "--output", str(tmp_path / "again"), "--int8", "dynamic", "-q"]) == 0


def test_an_output_overlapping_the_source_is_refused(exports, tmp_path):
    """An output inside the source made the source's checksums fail ("present but not listed");
    an output containing it, with --force, deleted it."""
    source = exports["feature-extraction"]
    with pytest.raises(InvalidInputError, match="inside the export directory"):
        optimize(source, source / "variant", OptimizeSettings(validate=False))
    with pytest.raises(InvalidInputError, match="would replace the export directory"):
        optimize(source, source.parent, OptimizeSettings(validate=False), force=True)
    assert not (source / "variant").exists()
    assert verify_checksums(source) == []


def test_optimize_takes_the_reference_when_the_checkpoint_moved(tmp_path, capsys):
    """The error for a moved checkpoint says "pass --model DIR", which optimize did not accept."""
    import reference_model
    from convbert_export.cli import main

    ckpt = tmp_path / "ckpt"
    reference_model.from_preset("demo", "text-classification").save_pretrained(ckpt)
    export_tasks(ModelSource.from_checkpoint(ckpt), None, tmp_path / "export", ExportSettings(validate=False))
    ckpt.rename(tmp_path / "moved")
    args = ["optimize", str(tmp_path / "export"), "-o", str(tmp_path / "fused"), "-q"]
    assert main(args) == 2
    assert "--model" in capsys.readouterr().err and not (tmp_path / "fused").exists()
    assert main(args + ["--model", str(tmp_path / "moved")]) == 0, capsys.readouterr().err
    assert load_manifest(tmp_path / "fused").precision == "fp32"
    assert json.loads((tmp_path / "fused" / "validation.json").read_text())["passed"]


def test_options_that_would_be_ignored_are_refused(exports, tmp_path):
    """--fp16-io without --fp16 and --no-per-channel without --int8 silently wrote a plain fp32 variant."""
    from convbert_export.cli import main

    source = str(exports["feature-extraction"])
    for args, message in ((["--fp16-io"], "--fp16-io needs --fp16"),
                          (["--no-per-channel"], "--no-per-channel needs --int8"),
                          (["--no-per-channel", "--fp16"], "--no-per-channel needs --int8")):
        with pytest.raises(InvalidInputError, match=message):
            optimize(source, tmp_path / "x", OptimizeSettings(keep_io_fp32="--fp16-io" not in args,
                                                              per_channel="--no-per-channel" not in args,
                                                              fp16="--fp16" in args))
        assert main(["optimize", source, "-o", str(tmp_path / "x"), *args, "-q"]) == 2
    assert not (tmp_path / "x").exists()


def test_validation_settings_cannot_silently_replace_the_tolerances(exports, tmp_path):
    """optimize(validation=ValidationSettings(atol=...)) used to drop the caller's atol for the
    precision's default without a word; now it is refused before anything is written."""
    with pytest.raises(InvalidInputError, match="sets atol, min_cosine, which optimize takes from its OptimizeSettings"):
        optimize(exports["feature-extraction"], tmp_path / "o", OptimizeSettings(),
                 validation=ValidationSettings(atol=1e-3, min_cosine=0.5))
    assert not (tmp_path / "o").exists()
    with pytest.raises(InvalidInputError, match="int8 and fp16 are exclusive"):
        OptimizeSettings(int8="dynamic", fp16=True)  # refused at construction
