"""Export ConvBERT task heads to self-contained, validated ONNX export directories.

``export`` writes one task; ``export_tasks`` writes several (one sub-directory each). Both write
into a temporary directory beside the output and rename it into place, so an interrupted export
never leaves a half-written directory, and both refuse an existing output without ``force``.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from .. import __version__
from ..errors import InvalidInputError, ValidationFailedError, lookup
from ..fileio import atomic_directory, check_no_overlap, read_json, write_json_atomic
from ..manifest import PADDING_MODES as _PADDING_MODES
from ..manifest import Manifest, TensorSpec, file_checksums, write_manifest
from ..progress import QUIET, Progress
from ..tasks import TaskSpec, get_task, task_for_architecture
from ..tokenization import TOKENIZER_FILES
from .dynamic_conv import MODES
from .source import ModelSource, _resolve_tasks  # noqa: F401 - re-exported

PADDING_MODES = _PADDING_MODES


@dataclass(frozen=True)
class ExportSettings:
    """How to export (checked at construction).

    Attributes:
        opset: ONNX opset (17 or newer; LayerNorm exports as LayerNormalization).
        dynamic_conv: ``decomposed`` (standard ONNX ops only) or ``custom-op`` (one
            ``com.convbert_export::DynamicConv`` node per layer plus a model-local function).
        padding: ``exact`` masks the convolution branch at padding positions, so a padded text
            gives what it gives alone; ``transformers`` reproduces transformers' padded outputs,
            padding leak included.
        validate: validate each export against the reference before finishing.
    """

    opset: int = 18
    dynamic_conv: str = "decomposed"
    padding: str = "exact"
    validate: bool = True

    def __post_init__(self):
        self.check()

    def check(self) -> None:
        lookup(MODES, self.dynamic_conv, "--dynamic-conv")
        lookup(PADDING_MODES, self.padding, "padding mode")
        if not isinstance(self.opset, int) or self.opset < 17:
            raise InvalidInputError(f"opset must be 17 or newer (LayerNorm as LayerNormalization), got {self.opset!r}")
        import onnx.defs

        newest = onnx.defs.onnx_opset_version()
        if self.opset > newest:
            raise InvalidInputError(
                f"opset {self.opset} is newer than this onnx {onnx.__version__} knows (newest: {newest}); "
                "choose --opset between 17 and that"
            )


@dataclass
class ExportResult:
    task: str
    path: Path
    size_bytes: int
    node_counts: dict
    export_s: float
    report: object = None  # ValidationReport or None
    manifest: Manifest | None = None

    def summary_row(self) -> dict:
        report = self.report
        if report is None:
            return {"task": self.task, "size_mb": self.size_bytes / 1e6, "max_abs": "-", "agreement": "not validated", "passed": None}
        from ..report.validation import agreement_text

        data = report.to_dict()
        return {
            "task": self.task,
            "size_mb": self.size_bytes / 1e6,
            "max_abs": max((o["max_abs"] for o in data["outputs"]), default=float("nan")),
            "agreement": agreement_text(data["agreement"]),
            "passed": report.passed,
        }

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "path": str(self.path),
            "size_bytes": self.size_bytes,
            "export_s": round(self.export_s, 3),
            "node_counts": self.node_counts,
            "validation": self.report.to_dict() if self.report is not None else None,
        }


def _model_summary(config) -> dict:
    return {
        "vocab_size": config.vocab_size,
        "type_vocab_size": config.type_vocab_size,
        "max_position_embeddings": config.max_position_embeddings,
        "hidden_size": config.hidden_size,
        "embedding_size": config.embedding_size,
        "num_hidden_layers": config.num_hidden_layers,
        "pad_token_id": config.pad_token_id if config.pad_token_id is not None else 0,
        "conv_kernel_size": config.conv_kernel_size,
    }


def _versions() -> dict:
    import onnx
    import torch

    versions = {"convbert_export": __version__, "torch": torch.__version__.split("+")[0], "onnx": onnx.__version__}
    try:
        import onnxscript

        versions["onnxscript"] = onnxscript.__version__
    except ImportError:  # pragma: no cover
        pass
    return versions


def _write_config(model, spec: TaskSpec, directory: Path) -> None:
    data = model.config.to_dict()
    data["architectures"] = [spec.architecture]
    data["model_type"] = "convbert"
    write_json_atomic(directory / "config.json", data)


def export_model(
    model,
    spec: TaskSpec,
    directory: Path,
    settings: ExportSettings,
    *,
    source: dict | None = None,
    tokenizer_dir: Path | None = None,
    progress: Progress = QUIET,
) -> ExportResult:
    """Export one loaded head into an existing, empty ``directory`` (no validation)."""
    from .onnx import count_nodes, save_model, trace_to_onnx

    started = time.perf_counter()
    model.eval()
    model.set_exact_padding(settings.padding == "exact")
    with progress.step(f"[{spec.name}] tracing and converting to ONNX"):
        proto = trace_to_onnx(model, spec, opset=settings.opset, mode=settings.dynamic_conv)
    with progress.step(f"[{spec.name}] writing model.onnx, config, tokenizer and manifest"):
        save_model(proto, directory)
        _write_config(model, spec, directory)
        config = model.config
        summary = _model_summary(config)
        if tokenizer_dir is not None:
            for name in TOKENIZER_FILES:
                if (Path(tokenizer_dir) / name).is_file():
                    shutil.copyfile(Path(tokenizer_dir) / name, directory / name)
            _cap_tokenizer_length(directory, config.max_position_embeddings)
            summary["pad_token_id"] = _tokenizer_pad_id(directory, summary["pad_token_id"], progress)
        from ..custom_ops import DOMAIN, OP_TYPE, PLUGIN_NAMESPACE, PLUGIN_VERSION

        id2label = {str(k): v for k, v in (getattr(config, "id2label", None) or {}).items()}
        if not spec.has_labels:
            id2label = {}
        manifest = Manifest(
            task=spec.name,
            architecture=spec.architecture,
            opset=settings.opset,
            dynamic_conv={
                "mode": settings.dynamic_conv,
                "domain": DOMAIN,
                "op_type": OP_TYPE,
                "plugin_namespace": PLUGIN_NAMESPACE,
                "plugin_version": PLUGIN_VERSION,
            },
            padding=settings.padding,
            inputs=tuple(TensorSpec(name, "int64", axes) for name, axes in spec.inputs.items()),
            outputs=tuple(
                TensorSpec(name, "float32", _output_axes(axes, config, model)) for name, axes in spec.outputs.items()
            ),
            model=summary,
            id2label=id2label,
            source=source or {},
            versions=_versions(),
            files=file_checksums(directory),
        )
        write_manifest(directory, manifest)
    size = sum(p.stat().st_size for p in directory.glob("model.onnx*"))
    return ExportResult(spec.name, directory, size, count_nodes(proto), time.perf_counter() - started, manifest=manifest)


def _cap_tokenizer_length(directory: Path, max_positions: int) -> None:
    """Write the tokenizer's ``model_max_length`` capped at the model's positions, so a caller
    truncating with the tokenizer (``AutoTokenizer(..., truncation=True)``) never feeds more
    positions than the model has (a 512 default on a 128-position model crashed ONNX Runtime)."""
    path = directory / "tokenizer_config.json"
    data = read_json(path) if path.is_file() else {}
    if not isinstance(data, dict):
        raise InvalidInputError(f"{path}: expected a JSON object, got a {type(data).__name__}")
    current = data.get("model_max_length")
    usable = isinstance(current, int) and not isinstance(current, bool) and 1 < current < 10**12
    data["model_max_length"] = min(current, max_positions) if usable else max_positions
    write_json_atomic(path, data)


def _tokenizer_pad_id(directory: Path, config_pad_id: int, progress: Progress) -> int:
    """The id the export's tokenizer pads with (what transformers pads with), which is what the
    manifest records; a config.json ``pad_token_id`` that disagrees gets a warning."""
    from ..tokenization import Tokenizer

    try:
        pad_id = Tokenizer.from_pretrained(directory).pad_token_id
    except (TypeError, ValueError):  # no pad token in the vocabulary: the config's id stands
        return config_pad_id
    if pad_id != config_pad_id:
        import warnings

        message = (f"config.json's pad_token_id {config_pad_id} differs from the tokenizer's pad token id "
                   f"{pad_id}; the manifest records {pad_id}, the id inputs are padded with")
        warnings.warn(message, stacklevel=4)
        progress.info(f"warning: {message}")
    return int(pad_id)


def _output_axes(axes: tuple[str, ...], config, model) -> tuple:
    sizes = {"hidden": config.hidden_size, "vocab": config.vocab_size, "num_labels": getattr(config, "num_labels", None)}
    return tuple(sizes[a] if a in sizes and sizes[a] is not None else a for a in axes)


def export_tasks(
    source: ModelSource,
    tasks,
    output_dir: str | Path,
    settings: ExportSettings | None = None,
    *,
    force: bool = False,
    validation=None,
    progress: Progress | None = None,
) -> list[ExportResult]:
    """Export ``tasks`` of ``source`` into ``output_dir`` (one sub-directory per task when several).

    Validation failures do not stop the other tasks: every export is written with its
    validation report, then :class:`ValidationFailedError` lists the failed tasks.
    """
    settings = settings or ExportSettings()
    settings.check()
    progress = progress or QUIET
    names = _resolve_tasks(source, tasks)
    if source.checkpoint:
        check_no_overlap(output_dir, source.checkpoint, "checkpoint", inside=False,
                         fix="choose another --output (a new directory, or one inside the checkpoint)")
    single = len(names) == 1 and not (isinstance(tasks, (list, tuple)) and "all" in tasks) and tasks != "all"
    tokenizer_dir, fallback = source.tokenizer_dir()
    if fallback and source.checkpoint:
        progress.info(f"warning: {source.checkpoint} has no tokenizer files; using the demo vocabulary")
    results: list[ExportResult] = []
    with atomic_directory(output_dir, force=force) as tmp:
        for name in names:
            spec = get_task(name)
            directory = tmp if single else tmp / name
            directory.mkdir(exist_ok=True)
            with progress.step(f"[{name}] loading the model"):
                model = source.load(name)
            result = export_model(
                model, spec, directory, settings, source=source.manifest_entry(), tokenizer_dir=tokenizer_dir, progress=progress
            )
            result.path = Path(output_dir) if single else Path(output_dir) / name
            if settings.validate:
                from ..validate import validate

                result.report = validate(
                    directory, model, validation, progress=progress, raise_on_failure=False, display_path=result.path
                )
            results.append(result)
    failed = [r for r in results if r.report is not None and not r.report.passed]
    if failed:
        details = "; ".join(f"{r.task}: {r.report.summary()}" for r in failed)
        error = ValidationFailedError(f"validation failed for {len(failed)} of {len(results)} exports: {details}")
        error.results = results
        raise error
    return results


def _tokenizer_dir_for(source: dict, progress: Progress) -> Path:
    """Where a loaded model's tokenizer files are: its checkpoint, or the demo vocab."""
    if source.get("checkpoint"):
        found, fallback = ModelSource(checkpoint=Path(source["checkpoint"])).tokenizer_dir()
        if not fallback:
            return found
    from ..tokenization import demo_vocab_dir

    if not source.get("preset"):
        import warnings

        message = ("the model has no tokenizer files beside it; the export gets the demo vocabulary, "
                   "which is wrong for a trained model: pass tokenizer_dir=... (a directory with "
                   "vocab.txt or tokenizer.json)")
        warnings.warn(message, stacklevel=3)
        progress.info(f"warning: {message}")
    return Path(demo_vocab_dir())


def export(
    model,
    task: str | None = None,
    output_dir: str | Path | None = None,
    *,
    opset: int = 18,
    dynamic_conv: str = "decomposed",
    padding: str = "exact",
    force: bool = False,
    validate: bool = True,
    validation=None,
    progress: Progress | None = None,
    tokenizer_dir: str | Path | None = None,
) -> ExportResult:
    """Export one task head to ``output_dir`` and (by default) validate it.

    Args:
        model: a checkpoint directory, or a loaded reference_model head (then ``task`` defaults
            to the head's task and the tokenizer comes from ``tokenizer_dir`` or the demo vocab).
        task: the task name (see ``convbert_export.TASKS``); None: from ``architectures``.
        output_dir: the export directory to create.
    """
    if output_dir is None:
        raise InvalidInputError("export needs an output directory (output_dir=...)")
    settings = ExportSettings(opset=opset, dynamic_conv=dynamic_conv, padding=padding, validate=validate)
    if isinstance(model, (str, Path)):
        source = ModelSource.from_checkpoint(model)
        if task is None and len(_resolve_tasks(source, None)) != 1:
            raise InvalidInputError(
                f"{source.checkpoint}/config.json lists {len(source.architectures)} architectures "
                f"({', '.join(source.architectures)}); export() writes one task: pass task=... "
                "(or use export_tasks() for several)"
            )
        results = export_tasks(
            source, [task] if task else None, output_dir, settings,
            force=force, validation=validation, progress=progress,
        )
        return results[0]
    settings.check()
    progress = progress or QUIET
    spec = get_task(task) if task else task_for_architecture(type(model).__name__)
    spec.check_head(model)
    source = getattr(model, "source", None) or {}
    if source.get("checkpoint"):
        check_no_overlap(output_dir, source["checkpoint"], "checkpoint", inside=False, fix="choose another output directory")
    tok_dir = Path(tokenizer_dir) if tokenizer_dir else _tokenizer_dir_for(source, progress)
    with atomic_directory(output_dir, force=force) as tmp:
        result = export_model(model, spec, tmp, settings, source=source, tokenizer_dir=tok_dir, progress=progress)
        if validate:
            from ..validate import validate as run_validation

            result.report = run_validation(
                tmp, model, validation, progress=progress, raise_on_failure=False, display_path=output_dir
            )
    result.path = Path(output_dir)
    if result.report is not None and not result.report.passed:
        error = ValidationFailedError(f"validation of {output_dir} failed: {result.report.summary()}", result.report)
        error.results = [result]
        raise error
    return result


__all__ = ["ExportResult", "ExportSettings", "ModelSource", "export", "export_model", "export_tasks", "PADDING_MODES"]
