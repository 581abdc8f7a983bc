"""The library's CPU float32 ops DepthwiseConv and AddLayerNorm (domain com.convbert_export).

Each op runs in ONNX Runtime from the built library and is compared with numpy (float64) and with
ONNX Runtime running the standard-op graph it replaces (Mul/Transpose/Conv/Transpose;
Add/LayerNormalization), fp32 atol 1e-5; the split over threads must not change a bit; bad shapes
are one error naming the expected shape. The library is built once per test session.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from convbert_export import custom_ops

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

ATOL = 1e-5


@pytest.fixture(scope="session")
def library() -> Path:
    """The ONNX Runtime library, built on first use (a failure to get headers or build fails the tests)."""
    custom_ops.fetch_ort_headers()
    return custom_ops.library_path()


def _session(library: Path | None, nodes, inputs: dict, outputs: list[str], threads: int = 2):
    """A CPU session for `nodes`; `inputs` maps each graph input to its rank."""
    graph = helper.make_graph(
        nodes,
        "fused_ops",
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [None] * rank) for name, rank in inputs.items()],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in outputs],
    )
    opsets = [helper.make_opsetid("", 18)]
    if library is not None:
        opsets.append(helper.make_opsetid(custom_ops.DOMAIN, custom_ops.OP_VERSION))
    model = helper.make_model(graph, opset_imports=opsets)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if library is not None:
        options.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


# ---- DepthwiseConv ----------------------------------------------------------------------------------

def _depthwise_numpy(x, weight, mask):
    """y[b,s,c] = sum_j w[c,j] * m[b,s+j-p] * x[b,s+j-p,c], zero outside 0..S-1, in float64."""
    batch, seq, channels = x.shape
    k = weight.shape[1]
    p = (k - 1) // 2
    m = np.ones((batch, seq)) if mask is None else mask.reshape(batch, seq).astype(np.float64)
    padded = np.zeros((batch, seq + 2 * p, channels))
    padded[:, p:p + seq] = x.astype(np.float64) * m[..., None]
    return sum(weight[:, j].astype(np.float64) * padded[:, j:j + seq] for j in range(k))


def _depthwise_standard(x, weight, mask):
    """ONNX Runtime running Mul(x, mask) -> Transpose -> Conv(group=C, pads p/p) -> Transpose."""
    channels, k = weight.shape
    p = (k - 1) // 2
    nodes = [
        helper.make_node("Mul", ["x", "mask"], ["masked"]),
        helper.make_node("Transpose", ["masked"], ["ncw"], perm=[0, 2, 1]),
        helper.make_node("Conv", ["ncw", "w"], ["conv"], group=channels, kernel_shape=[k], pads=[p, p]),
        helper.make_node("Transpose", ["conv"], ["y"], perm=[0, 2, 1]),
    ]
    session = _session(None, nodes, {"x": 3, "mask": 3, "w": 3}, ["y"])
    m = np.ones(x.shape[:2] + (1,), np.float32) if mask is None else mask.reshape(x.shape[:2] + (1,))
    return session.run(None, {"x": x, "mask": m, "w": weight[:, None, :]})[0]


def _depthwise_session(library, mask_input: str | None, threads: int = 2):
    """DepthwiseConv(x, w[, mask]); mask_input "" passes an empty name (absent), None leaves it out."""
    names = ["x", "w"] + ([] if mask_input is None else [mask_input])
    inputs = {"x": 3, "w": 2}
    if mask_input:
        inputs[mask_input] = 3 if mask_input == "mask3" else 2
    node = helper.make_node(custom_ops.DEPTHWISE_CONV_OP_TYPE, names, ["y"], domain=custom_ops.DOMAIN)
    return _session(library, [node], inputs, ["y"], threads)


def _depthwise_inputs(batch, seq, channels, k, mask_kind, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, (batch, seq, channels)).astype(np.float32)
    weight = rng.normal(0.0, k ** -0.5, (channels, k)).astype(np.float32)
    mask = None
    if mask_kind in ("mask", "mask3"):
        mask = (rng.random((batch, seq)) > 0.3).astype(np.float32)
        mask[:, 0] = 0.5  # not only 0/1: the op multiplies by any mask value
        if mask_kind == "mask3":
            mask = mask[..., None]
    return x, weight, mask


DEPTHWISE_SHAPES = [  # (batch, sequence, channels, kernel)
    (1, 128, 768, 9),  # conv-bert-base
    (2, 13, 40, 9),  # channels past the last block of 16; a row group of 8, then 4, then 1
    (3, 3, 16, 9),  # S < K
    (2, 1, 33, 9),  # S = 1
    (1, 20, 24, 5),  # another K (the generic kernel)
    (2, 7, 17, 1),  # K = 1
    (1, 2, 48, 3),
]


@pytest.mark.parametrize("mask_kind", ["mask", "mask3", "empty", "none"])
@pytest.mark.parametrize("batch,seq,channels,k", DEPTHWISE_SHAPES)
def test_depthwise_conv_matches_numpy_and_standard_ops(library, batch, seq, channels, k, mask_kind):
    x, weight, mask = _depthwise_inputs(batch, seq, channels, k, mask_kind, seed=seq * 31 + channels)
    mask_input = {"mask": "mask", "mask3": "mask3", "empty": "", "none": None}[mask_kind]
    feeds = {"x": x, "w": weight}
    if mask_input:
        feeds[mask_input] = mask
    (y,) = _depthwise_session(library, mask_input).run(None, feeds)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, _depthwise_numpy(x, weight, mask), rtol=0, atol=ATOL)
    np.testing.assert_allclose(y, _depthwise_standard(x, weight, mask), rtol=0, atol=ATOL)


@pytest.mark.parametrize("batch,seq,channels,k", [(1, 128, 768, 9), (2, 13, 40, 5)])
def test_depthwise_conv_with_a_constant_weight(library, batch, seq, channels, k):
    """A weight initializer is regrouped once when the kernel is created: same result as a weight input."""
    from onnx import numpy_helper

    x, weight, mask = _depthwise_inputs(batch, seq, channels, k, "mask", seed=5)
    node = helper.make_node(custom_ops.DEPTHWISE_CONV_OP_TYPE, ["x", "w", "mask"], ["y"], domain=custom_ops.DOMAIN)
    graph = helper.make_graph(
        [node], "constant_weight",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", channels]),
         helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "sequence"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid(custom_ops.DOMAIN, custom_ops.OP_VERSION)])
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library))
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": x, "mask": mask})
    np.testing.assert_allclose(y, _depthwise_numpy(x, weight, mask), rtol=0, atol=ATOL)
    (y_input,) = _depthwise_session(library, "mask").run(None, {"x": x, "w": weight, "mask": mask})
    np.testing.assert_array_equal(y, y_input)


def test_depthwise_conv_masked_positions_contribute_nothing(library):
    """Changing x where the mask is 0 leaves y unchanged (and zeroed rows are not skipped blindly)."""
    x, weight, mask = _depthwise_inputs(2, 30, 40, 9, "mask", seed=3)
    session = _depthwise_session(library, "mask")
    (y,) = session.run(None, {"x": x, "w": weight, "mask": mask})
    changed = x.copy()
    changed[mask == 0] = 1e3
    (y_changed,) = session.run(None, {"x": changed, "w": weight, "mask": mask})
    np.testing.assert_array_equal(y, y_changed)
    assert np.abs(y).max() > 0.1


# ---- AddLayerNorm -----------------------------------------------------------------------------------

def _layer_norm_numpy(x, skip, gamma, beta, bias, epsilon):
    z = x.astype(np.float64)
    for term in (skip, bias):
        if term is not None:
            z = z + term
    mean = z.mean(-1, keepdims=True)
    var = ((z - mean) ** 2).mean(-1, keepdims=True)
    y = (z - mean) / np.sqrt(var + epsilon) * gamma
    return y + beta if beta is not None else y


def _layer_norm_standard(x, skip, gamma, beta, bias, epsilon):
    """ONNX Runtime running Add(x, skip) -> Add(bias) -> LayerNormalization (opset 18)."""
    nodes, current, feeds, inputs = [], "x", {"x": x, "gamma": gamma}, {"x": x.ndim, "gamma": 1}
    for name, term in (("skip", skip), ("bias", bias)):
        if term is not None:
            nodes.append(helper.make_node("Add", [current, name], [f"plus_{name}"]))
            current, feeds[name], inputs[name] = f"plus_{name}", term, term.ndim
    ln_inputs = [current, "gamma"]
    if beta is not None:
        ln_inputs.append("beta")
        feeds["beta"], inputs["beta"] = beta, 1
    nodes.append(helper.make_node("LayerNormalization", ln_inputs, ["y"], axis=-1, epsilon=epsilon))
    return _session(None, nodes, inputs, ["y"]).run(None, feeds)[0]


def _layer_norm_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    channels = shape[-1]
    x = rng.normal(0.0, 1.0, shape).astype(np.float32)
    skip = rng.normal(0.0, 1.0, shape).astype(np.float32)
    gamma = rng.normal(1.0, 0.2, channels).astype(np.float32)
    beta = rng.normal(0.0, 0.2, channels).astype(np.float32)
    bias = rng.normal(0.0, 0.2, channels).astype(np.float32)
    return x, skip, gamma, beta, bias


def _layer_norm_node(with_skip, with_beta, with_bias, with_sum, epsilon=None):
    """AddLayerNorm(x, skip, gamma, beta, bias) with empty names for the absent optional inputs."""
    names = ["x", "skip" if with_skip else "", "gamma", "beta" if with_beta else "", "bias" if with_bias else ""]
    while names[-1] == "":
        names.pop()
    attrs = {} if epsilon is None else {"epsilon": epsilon}
    outputs = ["y", "sum"] if with_sum else ["y"]
    node = helper.make_node(custom_ops.ADD_LAYER_NORM_OP_TYPE, names, outputs, domain=custom_ops.DOMAIN, **attrs)
    return node, [n for n in names if n]


LAYER_NORM_SHAPES = [(1, 128, 768), (2, 5, 37), (3, 16), (1, 1, 8), (4, 100)]
OPTIONALS = [  # (skip, beta, bias, sum output)
    (True, True, True, False),
    (True, True, True, True),
    (True, True, False, False),
    (False, True, True, True),
    (True, False, True, False),
    (False, False, False, False),
]


@pytest.mark.parametrize("with_skip,with_beta,with_bias,with_sum", OPTIONALS)
@pytest.mark.parametrize("shape", LAYER_NORM_SHAPES)
def test_add_layer_norm_matches_numpy_and_standard_ops(library, shape, with_skip, with_beta, with_bias, with_sum):
    epsilon = 1e-12 if len(shape) == 3 else 1e-5
    x, skip, gamma, beta, bias = _layer_norm_inputs(shape, seed=sum(shape))
    node, names = _layer_norm_node(with_skip, with_beta, with_bias, with_sum, epsilon=epsilon)
    ranks = {"x": len(shape), "skip": len(shape), "gamma": 1, "beta": 1, "bias": 1}
    session = _session(library, [node], {n: ranks[n] for n in names}, list(node.output))
    values = {"x": x, "skip": skip, "gamma": gamma, "beta": beta, "bias": bias}
    outputs = session.run(None, {n: values[n] for n in names})
    skip, beta, bias = (v if used else None for v, used in ((skip, with_skip), (beta, with_beta), (bias, with_bias)))
    y = outputs[0]
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, _layer_norm_numpy(x, skip, gamma, beta, bias, epsilon), rtol=0, atol=ATOL)
    np.testing.assert_allclose(y, _layer_norm_standard(x, skip, gamma, beta, bias, epsilon), rtol=0, atol=ATOL)
    if with_sum:
        expected = x + skip if skip is not None else x.copy()
        if bias is not None:
            expected = expected + bias
        np.testing.assert_array_equal(outputs[1], expected)  # float32 adds in the stated order


def test_add_layer_norm_epsilon_defaults_to_1e_12(library):
    """A row of equal values normalizes to beta with the default epsilon; a large epsilon shrinks it."""
    x = np.full((2, 64), 3.0, np.float32)
    x[1] += np.linspace(-1e-3, 1e-3, 64, dtype=np.float32)
    gamma = np.ones(64, np.float32)
    outputs = {}
    for epsilon in (None, 1.0):
        node, names = _layer_norm_node(False, False, False, False, epsilon=epsilon)
        outputs[epsilon] = _session(library, [node], {"x": 2, "gamma": 1}, ["y"]).run(None, {"x": x, "gamma": gamma})[0]
    np.testing.assert_allclose(outputs[None], _layer_norm_numpy(x, None, gamma, None, None, 1e-12), rtol=0, atol=1e-4)
    assert np.abs(outputs[1.0][1]).max() < 1e-2 < np.abs(outputs[None][1]).max()


def test_add_layer_norm_rejects_a_negative_epsilon(library):
    node, names = _layer_norm_node(False, False, False, False, epsilon=-1.0)
    with pytest.raises(Exception, match="epsilon' must be a finite float >= 0"):
        _session(library, [node], {"x": 2, "gamma": 1}, ["y"]).run(
            None, {"x": np.zeros((1, 4), np.float32), "gamma": np.ones(4, np.float32)})


# ---- both -------------------------------------------------------------------------------------------

def test_results_do_not_depend_on_the_number_of_threads(library):
    """The parallel split over rows gives exactly the single-threaded result."""
    x, weight, mask = _depthwise_inputs(3, 301, 776, 9, "mask", seed=11)  # 903 rows: many tasks, ragged ends
    lx, skip, gamma, beta, bias = _layer_norm_inputs((7, 150, 776), seed=12)
    node, names = _layer_norm_node(True, True, True, True)
    depthwise, layer_norm = [], []
    for threads in (1, 2):
        depthwise.append(_depthwise_session(library, "mask", threads).run(None, {"x": x, "w": weight, "mask": mask})[0])
        session = _session(library, [node], {"x": 3, "skip": 3, "gamma": 1, "beta": 1, "bias": 1}, ["y", "sum"], threads)
        layer_norm.append(session.run(None, {"x": lx, "skip": skip, "gamma": gamma, "beta": beta, "bias": bias}))
    np.testing.assert_array_equal(depthwise[0], depthwise[1])
    np.testing.assert_array_equal(layer_norm[0][0], layer_norm[1][0])
    np.testing.assert_array_equal(layer_norm[0][1], layer_norm[1][1])
    np.testing.assert_allclose(depthwise[1], _depthwise_numpy(x, weight, mask), rtol=0, atol=ATOL)


def test_output_shape_is_inferred_as_the_input_shape(library):
    """ONNX Runtime's graph gets x's shape, symbolic dimensions included, for both ops' outputs (and
    DynamicConv's: the API 21 C++ wrapper used to lose symbolic dimensions)."""
    nodes = [
        helper.make_node(custom_ops.DEPTHWISE_CONV_OP_TYPE, ["x", "w"], ["conv"], domain=custom_ops.DOMAIN),
        helper.make_node(custom_ops.ADD_LAYER_NORM_OP_TYPE, ["conv", "", "gamma"], ["norm"], domain=custom_ops.DOMAIN),
        helper.make_node("Relu", ["norm"], ["relu"]),
        helper.make_node("DynamicConv", ["x", "logits"], ["dynamic"], domain=custom_ops.DOMAIN,
                         kernel_size=3, num_heads=2, head_size=16),
    ]
    graph = helper.make_graph(
        nodes, "shapes",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "sequence", 32]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [32, 9]),
         helper.make_tensor_value_info("gamma", TensorProto.FLOAT, [32]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", 6])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in ("conv", "norm", "relu", "dynamic")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18),
                                                    helper.make_opsetid(custom_ops.DOMAIN, custom_ops.OP_VERSION)])
    options = ort.SessionOptions()
    options.register_custom_ops_library(str(library))
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    assert {o.name: o.shape for o in session.get_outputs()} == {
        name: ["batch", "sequence", 32] for name in ("conv", "norm", "relu", "dynamic")}


BAD_DEPTHWISE = [  # (x shape, weight shape, mask shape, expected message)
    ((1, 4, 8), (7, 9), None, r"'weight' must have shape \(channels = 8, kernel_size odd <= 255\), got \(7, 9\)"),
    ((1, 4, 8), (8, 4), None, r"'weight' must have shape \(channels = 8, kernel_size odd <= 255\), got \(8, 4\)"),
    ((1, 4, 8), (8, 9), (1, 5), r"'mask' must have shape \(1, 4\) or \(1, 4, 1\) \(batch, sequence\[, 1\]\), got \(1, 5\)"),
    ((4, 8), (8, 9), None, r"'x' must have shape \(batch, sequence, channels\), got \(4, 8\)"),
]


@pytest.mark.parametrize("x_shape,w_shape,mask_shape,message", BAD_DEPTHWISE)
def test_depthwise_conv_bad_shapes_name_the_expected_shape(library, x_shape, w_shape, mask_shape, message):
    feeds = {"x": np.zeros(x_shape, np.float32), "w": np.zeros(w_shape, np.float32)}
    names = ["x", "w"] + (["mask"] if mask_shape else [])
    if mask_shape:
        feeds["mask"] = np.zeros(mask_shape, np.float32)
    node = helper.make_node(custom_ops.DEPTHWISE_CONV_OP_TYPE, names, ["y"], domain=custom_ops.DOMAIN)
    session = _session(library, [node], {name: value.ndim for name, value in feeds.items()}, ["y"])
    with pytest.raises(Exception, match="DepthwiseConv: input " + message):
        session.run(None, feeds)


BAD_LAYER_NORM = [  # (input to replace, its shape, expected message)
    ("skip", (2, 3, 7), r"'skip' must have the shape of x \(2, 3, 8\), got \(2, 3, 7\)"),
    ("gamma", (7,), r"'gamma' must have shape \(8,\) \(the last axis of x \(2, 3, 8\)\), got \(7,\)"),
    ("beta", (1, 8), r"'beta' must have shape \(8,\) \(the last axis of x \(2, 3, 8\)\), got \(1, 8\)"),
    ("bias", (9,), r"'bias' must have shape \(8,\) \(the last axis of x \(2, 3, 8\)\), got \(9,\)"),
]


@pytest.mark.parametrize("name,shape,message", BAD_LAYER_NORM)
def test_add_layer_norm_bad_shapes_name_the_expected_shape(library, name, shape, message):
    x, skip, gamma, beta, bias = _layer_norm_inputs((2, 3, 8))
    feeds = {"x": x, "skip": skip, "gamma": gamma, "beta": beta, "bias": bias}
    feeds[name] = np.zeros(shape, np.float32)
    node, names = _layer_norm_node(True, True, True, False)
    session = _session(library, [node], {n: feeds[n].ndim for n in names}, ["y"])
    with pytest.raises(Exception, match="AddLayerNorm: input " + message):
        session.run(None, feeds)


# ---- every ISA level ----------------------------------------------------------------------------------

# ---- BiasGelu -----------------------------------------------------------------------------------------

def _gelu_numpy(x, bias):
    from math import erf

    z = (x.astype(np.float64) + bias.astype(np.float64))
    return (0.5 * z * (1.0 + np.vectorize(erf)(z / np.sqrt(2.0)))).astype(np.float32)


def _gelu_inputs(shape, seed=0):
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 3.0).astype(np.float32)  # GELU's curved part and both tails
    x.reshape(-1)[:4] = [0.0, -0.0, 1e-8, -40.0]
    return x, (rng.standard_normal(shape[-1]) * 0.5).astype(np.float32)


@pytest.mark.parametrize("shape", [(1, 128, 3072), (2, 5, 37), (3, 16), (1, 1, 8), (7,)])
def test_bias_gelu_matches_numpy_and_onnx_runtimes_own(library, shape):
    x, bias = _gelu_inputs(shape, seed=sum(shape))
    node = helper.make_node("BiasGelu", ["x", "bias"], ["y"], domain=custom_ops.DOMAIN)
    ours = _session(library, [node], {"x": len(shape), "bias": 1}, ["y"]).run(None, {"x": x, "bias": bias})[0]
    np.testing.assert_allclose(ours, _gelu_numpy(x, bias), rtol=0, atol=ATOL)
    theirs = helper.make_node("BiasGelu", ["x", "bias"], ["y"], domain="com.microsoft")
    graph = helper.make_graph([theirs], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] * len(shape)),
                                              helper.make_tensor_value_info("bias", TensorProto.FLOAT, [None])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)])
    if len(shape) >= 2:  # com.microsoft::BiasGelu wants rows
        reference = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(
            None, {"x": x, "bias": bias})[0]
        np.testing.assert_allclose(ours, reference, rtol=0, atol=ATOL)


def test_bias_gelu_threads_and_bad_bias(library):
    x, bias = _gelu_inputs((4, 64, 3072), seed=9)
    node = helper.make_node("BiasGelu", ["x", "bias"], ["y"], domain=custom_ops.DOMAIN)
    one, two = (_session(library, [node], {"x": 3, "bias": 1}, ["y"], threads=t).run(None, {"x": x, "bias": bias})[0]
                for t in (1, 2))
    np.testing.assert_array_equal(one, two)
    with pytest.raises(Exception, match=r"BiasGelu: input 'bias' must have shape \(3072,\)"):
        _session(library, [node], {"x": 3, "bias": 1}, ["y"]).run(None, {"x": x, "bias": bias[:100]})


REPO = Path(__file__).resolve().parents[1]
HARNESS = REPO / "tests" / "native" / "cpu_kernels_harness.cc"
# -march level -> the /proc/cpuinfo flags it needs (the library's clones: default, x86-64-v3, x86-64-v4)
ISA_LEVELS = {
    "x86-64": (),
    "x86-64-v3": ("avx2", "fma", "bmi2"),
    "x86-64-v4": ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"),
}
_HARNESSES: dict[str, Path] = {}


def _harness(level: str, directory: Path) -> Path:
    """The kernels built for one -march level, with the per-ISA clones turned off."""
    import platform
    import subprocess

    from convbert_export.cpu import cpu_features

    if platform.machine() != "x86_64" or not Path("/proc/cpuinfo").is_file():
        pytest.skip("the ISA-level clones are x86-64 Linux only")
    missing = [flag for flag in ISA_LEVELS[level] if flag not in cpu_features().flags]
    if missing:
        pytest.skip(f"this CPU cannot run {level} code (no {', '.join(missing)})")
    if level not in _HARNESSES:
        compiler = custom_ops._find_cxx_compiler()
        assert compiler, "no C++ compiler (the library fixture needs one too)"
        binary = directory / f"cpu_kernels_{level}"
        command = [compiler, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-psabi", f"-march={level}",
                   "-DCONVBERT_CPU_CLONES=", "-I", str(REPO / "custom_ops" / "include"), str(HARNESS), "-o", str(binary)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        _HARNESSES[level] = binary
    return _HARNESSES[level]


def _run_harness(binary: Path, directory: Path, inputs: list, args: list) -> np.ndarray:
    import subprocess

    source, target = directory / "in.bin", directory / "out.bin"
    np.concatenate([np.ravel(a).astype(np.float32) for a in inputs]).tofile(source)
    result = subprocess.run([str(binary), args[0], str(source), str(target), *map(str, args[1:])],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 3, "the rows split in two gave different bits than one call"
    assert result.returncode == 0, result.stderr
    return np.fromfile(target, dtype=np.float32)


@pytest.mark.parametrize("level", list(ISA_LEVELS))
def test_kernels_compiled_for_each_isa_level_match_numpy(level, tmp_path_factory):
    """The clones the loader does not pick on this CPU (AVX2, baseline) compute the same semantics."""
    directory = tmp_path_factory.mktemp(f"isa-{level}")
    binary = _harness(level, directory)
    for batch, seq, channels, k, mask_kind, split in [(1, 128, 768, 9, "mask", 61), (2, 13, 40, 9, "mask", 5),
                                                      (2, 7, 24, 5, "none", 3), (3, 2, 17, 9, "mask", 1)]:
        x, weight, mask = _depthwise_inputs(batch, seq, channels, k, mask_kind, seed=channels)
        inputs = [x, weight] + ([mask] if mask is not None else [])
        y = _run_harness(binary, directory, inputs, ["depthwise", batch, seq, channels, k, int(mask is not None), split])
        np.testing.assert_allclose(y.reshape(x.shape), _depthwise_numpy(x, weight, mask), rtol=0, atol=ATOL,
                                   err_msg=f"{level} depthwise {(batch, seq, channels, k)}")
    for rows, channels, with_optional, split in [(128, 768, True, 50), (30, 37, True, 7), (5, 8, False, 2)]:
        x, skip, gamma, beta, bias = _layer_norm_inputs((rows, channels), seed=rows)
        inputs = [x, skip, gamma, beta, bias] if with_optional else [x, gamma]
        flag = int(with_optional)
        out = _run_harness(binary, directory, inputs, ["layernorm", rows, channels, 1e-12, flag, flag, flag, flag, split])
        optional = (skip, beta, bias) if with_optional else (None, None, None)
        expected = _layer_norm_numpy(x, optional[0], gamma, optional[1], optional[2], 1e-12)
        np.testing.assert_allclose(out[:x.size].reshape(x.shape), expected, rtol=0, atol=ATOL,
                                   err_msg=f"{level} layernorm {(rows, channels)}")
        if with_optional:
            np.testing.assert_array_equal(out[x.size:].reshape(x.shape), (x + skip) + bias)
    for rows, channels, split in [(128, 3072, 50), (5, 37, 2)]:
        x, bias = _gelu_inputs((rows, channels), seed=channels)
        out = _run_harness(binary, directory, [x, bias], ["biasgelu", rows, channels, split])
        np.testing.assert_allclose(out.reshape(x.shape), _gelu_numpy(x, bias), rtol=0, atol=ATOL,
                                   err_msg=f"{level} biasgelu {(rows, channels)}")
