"""Node counts and timings of the dynamic-convolution lowerings, in one run (ONNX Runtime CPU).

    python tools/bench_lowerings.py [--threads 2] [--repeats 30] [--work DIR] [--skip-model]
                                    [--decomposed DIR] [--custom-op DIR] [--json-out FILE]

(a) One layer's span convolution alone (6 heads x 64, kernel 9) at (1, 128) and (8, 128):
    ``unfold``  transformers' ConvBertSelfAttention code (unfold + matmul), exported with
                torch.onnx.export(dynamo=True);
    ``decomposed``  our Pad + K shifted Slices x kernel columns + Sum (convbert_export.export.dynamic_conv);
    ``custom-op``   one com.convbert_export::DynamicConv node, with the ORT library registered.
(b) The whole conv-bert-base (feature-extraction, seeded preset weights) at (1, 128) and (8, 128):
    our custom-op export vs our decomposed export vs transformers' own ConvBertModel (same
    weights) exported with torch.onnx.export(dynamo=True) - the plain ``unfold`` lowering.

Every variant of a table runs in one process, interleaved round-robin (convbert_export.bench),
ORT sessions with 2 intra-op threads and spinning disabled. tools/ may import transformers
(the package never does).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

HEADS, HEAD_SIZE, KERNEL = 6, 64, 9
SHAPES = ((1, 128), (8, 128))


def session(path_or_bytes, threads: int, library: Path | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if library is not None:
        options.register_custom_ops_library(str(library))
    return ort.InferenceSession(path_or_bytes, options, providers=["CPUExecutionProvider"])


def node_count(model) -> int:
    return sum(1 for n in model.graph.node if n.op_type != "Constant")


# ----------------------------------------------------------------------------- (a) one layer


def unfold_layer_model(opset: int = 18):
    """transformers' unfold lowering of the span convolution, alone, exported with dynamo=True."""
    import torch
    from torch import nn

    class UnfoldSpanConv(nn.Module):
        """ConvBertSelfAttention's convolution part (transformers 4.x/5.x), value and logits in."""

        def forward(self, value, kernel_logits):  # (B, S, H*D), (B, S, H*K)
            batch = value.shape[0]
            all_head = HEADS * HEAD_SIZE
            kernel = torch.reshape(kernel_logits, [-1, KERNEL, 1])
            kernel = torch.softmax(kernel, dim=1)
            out = torch.reshape(value, [batch, -1, all_head])
            out = out.transpose(1, 2).contiguous().unsqueeze(-1)
            out = nn.functional.unfold(out, kernel_size=[KERNEL, 1], dilation=1, padding=[(KERNEL - 1) // 2, 0], stride=1)
            out = out.transpose(1, 2).reshape(batch, -1, all_head, KERNEL)
            out = torch.reshape(out, [-1, HEAD_SIZE, KERNEL])
            out = torch.matmul(out, kernel)
            return torch.reshape(out, [batch, -1, all_head])

    from torch.export import Dim

    value = torch.randn(2, 16, HEADS * HEAD_SIZE)
    logits = torch.randn(2, 16, HEADS * KERNEL)
    batch, seq = Dim("batch", min=1, max=1024), Dim("sequence", min=2, max=512)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(UnfoldSpanConv().eval(), (value, logits), dynamo=True, opset_version=opset,
                                    input_names=["value", "kernel_logits"], output_names=["output"],
                                    dynamic_shapes={"value": {0: batch, 1: seq}, "kernel_logits": {0: batch, 1: seq}},
                                    verbose=False)
    return program.model_proto


def ours_layer_model(mode: str, opset: int = 18):
    """One DynamicConv node, lowered per ``mode`` by the exporter's own code."""
    import onnx
    from onnx import TensorProto, helper

    from convbert_export.custom_ops import DOMAIN, OP_TYPE, PLUGIN_NAMESPACE
    from convbert_export.export.dynamic_conv import apply_mode

    node = helper.make_node(OP_TYPE, ["value", "kernel_logits"], ["output"], domain=DOMAIN, kernel_size=KERNEL,
                            num_heads=HEADS, head_size=HEAD_SIZE, plugin_namespace=PLUGIN_NAMESPACE)
    graph = helper.make_graph(
        [node], "span_conv",
        [helper.make_tensor_value_info("value", TensorProto.FLOAT, ["batch", "sequence", HEADS * HEAD_SIZE]),
         helper.make_tensor_value_info("kernel_logits", TensorProto.FLOAT, ["batch", "sequence", HEADS * KERNEL])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", "sequence", HEADS * HEAD_SIZE])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, 1)])
    model.ir_version = 10
    model = apply_mode(model, mode, kernel_size=KERNEL, num_heads=HEADS, head_size=HEAD_SIZE)
    onnx.checker.check_model(model)
    return model


def reference_span_conv(value: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """The op's definition in numpy (ARCHITECTURE.md, 'Contracts')."""
    b, s, _ = value.shape
    w = logits.reshape(b, s, HEADS, KERNEL).astype(np.float64)
    w = np.exp(w - w.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    v = value.reshape(b, s, HEADS, HEAD_SIZE).astype(np.float64)
    pad = (KERNEL - 1) // 2
    padded = np.zeros((b, s + 2 * pad, HEADS, HEAD_SIZE))
    padded[:, pad:pad + s] = v
    out = sum(padded[:, j:j + s] * w[..., j:j + 1] for j in range(KERNEL))
    return out.reshape(b, s, HEADS * HEAD_SIZE)


def layer_table(threads: int, repeats: int, library: Path | None) -> list[dict]:
    from convbert_export.bench import BenchSettings, time_interleaved

    models = {"unfold (transformers)": unfold_layer_model(), "decomposed (ours)": ours_layer_model("decomposed")}
    if library is not None:
        models["custom-op (library)"] = ours_layer_model("custom-op")
    sessions = {name: session(m.SerializeToString(), threads, library if "custom" in name else None)
                for name, m in models.items()}
    rows = []
    settings = BenchSettings(repeats=repeats, warmup=3, pause_s=0.005, budget_s=60)
    rng = np.random.default_rng(0)
    for batch, seq in SHAPES:
        feeds = {"value": rng.standard_normal((batch, seq, HEADS * HEAD_SIZE)).astype(np.float32),
                 "kernel_logits": rng.standard_normal((batch, seq, HEADS * KERNEL)).astype(np.float32)}
        expected = reference_span_conv(feeds["value"], feeds["kernel_logits"])
        calls = {name: (lambda s=s: s.run(None, feeds)) for name, s in sessions.items()}
        samples = time_interleaved(calls, settings)
        base = float(np.median(samples["unfold (transformers)"]))
        for name, sess in sessions.items():
            got = sess.run(None, feeds)[0]
            p50 = float(np.median(samples[name]))
            rows.append({"table": "one layer", "variant": name, "batch": batch, "sequence": seq,
                         "nodes": node_count(models[name]), "p50_ms": round(p50, 3),
                         "speedup_vs_unfold": round(base / p50, 2),
                         "max_abs_vs_definition": float(np.max(np.abs(got - expected)))})
    return rows


# --------------------------------------------------------------------------- (b) whole model


def transformers_unfold_export(work: Path, preset: str = "conv-bert-base") -> Path:
    """transformers' ConvBertModel with the preset's weights, exported with dynamo=True."""
    import torch

    target = work / "transformers-unfold" / "model.onnx"
    if target.is_file():
        return target
    import reference_model
    import transformers

    checkpoint = work / "checkpoint"
    if not (checkpoint / "config.json").is_file():
        reference_model.from_preset(preset, "feature-extraction").save_pretrained(checkpoint)
    model = transformers.ConvBertModel.from_pretrained(str(checkpoint)).eval()

    class Wrapper(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    from torch.export import Dim

    batch, seq = Dim("batch", min=1, max=1024), Dim("sequence", min=2, max=512)
    args = tuple(torch.ones(2, 16, dtype=torch.long) for _ in range(3))
    target.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(Wrapper(model), args, dynamo=True, opset_version=18,
                                    input_names=["input_ids", "attention_mask", "token_type_ids"],
                                    output_names=["last_hidden_state"],
                                    dynamic_shapes={n: {0: batch, 1: seq} for n in ("input_ids", "attention_mask",
                                                                                      "token_type_ids")})
    program.save(str(target))
    return target


def our_export(work: Path, mode: str, given: str | None) -> Path:
    if given:
        return Path(given) / "model.onnx"
    target = work / f"ours-{mode}"
    if not (target / "model.onnx").is_file():
        from convbert_export.export import ExportSettings, ModelSource, export_tasks

        export_tasks(ModelSource.from_preset("conv-bert-base"), ["feature-extraction"], target,
                     ExportSettings(dynamic_conv=mode, validate=False), force=True)
    return target / "model.onnx"


def model_table(work: Path, threads: int, repeats: int, library: Path | None, decomposed: str | None,
                custom: str | None) -> list[dict]:
    import onnx

    from convbert_export.bench import BenchSettings, time_interleaved

    paths = {"unfold (transformers export)": transformers_unfold_export(work),
             "decomposed (ours)": our_export(work, "decomposed", decomposed)}
    if library is not None:
        paths["custom-op (ours, library)"] = our_export(work, "custom-op", custom)
    counts = {name: node_count(onnx.load(str(p), load_external_data=False)) for name, p in paths.items()}
    sessions = {name: session(str(p), threads, library if "custom" in name else None) for name, p in paths.items()}
    settings = BenchSettings(repeats=repeats, warmup=2, pause_s=0.01, budget_s=120)
    rows = []
    rng = np.random.default_rng(0)
    for batch, seq in SHAPES:
        feeds = {"input_ids": rng.integers(1000, 30000, size=(batch, seq), dtype=np.int64),
                 "attention_mask": np.ones((batch, seq), dtype=np.int64),
                 "token_type_ids": np.zeros((batch, seq), dtype=np.int64)}
        outputs = {name: s.run(None, feeds)[0] for name, s in sessions.items()}
        calls = {name: (lambda s=s: s.run(None, feeds)) for name, s in sessions.items()}
        samples = time_interleaved(calls, settings)
        base_name = "unfold (transformers export)"
        base = float(np.median(samples[base_name]))
        for name in sessions:
            p50 = float(np.median(samples[name]))
            rows.append({"table": "conv-bert-base", "variant": name, "batch": batch, "sequence": seq,
                         "nodes": counts[name], "p50_ms": round(p50, 2), "speedup_vs_unfold": round(base / p50, 2),
                         "max_abs_vs_unfold": float(np.max(np.abs(outputs[name] - outputs[base_name])))})
    return rows


def print_table(rows: list[dict], diff_key: str) -> None:
    headers = ["shape", "variant", "nodes", "p50 ms", "vs unfold", diff_key]
    lines = [[f"{r['batch']}x{r['sequence']}", r["variant"], str(r["nodes"]), f"{r['p50_ms']:.3f}",
              f"{r['speedup_vs_unfold']:.2f}x", f"{r[diff_key]:.2e}"] for r in rows]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    print("  ".join("-" * w for w in widths))
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--model-repeats", type=int, default=10)
    parser.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "convbert-bench-lowerings"),
                        help="where the whole-model exports are written (and reused)")
    parser.add_argument("--decomposed", help="an existing conv-bert-base feature-extraction export (decomposed)")
    parser.add_argument("--custom-op", dest="custom", help="an existing conv-bert-base export (custom-op)")
    parser.add_argument("--skip-model", action="store_true", help="only the one-layer table")
    parser.add_argument("--no-library", action="store_true", help="leave out the custom-op variant")
    parser.add_argument("--json-out")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    library = None
    if not args.no_library:
        from convbert_export import custom_ops

        try:
            library = custom_ops.library_path()
        except Exception as exc:  # noqa: BLE001 - report and go on without it
            print(f"custom-op library unavailable, custom-op rows left out: {str(exc).splitlines()[0]}")
    print(f"ONNX Runtime CPU, {args.threads} intra-op threads, spinning off, variants interleaved\n")
    print(f"(a) one layer's span convolution ({HEADS} heads x {HEAD_SIZE}, kernel {KERNEL})")
    rows = layer_table(args.threads, args.repeats, library)
    print_table(rows, "max_abs_vs_definition")
    if not args.skip_model:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        print("\n(b) conv-bert-base feature-extraction (exports cached in", work, ")")
        model_rows = model_table(work, args.threads, args.model_repeats, library, args.decomposed, args.custom)
        print_table(model_rows, "max_abs_vs_unfold")
        rows += model_rows
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"threads": args.threads, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
