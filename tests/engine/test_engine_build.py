"""Real TensorRT-for-RTX builds (no GPU needed): every task, both dynamic-conv lowerings,
multi-profile settings, the timing cache, engine.json and the plan hash."""

from __future__ import annotations

import json
import shutil

import onnx
import pytest

from convbert_export.engine import EngineSettings, build_engine, default_profiles, parse_profile, read_engine_info
from convbert_export.errors import BuildError, InvalidInputError
from convbert_export.fileio import sha256_file
from convbert_export.manifest import load_manifest
from convbert_export.tasks import get_task

from .conftest import FAST_GRID, MAX_POSITIONS, SLOW_GRID

pytestmark = pytest.mark.tensorrt

GRID = FAST_GRID + [pytest.param(*case, marks=pytest.mark.slow) for case in SLOW_GRID]


def _custom_nodes(path):
    model = onnx.load(str(path / "model.onnx"), load_external_data=False)
    return [n for n in model.graph.node if n.domain == "com.convbert_export" and n.op_type == "DynamicConv"]


@pytest.mark.parametrize("task,mode", GRID)
def test_engine_for_every_task(task, mode, trt_rtx, export_dir, rtx_engine):
    source = export_dir(task, mode)
    engine = rtx_engine(task, mode)
    manifest = load_manifest(source)
    data = json.loads((engine / "engine.json").read_text())
    info = read_engine_info(engine)

    assert data["backend"] == "tensorrt-rtx"
    assert data["backend_version"] == trt_rtx.__version__
    assert data["task"] == task and data["dynamic_conv"] == mode == manifest.dynamic_conv_mode
    assert data["target"]["gpu"] == "any RTX"
    assert data["precision"] == "fp32"
    assert data["plugin"] is None  # TensorRT for RTX has no plugins: the function body is built
    # ... and engine.json says so (a custom-op export's DynamicConv became the function body)
    expected = "function-body" if mode == "custom-op" else "decomposed"
    assert data["build"]["dynamic_conv"] == {"implementation": expected, "plugin_layers": 0}
    # the plan on disk is the one engine.json describes
    assert data["plan"]["sha256"] == sha256_file(engine / "model.plan")
    assert data["plan"]["bytes"] == (engine / "model.plan").stat().st_size > 100_000
    assert data["source"]["manifest_sha256"] == sha256_file(source / "manifest.json")
    assert data["source"]["model_onnx_sha256"] == sha256_file(source / "model.onnx")
    # default profile derived from the manifest (max positions) and the task (num_choices)
    spec = get_task(task)
    assert info.profiles == default_profiles(MAX_POSITIONS, spec.multiple_choice)
    assert [i["axes"] for i in data["inputs"]] == [list(spec.input_axes)] * 3
    assert [o["name"] for o in data["outputs"]] == list(spec.output_names)
    # the engine directory carries what a pipeline needs besides the plan
    assert (engine / "manifest.json").read_bytes() == (source / "manifest.json").read_bytes()
    assert (engine / "vocab.txt").is_file()


@pytest.mark.parametrize("task,mode", [c for c in FAST_GRID if c[1] == "custom-op"][:1])
def test_custom_op_export_imports_the_local_function(task, mode, trt_rtx, export_dir):
    """The custom-op export really carries DynamicConv nodes (with plugin_namespace) and a local
    function; TensorRT for RTX imports the function body: no plugin layer in the network."""
    source = export_dir(task, mode)
    nodes = _custom_nodes(source)
    assert nodes, "the custom-op export has no DynamicConv node"
    assert all(any(a.name == "plugin_namespace" for a in n.attribute) for n in nodes)
    model = onnx.load(str(source / "model.onnx"), load_external_data=False)
    assert any(f.name == "DynamicConv" and f.domain == "com.convbert_export" for f in model.functions)

    logger = trt_rtx.Logger(trt_rtx.Logger.ERROR)
    network = trt_rtx.Builder(logger).create_network(0)
    parser = trt_rtx.OnnxParser(network, logger)
    assert parser.parse_from_file(str(source / "model.onnx"))
    types = {network.get_layer(i).type for i in range(network.num_layers)}
    assert not {t for t in types if "PLUGIN" in t.name}
    assert trt_rtx.LayerType.SOFTMAX in types  # the function body's softmax over kernel taps


def test_a_plugin_lost_in_parsing_is_an_error(trt_rtx, export_dir):
    """With a plugin expected, a network whose parser imported the function body (no plugin layer:
    what TensorRT < 10.15 does) is refused instead of being recorded as a plugin engine."""
    from convbert_export.engine.backends import get_backend
    from convbert_export.engine.builder import _dynamic_conv_layers

    source = export_dir("fill-mask", "custom-op")
    logger = trt_rtx.Logger(trt_rtx.Logger.ERROR)
    network = trt_rtx.Builder(logger).create_network(0)
    assert trt_rtx.OnnxParser(network, logger).parse_from_file(str(source / "model.onnx"))
    manifest = load_manifest(source)
    backend = get_backend("tensorrt-rtx")
    with pytest.raises(BuildError, match=r"without any DynamicConv plugin layer.*imported the model-local function"
                                         r".*re-export with --dynamic-conv decomposed"):
        _dynamic_conv_layers(trt_rtx, network, backend, trt_rtx.__version__, manifest, plugin_expected=True)
    assert _dynamic_conv_layers(trt_rtx, network, backend, "x", manifest, plugin_expected=False) == {
        "implementation": "function-body", "plugin_layers": 0}


def test_multi_profile_and_timing_cache(trt_rtx, export_dir, tmp_path):
    source = export_dir("multiple-choice", "custom-op")
    profiles = (parse_profile("1,1,4:2,4,4:1,16,32", multiple_choice=True),
                parse_profile("1,8,16:1,4,8:1,64,64", multiple_choice=True))
    cache = tmp_path / "caches" / "timing.cache"
    settings = EngineSettings(backend="tensorrt-rtx", profiles=profiles, timing_cache=cache, workspace_mb=256)

    first = read_engine_info(build_engine(source, tmp_path / "a", settings))
    assert cache.is_file()
    written = cache.read_bytes()
    assert first.build["timing_cache"]["loaded_bytes"] == 0
    second = read_engine_info(build_engine(source, tmp_path / "b", settings))
    # the second build read back exactly what the first saved
    assert second.build["timing_cache"]["loaded_bytes"] == len(written)
    assert second.build["timing_cache"]["loaded_sha256"] == sha256_file_bytes(written)
    for info in (first, second):
        assert info.profiles == profiles
        assert info.build["workspace_mb"] == 256
    data = json.loads((tmp_path / "b" / "engine.json").read_text())
    assert data["profiles"] == [
        {"batch": [1, 1, 4], "num_choices": [2, 4, 4], "sequence": [1, 16, 32]},
        {"batch": [1, 8, 16], "num_choices": [1, 4, 8], "sequence": [1, 64, 64]},
    ]


def sha256_file_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def test_existing_output_needs_force(trt_rtx, export_dir, rtx_engine, tmp_path):
    source = export_dir("text-classification", "decomposed")
    target = tmp_path / "engine"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    (target / "engine.json").write_text("{}")  # an engine directory of ours: --force may replace it
    with pytest.raises(InvalidInputError, match="already exists"):
        build_engine(source, target, EngineSettings(backend="tensorrt-rtx"))
    assert (target / "keep.txt").read_text() == "old"
    build_engine(source, target, EngineSettings(backend="tensorrt-rtx", force=True,
                                                profiles=(parse_profile("1:8"),)))
    assert not (target / "keep.txt").exists()
    assert read_engine_info(target).profiles == (parse_profile("1,1,1:8,8,8"),)


def test_failed_parse_leaves_no_output(trt_rtx, export_dir, tmp_path):
    """A model TensorRT cannot parse raises BuildError with the parser's message, and nothing is
    written."""
    import hashlib

    source = tmp_path / "broken"
    shutil.copytree(export_dir("text-classification", "decomposed"), source)
    model = onnx.load(str(source / "model.onnx"))
    bad = onnx.helper.make_node("NoSuchOp", [model.graph.output[0].name], ["extra"], domain="com.example")
    model.graph.node.append(bad)
    model.graph.output.append(onnx.helper.make_tensor_value_info("extra", onnx.TensorProto.FLOAT, None))
    model.opset_import.append(onnx.helper.make_opsetid("com.example", 1))
    onnx.save(model, str(source / "model.onnx"))
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = hashlib.sha256((source / "model.onnx").read_bytes()).hexdigest()
    (source / "manifest.json").write_text(json.dumps(manifest))

    with pytest.raises(BuildError, match="NoSuchOp"):
        build_engine(source, tmp_path / "engine", EngineSettings(backend="tensorrt-rtx"))
    assert not (tmp_path / "engine").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".engine")]


def test_modified_model_is_refused_before_parsing(trt_rtx, export_dir, tmp_path):
    source = tmp_path / "changed"
    shutil.copytree(export_dir("text-classification", "decomposed"), source)
    with open(source / "model.onnx", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(InvalidInputError, match="model.onnx: sha256"):
        build_engine(source, tmp_path / "engine", EngineSettings(backend="tensorrt-rtx"))


def test_profile_outside_the_model_is_refused(trt_rtx, export_dir, tmp_path):
    source = export_dir("text-classification", "decomposed")
    with pytest.raises(InvalidInputError, match="max_position_embeddings 64"):
        build_engine(source, tmp_path / "e", EngineSettings(backend="tensorrt-rtx",
                                                           profiles=(parse_profile("1,2,4:1,32,128"),)))
    with pytest.raises(InvalidInputError, match="num_choices"):
        build_engine(source, tmp_path / "e", EngineSettings(
            backend="tensorrt-rtx", profiles=(parse_profile("1:2:8", multiple_choice=True),)))
