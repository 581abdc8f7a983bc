"""The Triton model repository: configs parsed with Triton's own schema, version folders, the
ensemble's wiring, and the Python steps' logic against Pipeline on the same records."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from convbert_export.errors import InvalidInputError
from convbert_export.tasks import TASKS

from .conftest import assert_same, records_for

text_format = pytest.importorskip("google.protobuf.text_format")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")


def parse_config(path) -> "model_config_pb2.ModelConfig":
    """config.pbtxt parsed strictly with Triton's ModelConfig schema (unknown fields raise)."""
    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _type(dtype: str) -> int:
    return model_config_pb2.DataType.Value({"int64": "TYPE_INT64", "float32": "TYPE_FP32"}[dtype])


@pytest.fixture(scope="module")
def repo(serving_export, tmp_path_factory):
    """One repository holding every task's model and text ensemble."""
    from convbert_export.serving.triton import TextStep, TritonSettings, write_repository

    sources = [serving_export(task) for task in TASKS]
    out = tmp_path_factory.mktemp("triton") / "repo"
    result = write_repository(sources, out, TritonSettings(max_batch_size=8, max_queue_size=32, instances=2))
    return result


def test_every_config_parses_with_the_real_schema(repo):
    configs = sorted(repo.path.glob("*/config.pbtxt"))
    assert len(configs) == 4 * len(TASKS)
    assert sorted(p.name for p in repo.path.iterdir() if p.is_file()) == ["triton-repository.json"]
    for path in configs:
        config = parse_config(path)
        assert config.name == path.parent.name


def test_a_misspelt_field_fails_the_schema(repo):
    text = (repo.path / "text-classification" / "config.pbtxt").read_text()
    assert "max_batch_size" in text
    with pytest.raises(text_format.ParseError):
        text_format.Parse(text.replace("max_batch_size", "max_batch_sise"), model_config_pb2.ModelConfig())
    with pytest.raises(text_format.ParseError):
        text_format.Parse(text.replace("KIND_CPU", "KIND_CPUS"), model_config_pb2.ModelConfig())


def test_model_configs_follow_the_manifest(repo, serving_export):
    from convbert_export.manifest import load_manifest

    for task in TASKS:
        manifest = load_manifest(serving_export(task))
        config = parse_config(repo.path / task / "config.pbtxt")
        assert config.platform == "onnxruntime_onnx" and config.max_batch_size == 8
        assert [(t.name, t.data_type) for t in config.input] == [(s.name, _type(s.dtype)) for s in manifest.inputs]
        assert [(t.name, t.data_type) for t in config.output] == [(s.name, _type(s.dtype)) for s in manifest.outputs]
        for tensor, spec in zip([*config.input, *config.output], [*manifest.inputs, *manifest.outputs]):
            assert len(tensor.dims) == len(spec.axes) - 1  # the batch axis is implicit
            for dim, axis in zip(tensor.dims, spec.axes[1:]):
                if axis in ("sequence", "num_choices"):
                    assert dim == -1, (task, tensor.name, axis)
                elif axis == "hidden":
                    assert dim == manifest.model["hidden_size"]
                elif axis == "vocab":
                    assert dim == manifest.model["vocab_size"]
        batching = config.dynamic_batching  # exact-padding fp32 exports batch
        assert list(batching.preferred_batch_size) == [2, 4, 8]
        assert batching.max_queue_delay_microseconds == 1000
        policy = batching.default_queue_policy
        assert policy.max_queue_size == 32
        assert policy.timeout_action == model_config_pb2.ModelQueuePolicy.REJECT
        assert [(g.count, g.kind) for g in config.instance_group] == [
            (2, model_config_pb2.ModelInstanceGroup.KIND_CPU)]
        assert not config.model_operations.op_library_filename  # decomposed exports need no library


def test_version_folders_hold_exactly_what_triton_needs(repo, serving_export):
    from convbert_export.fileio import sha256_file

    for task in TASKS:
        export = serving_export(task)
        assert sorted(p.name for p in (repo.path / task).iterdir()) == ["1", "config.pbtxt"]
        assert sorted(p.name for p in (repo.path / task / "1").iterdir()) == ["model.onnx"]
        assert sha256_file(repo.path / task / "1" / "model.onnx") == sha256_file(export / "model.onnx")
        for step in ("tokenize", "answer"):
            version = repo.path / f"{task}_{step}" / "1"
            expected = {"model.py", "manifest.json", "config.json"} | {
                p.name for p in export.iterdir() if p.name in ("vocab.txt", "tokenizer.json",
                                                               "tokenizer_config.json", "special_tokens_map.json")}
            assert {p.name for p in version.iterdir()} == expected
            assert "TritonPythonModel" in (version / "model.py").read_text()
        assert sorted(p.name for p in (repo.path / f"{task}_text").iterdir()) == ["1", "config.pbtxt"]
        assert not list((repo.path / f"{task}_text" / "1").iterdir())


def _shape(model, tensor) -> list[int]:
    dims = list(tensor.dims)
    return ([-1] + dims) if model.max_batch_size > 0 else dims


def test_ensemble_names_dtypes_and_shapes_match_end_to_end(repo):
    """Every tensor the ensemble routes has one producer and consumers that agree with it on
    dtype and (batch-expanded, -1 as wildcard) shape, as Triton checks when it loads it."""
    for task in TASKS:
        ensemble = parse_config(repo.path / f"{task}_text" / "config.pbtxt")
        assert ensemble.platform == "ensemble"
        assert [t.name for t in ensemble.input] == ["TEXT"] and [t.name for t in ensemble.output] == ["ANSWER"]
        tensors = {t.name: (t.data_type, _shape(ensemble, t)) for t in ensemble.input}
        steps = ensemble.ensemble_scheduling.step
        assert [s.model_name for s in steps] == [f"{task}_tokenize", task, f"{task}_answer"]
        for step in steps:
            model = parse_config(repo.path / step.model_name / "config.pbtxt")
            inputs = {t.name: t for t in model.input}
            outputs = {t.name: t for t in model.output}
            assert set(step.input_map) == set(inputs), step.model_name  # every model input is fed
            for key, value in step.input_map.items():
                dtype, shape = tensors[value]  # produced before it is consumed
                assert dtype == inputs[key].data_type, (step.model_name, key)
                want = _shape(model, inputs[key])
                assert len(shape) == len(want) and all(a == b or -1 in (a, b) for a, b in zip(shape, want)), \
                    (step.model_name, key, shape, want)
            for key, value in step.output_map.items():
                assert value not in tensors, f"{value} produced twice"
                tensors[value] = (outputs[key].data_type, _shape(model, outputs[key]))
        for tensor in ensemble.output:
            assert tensors[tensor.name] == (tensor.data_type, _shape(ensemble, tensor))


def _onnx_session(path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("task", list(TASKS))
def test_python_steps_return_what_pipeline_returns(repo, serving_export, task):
    """TEXT -> tokenize step -> the repository's model.onnx -> answer step, with numpy object
    arrays of bytes as Triton's Python backend passes them, equals Pipeline on the same records."""
    from convbert_export import Pipeline
    from convbert_export.records import answer_records
    from convbert_export.serving.triton import TextStep

    records = records_for(task)
    with Pipeline.from_export(serving_export(task)) as pipe:
        expected = answer_records(pipe, records)
    tokenize = TextStep(repo.path / f"{task}_tokenize" / "1", "tokenize", max_rows=8)
    answer = TextStep(repo.path / f"{task}_answer" / "1", "answer", max_rows=8)
    session = _onnx_session(repo.path / task / "1" / "model.onnx")
    output_names = [o.name for o in session.get_outputs()]
    for record, want in zip(records, expected):
        text = np.array([json.dumps(record).encode("utf-8")], dtype=object)
        feeds = tokenize({"TEXT": text})
        assert set(feeds) == {i.name for i in session.get_inputs()}
        assert all(v.dtype == np.int64 for v in feeds.values())
        outputs = dict(zip(output_names, session.run(output_names, feeds)))
        answer_bytes = answer({"TEXT": text, **outputs})["ANSWER"]
        assert answer_bytes.dtype == object and answer_bytes.shape == (1,)
        assert_same(json.loads(answer_bytes[0].decode("utf-8")), want["result"])
    if task == "question-answering":  # the long context really ran as several windows
        text = np.array([json.dumps(records[1]).encode()], dtype=object)
        assert tokenize({"TEXT": text})["input_ids"].shape[0] > 1


def test_a_bad_record_fails_alone_with_a_clear_error(repo):
    from convbert_export.serving.triton import TextStep

    step = TextStep(repo.path / "text-classification_tokenize" / "1", "tokenize")
    good = step({"TEXT": np.array([b'{"text": "a fine movie"}'], dtype=object)})
    for raw, message in [(b"not json", "bad input line"), (b'{"txt": "x"}', '"text" field'),
                         (b'{"text": ""}', "empty"), (b"\xff\xfe", "UTF-8")]:
        with pytest.raises(InvalidInputError, match=message):
            step({"TEXT": np.array([raw], dtype=object)})
    again = step({"TEXT": np.array([b'{"text": "a fine movie"}'], dtype=object)})
    for name in good:
        np.testing.assert_array_equal(good[name], again[name])


def test_question_answering_windows_beyond_max_batch_size_are_refused(repo):
    from convbert_export.serving.triton import TextStep

    step = TextStep(repo.path / "question-answering_tokenize" / "1", "tokenize", max_rows=1)
    record = records_for("question-answering")[1]
    with pytest.raises(InvalidInputError, match="max_batch_size 1"):
        step({"TEXT": np.array([json.dumps(record).encode()], dtype=object)})


def _leaking_copy(export, tmp_path, **changes):
    """A copy of an export whose manifest declares other padding semantics (manifest.json carries
    no checksum of itself, so the copy stays a valid export for the writer)."""
    from convbert_export.fileio import write_json_atomic

    copy = tmp_path / f"{export.name}-{'-'.join(changes)}"
    shutil.copytree(export, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest.update(changes)
    write_json_atomic(copy / "manifest.json", manifest)
    return copy


def test_leaking_or_batch_dependent_exports_get_no_dynamic_batching_unless_asked(serving_export, tmp_path):
    from convbert_export.serving.triton import TextStep, TritonSettings, write_repository

    leaking = _leaking_copy(serving_export("text-classification"), tmp_path, padding="transformers")
    int8 = _leaking_copy(serving_export("feature-extraction"), tmp_path, batch_invariant=False)
    repo = write_repository([leaking, int8], tmp_path / "repo", TritonSettings(ensemble=False))
    for name in (leaking.name, int8.name):
        config = parse_config(repo.path / name / "config.pbtxt")
        assert not config.HasField("dynamic_batching"), name
    assert len(repo.warnings) == 2 and all("no dynamic batching" in w for w in repo.warnings)
    assert sorted(p.name for p in repo.path.iterdir() if p.is_dir()) == sorted([leaking.name, int8.name])  # --no-ensemble
    asked = write_repository([leaking], tmp_path / "asked", TritonSettings(ensemble=False, allow_unsafe_batching=True))
    assert parse_config(asked.path / leaking.name / "config.pbtxt").HasField("dynamic_batching")


def test_a_leaking_question_answering_ensemble_is_refused(serving_export, tmp_path):
    from convbert_export.serving.triton import write_repository

    leaking = _leaking_copy(serving_export("question-answering"), tmp_path, padding="transformers")
    with pytest.raises(InvalidInputError, match="--padding exact"):
        write_repository([leaking], tmp_path / "repo")
    assert not (tmp_path / "repo").exists()  # nothing half-written


def test_gpu_kind_adds_the_tensorrt_accelerator(serving_export, tmp_path):
    from convbert_export.serving.triton import TextStep, TritonSettings, write_repository

    repo = write_repository([serving_export("text-classification")], tmp_path / "repo",
                            TritonSettings(kind="gpu", name="clf", ensemble=False))
    config = parse_config(repo.path / "clf" / "config.pbtxt")
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt" and accelerator.parameters["precision_mode"] == "FP32"


def test_bad_inputs_are_refused_in_one_line(serving_export, tmp_path):
    from convbert_export.serving.triton import TextStep, TritonSettings, write_repository

    export = serving_export("text-classification")
    with pytest.raises(InvalidInputError, match="^unknown kind 'tpu'; expected one of: cpu, gpu$"):
        TritonSettings(kind="tpu")
    with pytest.raises(InvalidInputError, match="^unknown step role 'decode'; expected one of: tokenize, answer$"):
        TextStep(export, "decode")
    with pytest.raises(InvalidInputError, match="max_batch_size"):
        TritonSettings(max_batch_size=0)
    with pytest.raises(InvalidInputError, match="--name names one model"):
        write_repository([export, serving_export("fill-mask")], tmp_path / "r", TritonSettings(name="x"))
    with pytest.raises(InvalidInputError, match="named 'text-classification'"):
        write_repository([export, export], tmp_path / "r")
    tampered = tmp_path / "tampered"
    shutil.copytree(export, tampered)
    with open(tampered / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(InvalidInputError, match="match its manifest"):
        write_repository([tampered], tmp_path / "r")
    assert not (tmp_path / "r").exists()


def test_cli_writes_the_repository(serving_export, tmp_path):
    from convbert_export.cli import main

    out = tmp_path / "repo"
    assert main(["triton", str(serving_export("text-classification")), "--output", str(out),
                 "--name", "clf", "--max-batch-size", "4", "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["clf", "clf_answer", "clf_text", "clf_tokenize",
                                                     "triton-repository.json"]
    assert parse_config(out / "clf" / "config.pbtxt").max_batch_size == 4
    assert main(["triton", str(serving_export("text-classification")), "--output", str(out)]) == 2  # exists
    assert main(["triton", str(serving_export("fill-mask")), "--output", str(out), "--force", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir())[0] == "fill-mask"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("not ours")
    assert main(["triton", str(serving_export("fill-mask")), "--output", str(foreign), "--force"]) == 2
    assert (foreign / "notes.txt").read_text() == "not ours"


@pytest.mark.tensorrt
def test_an_engine_directory_becomes_a_tensorrt_plan_model(serving_export, tmp_path):
    pytest.importorskip("tensorrt_rtx", reason="TensorRT for RTX is not installed (pip install tensorrt-rtx)")
    from convbert_export.engine import EngineSettings, build_engine
    from convbert_export.engine.profiles import parse_profile
    from convbert_export.fileio import sha256_file
    from convbert_export.serving.triton import TextStep, TritonSettings, write_repository

    engine = build_engine(serving_export("text-classification"), tmp_path / "engine",
                          EngineSettings(backend="tensorrt-rtx", profiles=(parse_profile("1,4,8:1,16,32"),)))
    repo = write_repository([engine], tmp_path / "repo", TritonSettings(name="clf", max_batch_size=8))
    config = parse_config(repo.path / "clf" / "config.pbtxt")
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 8
    assert config.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
    assert [t.name for t in config.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert sorted(p.name for p in (repo.path / "clf" / "1").iterdir()) == ["model.plan"]  # RTX: no plugin
    assert sha256_file(repo.path / "clf" / "1" / "model.plan") == sha256_file(engine / "model.plan")
    assert any("tensorrt-rtx" in w for w in repo.warnings)  # Triton's backend needs a TensorRT plan
    tokenize = parse_config(repo.path / "clf_tokenize" / "config.pbtxt")
    assert tokenize.parameters["max_length"].string_value == "32"
    with pytest.raises(InvalidInputError, match="largest profile batch"):
        write_repository([engine], tmp_path / "too-big", TritonSettings(max_batch_size=16))


def test_a_python_step_refuses_files_that_do_not_match_the_manifest(repo, tmp_path):
    from convbert_export.serving.triton import TextStep

    step = tmp_path / "step"
    shutil.copytree(repo.path / "text-classification_tokenize" / "1", step)
    with open(step / "vocab.txt", "a", encoding="utf-8") as handle:
        handle.write("extra-token\n")
    with pytest.raises(InvalidInputError, match="vocab.txt"):
        TextStep(step, "tokenize")


def test_a_custom_op_export_carries_its_library_and_model_operations(tmp_path):
    """The DynamicConv library is copied into the version folder, model_operations points at it
    under the mount, and the model there runs with that library registered."""
    import onnx
    import onnxruntime as ort

    from convbert_export import custom_ops
    from convbert_export.fileio import sha256_file
    from convbert_export.serving.triton import TextStep, TritonSettings, write_repository
    from factories import tiny_export

    custom_ops.fetch_ort_headers()  # the project's own header step, as tests/test_custom_ops.py
    library = custom_ops.library_path()
    export = tiny_export("text-classification", "custom-op")  # read-only: the writer copies from it
    repo = write_repository([export], tmp_path / "repo", TritonSettings(name="clf", repository_mount="/srv/models"))
    config = parse_config(repo.path / "clf" / "config.pbtxt")
    assert list(config.model_operations.op_library_filename) == [f"/srv/models/clf/1/{library.name}"]
    version = repo.path / "clf" / "1"
    assert sorted(p.name for p in version.iterdir()) == sorted(["model.onnx", library.name])
    assert sha256_file(version / library.name) == sha256_file(library)
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(version / library.name))
    session = ort.InferenceSession(str(version / "model.onnx"), sess_options=options, providers=["CPUExecutionProvider"])
    assert any(n.op_type == "DynamicConv" for n in onnx.load(str(version / "model.onnx")).graph.node)
    feeds = {"input_ids": np.array([[2, 100, 200, 3]], np.int64), "attention_mask": np.ones((1, 4), np.int64),
             "token_type_ids": np.zeros((1, 4), np.int64)}
    assert np.isfinite(session.run(None, feeds)[0]).all()


def test_the_python_steps_import_neither_torch_nor_onnxruntime(repo):
    """What the Triton image needs: the package, tokenizers and numpy (checked in a fresh process)."""
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, numpy as np\n"
        "from convbert_export.serving.triton import TextStep\n"
        f"step = TextStep({str(repo.path / 'text-classification_tokenize' / '1')!r}, 'tokenize')\n"
        "step({'TEXT': np.array([b'{\"text\": \"a fine movie\"}'], dtype=object)})\n"
        "print(sorted(m for m in ('torch', 'onnxruntime', 'transformers', 'ray') if m in sys.modules))\n"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_model_py_adapter_runs_its_steps(repo, monkeypatch):
    """model.py's own code (config parsing, per-request loop, error responses), run with a small
    stand-in for Triton's ``triton_python_backend_utils`` (which exists only inside Triton) and
    the model config as Triton passes it (the ModelConfig as JSON, proto field names). The logic
    it calls is the package's TextStep, tested above against Pipeline."""
    import importlib.util
    import sys
    import types

    from google.protobuf import json_format

    class Tensor:
        def __init__(self, name, value):
            self.name, self.value = name, value

        def as_numpy(self):
            return self.value

    class Response:
        def __init__(self, output_tensors=None, error=None):
            self.output_tensors, self.error = output_tensors or [], error

    class Request:
        def __init__(self, **inputs):
            self.inputs = {name: Tensor(name, value) for name, value in inputs.items()}

    stand_in = types.SimpleNamespace(
        Tensor=Tensor, InferenceResponse=Response, TritonError=lambda message: message,
        get_input_tensor_by_name=lambda request, name: request.inputs.get(name))
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", stand_in)
    model_dir = repo.path / "text-classification_tokenize"
    spec = importlib.util.spec_from_file_location("triton_step_model", model_dir / "1" / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.TritonPythonModel()
    config = json_format.MessageToJson(parse_config(model_dir / "config.pbtxt"), preserving_proto_field_name=True)
    model.initialize({"model_config": config, "model_repository": str(model_dir), "model_version": "1"})
    assert model.step.role == "tokenize" and model.step.max_rows == 8
    good = Request(TEXT=np.array([b'{"text": "a fine movie"}'], dtype=object))
    bad = Request(TEXT=np.array([b'{"txt": 1}'], dtype=object))
    responses = model.execute([good, bad, good])
    assert [r.error is None for r in responses] == [True, False, True]
    assert '"text" field' in responses[1].error
    names = [t.name for t in responses[0].output_tensors]
    assert names == ["input_ids", "attention_mask", "token_type_ids"]
    assert all(t.value.dtype == np.int64 and t.value.shape[0] == 1 for t in responses[0].output_tensors)
