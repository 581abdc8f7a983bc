"""Graph checks: the manifest's input/output specs and opset against model.onnx itself
(pipelines and engine profiles trust the manifest, so a manifest that misdescribes its graph
fails validation)."""

from __future__ import annotations

from pathlib import Path

from ..manifest import Manifest

_ONNX_DTYPES = {1: "float32", 10: "float16", 7: "int64", 6: "int32", 11: "float64", 16: "bfloat16"}


def _spec_of(value) -> tuple[str, list]:
    tensor = value.type.tensor_type
    dtype = _ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type))
    axes = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value"):
            axes.append(dim.dim_value)
        elif dim.HasField("dim_param"):
            axes.append(dim.dim_param)
        else:
            axes.append("?")
    return dtype, axes


def _runner_specs(metadata) -> dict[str, tuple[str, list]]:
    return {m.name: (m.dtype.name, [a if isinstance(a, (int, str)) else "?" for a in m.axes]) for m in metadata.values()}


def graph_mismatches(export_dir: str | Path, manifest: Manifest, runner=None) -> list[str]:
    """Where the manifest's input/output names, dtypes, axes or opset differ from the graph:
    model.onnx, or (a directory without one, such as an OpenVINO IR export) the started
    ``runner``'s ``input_metadata`` / ``output_metadata``."""
    import onnx

    path = Path(export_dir) / "model.onnx"
    proto = None
    if path.is_file():
        proto = onnx.load(str(path), load_external_data=False)
        initializers = {init.name for init in proto.graph.initializer}
        graphs = {"input": {v.name: _spec_of(v) for v in proto.graph.input if v.name not in initializers},
                  "output": {v.name: _spec_of(v) for v in proto.graph.output}}
    elif runner is not None and hasattr(runner, "output_metadata"):
        graphs = {"input": _runner_specs(runner.input_metadata), "output": _runner_specs(runner.output_metadata)}
    else:
        return []
    problems = []
    for kind, specs in (("input", manifest.inputs), ("output", manifest.outputs)):
        graph = graphs[kind]
        if [s.name for s in specs] != list(graph):
            problems.append(f"manifest {kind}s {[s.name for s in specs]}, graph {list(graph)}")
            continue
        for spec in specs:
            dtype, axes = graph[spec.name]
            if spec.dtype != dtype:
                problems.append(f"manifest {kind} {spec.name}: dtype {spec.dtype}, graph {dtype}")
            if list(spec.axes) != axes:
                problems.append(f"manifest {kind} {spec.name}: axes {list(spec.axes)}, graph {axes}")
    if proto is None:  # no ONNX graph: no opset to compare
        return problems
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset != manifest.opset:
        problems.append(f"manifest opset {manifest.opset}, graph {opset}")
    return problems
