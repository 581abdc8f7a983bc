"""OpenVINO: the runner on ONNX exports (decomposed and custom-op), and `optimize --openvino` variants.

Demo preset only; every variant is validated against the PyTorch reference by optimize() itself,
and the runner's outputs are compared with ONNX Runtime's on the same export.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")
pytest.importorskip("nncf")

from convbert_export.cpu import CpuFeatures, cpu_features  # noqa: E402
from convbert_export.errors import InvalidInputError, UnknownNameError  # noqa: E402
from convbert_export.export.openvino import VARIANTS, check_bf16  # noqa: E402
from convbert_export.export.optimize import OptimizeSettings, optimize  # noqa: E402
from convbert_export.manifest import file_checksums, load_manifest, verify_checksums, write_manifest  # noqa: E402
from convbert_export.runtime import RUNNERS, Pipeline  # noqa: E402
from convbert_export.runtime.openvino import OpenVinoRunner, OpenVinoSettings  # noqa: E402
from convbert_export.runtime.ort import OrtRunner, OrtSettings  # noqa: E402
from convbert_export.validate import ValidationSettings  # noqa: E402
from factories import demo_export, optimized_export  # noqa: E402

GRID = ValidationSettings(batches=(1, 3), sequences=(1, 9, 0))
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def exports():
    """Unvalidated demo feature-extraction exports, decomposed and custom-op (tests/factories.py's
    process-wide cache: read-only, copy before editing)."""
    return {mode: demo_export("feature-extraction", dynamic_conv=mode) for mode in ("decomposed", "custom-op")}


@pytest.fixture(scope="module")
def int8_dir(exports, tmp_path_factory):
    out = tmp_path_factory.mktemp("ov-int8") / "int8"
    result = optimize(exports["custom-op"], out, OptimizeSettings(openvino="int8"), validation=GRID)
    return out, result


def _mixed_batch(lengths=(7, 23, 40, 61), seed=0):
    """A right-padded batch of texts of different lengths (random ids), and its width."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    ids = np.zeros((len(lengths), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    for row, length in enumerate(lengths):
        ids[row, :length] = rng.integers(5, 8192, length)
        mask[row, :length] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}, lengths


def _alone_vs_batched(runner, feeds, lengths) -> float:
    """Max abs difference of each text's hidden states alone vs in the padded batch."""
    batched = runner.run(feeds)["last_hidden_state"]
    worst = 0.0
    for row, length in enumerate(lengths):
        alone = runner.run({k: v[row:row + 1, :length] for k, v in feeds.items()})["last_hidden_state"]
        worst = max(worst, float(np.abs(alone[0] - batched[row, :length]).max()))
    return worst


@pytest.mark.parametrize("mode", ["decomposed", "custom-op"])
def test_runner_matches_onnxruntime_on_an_onnx_export(exports, mode):
    feeds, _ = _mixed_batch()
    with OrtRunner(exports["decomposed"], settings=OrtSettings(register_custom_ops=False)) as ort_runner:
        expected = ort_runner.run(feeds)["last_hidden_state"]
    with OpenVinoRunner(exports[mode], OpenVinoSettings(threads=2)) as runner:
        # f32 pinned: OpenVINO would pick bf16 by itself on a CPU with native bf16
        assert runner.compiled_config["INFERENCE_PRECISION_HINT"] == "f32"
        assert runner.input_metadata["input_ids"].axes == ("batch", "sequence")
        assert runner.output_metadata["last_hidden_state"].axes == ("batch", "sequence", 64)
        got = runner.run(feeds)["last_hidden_state"]
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
        # the base class's input checks apply (one place for every backend)
        bad = dict(feeds, input_ids=feeds["input_ids"] + 10_000)
        with pytest.raises(InvalidInputError, match="vocab_size"):
            runner.run(bad)


def test_registry_and_pipeline_provider(exports):
    assert RUNNERS["openvino"] == ("convbert_export.runtime.openvino", "OpenVinoRunner")
    texts = ["hello world", "a longer text about the python language and its standard library"]
    with Pipeline.from_export(exports["custom-op"], provider="openvino") as pipe:
        assert isinstance(pipe.runner, OpenVinoRunner)
        got = pipe(texts, pooling="mean", return_tensors=True)
    with Pipeline.from_export(exports["decomposed"]) as pipe:
        expected = pipe(texts, pooling="mean", return_tensors=True)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_custom_node_without_its_function_is_refused_with_the_fix(exports, tmp_path):
    import shutil

    import onnx

    broken = tmp_path / "no-function"
    shutil.copytree(exports["custom-op"], broken)
    model = onnx.load(str(broken / "model.onnx"))
    del model.functions[:]
    onnx.save(model, str(broken / "model.onnx"))
    manifest = load_manifest(broken)  # a consistent directory, just without the function bodies
    write_manifest(broken, replace(manifest, files=file_checksums(broken)))
    with pytest.raises(InvalidInputError, match="--dynamic-conv decomposed"):
        OpenVinoRunner(broken / "model.onnx").start()


def test_int8_variant_passes_the_gates_and_keeps_exact_batching(exports, int8_dir):
    out, result = int8_dir
    manifest = load_manifest(out)
    assert manifest.backend == "openvino" and manifest.precision == "int8-per-token"
    assert manifest.backend_options["dynamic_quantization_group_size"] == 32
    assert manifest.batch_invariant is True
    assert {"openvino_model.xml", "openvino_model.bin", "vocab.txt", "config.json"} <= set(manifest.files)
    assert not (out / "model.onnx").exists()
    assert verify_checksums(out) == []
    report = result.report.to_dict()
    assert report["passed"] and report["agreement"]["value"] >= 0.999
    assert 0 < report["outputs"][0]["max_abs"] < 0.5  # int8: close to fp32 but not equal
    assert report["provider"].startswith("openvino")
    # int8 encoder weights (the demo's 2 MB of float embeddings dominate its size)
    assert (out / "openvino_model.bin").stat().st_size < 0.92 * (exports["custom-op"] / "model.onnx").stat().st_size
    feeds, lengths = _mixed_batch()
    with OpenVinoRunner(out) as runner:  # compile settings come from the manifest
        assert runner.compiled_config["DYNAMIC_QUANTIZATION_GROUP_SIZE"] == 32
        exact = _alone_vs_batched(runner, feeds, lengths)
    assert exact <= 1e-5, f"a text alone vs in a padded batch differs by {exact}"
    # ONNX Runtime's dynamic int8 (one activation scale per batch) does depend on batch-mates
    ort_int8 = optimized_export("feature-extraction", int8="dynamic")  # exports["decomposed"], int8
    with OrtRunner(ort_int8) as runner:
        assert _alone_vs_batched(runner, feeds, lengths) > 10 * max(exact, 1e-6)


def test_int8_keeps_embeddings_and_the_pooled_head_float(tmp_path):
    import openvino as ov

    from convbert_export.export.openvino import pooled_head_matmuls

    source = demo_export("text-classification")  # read-only: optimize writes to out
    out = tmp_path / "tc-int8"
    optimize(source, out, OptimizeSettings(openvino="int8", validate=False))
    model = ov.Core().read_model(str(out / "openvino_model.xml"))
    head = pooled_head_matmuls(model)
    assert len(head) == 2  # the classifier's dense and out_proj

    def weight_type(op):
        node = op.input_value(1 if op.get_type_name() == "MatMul" else 0).get_node()
        while node.get_type_name() in ("Convert", "Transpose", "Reshape", "Multiply", "Subtract"):
            node = node.input_value(0).get_node()
        return node.get_output_element_type(0).get_type_name()

    ops = {op.get_friendly_name(): op for op in model.get_ordered_ops()}
    assert {weight_type(ops[name]) for name in head} == {"f32"}
    gathers = [op for op in ops.values() if op.get_type_name() == "Gather"
               and op.input_value(0).get_node().get_type_name() in ("Constant", "Convert")]
    assert gathers and {weight_type(op) for op in gathers} == {"f32"}
    encoder = [op for op in ops.values() if op.get_type_name() == "MatMul" and op.get_friendly_name() not in head
               and weight_type(op) != "f32"]
    assert len(encoder) >= 6 * 2 and {weight_type(op) for op in encoder} == {"i8"}
    manifest = load_manifest(out)
    assert manifest.transformations[-2]["kept_float"][1].startswith("pooled classifier head (2")


def test_openvino_directory_serves_by_default_and_validates(int8_dir, exports, capsys):
    out, _ = int8_dir
    with Pipeline.from_export(out) as pipe:
        assert isinstance(pipe.runner, OpenVinoRunner)
        assert pipe("hello world", pooling="mean", return_tensors=True).shape == (64,)
    with pytest.raises(InvalidInputError, match="OpenVINO runs on the CPU"):
        Pipeline.from_export(out, provider="cuda")
    from convbert_export.cli import main

    assert main(["validate", str(out), "--quiet"]) == 0
    assert json.loads((out / "validation.json").read_text())["passed"]
    capsys.readouterr()
    # `predict`: an OpenVINO directory runs on OpenVINO; an ONNX export with --provider openvino
    assert main(["predict", str(out), "--text", "hello world", "--threads", "2", "-q"]) == 0
    assert main(["predict", str(exports["decomposed"]), "--provider", "openvino", "--text", "hello world", "-q"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["line"] for line in lines] == [1, 1] and all("result" in line for line in lines)


def test_a_changed_ir_is_refused(int8_dir, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(int8_dir[0], copy)
    with open(copy / "openvino_model.bin", "r+b") as handle:
        handle.seek(100)
        handle.write(b"\x00\x01\x02\x03")
    with pytest.raises(InvalidInputError, match="sha256"):
        OpenVinoRunner(copy).start()


def test_f32_and_bf16_variants(exports, tmp_path):
    out = tmp_path / "f32"
    result = optimize(exports["decomposed"], out, OptimizeSettings(openvino="f32"), validation=GRID)
    assert result.report.passed and result.report.to_dict()["outputs"][0]["max_abs"] < 1e-4
    assert load_manifest(out).backend_options["inference_precision"] == "f32"
    bf16 = tmp_path / "bf16"
    if not cpu_features().native_bf16:
        with pytest.raises(InvalidInputError, match="AVX512_BF16 or AMX"):
            optimize(exports["decomposed"], bf16, OptimizeSettings(openvino="bf16"), validation=GRID)
        assert not bf16.exists()
        return
    result = optimize(exports["decomposed"], bf16, OptimizeSettings(openvino="bf16"), validation=GRID)
    data = result.report.to_dict()
    assert data["passed"] and data["precision"] == "bf16" and data["agreement"]["value"] >= 0.999
    assert 0 < data["outputs"][0]["max_abs"]  # bf16 really ran: not bit-equal to f32


def test_bf16_is_refused_without_native_bf16():
    plain = CpuFeatures("an AVX-512 CPU without bf16", 2, frozenset({"avx512f", "avx512_vnni"}))
    with pytest.raises(InvalidInputError, match="needs native bf16 .*lacks"):
        check_bf16(VARIANTS["bf16"], plain)
    check_bf16(VARIANTS["int8"], plain)  # f32 inference: fine anywhere
    check_bf16(VARIANTS["bf16"], CpuFeatures("amx", 2, frozenset({"amx_bf16", "amx_tile"})))


def test_bad_settings_and_sources_are_refused(exports, tmp_path):
    with pytest.raises(UnknownNameError, match="int8-bf16"):
        OptimizeSettings(openvino="int4").check()
    with pytest.raises(InvalidInputError, match="one or the other"):
        OptimizeSettings(openvino="int8", int8="dynamic").check()
    with pytest.raises(UnknownNameError, match="f32, bf16"):
        OpenVinoSettings(inference_precision="fp16")
    fused = tmp_path / "fused"
    optimize(exports["decomposed"], fused, OptimizeSettings(validate=False))
    with pytest.raises(InvalidInputError, match="plain fp32 export"):
        optimize(fused, tmp_path / "ov", OptimizeSettings(openvino="f32"))
    assert not (tmp_path / "ov").exists()


def test_cpu_features_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n")
    cpu = cpu_features(str(info))
    assert cpu.model == "Test CPU"
    assert cpu.features()["AVX-512"] and not cpu.features()["AMX-INT8"]
    assert cpu.has("AVX-512") and cpu.has("VNNI") and cpu.native_bf16 and not cpu.has("AMX")
    assert "AMX no" in cpu.summary() and "BF16 yes" in cpu.summary()
    assert not cpu_features(str(tmp_path / "missing")).has("AVX-512")


def test_openvino_is_imported_only_by_its_modules():
    owners = {"convbert_export/runtime/openvino.py", "convbert_export/export/openvino.py"}
    for path in sorted((ROOT / "convbert_export").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(ROOT).as_posix()
        if "import openvino" in text or "import nncf" in text or "from openvino" in text:
            assert rel in owners, f"{rel} imports openvino/nncf"
    code = ("import sys, convbert_export.runtime as r, convbert_export.runtime.pipeline, convbert_export.export.optimize; "
            "print('openvino' in sys.modules, 'nncf' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_benchmark_lists_backends_and_precisions_with_cpu_features(exports, int8_dir, capsys):
    from convbert_export.cli import main

    args = ["benchmark", str(exports["decomposed"]), str(int8_dir[0]), "--batch", "1", "--sequence", "16",
            "--repeats", "2", "--warmup", "1", "--no-floor", "-q"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["runtime"], r["precision"]) for r in data["results"]] == [("onnxruntime", "fp32"),
                                                                          ("openvino", "int8-per-token")]
    assert set(data["machine"]["cpu"]["features"]) >= {"AVX-512", "VNNI", "BF16", "AMX"}
    openvino = data["backends"][1]
    assert openvino["kind"] == "openvino" and openvino["dynamic_quantization_group_size"] == 32
    assert main(args) == 0
    table = capsys.readouterr().out
    assert table.startswith("CPU: ") and "AVX-512 " in table.splitlines()[0] and "AMX " in table.splitlines()[0]
    assert "int8-per-token" in table and "openvino" in table


def test_per_token_int8_pipelines_pad_to_buckets_and_answer_exactly_alone_or_batched(int8_dir):
    out, _ = int8_dir
    assert load_manifest(out).backend_options["pad_to_multiple_of"] == 16
    texts = ["hello", "a somewhat longer text about the python language", "x " * 40, "the standard library " * 6]
    with Pipeline.from_export(out, batch_size=4) as pipe:
        shapes = []
        run = pipe.runner.run

        def recording(feeds, **kw):
            shapes.append(feeds["input_ids"].shape)
            return run(feeds, **kw)

        pipe.runner.run = recording
        batched = pipe(texts, pooling="mean", return_tensors=True)
        alone = [pipe(text, pooling="mean", return_tensors=True) for text in texts]
    assert all(length % 16 == 0 for _, length in shapes), shapes
    # texts of different padded lengths never share a batch: 3 buckets among the 4 texts
    assert sorted(batch for batch, _ in shapes[: -len(texts)]) == [1, 1, 2]
    for a, b in zip(alone, batched):
        np.testing.assert_array_equal(a, b)


def test_optimize_json_stays_json_while_nncf_logs(exports, tmp_path):
    """nncf logs (a handler on stdout) and draws a progress bar while it compresses weights; the
    `--json` output of the command, run as users run it, must stay parseable."""
    import subprocess
    import sys

    out = tmp_path / "int8-json"
    command = [sys.executable, "-m", "convbert_export.cli", "optimize", str(exports["decomposed"]), "-o", str(out),
               "--openvino", "int8", "--no-validate", "--json"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["path"] == str(out)
    assert "nncf" in result.stderr  # its logs went to stderr, not away
