"""``convbert-export validate``: re-run the validation of an export directory."""

from __future__ import annotations

import click

from ._common import emit_json, progress_for, quiet_json_options


@click.command("validate")
@click.argument("export_dir", type=click.Path(file_okay=False))
@click.option("--model", "model_dir", type=click.Path(file_okay=False),
              help="Reference checkpoint (default: the source recorded in the manifest).")
@click.option("--atol", type=float, help="Absolute tolerance (default: the task's, 1e-5 for fp32).")
@click.option("--rtol", type=float, help="Relative tolerance (default: the task's, 1e-5 for fp32).")
@click.option("--no-library", is_flag=True, help="For custom-op exports: run the model-local function, not the library.")
@click.option("--provider", type=click.Choice(["cpu", "cuda", "tensorrt", "openvino"]), default="cpu", show_default=True,
              help="ONNX Runtime provider to validate on (cuda/tensorrt need onnxruntime-gpu), or openvino.")
@quiet_json_options
def command(export_dir, model_dir, atol, rtol, no_library, provider, quiet, as_json):
    """Compare an export's ONNX Runtime outputs with the PyTorch reference; exit 1 on failure."""
    from ..report import validation_table
    from ..validate import ValidationSettings, validate

    settings = ValidationSettings(atol=atol, rtol=rtol, use_library=False if no_library else "auto", provider=provider)
    report = validate(export_dir, model_dir, settings, progress=progress_for(quiet, as_json), raise_on_failure=False)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(validation_table(report))
        click.echo(f"\n{'PASS' if report.passed else 'FAIL'}: {export_dir} (reports: validation.json, validation.md, validation.html)")
    if not report.passed:
        from ..errors import ValidationFailedError

        raise ValidationFailedError(f"validation failed: {report.summary()}", report)
