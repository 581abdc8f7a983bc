"""Validate an export (or engine) directory against the PyTorch reference.

``validate(directory)`` builds two runners through the one runner path
(``runtime/factory.py``): the reference (:class:`~convbert_export.runtime.torch_ref.TorchRunner`)
and the candidate (ONNX Runtime on the chosen provider for an export directory, TensorRT for an
engine directory), then :func:`compare_runners` runs both on (a) a seeded grid of random inputs
and (b) real texts through the export's own tokenizer, comparing every output (names, then
shapes, then values) and accumulating task-level agreement. The padding effect is measured,
``validation.json`` / ``validation.md`` are written. All failures are collected first; then the
result is pass or fail.

The parts: settings.py (what to run, thresholds), cases.py (inputs), compare.py (metrics),
graph.py (manifest vs graph), padding.py (padding effect), report.py (the report).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import MissingDependencyError, ModelLoadError, InvalidInputError, ValidationFailedError
from ..manifest import Manifest, file_checksums, load_manifest, verify_checksums
from ..progress import QUIET, Progress
from ..runtime.base import Runner
from ..runtime.factory import backend_for, create_runner, is_engine_dir
from ..runtime.torch_ref import TorchRunner, reference_model_for
from ..tasks import TaskSpec, get_task
from .cases import random_cases, text_cases, tokenizer_mismatch
from .compare import Agreement, OutputStats, update_agreement
from .graph import graph_mismatches
from .padding import padding_effect
from .report import ValidationReport, environment, write_reports
from .settings import PRECISION_DEFAULTS, ValidationSettings, default_checks, resolve_checks

__all__ = ["validate", "compare_runners", "ValidationSettings", "ValidationReport", "PRECISION_DEFAULTS",
           "default_checks", "random_cases", "text_cases", "tokenizer_mismatch", "graph_mismatches",
           "padding_effect", "write_reports", "reference_for", "check_head"]


def reference_for(manifest: Manifest, model=None):
    """The reference head for an export (kept for callers of the old name; see
    :func:`convbert_export.runtime.torch_ref.reference_model_for`)."""
    return reference_model_for(manifest, model)


def check_head(model, spec: TaskSpec) -> None:
    """Refuse a loaded head of another task (see :meth:`TaskSpec.check_head`)."""
    spec.check_head(model)


def compare_runners(reference: Runner, candidate: Runner, cases, spec: TaskSpec, atol: float, rtol: float,
                    progress: Progress = QUIET, label: str = ""):
    """Run both (started) runners on every ``(name, feeds)`` case and compare every output.

    Returns ``(stats, agreement, shape_failures)``: per-output :class:`OutputStats`, the task's
    :class:`Agreement` and, per output, the first shape mismatch.
    """
    names = list(candidate.output_names)
    stats = {name: OutputStats(name, atol, rtol) for name in spec.output_names}
    agreement = Agreement(spec.agreement)
    shape_failures: dict[str, str] = {}
    for name, feeds in progress.iterate(cases, f"{label}validating {len(cases)} cases"):
        ref = reference.run(feeds, check=False)
        got = candidate.run(feeds)
        mask = feeds["attention_mask"].reshape(-1, feeds["attention_mask"].shape[-1]).astype(bool)
        for out_name in spec.output_names:
            if out_name not in names:
                continue
            if got[out_name].shape != ref[out_name].shape:
                shape_failures.setdefault(
                    out_name, f"{out_name} shape in case {name!r}: expected {ref[out_name].shape}, got {got[out_name].shape}"
                )
                continue
            stats[out_name].update(name, got[out_name], ref[out_name], length=feeds["input_ids"].shape[-1])
        if not shape_failures:
            token_mask = None if spec.multiple_choice else mask
            update_agreement(agreement, spec.agreement, got, ref, token_mask)
    return stats, agreement, shape_failures


def _save_worst(settings: ValidationSettings, stats: dict, cases: list, reference: Runner, candidate: Runner) -> str:
    """Write the worst case for replay (--save-inputs/--save-outputs); what was written, or ""."""
    if not (settings.save_inputs or settings.save_outputs):
        return ""
    from .replay import save_case, worst_case

    name = worst_case(stats)
    if name is None:
        return ""
    feeds = dict(cases)[name]
    got = candidate.run(feeds) if settings.save_outputs else None
    ref = reference.run(feeds, check=False) if settings.save_outputs else None
    save_case(feeds, settings.save_inputs, settings.save_outputs, got, ref)
    files = " and ".join(str(p) for p in (settings.save_inputs, settings.save_outputs) if p)
    return f"worst case {name!r} saved to {files}; re-run it with validate --load-inputs"


def _checksum_failures(directory: Path, manifest: Manifest, engine: bool) -> list[str]:
    if not engine:
        return [f"checksum: {problem}" for problem in verify_checksums(directory, manifest)]
    # an engine directory holds copies of the export's config and tokenizer files (its plan is
    # verified against engine.json when the runner starts)
    actual = file_checksums(directory)
    return [f"checksum: {name}: sha256 {actual[name][:12]}... differs from the manifest's {digest[:12]}..."
            for name, digest in manifest.files.items() if name in actual and actual[name] != digest]


def _start_candidate(directory: Path, settings: ValidationSettings, failures: list[str]) -> Runner:
    """The candidate runner, started; a provider or GPU that is missing is one error line."""
    try:
        # verify=False: validation reports checksum problems itself (all of them, with the rest)
        candidate = create_runner(directory, provider=settings.provider, strict=True, custom_ops=settings.custom_ops,
                                  verify=False)
        candidate.start()
    except MissingDependencyError as exc:
        where = settings.provider or {"onnxruntime": "cpu"}.get(backend_for(directory), backend_for(directory))
        raise InvalidInputError(f"cannot validate on {where!r}: {exc}") from None
    except ModelLoadError as exc:
        checks = "; ".join(failures) or "the files match the manifest"
        raise InvalidInputError(
            f"cannot load {directory / 'model.onnx'} in onnxruntime ({exc.reason}); {checks}; re-export the model"
        ) from None
    return candidate


def _clip_to_profiles(cases_settings: ValidationSettings, candidate: Runner, max_len: int) -> tuple[int, ...]:
    """Sequences of the grid a runner with optimization profiles accepts (``0`` = its longest)."""
    profiles = getattr(candidate, "profiles", None)
    if not profiles:
        return cases_settings.sequences
    low = min(p.sequence.min for p in profiles)
    high = min(max_len, max(p.sequence.max for p in profiles))
    return tuple(sorted({min(max(high if s == 0 else s, low), high) for s in cases_settings.sequences}))


def validate(
    export_dir: str | Path,
    model=None,
    settings: ValidationSettings | None = None,
    *,
    progress: Progress | None = None,
    raise_on_failure: bool = True,
    write: bool = True,
    display_path: str | Path | None = None,
) -> ValidationReport:
    """Validate ``export_dir`` against the PyTorch reference and write the reports.

    Args:
        export_dir: an export directory (manifest.json, model.onnx, ...) or a TensorRT engine
            directory (engine.json, model.plan and the export's manifest, config, tokenizer).
        model: the reference: a reference_model head, a checkpoint directory, or None to rebuild
            it from the manifest's source (a preset and seed, or the checkpoint path).
        settings: grid, tolerances and provider; see :class:`ValidationSettings`.
        raise_on_failure: raise :class:`ValidationFailedError` (carrying the report) on failure.
        write: write validation.json and validation.md into ``export_dir``.
        display_path: the path the report names (the final path while exporting into a
            temporary directory).
    """
    settings = settings or ValidationSettings()
    progress = progress or QUIET
    export_dir = Path(export_dir)
    started = time.perf_counter()
    manifest = load_manifest(export_dir)
    spec = get_task(manifest.task)
    engine = is_engine_dir(export_dir)
    atol, rtol, min_agreement, min_cosine = resolve_checks(manifest, settings)
    failures = _checksum_failures(export_dir, manifest, engine)

    candidate = _start_candidate(export_dir, settings, failures)
    try:
        with progress.step(f"[{manifest.task}] loading the reference"):
            reference = TorchRunner.for_export(manifest, model).start()
        try:
            if not engine:
                failures += graph_mismatches(export_dir, manifest, candidate)
            got_names = list(candidate.output_names)
            if got_names != list(spec.output_names):
                failures.append(f"output names: expected {list(spec.output_names)}, got {got_names}")
            grid = ValidationSettings(**{**settings.__dict__, "sequences": _clip_to_profiles(
                settings, candidate, int(manifest.model["max_position_embeddings"]))})
            if settings.load_inputs:
                from .replay import load_inputs

                feeds = load_inputs(settings.load_inputs, [i.name for i in manifest.inputs], spec.multiple_choice)
                cases = [(f"replay {Path(settings.load_inputs).name}", feeds)]
            else:
                cases = list(random_cases(manifest, grid))
            if settings.texts and not settings.load_inputs:
                problem = tokenizer_mismatch(manifest, export_dir)
                if problem:
                    failures.append(problem)
                else:
                    cases += list(text_cases(manifest, export_dir))
            stats, agreement, shape_failures = compare_runners(
                reference, candidate, cases, spec, atol, rtol, progress, f"[{manifest.task}] "
            )
            replay = _save_worst(settings, stats, cases, reference, candidate)
            effect = padding_effect(candidate, manifest, reference)
        finally:
            reference.close()
        described = candidate.describe()
    finally:
        candidate.close()

    failures += list(shape_failures.values())
    for s in stats.values():
        if not s.elements and s.name in got_names and s.name not in shape_failures:
            failures.append(f"{s.name}: never compared (no validation case ran); check the validation grid")
        elif s.elements and not s.passed:
            failures.append(
                f"{s.name}: max abs diff {s.max_abs:.3g} (max rel {s.max_rel:.3g}) exceeds atol {s.atol:g} / rtol {s.rtol:g} "
                f"in {s.violations} of {s.elements} values" + (f", {s.nonfinite} non-finite" if s.nonfinite else "")
                + f"; worst case {s.worst_case!r}"
            )
    rate = agreement.rate
    if agreement.nonfinite:
        failures.append(f"{spec.agreement} agreement not computed: NaN/Inf outputs in {agreement.nonfinite} "
                        "case(s) (non-finite weights or an overflow)")
    elif agreement.kind == "similarity":
        if min_cosine is not None and not rate >= min_cosine:
            failures.append(f"hidden-state cosine {rate:.6f} is below the threshold {min_cosine}")
    elif min_agreement is not None and not rate >= min_agreement:
        failures.append(f"{spec.agreement} agreement {rate:.2%} is below the threshold {min_agreement:.2%}")

    # the exact-padding promise, checked like the outputs: a padded text gives what it gives
    # alone (fp32 exports whose outputs do not depend on batch-mates)
    padded_diff = effect.get("export_max_abs_diff")
    if manifest.padding == "exact" and manifest.precision == "fp32" and manifest.batch_invariant \
            and padded_diff is not None and not padded_diff <= atol:
        failures.append(
            f"padding effect {padded_diff:.3g} exceeds atol {atol:g}: a padded text does not give what it "
            "gives alone, though the export promises exact padding"
        )
    report = ValidationReport(
        export_dir=str(export_dir),
        task=manifest.task,
        dynamic_conv=manifest.dynamic_conv_mode,
        padding=manifest.padding,
        precision=manifest.precision,
        provider=described["backend"],
        outputs=stats,
        agreement=agreement,
        failures=failures,
        cases=[name for name, _ in cases],
        library=described.get("custom_op_library", ""),
        padding_effect=effect,
        environment=environment(),
        replay=replay,
    )
    report.elapsed_s = time.perf_counter() - started
    if display_path is not None:
        report.export_dir = str(display_path)
    if write:
        write_reports(report, export_dir)
    if raise_on_failure and not report.passed:
        raise ValidationFailedError(f"validation of {export_dir} failed: {report.summary()}", report)
    return report
