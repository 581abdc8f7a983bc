"""``evaluate``: the PyTorch reference and every export on the same labeled examples.

Each model runs through its task pipeline (``Pipeline.from_export``; the reference is the same
pipeline on a :class:`~convbert_export.runtime.TorchRunner`), so tokenization, batching and
post-processing are what users get. Per model: the task's metrics, a bootstrap confidence
interval, the delta to the reference with its paired interval, wall time, and the examples
where its prediction differs from the reference's (the worst listed with their text).
Wall time covers the pipeline call over all examples, after one untimed warm-up call.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InvalidInputError, check_int
from ..progress import QUIET, Progress
from . import metrics as M
from .data import BadRow, read_rows
from .tasks import Example, evaluator_class

REFERENCE = "reference"


@dataclass(frozen=True)
class EvaluationSettings:
    """How to evaluate.

    Attributes:
        task: the task (None: the exports' own; given, it must match them).
        columns: task field name -> the data file's field (``--column label=sentiment``).
        limit: evaluate the first N rows only.
        batch_size: the pipelines' batch size.
        resamples: bootstrap resamples for confidence intervals (0: none). The interval is the
            percentile interval over resamples of the examples; deltas use the same resamples
            for the reference and the variant (paired).
        confidence: the intervals' level.
        worst: how many disagreements to list per variant.
        provider: the device or ONNX Runtime provider (None: each directory's default: ONNX
            Runtime on the CPU for an export, TensorRT for an engine directory).
        seed: the bootstrap's seed.
    """

    task: str | None = None
    columns: tuple[tuple[str, str], ...] = ()
    limit: int | None = None
    batch_size: int = 8
    resamples: int = 1000
    confidence: float = 0.95
    worst: int = 10
    provider: str | None = None
    seed: int = 0

    def __post_init__(self):
        check_int("batch_size", self.batch_size, 1)
        check_int("resamples", self.resamples, 0)
        if not 0 < self.confidence < 1:
            raise InvalidInputError(f"confidence must be within (0, 1), got {self.confidence!r}")
        if self.limit is not None and self.limit < 1:
            raise InvalidInputError(f"limit must be >= 1, got {self.limit!r}")


@dataclass
class ModelResult:
    name: str
    path: str
    kind: str                      # reference | export | engine
    precision: str
    predictions: list = field(default_factory=list, repr=False)
    errors: list = field(default_factory=list)        # (line, message)
    metrics: dict = field(default_factory=dict)
    intervals: dict = field(default_factory=dict)     # metric -> (low, high)
    delta: dict = field(default_factory=dict)
    delta_intervals: dict = field(default_factory=dict)
    disagreements: int = 0
    worst: list = field(default_factory=list)
    wall_s: float = 0.0

    def to_dict(self) -> dict:
        n = len(self.predictions)
        return {
            "name": self.name, "path": self.path, "kind": self.kind, "precision": self.precision,
            "metrics": self.metrics, "intervals": {k: list(v) for k, v in self.intervals.items()},
            "delta": self.delta, "delta_intervals": {k: list(v) for k, v in self.delta_intervals.items()},
            "disagreements": self.disagreements, "worst": self.worst,
            "errors": [{"line": line, "error": msg} for line, msg in self.errors],
            "wall_s": round(self.wall_s, 3), "examples_per_s": round(n / self.wall_s, 2) if self.wall_s else None,
        }


@dataclass
class EvaluationReport:
    task: str
    data: str
    primary: str
    examples: int
    bad_rows: list                 # {"line", "reason"}
    models: list[ModelResult]
    settings: dict
    elapsed_s: float = 0.0
    environment: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "kind": "evaluation",
            "task": self.task, "data": self.data, "primary_metric": self.primary,
            "examples": self.examples, "bad_rows": self.bad_rows,
            "models": [m.to_dict() for m in self.models],
            "settings": self.settings, "elapsed_s": round(self.elapsed_s, 3), "environment": self.environment,
        }


def _describe(path: Path) -> tuple[str, str, dict]:
    """(kind, precision, manifest) of an export or engine directory; a clear error otherwise."""
    from ..runtime import is_engine_dir
    from ..runtime.base import read_manifest

    if not (path / "manifest.json").is_file():
        raise InvalidInputError(
            f"{str(path)!r} is not an export or engine directory (no manifest.json); pass directories "
            "written by export, optimize or build-engine (a checkpoint is the reference: --model DIR)"
        )
    manifest = read_manifest(path)
    return ("engine" if is_engine_dir(path) else "export"), str(manifest.get("precision", "fp32")), manifest


def _names(paths: list[Path]) -> list[str]:
    names = [p.name or str(p) for p in paths]
    return [str(p) if names.count(n) > 1 else n for n, p in zip(names, paths)]


def evaluate(
    exports,
    data: str | Path,
    settings: EvaluationSettings | None = None,
    *,
    model=None,
    progress: Progress | None = None,
    output: str | Path | None = None,
    force: bool = False,
) -> EvaluationReport:
    """Evaluate the reference and each of ``exports`` (export, optimized or engine directories)
    on the labeled examples in ``data`` (JSON lines or CSV).

    Args:
        model: the reference: a reference_model head, a checkpoint directory, or None to rebuild
            it from the first export's manifest (its preset and seed, or its checkpoint).
        output: also write the reports into this directory (:func:`write_evaluation`); an
            existing one is refused before any work unless ``force``.
    """
    import os

    # torch's OpenMP workers sleep instead of spinning between ops (as benchmark does): on shared
    # cores spinning workers stall eager torch
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if output is not None:
        from ..fileio import check_output_dir

        check_output_dir(output, force)  # refuse before the work, not after
    report = _evaluate(exports, data, settings, model=model, progress=progress)
    if output is not None:
        write_evaluation(report, output, force=force)
    return report


def _evaluate(exports, data, settings, *, model, progress) -> EvaluationReport:
    from ..manifest import load_manifest
    from ..runtime import Pipeline, TorchRunner
    from ..runtime.torch_ref import reference_model_for

    settings = settings or EvaluationSettings()
    progress = progress or QUIET
    started = time.perf_counter()
    paths = [Path(p) for p in ([exports] if isinstance(exports, (str, Path)) else exports)]
    if not paths:
        raise InvalidInputError("evaluate needs at least one export directory")
    described = [_describe(p) for p in paths]
    tasks = {m.get("task") for _, _, m in described}
    if len(tasks) > 1:
        raise InvalidInputError(f"the exports are of different tasks ({', '.join(sorted(map(str, tasks)))}); evaluate one task at a time")
    task = tasks.pop()
    if settings.task and settings.task != task:
        raise InvalidInputError(f"--task {settings.task} but the exports are {task}; drop --task or pass {task} exports")
    evaluation = evaluator_class(task)  # a task without one is refused before anything loads

    rows = read_rows(data, dict(settings.columns), settings.limit)
    pipelines = []
    try:
        with progress.step(f"[{task}] loading the reference and {len(paths)} export(s)"):
            reference = reference_model_for(load_manifest(paths[0]), model)
            exact = described[0][2].get("padding") == "exact"
            runner = TorchRunner(reference, task=task, exact_padding=exact)
            pipelines.append(Pipeline.from_export(paths[0], runner=runner, batch_size=settings.batch_size))
            for path in paths:
                pipelines.append(Pipeline.from_export(path, provider=settings.provider, batch_size=settings.batch_size))
        evaluator = evaluation(pipelines[0])
        examples, bad = [], []
        for row in rows:
            try:
                examples.append(evaluator.parse(row.fields, row.line))
            except BadRow as exc:
                bad.append({"line": row.line, "reason": str(exc)})
        if not examples:
            first = f" (line {bad[0]['line']}: {bad[0]['reason']})" if bad else ""
            raise InvalidInputError(f"no usable example in {data}: all {len(rows)} rows are bad{first}")
        evaluator.prepare(examples)
        results = [ModelResult(REFERENCE, str(described[0][2].get("source") or "PyTorch reference"), "reference", "fp32")]
        results += [ModelResult(name, str(path), kind, precision)
                    for name, path, (kind, precision, _) in zip(_names(paths), paths, described)]
        for result, pipeline in zip(results, pipelines):
            _run(result, pipeline, evaluator, examples, progress, task)
    finally:
        for pipeline in pipelines:
            pipeline.close()

    golds = [e.gold for e in examples]
    if getattr(evaluator, "needs_reference_as_gold", False):
        golds = results[0].predictions
    _score(results, evaluator, golds, examples, settings)
    return EvaluationReport(
        task=task, data=str(data), primary=evaluator.primary, examples=len(examples), bad_rows=bad, models=results,
        settings={"batch_size": settings.batch_size, "resamples": settings.resamples, "confidence": settings.confidence,
                  "limit": settings.limit, "columns": dict(settings.columns), "provider": settings.provider,
                  "seed": settings.seed, "params": _jsonable(evaluator.params)},
        elapsed_s=time.perf_counter() - started,
        environment={"python": platform.python_version(), "machine": platform.machine()},
    )


def _jsonable(params: dict) -> dict:
    return {k: v for k, v in params.items()}


def _run(result: ModelResult, pipeline, evaluator, examples: list[Example], progress: Progress, task: str) -> None:
    with progress.step(f"[{task}] {result.name}: {len(examples)} examples"):
        pipeline.run_many([examples[0].inputs], **evaluator.params)  # untimed warm-up (first-call setup)
        started = time.perf_counter()
        outputs = pipeline.run_many([e.inputs for e in examples], **evaluator.params)
        result.wall_s = time.perf_counter() - started
    for example, output in zip(examples, outputs):
        if isinstance(output, Exception):
            result.errors.append((example.line, f"{type(output).__name__}: {output}"))
            result.predictions.append(None)
        else:
            result.predictions.append(evaluator.predict(output, example))


def _score(results: list[ModelResult], evaluator, golds: list, examples: list[Example], settings: EvaluationSettings):
    n = len(golds)
    draws = M.bootstrap_indices(n, settings.resamples, settings.seed) if settings.resamples and n > 1 else None
    weights = M.resample_weights(draws, n) if draws is not None else None
    replicates = {}
    for result in results:
        result.metrics = evaluator.metrics(golds, result.predictions)
        if draws is not None:
            counted = evaluator.bootstrap_counts(golds, result.predictions)
            if counted is not None:
                matrix, finish = counted
                reps = finish(weights @ matrix)
                replicates[result.name] = {k: np.asarray(reps[k], dtype=np.float64) for k in result.metrics}
            else:  # a metric that is not a function of per-example counts: recompute per resample
                rows = [evaluator.metrics([golds[i] for i in idx], [result.predictions[i] for i in idx]) for idx in draws]
                replicates[result.name] = {k: np.array([r[k] for r in rows]) for k in result.metrics}
            result.intervals = {k: M.percentile_interval(v, settings.confidence) for k, v in replicates[result.name].items()}
    reference = results[0]
    for result in results[1:]:
        result.delta = {k: result.metrics[k] - reference.metrics[k] for k in result.metrics}
        if draws is not None:
            result.delta_intervals = {
                k: M.percentile_interval(replicates[result.name][k] - replicates[reference.name][k], settings.confidence)
                for k in result.metrics
            }
        ranked = []
        for example, ref, pred in zip(examples, reference.predictions, result.predictions):
            if evaluator.disagree(ref, pred):
                ranked.append((evaluator.distance(ref, pred), example, ref, pred))
        result.disagreements = len(ranked)
        ranked.sort(key=lambda r: -r[0])
        result.worst = [
            {"line": ex.line, "text": ex.text, "reference": evaluator.show(ref), "prediction": evaluator.show(pred),
             "distance": float(dist)}
            for dist, ex, ref, pred in ranked[: settings.worst]
        ]


def write_evaluation(report: EvaluationReport, output: str | Path, force: bool = False) -> Path:
    """Write evaluation.json, evaluation.md and evaluation.html into the directory ``output``,
    all or nothing (the directory appears complete or not at all)."""
    from ..fileio import atomic_directory, write_json_atomic, write_text_atomic
    from ..report import evaluation_markdown, html_report

    data = report.to_dict()
    with atomic_directory(output, force=force) as tmp:
        write_json_atomic(tmp / "evaluation.json", data)
        write_text_atomic(tmp / "evaluation.md", evaluation_markdown(data))
        write_text_atomic(tmp / "evaluation.html", html_report(data))
    return Path(output)
