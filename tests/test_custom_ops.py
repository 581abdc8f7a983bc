"""The DynamicConv custom op: the ONNX Runtime CPU library against the reference, the loader's
errors, and an nvcc compile of the CUDA kernel.

The library is built once per test session into the normal cache (later sessions reuse it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from convbert_export import custom_ops
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
    """The ONNX Runtime library, built on first use (a build failure fails the tests)."""
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


def test_gpu_check_exits_with_a_message_without_a_gpu():
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is present: run tools/gpu_check.py itself")
    result = subprocess.run(
        [sys.executable, str(REPO / "tools" / "gpu_check.py")],
        capture_output=True, text=True, timeout=120, env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert "no CUDA GPU" in result.stderr
