"""``convbert-export optimize``: write a fused / int8 / fp16 variant of an export directory."""

from __future__ import annotations

import click

from ..export.openvino import VARIANTS
from ..optimize.settings import INT8_MODES
from ._common import emit_json, progress_for, quiet_json_options


@click.command("optimize")
@click.argument("export_dir", type=click.Path(file_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="Export directory to create.")
@click.option("--int8", type=click.Choice([m for m in INT8_MODES if m]),
              help="INT8 for CPUs: dynamic (weights int8, activations per call) or static (QDQ, calibrated).")
@click.option("--fp16", is_flag=True, help="Float16 weights and activations (for GPUs); LayerNorm and softmax stay fp32.")
@click.option("--openvino", type=click.Choice(list(VARIANTS)),
              help="Write an OpenVINO variant instead (IR + compile settings): f32, bf16 (needs AVX512_BF16/AMX), "
                   "int8 (int8 weights, per-token int8 activations: exact batching), int8-bf16.")
@click.option("--calibration", type=click.Path(dir_okay=False),
              help="JSON lines of texts ({\"text\": ...}) for --int8 static (default: the packaged texts).")
@click.option("--no-fuse", is_flag=True, help="Skip the graph fusions (quantize / convert the graph as exported).")
@click.option("--no-per-channel", is_flag=True, help="One weight scale per tensor instead of per output channel.")
@click.option("--fp16-io", is_flag=True, help="With --fp16: float16 graph outputs too (default: float32 outside).")
@click.option("--min-agreement", type=click.FloatRange(0, 1), default=0.99, show_default=True,
              help="Fail when int8/fp16 task agreement (argmax, top-5, span) is below this.")
@click.option("--min-cosine", type=click.FloatRange(0, 1), default=0.999, show_default=True,
              help="Fail when int8/fp16 hidden-state cosine is below this.")
@click.option("--model", "model_dir", type=click.Path(file_okay=False),
              help="Reference checkpoint for validation (default: the source recorded in the manifest).")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--no-validate", is_flag=True, help="Skip validation against the PyTorch reference.")
@quiet_json_options
def command(export_dir, output, int8, fp16, openvino, calibration, no_fuse, no_per_channel, fp16_io, min_agreement,
            min_cosine, model_dir, force, no_validate, quiet, as_json):
    """Write an optimized, validated copy of EXPORT_DIR (exit 1 when it misses its thresholds)."""
    from ..errors import ValidationFailedError
    from ..optimize import OptimizeSettings, optimize
    from ..report import validation_table

    settings = OptimizeSettings(
        fuse=not no_fuse, int8=int8, fp16=fp16, openvino=openvino, calibration=calibration, per_channel=not no_per_channel,
        keep_io_fp32=not fp16_io, validate=not no_validate, min_agreement=min_agreement, min_cosine=min_cosine,
    )
    try:
        result = optimize(export_dir, output, settings, force=force, progress=progress_for(quiet, as_json), model=model_dir)
    except ValidationFailedError as exc:
        if exc.report is not None and not as_json:
            click.echo(validation_table(exc.report))
        elif exc.report is not None:
            emit_json({"passed": False, "validation": exc.report.to_dict()})
        raise
    if as_json:
        validated = result.report is not None  # --no-validate: null, not a pass
        emit_json({"passed": True if validated else None, "validated": validated, **result.to_dict()})
        return
    if result.report is not None and not quiet:
        click.echo(validation_table(result.report))
    for step in result.transformations:
        details = ", ".join(f"{k}={v}" for k, v in step.items() if k not in ("step", "tool", "kept_float", "kept_fp32"))
        click.echo(f"  {step['step']}: {details}")
    click.echo(f"wrote {result.path} ({result.precision}, {result.size_bytes / 1e6:.1f} MB, was "
               f"{result.source_size_bytes / 1e6:.1f} MB) in {result.elapsed_s:.0f} s"
               + ("" if result.report is not None else " (not validated)"))
