"""The library's DepthwiseConv and AddLayerNorm against the standard-op graphs they replace, in one run.

    python tools/bench_fused_ops.py [--shapes 1x128,8x128] [--hidden 768] [--kernel 9] [--threads 2]
                                    [--layers 12] [--repeats 200] [--json] [--json-out FILE]

Each variant is a graph of ``--layers`` chained instances on (batch, sequence, hidden) float32, run
by ONNX Runtime's CPU provider (``--threads`` intra-op threads, spinning off, all graph
optimizations on), timed round-robin in this process (convbert_export.bench.time_interleaved):

    depthwise  ``DepthwiseConv``      com.convbert_export::DepthwiseConv(x, weight, mask)
               ``Mul+Transpose+Conv`` Mul(x, mask) -> Transpose -> Conv(group=C, pads p/p) -> Transpose
    layernorm  ``AddLayerNorm``       com.convbert_export::AddLayerNorm(x, skip, gamma, beta, bias)
               ``InstanceNorm chain`` SkipLayerNormalization rewritten by optimize.rewrites.
                                      layernorm_as_instancenorm (Add bias, Add skip, Shape, Reshape,
                                      InstanceNormalization, Reshape, Mul gamma, Add beta)
               ``SkipLayerNorm``      com.microsoft::SkipLayerNormalization(x, skip, gamma, beta, bias)

Prints microseconds per instance: (median run time - median run time of a graph holding only an
Identity, timed alongside: the session.run overhead) / ``--layers``; the ratio to the first
variant of the group, and the largest difference of each variant's output from the first's;
``--json`` prints the rows as JSON instead of the table. Timings on a shared machine are
contended: compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from convbert_export import custom_ops  # noqa: E402

MS_DOMAIN = "com.microsoft"
OVERHEAD = "(session.run overhead)"


def _io(names, hidden):
    from onnx import TensorProto, helper

    return [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["batch", "sequence", hidden]) for name in names]


def _model(nodes, inputs, output, initializers, hidden):
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, "bench", inputs, _io([output], hidden), initializers)
    opsets = [helper.make_opsetid("", 18), helper.make_opsetid(MS_DOMAIN, 1),
              helper.make_opsetid(custom_ops.DOMAIN, custom_ops.OP_VERSION)]
    model = helper.make_model(graph, opset_imports=opsets)
    assert TensorProto.FLOAT  # the graphs are float32 throughout
    return model


def depthwise_models(hidden: int, kernel: int, layers: int) -> dict:
    """{variant: model}: ``layers`` chained depthwise convolutions, each with its own weight."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weights = [rng.normal(0.0, kernel ** -0.5, (hidden, kernel)).astype(np.float32) for _ in range(layers)]
    pad = (kernel - 1) // 2
    inputs = _io(["x"], hidden) + [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "sequence", 1])]
    ours, chain = [], []
    for i in range(layers):
        src = "x" if i == 0 else f"y{i - 1}"
        ours.append(helper.make_node(custom_ops.DEPTHWISE_CONV_OP_TYPE, [src, f"w{i}", "mask"], [f"y{i}"],
                                     domain=custom_ops.DOMAIN))
        chain += [
            helper.make_node("Mul", [src, "mask"], [f"m{i}"]),
            helper.make_node("Transpose", [f"m{i}"], [f"t{i}"], perm=[0, 2, 1]),
            helper.make_node("Conv", [f"t{i}", f"w{i}"], [f"c{i}"], group=hidden, kernel_shape=[kernel], pads=[pad, pad]),
            helper.make_node("Transpose", [f"c{i}"], [f"y{i}"], perm=[0, 2, 1]),
        ]
    out = f"y{layers - 1}"
    return {
        "DepthwiseConv": _model(ours, inputs, out, [numpy_helper.from_array(w, f"w{i}") for i, w in enumerate(weights)],
                                hidden),
        "Mul+Transpose+Conv": _model(chain, inputs, out, [numpy_helper.from_array(w[:, None, :], f"w{i}")
                                                          for i, w in enumerate(weights)], hidden),
    }


def layernorm_models(hidden: int, layers: int) -> dict:
    """{variant: model}: ``layers`` chained residual + bias + LayerNorm blocks."""
    from onnx import helper, numpy_helper

    from convbert_export.optimize.rewrites import layernorm_as_instancenorm

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(1.0, 0.2, hidden).astype(np.float32), "gamma"),
             numpy_helper.from_array(rng.normal(0.0, 0.2, hidden).astype(np.float32), "beta"),
             numpy_helper.from_array(rng.normal(0.0, 0.2, hidden).astype(np.float32), "bias")]
    inputs = _io(["x", "skip"], hidden)
    out = f"y{layers - 1}"

    def chain(op_type, domain):
        return [helper.make_node(op_type, ["x" if i == 0 else f"y{i - 1}", "skip", "gamma", "beta", "bias"], [f"y{i}"],
                                 domain=domain, epsilon=1e-12) for i in range(layers)]

    rewritten = _model(chain("SkipLayerNormalization", MS_DOMAIN), inputs, out, inits, hidden)
    if layernorm_as_instancenorm(rewritten) != layers:
        raise RuntimeError("layernorm_as_instancenorm did not rewrite every SkipLayerNormalization")
    return {
        "AddLayerNorm": _model(chain(custom_ops.ADD_LAYER_NORM_OP_TYPE, custom_ops.DOMAIN), inputs, out, inits, hidden),
        "InstanceNorm chain": rewritten,
        "SkipLayerNorm": _model(chain("SkipLayerNormalization", MS_DOMAIN), inputs, out, inits, hidden),
    }


def overhead_model(group: str, hidden: int):
    """The same inputs and output, one Identity: what session.run costs around the ops."""
    from onnx import TensorProto, helper

    inputs = _io(["x"], hidden) + ([helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["batch", "sequence", 1])]
                                   if group == "depthwise" else _io(["skip"], hidden))
    return _model([helper.make_node("Identity", ["x"], ["out"])], inputs, "out", [], hidden)


def session(model, threads: int, library: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.register_custom_ops_library(str(library))
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def feeds(group: str, batch: int, sequence: int, hidden: int) -> dict:
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, (batch, sequence, hidden)).astype(np.float32)
    if group == "depthwise":
        mask = np.ones((batch, sequence, 1), np.float32)
        mask[:, sequence - sequence // 8:] = 0.0  # a padded tail
        return {"x": x, "mask": mask}
    return {"x": x, "skip": rng.normal(0.0, 1.0, x.shape).astype(np.float32)}


def main(argv=None) -> int:
    from convbert_export.bench import BenchSettings, time_interleaved

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", default="1x128,8x128", help="comma-separated BATCHxSEQUENCE")
    parser.add_argument("--hidden", type=int, default=768)
    parser.add_argument("--kernel", type=int, default=9, help="depthwise kernel size (odd)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--layers", type=int, default=12, help="chained instances per graph")
    parser.add_argument("--repeats", type=int, default=200, help="timed runs per variant")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per shape and group, at most")
    parser.add_argument("--groups", default="depthwise,layernorm")
    parser.add_argument("--json", action="store_true", help="print JSON rows instead of the table")
    parser.add_argument("--json-out", type=Path, help="also write the JSON rows to this file")
    args = parser.parse_args(argv)
    if args.kernel % 2 == 0:
        parser.error(f"--kernel must be odd, got {args.kernel}")
    library = custom_ops.library_path()
    groups = {"depthwise": lambda: depthwise_models(args.hidden, args.kernel, args.layers),
              "layernorm": lambda: layernorm_models(args.hidden, args.layers)}
    settings = BenchSettings(repeats=args.repeats, warmup=5, budget_s=args.budget, pause_s=0.001)
    rows = []
    for group in args.groups.split(","):
        models = groups[group]()
        for shape in args.shapes.split(","):
            batch, sequence = (int(v) for v in shape.split("x"))
            inputs = feeds(group, batch, sequence, args.hidden)
            sessions = {name: session(model, args.threads, library) for name, model in models.items()}
            sessions[OVERHEAD] = session(overhead_model(group, args.hidden), args.threads, library)
            outputs = {name: s.run(None, inputs)[0] for name, s in sessions.items()}
            samples = time_interleaved({name: (lambda s=s: s.run(None, inputs)) for name, s in sessions.items()}, settings)
            overhead_ms = float(np.median(samples[OVERHEAD]))
            first = next(iter(models))
            for name in models:
                run_ms = float(np.median(samples[name]))
                rows.append({"group": group, "variant": name, "batch": batch, "sequence": sequence,
                             "hidden": args.hidden, "threads": args.threads, "layers": args.layers,
                             "runs": len(samples[name]), "run_ms": round(run_ms, 4), "overhead_ms": round(overhead_ms, 4),
                             "us_per_instance": round(1000.0 * (run_ms - overhead_ms) / args.layers, 2),
                             "max_abs_diff": float(np.max(np.abs(outputs[name] - outputs[first])))})
    for row in rows:
        base = next(r for r in rows if r["group"] == row["group"] and r["batch"] == row["batch"]
                    and r["sequence"] == row["sequence"])
        row["ratio_to_ours"] = round(row["us_per_instance"] / base["us_per_instance"], 2)
    if args.json_out:
        args.json_out.write_text(json.dumps(rows, indent=2) + "\n")
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{args.threads} threads, spinning off, {args.layers} chained instances per graph, hidden {args.hidden}")
    print("| op | shape | variant | us per instance | x ours | max abs diff | run ms (overhead ms) | runs |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['group']} | {r['batch']}x{r['sequence']} | {r['variant']} | {r['us_per_instance']:.1f} | "
              f"{r['ratio_to_ours']:.2f} | {r['max_abs_diff']:.1e} | {r['run_ms']:.3f} ({r['overhead_ms']:.3f}) | "
              f"{r['runs']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
