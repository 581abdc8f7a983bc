"""The model's FLOPs (analytic, from config.json) and the fp32 "GEMM floor": the model's own
matrix multiplies run alone as ONNX Runtime MatMuls (MLAS), timed interleaved with the backends;
the time no fp32 backend can beat without doing fewer FLOPs."""

from __future__ import annotations

import numpy as np


def model_gemms(config: dict, tokens: int, batch: int, sequence: int) -> list[tuple[int, int, int, int, bool]]:
    """The encoder's matrix multiplies as (M, K, N, count, batched) for ``tokens`` = batch x sequence.

    Attention score/context products are listed per (batch x head) as (S, D, S) and (S, S, D).
    Task heads are excluded (small next to the encoder, except fill-mask's vocabulary projection).
    """
    hidden = int(config["hidden_size"])
    embedding = int(config.get("embedding_size") or hidden)
    layers = int(config["num_hidden_layers"])
    ratio = int(config.get("head_ratio", 2))
    heads = max(1, int(config["num_attention_heads"]) // ratio)
    inner = hidden // ratio  # all_head_size of each half
    head_size = inner // heads
    kernel = int(config.get("conv_kernel_size", 9))
    intermediate = int(config["intermediate_size"])
    groups = int(config.get("num_groups", 1))
    gemms = []
    if embedding != hidden:
        gemms.append((tokens, embedding, hidden, 1, False))
    gemms += [
        (tokens, hidden, inner, 3 * layers, False),  # query, key, value
        (tokens, hidden, inner, layers, False),  # separable conv's pointwise half
        (tokens, inner, heads * kernel, layers, False),  # conv_kernel_layer
        (tokens, hidden, inner, layers, False),  # conv_out_layer
        (sequence, head_size, sequence, batch * heads * layers, True),  # Q K^T
        (sequence, sequence, head_size, batch * heads * layers, True),  # softmax(QK^T) V
        (tokens, hidden, hidden, layers, False),  # attention output dense
        (tokens, hidden // groups, intermediate // groups, groups * layers, False),  # intermediate
        (tokens, intermediate // groups, hidden // groups, groups * layers, False),  # output
    ]
    return gemms


def model_flops(config: dict, batch: int, sequence: int) -> float:
    """FLOPs of one forward (GEMMs + the depthwise and dynamic convolutions), analytic."""
    tokens = batch * sequence
    hidden = int(config["hidden_size"])
    inner = hidden // int(config.get("head_ratio", 2))
    kernel = int(config.get("conv_kernel_size", 9))
    layers = int(config["num_hidden_layers"])
    gemm = sum(2.0 * m * k * n * c for m, k, n, c, _ in model_gemms(config, tokens, batch, sequence))
    convs = layers * (2.0 * tokens * hidden * kernel + 2.0 * tokens * inner * kernel)
    return gemm + convs


def _matmul_session(m: int, k: int, n: int, batched: int, threads: int):
    """An ONNX Runtime session computing one fp32 MatMul of the given shape (MLAS, like the exports)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    a_shape = [batched, m, k] if batched else [m, k]
    b_shape = [batched, k, n] if batched else [k, n]
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "gemm",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, a_shape),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, b_shape)],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feeds = {"a": rng.standard_normal(a_shape, dtype=np.float32), "b": rng.standard_normal(b_shape, dtype=np.float32)}
    return session, feeds


class GemmFloor:
    """The model's fp32 GEMMs alone, as ONNX Runtime MatMuls (MLAS), for one (batch, sequence).

    Calling it runs every GEMM of one forward (each distinct shape ``count`` times; attention
    products as batched MatMuls of up to 64), so it can be timed INTERLEAVED with the backends.
    Its time is the floor an fp32 backend cannot beat without doing fewer FLOPs; GEMM FLOPs over
    it is the machine's fp32 GEMM rate measured in the same run.
    """

    name = "fp32-gemm-floor"

    def __init__(self, config: dict, batch: int, sequence: int, threads: int):
        self.batch, self.sequence = batch, sequence
        self.flops = model_flops(config, batch, sequence)
        self.gemm_flops = 0.0
        self.calls = []
        for m, k, n, count, batched in model_gemms(config, batch * sequence, batch, sequence):
            group = min(count, 64) if batched else 0
            session, feeds = _matmul_session(m, k, n, group, threads)
            runs = -(-count // group) if batched else count
            self.calls.append((session, feeds, runs))
            self.gemm_flops += 2.0 * m * k * n * (runs * group if batched else count)

    def __call__(self, feeds=None) -> None:
        for session, inputs, runs in self.calls:
            for _ in range(runs):
                session.run(None, inputs)

    def summary(self, p50_ms: float) -> dict:
        rate = self.gemm_flops / (p50_ms / 1000.0)
        return {
            "batch": self.batch,
            "sequence": self.sequence,
            "gflop": round(self.flops / 1e9, 3),
            "gemm_gflop": round(self.gemm_flops / 1e9, 3),
            "gemm_gflops_per_s": float(f"{rate / 1e9:.4g}"),  # tiny models run far below 0.1
            "fp32_floor_ms": round(1000.0 * self.flops / rate, 2),
            "gemm_time_ms": round(p50_ms, 2),
            "engine": "onnxruntime MatMul (MLAS), spinning off, timed interleaved with the backends",
        }
