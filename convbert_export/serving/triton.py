"""A Triton Inference Server model repository from export and engine directories.

``write_repository([dir, ...], "repo")`` writes, per directory:

* ``repo/<name>/config.pbtxt`` and ``repo/<name>/1/``: an export directory becomes an
  ``onnxruntime_onnx`` model (``model.onnx``, ``model.onnx.data`` when present, and the
  DynamicConv custom-op library with ``model_operations { op_library_filename }`` when the export
  uses the custom op); a TensorRT engine directory becomes a ``tensorrt_plan`` model
  (``model.plan``, and the DynamicConv plugin library, which Triton's TensorRT backend loads with
  ``--backend-config=tensorrt,plugins=...`` or ``LD_PRELOAD``). Inputs, outputs, dims (-1 for
  dynamic axes) and dtypes come from the manifest; ``max_batch_size``, ``dynamic_batching``
  (preferred sizes, queue delay, a queue policy that rejects when full) and ``instance_group``
  from :class:`TritonSettings`.
* with ``ensemble`` (default): ``<name>_tokenize`` and ``<name>_answer`` (Python backend, the thin
  ``model.py`` template next to this module) and ``<name>_text`` (an ``ensemble``: ``TEXT`` ->
  tokenize -> ``<name>`` -> answer -> ``ANSWER``). A client sends one record (the JSON objects of
  ``predict``: ``{"text"}``, ``{"question", "context"}``...) as ``TEXT`` and gets back in
  ``ANSWER`` the JSON of what ``Pipeline`` returns for it. The logic those two Python models run
  is :class:`TextStep` here, tested directly.

Which exports are safe to batch: Triton's dynamic batcher concatenates requests whose shapes are
equal (no padding unless ragged batching is configured), so padding enters only through rows
padded together inside one request (a client's padded batch, or the windows of one long
question-answering context). An export with ``"padding": "exact"`` gives the same answer padded
or not; one with ``"padding": "transformers"`` leaks padding into the last real tokens, and one
with ``"batch_invariant": false`` (dynamic int8) depends on its batch-mates even at equal
lengths. For those two the generated config has no ``dynamic_batching`` unless
``allow_unsafe_batching`` is set, and an ensemble over a leaking question-answering export is
refused.

Needs ``tritonclient`` (the ``triton`` extra) to write configs: they are built as
``ModelConfig`` protobuf messages from Triton's own schema, so a misspelt field cannot be
written. The :class:`TextStep` logic needs only numpy and the tokenizer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, MissingDependencyError, RequestError
from ..fileio import atomic_directory, sha256_file, write_json_atomic, write_text_atomic
from ..manifest import LOADED, Manifest, load_manifest, verify_directory
from ..tasks import get_task
from ..tokenization import TOKENIZER_FILES

__all__ = ["TritonSettings", "TritonRepository", "write_repository", "TextStep", "MODEL_TEMPLATE",
           "KINDS", "TEXT_INPUT", "ANSWER_OUTPUT"]

KINDS = ("cpu", "gpu")
TEXT_INPUT = "TEXT"
ANSWER_OUTPUT = "ANSWER"
MODEL_TEMPLATE = Path(__file__).with_name("model.py")
REPOSITORY_JSON = "triton-repository.json"
# files the Python-backend steps need from an export: what Pipeline reads besides the model
STEP_FILES = ("manifest.json", "config.json", *TOKENIZER_FILES)
ROLES = ("tokenize", "answer")

_DTYPES = {"int64": "TYPE_INT64", "int32": "TYPE_INT32", "float32": "TYPE_FP32",
           "float16": "TYPE_FP16", "bool": "TYPE_BOOL"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class TritonSettings:
    """How the repository is written.

    Attributes:
        name: the model name (one source only; default: the source directory's name).
        max_batch_size: the model's ``max_batch_size`` (largest batch Triton forms or accepts).
        instances: model instances per device (``instance_group.count``), for every model.
        kind: ``cpu`` or ``gpu`` (``instance_group.kind``; gpu adds ONNX Runtime's TensorRT
            accelerator to an onnxruntime model).
        max_queue_delay_us: how long the dynamic batcher waits to fill a batch.
        max_queue_size: requests waiting beyond this are rejected at once (queue policy).
        ensemble: also write the text-in/JSON-out Python steps and the ensemble.
        allow_unsafe_batching: enable dynamic batching on a leaking or batch-dependent export.
        repository_mount: where the repository is mounted inside the Triton container; the
            custom-op library path in ``model_operations`` is absolute under it.
    """

    name: str | None = None
    max_batch_size: int = 8
    instances: int = 1
    kind: str = "cpu"
    max_queue_delay_us: int = 1000
    max_queue_size: int = 64
    ensemble: bool = True
    allow_unsafe_batching: bool = False
    repository_mount: str = "/models"

    def __post_init__(self):
        for key in ("max_batch_size", "instances", "max_queue_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InvalidInputError(f"{key} must be an int >= 1, got {value!r}")
        if not isinstance(self.max_queue_delay_us, int) or self.max_queue_delay_us < 0:
            raise InvalidInputError(f"max_queue_delay_us must be an int >= 0, got {self.max_queue_delay_us!r}")
        if self.kind not in KINDS:
            raise InvalidInputError(f"unknown kind {self.kind!r}; expected one of: {', '.join(KINDS)}")
        if self.name is not None and not _NAME.match(self.name):
            raise InvalidInputError(
                f"model name {self.name!r} is not a valid Triton model name; use letters, digits, '_', '-', '.'"
            )
        if not self.repository_mount.startswith("/"):
            raise InvalidInputError(f"repository_mount must be an absolute path, got {self.repository_mount!r}")


@dataclass
class TritonRepository:
    """What :func:`write_repository` wrote."""

    path: Path
    models: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def files(self) -> list[tuple[str, int]]:
        """(relative path, size in bytes) of every file, sorted."""
        return [(str(p.relative_to(self.path)), p.stat().st_size)
                for p in sorted(self.path.rglob("*")) if p.is_file()]


# ---------------------------------------------------------------------------------------------
# sources
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    directory: Path
    name: str
    manifest: Manifest
    engine: Any = None  # EngineInfo for an engine directory

    @property
    def batch_safe(self) -> bool:
        return self.manifest.padding == "exact" and self.manifest.batch_invariant


def _source(directory: Path, name: str) -> _Source:
    from ..runtime import is_engine_dir

    from ..runtime.factory import backend_for, verify_dir

    if backend_for(directory) == "openvino":
        raise InvalidInputError(
            f"{directory} is an OpenVINO IR directory; write the repository from the ONNX export it was "
            "made from (this writer makes onnxruntime_onnx and tensorrt_plan models)"
        )
    manifest = load_manifest(directory)
    verify_dir(directory)  # every file against the manifest (IntegrityError names each one)
    if not is_engine_dir(directory):
        return _Source(directory, name, manifest)
    from ..engine.metadata import PLAN, read_engine_info

    info = read_engine_info(directory)
    plan = directory / PLAN
    if not plan.is_file() or plan.stat().st_size != info.plan_bytes or sha256_file(plan) != info.plan_sha256:
        raise InvalidInputError(
            f"{plan}: missing or not the plan engine.json describes (size/sha256); rebuild the engine "
            "with `convbert-export build-engine`"
        )
    return _Source(directory, name, manifest, engine=info)


def _dims(axes, manifest: Manifest, batched: bool) -> list[int]:
    """Triton dims of a manifest tensor: -1 for dynamic axes, sizes the manifest knows."""
    sizes = {"hidden": manifest.model.get("hidden_size"), "vocab": manifest.model.get("vocab_size"),
             "num_labels": len(manifest.id2label) or None}
    dims = [int(sizes.get(axis) or -1) for axis in axes]
    return dims[1:] if batched else dims  # with max_batch_size > 0 the batch axis is implicit


def _dtype(dtype: str) -> str:
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise InvalidInputError(f"no Triton type for dtype {dtype!r}; expected one of: {', '.join(_DTYPES)}") from None


def _tensors(specs, manifest: Manifest, batched: bool) -> list[dict]:
    return [{"name": spec.name, "data_type": _dtype(spec.dtype), "dims": _dims(spec.axes, manifest, batched)}
            for spec in specs]


def _instance_group(settings: TritonSettings, kind: str | None = None) -> list[dict]:
    return [{"count": settings.instances, "kind": "KIND_GPU" if (kind or settings.kind) == "gpu" else "KIND_CPU"}]


def _preferred_sizes(max_batch_size: int) -> list[int]:
    sizes, size = [], 1
    while size * 2 <= max_batch_size:
        size *= 2
        sizes.append(size)
    if max_batch_size not in sizes and max_batch_size > 1:
        sizes.append(max_batch_size)
    return sizes


def _model_config(source: _Source, settings: TritonSettings) -> tuple[dict, list[str]]:
    manifest, notes = source.manifest, []
    config: dict = {
        "name": source.name,
        "max_batch_size": settings.max_batch_size,
        "input": _tensors(manifest.inputs, manifest, batched=True),
        "output": _tensors(manifest.outputs, manifest, batched=True),
        "instance_group": _instance_group(settings, "gpu" if source.engine is not None else None),
    }
    if source.engine is not None:
        config["platform"] = "tensorrt_plan"
        longest = max(p.batch.max for p in source.engine.profiles)
        if settings.max_batch_size > longest:
            raise InvalidInputError(
                f"--max-batch-size {settings.max_batch_size} exceeds the engine's largest profile batch "
                f"({longest}); pass --max-batch-size {longest} or rebuild the engine with a larger profile"
            )
        if source.engine.backend != "tensorrt":
            notes.append(
                f"{source.name}: built with {source.engine.backend} {source.engine.backend_version}; Triton's "
                "tensorrt backend deserializes plans of its own TensorRT version only; build the engine "
                "with --backend tensorrt (the TensorRT of your Triton release) to serve it"
            )
    else:
        config["platform"] = "onnxruntime_onnx"
        if manifest.uses_custom_op or manifest.dynamic_conv.get("uses_custom_domain"):
            from ..custom_ops import library_filename

            config["model_operations"] = {"op_library_filename": [
                f"{settings.repository_mount.rstrip('/')}/{source.name}/1/{library_filename()}"]}
        if settings.kind == "gpu":
            precision = "FP16" if manifest.precision == "fp16" else "FP32"
            config["optimization"] = {"execution_accelerators": {"gpu_execution_accelerator": [
                {"name": "tensorrt", "parameters": {"precision_mode": precision,
                                                    "max_workspace_size_bytes": str(1 << 30)}}]}}
    if source.batch_safe or settings.allow_unsafe_batching:
        config["dynamic_batching"] = {
            "preferred_batch_size": _preferred_sizes(settings.max_batch_size),
            "max_queue_delay_microseconds": settings.max_queue_delay_us,
            "default_queue_policy": {"max_queue_size": settings.max_queue_size, "timeout_action": "REJECT"},
        }
        if not source.batch_safe:
            notes.append(f"{source.name}: dynamic batching enabled on a {_unsafe_reason(manifest)} as asked")
    else:
        fix = ("re-export with --padding exact" if manifest.padding != "exact"
               else "use an fp32, fp16 or static int8 variant")
        notes.append(
            f"{source.name}: no dynamic batching: the export is a {_unsafe_reason(manifest)}, so padded or "
            f"shared batches change answers; {fix} to batch, or pass --allow-unsafe-batching"
        )
    return config, notes


def _unsafe_reason(manifest: Manifest) -> str:
    if manifest.padding != "exact":
        return f"padding-leaking export (padding {manifest.padding!r})"
    return "batch-dependent export (batch_invariant false: dynamic int8)"


def _step_configs(source: _Source, settings: TritonSettings) -> list[dict]:
    """The tokenize and answer Python models and the ensemble, as ModelConfig dicts."""
    manifest, name = source.manifest, source.name
    model_inputs = _tensors(manifest.inputs, manifest, batched=False)
    model_outputs = _tensors(manifest.outputs, manifest, batched=False)
    text = {"name": TEXT_INPUT, "data_type": "TYPE_STRING", "dims": [1]}
    answer = {"name": ANSWER_OUTPUT, "data_type": "TYPE_STRING", "dims": [1]}
    params = {"max_rows": {"string_value": str(settings.max_batch_size)}}
    if source.engine is not None:  # the engine's profiles bound the sequence length
        longest = max(p.sequence.max for p in source.engine.profiles)
        params["max_length"] = {"string_value": str(longest)}
    tokenize = {"name": f"{name}_tokenize", "backend": "python", "max_batch_size": 0,
                "input": [text], "output": model_inputs, "instance_group": _instance_group(settings, "cpu"),
                "parameters": {"role": {"string_value": "tokenize"}, **params}}
    answer_cfg = {"name": f"{name}_answer", "backend": "python", "max_batch_size": 0,
                  "input": [text, *model_outputs], "output": [answer],
                  "instance_group": _instance_group(settings, "cpu"),
                  "parameters": {"role": {"string_value": "answer"}, **params}}
    step = lambda model, inputs, outputs: {  # noqa: E731
        "model_name": model, "model_version": -1,
        "input_map": {k: k for k in inputs}, "output_map": {k: k for k in outputs}}
    in_names = [t["name"] for t in model_inputs]
    out_names = [t["name"] for t in model_outputs]
    ensemble = {
        "name": f"{name}_text", "platform": "ensemble", "max_batch_size": 0,
        "input": [text], "output": [answer],
        "ensemble_scheduling": {"step": [
            step(f"{name}_tokenize", [TEXT_INPUT], in_names),
            step(name, in_names, out_names),
            step(f"{name}_answer", [TEXT_INPUT, *out_names], [ANSWER_OUTPUT]),
        ]},
    }
    return [tokenize, answer_cfg, ensemble]


def config_text(config: dict) -> str:
    """A ModelConfig dict as config.pbtxt text, checked against Triton's schema."""
    try:
        from google.protobuf import json_format, text_format
        from tritonclient.grpc import model_config_pb2
    except ImportError as exc:
        raise MissingDependencyError(
            "writing Triton configs needs tritonclient: pip install 'convbert-export[triton]'"
        ) from exc
    message = json_format.ParseDict(config, model_config_pb2.ModelConfig())
    return text_format.MessageToString(message)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
def _copy(src: Path, dst: Path) -> None:
    shutil.copyfile(src, dst)


def _write_model(source: _Source, settings: TritonSettings, root: Path) -> list[str]:
    config, notes = _model_config(source, settings)
    version = root / source.name / "1"
    version.mkdir(parents=True)
    if source.engine is not None:
        from ..engine.metadata import PLAN

        _copy(source.directory / PLAN, version / PLAN)
        plugin = source.engine.plugin
        if plugin:
            library = Path(plugin["path"])
            if not library.is_file() or sha256_file(library) != plugin.get("sha256"):
                raise InvalidInputError(
                    f"the engine's plugin library {str(library)!r} is missing or not the one it was built "
                    "with (sha256); rebuild the engine, or restore the library"
                )
            _copy(library, version / library.name)
            notes.append(
                f"{source.name}: start Triton with --backend-config=tensorrt,plugins="
                f"{settings.repository_mount.rstrip('/')}/{source.name}/1/{library.name} (or LD_PRELOAD it)"
            )
    else:
        _copy(source.directory / "model.onnx", version / "model.onnx")
        if (source.directory / "model.onnx.data").is_file():
            _copy(source.directory / "model.onnx.data", version / "model.onnx.data")
        if "model_operations" in config:
            from ..custom_ops import library_path

            _copy(library_path(build=True), version / Path(config["model_operations"]["op_library_filename"][0]).name)
    write_text_atomic(root / source.name / "config.pbtxt", config_text(config))
    return notes


def _write_steps(source: _Source, settings: TritonSettings, root: Path) -> list[str]:
    if source.manifest.task == "question-answering" and source.manifest.padding != "exact":
        raise InvalidInputError(
            f"{source.directory}: the text ensemble pads a long context's windows together, and this "
            "question-answering export leaks padding; re-export with --padding exact, or pass --no-ensemble"
        )
    names = []
    for config in _step_configs(source, settings):
        directory = root / config["name"]
        (directory / "1").mkdir(parents=True)
        if config.get("backend") == "python":
            _copy(MODEL_TEMPLATE, directory / "1" / "model.py")
            for filename in STEP_FILES:
                if (source.directory / filename).is_file():
                    _copy(source.directory / filename, directory / "1" / filename)
        write_text_atomic(directory / "config.pbtxt", config_text(config))
        names.append(config["name"])
    return names


def _names(sources: list[Path], name: str | None) -> list[str]:
    if name is not None:
        if len(sources) != 1:
            raise InvalidInputError(f"--name names one model, but {len(sources)} directories were given; drop --name")
        return [name]
    names = [re.sub(r"[^A-Za-z0-9_.-]", "_", Path(os.path.abspath(s)).name) or "model" for s in sources]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidInputError(
            f"two directories would be named {duplicates[0]!r} in the repository; pass them one at a time "
            "with --name, or rename a directory"
        )
    return names


def write_repository(sources, output, settings: TritonSettings | None = None, force: bool = False) -> TritonRepository:
    """Write a Triton model repository for export and/or engine directories (see the module doc).

    The repository is written to a temporary directory beside ``output`` and renamed into place,
    so an error never leaves a half-written repository. ``force`` replaces an existing one.
    """
    settings = settings or TritonSettings()
    sources = [Path(s) for s in ([sources] if isinstance(sources, (str, os.PathLike)) else sources)]
    if not sources:
        raise InvalidInputError("no export or engine directory given; pass at least one")
    names = _names(sources, settings.name)
    loaded = [_source(directory, name) for directory, name in zip(sources, names)]
    output = Path(output)
    result = TritonRepository(Path(os.path.abspath(output)))
    with atomic_directory(output, force=force) as tmp:
        for source in loaded:
            result.warnings.extend(_write_model(source, settings, tmp))
            kind = "tensorrt_plan" if source.engine is not None else "onnxruntime_onnx"
            result.models.append({"name": source.name, "platform": kind, "task": source.manifest.task,
                                  "dynamic_batching": source.batch_safe or settings.allow_unsafe_batching})
            if settings.ensemble:
                steps = _write_steps(source, settings, tmp)
                result.models.extend({"name": n, "platform": "python" if not n.endswith("_text") else "ensemble",
                                      "task": source.manifest.task} for n in steps)
        # what was written, from what (Triton reads only the model folders; --force knows it is ours)
        write_json_atomic(tmp / REPOSITORY_JSON, {
            "format": "convbert-export-triton/1", "models": result.models, "notes": result.warnings,
            "sources": [str(s.directory.resolve()) for s in loaded], "settings": asdict(settings)})
    return result


# ---------------------------------------------------------------------------------------------
# the Python-backend steps (model.py calls these)
# ---------------------------------------------------------------------------------------------
def _step_pipeline(directory: Path):
    """A Pipeline over ``directory`` (manifest, config, tokenizer) whose model runs elsewhere."""
    from ..runtime.base import Runner, TensorMeta
    from ..runtime import Pipeline

    # the step holds the export's manifest, config and tokenizer files, not its model
    manifest = verify_directory(directory, required=[n for n in LOADED if not n.startswith("model.onnx")])

    class StepRunner(Runner):
        def start_impl(self):
            self.input_metadata = {s.name: TensorMeta(s.name, np.dtype(s.dtype), tuple(s.axes)) for s in manifest.inputs}
            self.output_names = tuple(s.name for s in manifest.outputs)

        def close_impl(self):
            pass

        def run_impl(self, feeds):
            raise RuntimeError("the model runs as the ensemble's model step, not inside this Python step")

    return Pipeline.from_export(directory, runner=StepRunner(name="ensemble model step"), verify=False)


class TextStep:
    """The logic of the ensemble's Python steps, on numpy arrays as Triton passes them.

    ``role="tokenize"``: ``{"TEXT": object array of one JSON record (bytes)}`` -> the model's
    inputs for that record (its rows: one, or one per question-answering window; a
    multiple-choice record is one (1, choices, sequence) block), padded exactly as ``Pipeline``
    pads them. ``role="answer"``: ``TEXT`` plus the model's outputs for those rows ->
    ``{"ANSWER": object array of one JSON document}``, the ``Pipeline`` answer for the record.
    ``max_rows`` is the model's max_batch_size; ``max_length`` caps the sequence (an engine's
    profiles), as ``Pipeline`` caps it for a TensorRT runner.
    A bad record raises InvalidInputError (the Python model turns it into that request's error).
    """

    def __init__(self, directory: str | os.PathLike, role: str, max_rows: int | None = None,
                 max_length: int | None = None):
        if role not in ROLES:
            raise InvalidInputError(f"unknown step role {role!r}; expected one of: {', '.join(ROLES)}")
        self.role = role
        self.max_rows = max_rows
        self.pipe = _step_pipeline(Path(directory))
        if max_length:  # a TensorRT engine's longest profile sequence
            self.pipe.max_length = min(self.pipe.max_length, int(max_length))
        self.spec = get_task(self.pipe.task)
        self.input_names = (TEXT_INPUT,) if role == "tokenize" else (TEXT_INPUT, *self.spec.output_names)
        self.output_names = tuple(self.spec.input_names) if role == "tokenize" else (ANSWER_OUTPUT,)

    def _features(self, text: np.ndarray):
        from ..records import parse_line, record_to_input

        values = np.asarray(text, dtype=object).reshape(-1)
        if values.size != 1:
            raise InvalidInputError(f"{TEXT_INPUT} must hold one JSON record, got {values.size}")
        item = record_to_input(self.pipe.task, parse_line(values[0]))
        params = self.pipe.sanitize()
        features = self.pipe.preprocess(self.pipe.check_input(item), params)
        if self.max_rows is not None and len(features) > self.max_rows:
            raise RequestError(
                f"this record needs {len(features)} model rows (windows), more than the model's "
                f"max_batch_size {self.max_rows}; shorten the text or regenerate with a larger --max-batch-size"
            )
        return item, params, features

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [name for name in self.input_names if name not in inputs]
        if missing:
            raise InvalidInputError(f"missing step inputs {missing}; expected {list(self.input_names)}")
        item, params, features = self._features(inputs[TEXT_INPUT])
        pad = self.pipe.tokenizer.pad_token_id or 0
        if self.role == "tokenize":
            feeds = self.pipe._pad(features, pad)
            return {name: np.ascontiguousarray(feeds[name], dtype=np.int64) for name in self.output_names}
        from ..records import to_jsonable
        from ..runtime.base import nonfinite_rows

        values = {name: np.asarray(inputs[name]) for name in self.spec.output_names}
        rows = {value.shape[0] if value.ndim else 0 for value in values.values()}
        if rows != {len(features)}:
            raise InvalidInputError(f"expected model outputs with {len(features)} rows for this record, got {sorted(rows)}")
        if nonfinite_rows(values).any():
            raise RequestError("the model returned NaN or Inf for this input; check the export's precision")
        outputs = []
        for row, feature in enumerate(features):
            out = {}
            for name, value in values.items():
                item_value = value[row]
                axes = self.spec.outputs[name]
                if "sequence" in axes:
                    item_value = np.take(item_value, np.arange(feature.length), axis=axes.index("sequence") - 1)
                out[name] = item_value
            outputs.append(out)
        result = self.pipe.postprocess(item, features, outputs, params)
        return {ANSWER_OUTPUT: np.array([json.dumps(to_jsonable(result)).encode("utf-8")], dtype=object)}
