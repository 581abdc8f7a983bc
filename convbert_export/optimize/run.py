"""``optimize``: an export directory in, a validated variant directory out (see the package
docstring for the steps)."""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import onnx
from onnx import helper

from ..errors import InvalidInputError, ValidationFailedError
from ..fileio import atomic_directory, check_no_overlap
from ..manifest import UNCHECKED, Manifest, file_checksums, load_manifest, verify_checksums, write_manifest
from ..progress import QUIET, Progress
from .cpu_ops import bias_gelu_to_custom_op, depthwise_to_custom_op, skip_layer_norm_to_custom_op
from .precision import _name_nodes, calibration_feeds, quantize_int8_dynamic, quantize_int8_static, to_fp16
from .rewrites import (
    attention_to_mha,
    first_token_only,
    layernorm_as_instancenorm,
    ort_transformer_fusions,
    pack_projections,
    pointwise_conv_to_matmul,
)
from .settings import MODEL_FILES, MS_DOMAIN, OptimizeResult, OptimizeSettings


def optimize_model_proto(model: onnx.ModelProto, settings: OptimizeSettings) -> tuple[onnx.ModelProto, list[dict]]:
    """The float graph rewrites (steps 1-3) on an in-memory model."""
    steps: list[dict] = []
    if not settings.fuse:
        return model, steps
    count = pointwise_conv_to_matmul(model)
    steps.append({"step": "pointwise-conv-to-matmul", "tool": "convbert_export", "rewritten": count})
    if settings.attention:
        count = attention_to_mha(model)
        steps.append({"step": "attention-to-multiheadattention", "tool": "convbert_export", "rewritten": count})
    if settings.pack:
        count = pack_projections(model)
        steps.append({"step": "pack-projections", "tool": "convbert_export", "packed_groups": count})
    model, stats = ort_transformer_fusions(model)
    if not any(o.domain == MS_DOMAIN for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    steps.append({"step": "ort-transformer-optimizer", "tool": "onnxruntime.transformers.optimizer",
                  "model_type": "bert", "fusions": stats})
    if settings.prune_first_token:
        count = first_token_only(model)
        steps.append({"step": "first-token-only", "tool": "convbert_export", "rewritten": count})
    if settings.cpu_ops and not settings.fp16 and _needs_our_library(model):
        count = skip_layer_norm_to_custom_op(model)
        steps.append({"step": "skiplayernorm-to-addlayernorm", "tool": "convbert_export", "rewritten": count})
        count = depthwise_to_custom_op(model)
        steps.append({"step": "depthwise-to-depthwiseconv", "tool": "convbert_export", "rewritten": count})
        count = bias_gelu_to_custom_op(model)
        steps.append({"step": "biasgelu-to-ours", "tool": "convbert_export", "rewritten": count})
    if settings.instance_norm and not settings.fp16:
        count = layernorm_as_instancenorm(model)
        steps.append({"step": "layernorm-as-instancenorm", "tool": "convbert_export", "rewritten": count})
    return model, steps


def _needs_our_library(model: onnx.ModelProto) -> bool:
    """Whether the graph already runs one of our custom ops (a ``custom-op`` export)."""
    from ..custom_ops import DOMAIN

    return any(node.domain == DOMAIN for node in model.graph.node)


class _QuietRootLogger:
    """Raise the root logger to ERROR inside the block."""

    def __enter__(self):
        import logging

        self._logger = logging.getLogger()
        self._level = self._logger.level
        self._logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        self._logger.setLevel(self._level)
        return False


def _save(model: onnx.ModelProto, directory: Path) -> None:
    from ..export.onnx import save_model

    save_model(model, directory)


def optimize(
    export_dir: str | Path,
    output_dir: str | Path,
    settings: OptimizeSettings | None = None,
    *,
    force: bool = False,
    progress: Progress | None = None,
    validation=None,
    model=None,
) -> OptimizeResult:
    """Write an optimized, validated copy of ``export_dir`` to ``output_dir``.

    ``validation`` (a :class:`~convbert_export.validate.ValidationSettings`) overrides the
    validation grid; tolerances and thresholds come from ``settings`` (one given in
    ``validation`` is refused, never silently replaced). ``model`` is the
    reference (a reference_model head or a checkpoint directory); None: the manifest's source.

    Raises :class:`ValidationFailedError` (after writing nothing) when the variant misses its
    tolerances or thresholds; the error carries the report.
    """
    from ..export.onnx import count_nodes

    settings = settings or OptimizeSettings()
    progress = progress or QUIET
    overridden = [name for name in ("atol", "rtol", "min_agreement", "min_cosine")
                  if validation is not None and getattr(validation, name) is not None]
    if overridden:
        raise InvalidInputError(
            f"optimize(validation=...) sets {', '.join(overridden)}, which optimize takes from its OptimizeSettings "
            "(tolerances fit for the precision); pass them as OptimizeSettings(...) and keep validation= for the grid"
        )
    reference = model  # `model` is the ONNX graph below
    export_dir = Path(export_dir)
    manifest = load_manifest(export_dir)
    if manifest.precision != "fp32" or manifest.backend != "onnxruntime":
        raise InvalidInputError(
            f"{export_dir} is already a {manifest.precision} {manifest.backend} variant; optimize the fp32 export it "
            "came from"
        )
    if settings.openvino and manifest.transformations:
        raise InvalidInputError(
            f"{export_dir} is an ONNX Runtime-optimized graph (fused com.microsoft ops); make OpenVINO variants from "
            "the plain fp32 export it came from"
        )
    source_model = export_dir / "model.onnx"
    if not source_model.is_file():
        raise InvalidInputError(f"export directory {str(export_dir)!r} has no model.onnx")
    problems = verify_checksums(export_dir, manifest)
    if problems:
        raise InvalidInputError(
            f"export directory {str(export_dir)!r} does not match its manifest: {'; '.join(problems)}; re-export the model"
        )
    check_no_overlap(output_dir, export_dir, "export directory", allow_same=True)
    started = time.perf_counter()
    source_size = sum(p.stat().st_size for p in export_dir.glob("model.onnx*"))
    with atomic_directory(output_dir, force=force) as tmp:
        for path in sorted(export_dir.iterdir()):
            if path.is_file() and path.name not in UNCHECKED and path.name not in MODEL_FILES:
                shutil.copyfile(path, tmp / path.name)
        backend, backend_options, counts = "onnxruntime", {}, None
        if settings.openvino:
            from ..export.openvino import get_variant, write_openvino_variant

            steps, backend_options, counts = write_openvino_variant(
                source_model, manifest, tmp, get_variant(settings.openvino), progress)
            backend = "openvino"
        else:
            model, steps = _write_onnx_variant(source_model, export_dir, manifest, tmp, settings, progress)
        outputs = manifest.outputs
        if settings.fp16 and not settings.keep_io_fp32:
            outputs = tuple(replace(o, dtype="float16") for o in outputs)
        new_manifest = replace(
            manifest,
            precision=settings.precision,
            outputs=outputs,
            transformations=tuple(manifest.transformations) + tuple(steps),
            source=manifest.source,
            # dynamic int8 quantizes activations with one scale per batch: a text's result
            # depends on its batch-mates (measured: up to 0.085 on conv-bert-base hidden states)
            batch_invariant=manifest.batch_invariant and settings.int8 != "dynamic",
            backend=backend,
            backend_options=backend_options,
            files=file_checksums(tmp),
        )
        write_manifest(tmp, new_manifest)
        report = None
        if settings.validate:
            report = _validate(tmp, settings, progress, display_path=output_dir, base=validation, model=reference)
            if not report.passed:
                raise ValidationFailedError(
                    f"the {settings.precision} variant of {export_dir} failed validation (nothing written): "
                    f"{report.summary()}", report)
        size = sum(p.stat().st_size for pattern in ("model.onnx*", "openvino_model.*") for p in tmp.glob(pattern))
        counts = counts if counts is not None else count_nodes(model)
    return OptimizeResult(Path(output_dir), settings.precision, list(steps), counts, size, source_size,
                          time.perf_counter() - started, report)


def _write_onnx_variant(source_model: Path, export_dir: Path, manifest: Manifest, tmp: Path,
                        settings: OptimizeSettings, progress: Progress) -> tuple[onnx.ModelProto, list[dict]]:
    """The ONNX Runtime variant: fusions, then fp16 or int8, saved into ``tmp``."""
    with progress.step("loading the model"):
        try:
            model = onnx.load(str(source_model))
        except (onnx.checker.ValidationError, OSError) as exc:  # e.g. external data outside the directory
            raise InvalidInputError(f"cannot load {source_model}: {exc}; re-export the model") from None
    with progress.step("fusing (pointwise conv, attention, SkipLayerNorm, BiasGelu)"):
        model, steps = optimize_model_proto(model, settings)
    _name_nodes(model)
    if settings.fp16:
        with progress.step("converting to float16"):
            model, step = to_fp16(model, settings.keep_io_fp32)
            steps.append(step)
    elif settings.int8:
        with tempfile.TemporaryDirectory(dir=tmp.parent, prefix=".optimize-") as work:
            float_path = Path(work) / "float.onnx"
            onnx.save_model(model, str(float_path))
            quiet_root = _QuietRootLogger()  # quantize_* log a pre-processing hint on the root logger
            if settings.int8 == "dynamic":
                with progress.step("quantizing (int8 dynamic, MatMul)"), quiet_root:
                    steps.append(quantize_int8_dynamic(float_path, Path(work) / "q.onnx", settings))
            else:
                feeds = calibration_feeds(export_dir, manifest, settings.calibration, settings.calibration_batches)
                with progress.step(f"calibrating and quantizing (int8 static QDQ, {len(feeds)} batches)"), quiet_root:
                    steps.append(quantize_int8_static(float_path, Path(work) / "q.onnx", settings, feeds))
            model = onnx.load(str(Path(work) / "q.onnx"))
    _save(model, tmp)
    return model, steps


def _validate(directory: Path, settings: OptimizeSettings, progress: Progress, display_path, base=None, model=None):
    from ..validate import ValidationSettings, validate

    atol, rtol = settings.tolerances()
    checks_thresholds = settings.precision != "fp32"
    vsettings = replace(
        base or ValidationSettings(),
        atol=atol, rtol=rtol,
        min_agreement=settings.min_agreement if checks_thresholds else None,
        min_cosine=settings.min_cosine if checks_thresholds else None,
    )
    return validate(directory, model, vsettings, progress=progress, raise_on_failure=False, display_path=display_path)
