"""ONNX Runtime's CPU LayerNorm kernels against optimize's InstanceNormalization rewrite, in one run.

    python tools/bench_layernorm.py [--hidden 768] [--shapes 1x128,8x128] [--threads 1,2] [--layers 25]
                                    [--repeats 20] [--json-out FILE]

Each variant is a chain of ``--layers`` normalizations of (batch, sequence, hidden) fp32 (25: what
conv-bert-base has), run by ONNX Runtime's CPU provider, spinning off, interleaved round-robin
(convbert_export.bench.time_interleaved):
    ``LayerNormalization``      the ONNX op (ORT's layer_norm_impl.cc);
    ``SkipLayerNormalization``  com.microsoft's fused residual + LayerNorm (what ORT's transformer
                                optimizer produces);
    ``rewrite``                 the SkipLayerNormalization chain after
                                ``optimize.rewrites.layernorm_as_instancenorm`` (Add, Reshape,
                                InstanceNormalization, Reshape, Mul, Add).
Prints microseconds per normalization (p50) and the largest difference of the rewrite's output
from the fused op's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def chain(kind: str, hidden: int, layers: int):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(1.0, 0.2, hidden).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.normal(0.0, 0.2, hidden).astype(np.float32), "beta")]
    nodes, current = [], "x"
    for index in range(layers):
        out = f"y{index}"
        if kind == "LayerNormalization":
            nodes.append(helper.make_node("Add", [current, "skip"], [f"sum{index}"]))
            nodes.append(helper.make_node("LayerNormalization", [f"sum{index}", "gamma", "beta"], [out], axis=-1, epsilon=1e-12))
        else:
            nodes.append(helper.make_node("SkipLayerNormalization", [current, "skip", "gamma", "beta"], [out],
                                          domain="com.microsoft", epsilon=1e-12))
        current = out
    io = [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "sequence", hidden]) for name in ("x", "skip")]
    graph = helper.make_graph(nodes, kind, io, [helper.make_tensor_value_info(current, TensorProto.FLOAT,
                                                                              ["batch", "sequence", hidden])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)])


def session(model, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def main(argv=None) -> int:
    from convbert_export.bench import BenchSettings, time_interleaved
    from convbert_export.optimize.rewrites import layernorm_as_instancenorm

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--shapes", default="1x128,8x128")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--layers", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    rewritten = chain("SkipLayerNormalization", args.hidden, args.layers)
    assert layernorm_as_instancenorm(rewritten) == args.layers
    models = {"LayerNormalization": chain("LayerNormalization", args.hidden, args.layers),
              "SkipLayerNormalization": chain("SkipLayerNormalization", args.hidden, args.layers),
              "rewrite": rewritten}
    settings = BenchSettings(repeats=args.repeats, budget_s=60.0)
    rows = []
    print(f"| shape | threads | {' | '.join(f'{name} us' for name in models)} | fused / rewrite | max abs diff |")
    print("|---|---|" + "---|" * (len(models) + 2))
    for shape in args.shapes.split(","):
        batch, sequence = (int(v) for v in shape.split("x"))
        rng = np.random.default_rng(1)
        feeds = {name: rng.normal(0.0, 1.0, (batch, sequence, args.hidden)).astype(np.float32) for name in ("x", "skip")}
        for threads in (int(t) for t in args.threads.split(",")):
            sessions = {name: session(model, threads) for name, model in models.items()}
            outputs = {name: s.run(None, feeds)[0] for name, s in sessions.items()}
            samples = time_interleaved({name: (lambda s=s: s.run(None, feeds)) for name, s in sessions.items()}, settings)
            per_op = {name: 1000.0 * float(np.median(v)) / args.layers for name, v in samples.items()}
            diff = float(np.max(np.abs(outputs["rewrite"] - outputs["SkipLayerNormalization"])))
            rows.append({"batch": batch, "sequence": sequence, "threads": threads, "us_per_op": per_op, "max_abs_diff": diff})
            print(f"| {shape} | {threads} | " + " | ".join(f"{per_op[n]:.0f}" for n in models)
                  + f" | {per_op['SkipLayerNormalization'] / per_op['rewrite']:.2f}x | {diff:.1e} |")
    if args.json_out:
        args.json_out.write_text(json.dumps({"hidden": args.hidden, "layers": args.layers, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
