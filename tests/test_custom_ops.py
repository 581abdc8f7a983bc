"""The DynamicConv custom op: the ONNX Runtime CPU library against the reference, the loader's
errors, the ONNX Runtime header step, and an nvcc compile of the CUDA kernel.

The headers are fetched (Debian's libonnxruntime-dev, see convbert_export.ort_headers) and the
library built once per test session into the normal cache (later sessions reuse both).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from convbert_export import custom_ops, ort_headers
from convbert_export.errors import BuildError
from reference_model.dynamic_conv import dynamic_conv_reference

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

KERNEL_SIZES = (3, 5, 9)
HEADS = ((1, 8), (2, 3), (6, 17))  # (num_heads, head_size); 17 exercises a ragged inner loop
BATCHES = (1, 3)


def _seq_lengths(kernel_size: int) -> list[int]:
    return sorted({1, 2, kernel_size - 1, kernel_size, 128, 513})


@pytest.fixture(scope="session")
def library() -> Path:
    """The ONNX Runtime library, built on first use (a failure to get headers or build fails the tests)."""
    custom_ops.fetch_ort_headers()  # the project's own header step (a fresh machine has none)
    return custom_ops.library_path()


def _model(kernel_size: int, num_heads: int, head_size: int, elem_type: int) -> bytes:
    node = helper.make_node(
        custom_ops.OP_TYPE,
        ["value", "kernel_logits"],
        ["out"],
        domain=custom_ops.DOMAIN,
        kernel_size=kernel_size,
        num_heads=num_heads,
        head_size=head_size,
        plugin_namespace=custom_ops.PLUGIN_NAMESPACE,
    )
    graph = helper.make_graph(
        [node],
        "dynamic_conv",
        [
            helper.make_tensor_value_info("value", elem_type, ["batch", "sequence", num_heads * head_size]),
            helper.make_tensor_value_info("kernel_logits", elem_type, ["batch", "sequence", num_heads * kernel_size]),
        ],
        [helper.make_tensor_value_info("out", elem_type, ["batch", "sequence", num_heads * head_size])],
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(custom_ops.DOMAIN, custom_ops.OP_VERSION)],
    )
    return model.SerializeToString()


_SESSIONS: dict[tuple, "ort.InferenceSession"] = {}


def _session(library: Path, kernel_size: int, num_heads: int, head_size: int, elem_type=TensorProto.FLOAT):
    key = (kernel_size, num_heads, head_size, elem_type)
    if key not in _SESSIONS:
        options = ort.SessionOptions()
        options.intra_op_num_threads = 2
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.register_custom_ops_library(str(library))
        _SESSIONS[key] = ort.InferenceSession(
            _model(kernel_size, num_heads, head_size, elem_type), options, providers=["CPUExecutionProvider"]
        )
    return _SESSIONS[key]


def _inputs(batch, seq, num_heads, head_size, kernel_size, dtype, seed=0):
    """Random non-zero inputs; logits spread so the softmax is far from uniform."""
    rng = np.random.default_rng(seed)
    value = rng.uniform(0.1, 2.0, (batch, seq, num_heads * head_size)) * rng.choice([-1.0, 1.0], (batch, seq, num_heads * head_size))
    logits = rng.normal(0.0, 3.0, (batch, seq, num_heads * kernel_size))
    return value.astype(dtype), logits.astype(dtype)


def _reference(value: np.ndarray, logits: np.ndarray, kernel_size: int, num_heads: int) -> np.ndarray:
    """The reference in float32 (float16 inputs are widened first: the op accumulates in float)."""
    out = dynamic_conv_reference(
        torch.from_numpy(value.astype(np.float32)), torch.from_numpy(logits.astype(np.float32)), kernel_size, num_heads
    )
    return out.numpy()


@pytest.mark.parametrize("num_heads,head_size", HEADS)
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("kernel_size", KERNEL_SIZES)
def test_float32_matches_reference(library, kernel_size, batch, num_heads, head_size):
    session = _session(library, kernel_size, num_heads, head_size)
    for seq in _seq_lengths(kernel_size):
        value, logits = _inputs(batch, seq, num_heads, head_size, kernel_size, np.float32, seed=seq)
        (out,) = session.run(None, {"value": value, "kernel_logits": logits})
        expected = _reference(value, logits, kernel_size, num_heads)
        assert out.dtype == np.float32 and out.shape == expected.shape
        np.testing.assert_allclose(out, expected, rtol=0, atol=1e-6, err_msg=f"seq={seq}")


@pytest.mark.parametrize("kernel_size", KERNEL_SIZES)
def test_float16_matches_reference(library, kernel_size):
    num_heads, head_size = 4, 16
    session = _session(library, kernel_size, num_heads, head_size, TensorProto.FLOAT16)
    for batch in BATCHES:
        for seq in _seq_lengths(kernel_size):
            value, logits = _inputs(batch, seq, num_heads, head_size, kernel_size, np.float16, seed=seq)
            (out,) = session.run(None, {"value": value, "kernel_logits": logits})
            expected = _reference(value, logits, kernel_size, num_heads)
            assert out.dtype == np.float16 and out.shape == expected.shape
            # float accumulation, one rounding to half at the end: within half an ulp of float16
            np.testing.assert_allclose(out.astype(np.float32), expected, rtol=1e-3, atol=1e-4, err_msg=f"seq={seq}")


def test_output_is_independent_of_threading(library):
    """The parallel split over batch x sequence gives exactly the single-threaded result."""
    value, logits = _inputs(3, 513, 6, 17, 9, np.float32, seed=7)
    outputs = []
    for threads in (1, 2):
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.register_custom_ops_library(str(library))
        session = ort.InferenceSession(_model(9, 6, 17, TensorProto.FLOAT), options, providers=["CPUExecutionProvider"])
        outputs.append(session.run(None, {"value": value, "kernel_logits": logits})[0])
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_register_adds_the_library_to_session_options(library):
    options = ort.SessionOptions()
    assert custom_ops.register(options) == library
    session = ort.InferenceSession(_model(3, 2, 4, TensorProto.FLOAT), options, providers=["CPUExecutionProvider"])
    value, logits = _inputs(1, 5, 2, 4, 3, np.float32)
    np.testing.assert_allclose(
        session.run(None, {"value": value, "kernel_logits": logits})[0], _reference(value, logits, 3, 2), atol=1e-6
    )


def test_even_kernel_size_is_rejected_when_the_session_is_created(library):
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library))
    with pytest.raises(Exception, match="kernel_size must be odd"):
        ort.InferenceSession(_model(4, 2, 4, TensorProto.FLOAT), options, providers=["CPUExecutionProvider"])


def test_wrong_input_shape_names_expected_and_actual(library):
    session = _session(library, 3, 2, 4)
    value = np.ones((1, 5, 8), np.float32)
    logits = np.ones((1, 4, 6), np.float32)  # sequence length differs from value's
    with pytest.raises(Exception, match=r"kernel_logits' must have shape \(1, 5, 6\).*got \(1, 4, 6\)"):
        session.run(None, {"value": value, "kernel_logits": logits})


def test_library_is_cached(library):
    info = custom_ops.ensure_library()
    assert info.path == library and not info.built
    assert info.header_api_version is not None and info.header_api_version <= custom_ops.ORT_API_VERSION
    assert info.path.parent.name == info.key


def test_missing_tools_and_headers_are_named_with_the_build_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no cmake, no compiler
    monkeypatch.delenv("CXX", raising=False)
    monkeypatch.delenv(custom_ops.LIBRARY_ENV, raising=False)
    monkeypatch.setenv(custom_ops.ORT_INCLUDE_ENV, str(tmp_path / "no-headers"))
    monkeypatch.setenv(custom_ops.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(BuildError) as caught:
        custom_ops.library_path()
    message = str(caught.value)
    assert "cmake: not found" in message
    assert "C++ compiler" in message
    assert f"ORT_INCLUDE_DIR={tmp_path / 'no-headers'} has no onnxruntime_cxx_api.h" in message
    assert "cmake --build" in message and "--target convbert_ort_ops" in message
    assert f"{custom_ops.LIBRARY_ENV}=" in message
    assert not (tmp_path / "cache" / "ops").exists() or not any((tmp_path / "cache" / "ops").iterdir())


def test_only_missing_headers_are_reported(tmp_path, monkeypatch):
    monkeypatch.delenv(custom_ops.LIBRARY_ENV, raising=False)
    monkeypatch.setenv(custom_ops.ORT_INCLUDE_ENV, str(tmp_path))
    monkeypatch.setenv(custom_ops.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(BuildError) as caught:
        custom_ops.library_path()
    message = str(caught.value)
    assert f"ORT_INCLUDE_DIR={tmp_path} has no onnxruntime_cxx_api.h" in message
    if shutil.which("cmake"):
        assert "cmake: not found" not in message


def test_headers_are_fetched_into_an_empty_cache_and_reused(tmp_path, monkeypatch):
    """A fresh cache gets Debian's headers by itself; the second call uses the cache (no network)."""
    if ort_headers.debian_problem():
        pytest.skip(f"not a Debian-family system: {ort_headers.debian_problem()}")
    monkeypatch.delenv(ort_headers.INCLUDE_ENV, raising=False)
    monkeypatch.delenv(ort_headers.SUITE_ENV, raising=False)
    monkeypatch.setenv(custom_ops.CACHE_ENV, str(tmp_path / "cache"))
    include = custom_ops.fetch_ort_headers()
    assert include.parent == tmp_path / "cache" / "ort-headers"
    assert ort_headers.header_api_version(include) >= custom_ops.ORT_API_VERSION
    assert (include / "onnxruntime_cxx_api.h").is_file() and (include / "onnxruntime_lite_custom_op.h").is_file()
    assert json.loads((include / "source.json").read_text())["package"].startswith("libonnxruntime-dev_")
    assert sorted(p.name for p in include.parent.iterdir()) == [include.name]  # no partial left over
    monkeypatch.setenv(ort_headers.MIRROR_ENV, "http://127.0.0.1:9/debian")  # unreachable: must not be asked
    assert custom_ops.fetch_ort_headers() == include


def test_unreachable_mirror_is_one_line_naming_the_fix_and_fills_no_cache(tmp_path, monkeypatch):
    if ort_headers.debian_problem():
        pytest.skip(f"not a Debian-family system: {ort_headers.debian_problem()}")
    monkeypatch.delenv(ort_headers.INCLUDE_ENV, raising=False)
    monkeypatch.setenv(ort_headers.MIRROR_ENV, "http://127.0.0.1:9/debian")  # connection refused at once
    with pytest.raises(ort_headers.HeadersError) as caught:
        ort_headers.ensure_headers(tmp_path / "headers")
    message = str(caught.value)
    assert "\n" not in message and "127.0.0.1:9" in message and "ORT_INCLUDE_DIR" in message
    assert "onnxruntime/releases" in message
    assert not (tmp_path / "headers").exists() or not any((tmp_path / "headers").iterdir())


def test_without_apt_the_error_names_ort_include_dir(tmp_path, monkeypatch):
    monkeypatch.delenv(ort_headers.INCLUDE_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no apt-get, no dpkg-deb
    with pytest.raises(ort_headers.HeadersError) as caught:
        ort_headers.ensure_headers(tmp_path / "headers")
    message = str(caught.value)
    assert "\n" not in message
    assert "set ORT_INCLUDE_DIR to a directory holding onnxruntime_cxx_api.h" in message
    assert "apt-get" in message or "not a Debian-family system" in message


def test_no_file_of_the_project_reads_the_shared_folder():
    """The project must pass its tests without the workplace's shared folder beside the clone (CI
    may pass optional paths from it)."""
    marker = "/".join(["..", "shared"])  # spelled so that this file does not match itself
    offenders = []
    for path in [*REPO.glob("convbert_export/**/*.py"), *REPO.glob("reference_model/**/*.py"),
                 *REPO.glob("tests/**/*.py"), *REPO.glob("tools/*.py"), *REPO.glob("custom_ops/**/*")]:
        if path.is_file() and marker in path.read_text(errors="replace"):
            offenders.append(str(path.relative_to(REPO)))
    assert offenders == []


def test_library_env_override_must_exist(tmp_path, monkeypatch):
    monkeypatch.setenv(custom_ops.LIBRARY_ENV, str(tmp_path / "missing.so"))
    with pytest.raises(BuildError, match="CONVBERT_EXPORT_OPS_LIBRARY points at .*missing.so"):
        custom_ops.library_path()


def test_sources_are_found_through_the_package():
    source = custom_ops.source_dir()
    assert (source / "CMakeLists.txt").is_file()
    assert (source / "include" / "dynamic_conv_kernel.h").is_file()
    assert len(custom_ops.sources_digest(source)) == 64


def test_build_ops_command_prints_the_library(library, capsys):
    from convbert_export.cli import main

    assert main(["build-ops", "--json", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert Path(printed["library"]) == library
    assert printed["domain"] == "com.convbert_export" and printed["op_type"] == "DynamicConv"
    assert (Path(printed["include_dir"]) / "onnxruntime_cxx_api.h").is_file()  # the header step ran


def _nvcc() -> str | None:
    found = shutil.which("nvcc")
    if found:
        return found
    default = Path("/usr/local/cuda/bin/nvcc")
    return str(default) if default.is_file() else None


@pytest.mark.skipif(_nvcc() is None, reason="nvcc not found (CUDA toolkit not installed); CI compiles the kernel")
def test_cuda_kernel_compiles_for_sm80_and_sm90(tmp_path):
    source = REPO / "custom_ops" / "cuda" / "dynamic_conv.cu"
    command = [
        _nvcc(), "-std=c++17", "-O3", "-c", str(source), "-o", str(tmp_path / "dynamic_conv.o"),
        "-I", str(source.parent),
        "-gencode", "arch=compute_80,code=sm_80",
        "-gencode", "arch=compute_90,code=sm_90",
        "-Werror", "all-warnings",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"nvcc failed:\n{result.stdout}\n{result.stderr}"
    assert (tmp_path / "dynamic_conv.o").stat().st_size > 0


def _tool(name: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "tools" / name), *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "CUDA_VISIBLE_DEVICES": "", **(env or {})})  # fmt: skip


def test_gpu_check_exits_with_a_message_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: run tools/gpu_check.py itself")
    result = _tool("gpu_check.py")
    assert result.returncode == 2, result.stderr
    assert "no CUDA GPU" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_gpu_check_names_a_missing_ninja_in_one_line(tmp_path):
    result = _tool("gpu_check.py", env={"PATH": str(tmp_path)})  # no ninja (nor anything else) on PATH
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "gpu_check: ninja not found on PATH: torch compiles the kernel with it; install it with `pip install ninja`"
    ]


def test_gpu_check_trt_fails_when_custom_op_is_asked_without_a_plugin():
    """Never 'skipped': asking TensorRT for custom-op engines without the plugin is a failure."""
    result = _tool("gpu_check_trt.py", "--backend", "tensorrt", "--modes", "decomposed", "custom-op",
                   env={"CONVBERT_TRT_PLUGIN": ""})  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAIL" in result.stderr and "--plugin" in result.stderr and "skipped" not in result.stdout + result.stderr


# ---- the TensorRT plugin, compiled against TensorRT's real headers and exercised on the CPU ----
#: TensorRT include directories (os.pathsep-separated) to compile the plugin against; .ci/run sets
#: it when TensorRT's headers are available (pip's TensorRT wheels ship none).
TRT_INCLUDE_ENV = "CONVBERT_TRT_INCLUDE_DIRS"
HARNESS = REPO / "tests" / "native" / "trt_plugin_harness.cc"


def _trt_include_dirs() -> list[str]:
    return [d for d in os.environ.get(TRT_INCLUDE_ENV, "").split(os.pathsep) if d]


def _cuda_home() -> Path | None:
    """The CUDA toolkit root: $CUDA_HOME, $CUDA_PATH, nvcc's (a wrapper script may sit on PATH), /usr/local/cuda."""
    nvcc = _nvcc()
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
                  nvcc and str(Path(nvcc).resolve().parent.parent), "/usr/local/cuda"]  # fmt: skip
    for candidate in filter(None, candidates):
        root = Path(candidate)
        if (root / "bin" / "nvcc").is_file() and (root / "include" / "cuda_runtime_api.h").is_file():
            return root
    return None


def _cuda_include() -> Path | None:
    home = _cuda_home()
    return home / "include" if home else None


def _plugin_skip_reason() -> str | None:
    if not _trt_include_dirs():
        return (f"TensorRT headers not given: set {TRT_INCLUDE_ENV} to TensorRT include/ directories "
                "(pip's TensorRT wheels ship no headers; CI passes them)")
    if _nvcc() is None or _cuda_include() is None:
        return "nvcc / the CUDA toolkit's headers not found: the plugin needs CUDA to compile"
    if shutil.which("cmake") is None or custom_ops._find_cxx_compiler() is None:
        return "cmake or a C++ compiler not found"
    return None


@pytest.fixture(scope="module", params=_trt_include_dirs() or ["none"])
def trt_plugin(request, tmp_path_factory) -> tuple[str, Path, Path]:
    """(TensorRT version, include dir, plugin library) built with CMake for one include dir; -Werror for our code."""
    reason = _plugin_skip_reason()
    if reason:
        pytest.skip(reason)
    include = Path(request.param)
    if not (include / "NvInfer.h").is_file():
        pytest.fail(f"{TRT_INCLUDE_ENV} names {include}, which has no NvInfer.h")
    build = tmp_path_factory.mktemp("trt-plugin")
    configure = ["cmake", "-S", str(custom_ops.source_dir()), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
                 f"-DTENSORRT_INCLUDE_DIR={include}", "-DCMAKE_CUDA_ARCHITECTURES=80",
                 f"-DCMAKE_CUDA_COMPILER={_cuda_home() / 'bin' / 'nvcc'}", "-DCMAKE_CXX_FLAGS=-Werror"]  # fmt: skip
    if shutil.which("ninja"):
        configure[1:1] = ["-G", "Ninja"]
    for command in (configure, ["cmake", "--build", str(build), "--target", "convbert_trt_plugin", "--parallel", "2"]):
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"{shlex.join(command)} failed:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}"
    version = re.search(r"TRT_MAJOR_ENTERPRISE (\d+).*?TRT_MINOR_ENTERPRISE (\d+)",
                        (include / "NvInferVersion.h").read_text(), re.S)  # fmt: skip
    return (".".join(version.groups()) if version else str(include)), include, build / "libconvbert_trt_plugin.so"


def test_trt_plugin_needs_only_libc_and_libstdcxx(trt_plugin):
    """No libnvinfer (optional for the build) and libcudart linked statically: only system libraries."""
    _, _, library = trt_plugin
    dynamic = subprocess.run(["readelf", "-d", str(library)], capture_output=True, text=True, check=True).stdout
    needed = sorted(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    assert not [n for n in needed if "nvinfer" in n or "cudart" in n], needed
    symbols = subprocess.run(["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True, check=True)
    exported = {line.split()[-1] for line in symbols.stdout.splitlines() if " T " in line}
    assert {"getCreators", "setLoggerFinder"} <= exported


def test_trt_plugin_on_the_cpu_through_tensorrt_interfaces(trt_plugin, tmp_path):
    """dlopen the plugin from a C++ harness compiled against the same headers; every check passes."""
    version, include, library = trt_plugin
    harness = tmp_path / "harness"
    compiler = custom_ops._find_cxx_compiler()
    command = [compiler, "-std=c++17", "-O1", "-Wall", "-Wextra", "-Werror", "-isystem", str(include),
               "-isystem", str(_cuda_include()), str(HARNESS), "-o", str(harness), "-ldl"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"compiling the harness failed:\n{result.stderr[-4000:]}"
    run = subprocess.run([str(harness), str(library)], capture_output=True, text=True, timeout=60)
    print(f"TensorRT {version} headers:\n{run.stdout}{run.stderr}")
    assert run.returncode == 0, run.stdout + run.stderr
    last = run.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"harness: (\d+) checks, 0 failed", last) and int(last.split()[1]) >= 40, last
    assert "FAIL" not in run.stdout
    for expected in ("refuses heads x kernel 64 x 255 over the 48 KB shared memory",
                     "onShapeChange refuses kernel_logits (2, 4, 36)", "getOutputShapes (B, S, 64), (B, S, 36) -> (B, S, 64)",
                     "createPlugin from INT32 fields", "createPlugin from INT64 fields", "configurePlugin accepts (-1, -1, 64)"):
        assert expected in run.stdout


# ---- ONNX Runtime sessions: the CPU-only library is registered for CPU sessions only -------------
def _dynamic_conv_model_file(tmp_path: Path) -> Path:
    path = tmp_path / "dynamic_conv.onnx"
    path.write_bytes(_model(3, 2, 4, TensorProto.FLOAT))
    return path


def test_cpu_session_gets_the_library(library, tmp_path):
    from convbert_export.runtime.ort import OrtRunner, OrtSettings

    value, logits = _inputs(1, 5, 2, 4, 3, np.float32)
    with OrtRunner(_dynamic_conv_model_file(tmp_path), "cpu", OrtSettings(custom_ops="required")) as runner:
        assert runner.custom_ops_registered and runner.library == f"loaded ({library.name})"
        out = runner.session.run(None, {"value": value, "kernel_logits": logits})[0]
    np.testing.assert_allclose(out, _reference(value, logits, 3, 2), atol=1e-6)


@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_sessions_do_not_get_the_cpu_only_library_and_say_so(library, tmp_path, provider):
    """A CUDA/TensorRT session would run the CPU kernel with a host round trip per layer: the
    runner leaves the library out (the function body runs on the GPU) and warns; 'required' fails."""
    import onnxruntime

    from convbert_export.errors import MissingDependencyError
    from convbert_export.runtime.ort import OrtRunner, OrtSettings

    runner = OrtRunner(_dynamic_conv_model_file(tmp_path), provider, OrtSettings(custom_ops="auto"))
    runner.provider = provider  # what start() sets once the provider resolved (this onnxruntime may lack it)
    options = onnxruntime.SessionOptions()
    with pytest.warns(RuntimeWarning, match=f"not loaded for the {provider} provider: it has CPU kernels only"):
        runner._register_custom_ops(options)
    assert not runner.custom_ops_registered and "host and back" in runner.library
    # the options really carry no library: a session on them cannot run DynamicConv without the function
    with pytest.raises(Exception, match="DynamicConv"):
        onnxruntime.InferenceSession(_model(3, 2, 4, TensorProto.FLOAT), options, providers=["CPUExecutionProvider"])
    strict = OrtRunner(_dynamic_conv_model_file(tmp_path), provider, OrtSettings(custom_ops="required"))
    strict.provider = provider
    with pytest.raises(MissingDependencyError, match="CPU kernels only"):
        strict._register_custom_ops(onnxruntime.SessionOptions())
