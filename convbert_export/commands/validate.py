"""``convbert-export validate``: re-run the validation of an export directory."""

from __future__ import annotations

import click

from ..runtime.factory import provider_choices
from ._common import emit_json, progress_for, quiet_json_options


@click.command("validate")
@click.argument("export_dir", type=click.Path(file_okay=False))  # or an engine directory
@click.option("--model", "model_dir", type=click.Path(file_okay=False),
              help="Reference checkpoint (default: the source recorded in the manifest).")
@click.option("--atol", type=float, help="Absolute tolerance (default: the task's, 1e-5 for fp32).")
@click.option("--rtol", type=float, help="Relative tolerance (default: the task's, 1e-5 for fp32).")
@click.option("--no-library", is_flag=True, help="For custom-op exports: run the model-local function, not the library.")
@click.option("--provider", type=click.Choice(provider_choices()), default=None,
              help="ONNX Runtime provider to validate an export on (default cpu; cuda/tensorrt need "
                   "onnxruntime-gpu), or openvino. An engine directory runs on TensorRT.")
@click.option("--save-inputs", type=click.Path(dir_okay=False), help="Write the worst case's inputs here (npz, named like the model's inputs).")
@click.option("--save-outputs", type=click.Path(dir_okay=False), help="Write the worst case's outputs here (npz; the reference's as NAME.reference).")
@click.option("--load-inputs", type=click.Path(dir_okay=False),
              help="Run exactly these inputs (an npz from --save-inputs) instead of the grid; the export's reports are left as they are.")
@quiet_json_options
def command(export_dir, model_dir, atol, rtol, no_library, provider, save_inputs, save_outputs, load_inputs, quiet, as_json):
    """Compare an export's (ONNX Runtime, OpenVINO) or engine's (TensorRT) outputs with the PyTorch
    reference; exit 1 on failure."""
    from ..report import validation_table
    from ..validate import ValidationSettings, validate

    settings = ValidationSettings(atol=atol, rtol=rtol, use_library=False if no_library else "auto", provider=provider,
                                  save_inputs=save_inputs, save_outputs=save_outputs, load_inputs=load_inputs)
    report = validate(export_dir, model_dir, settings, progress=progress_for(quiet, as_json), raise_on_failure=False,
                      write=not load_inputs)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(validation_table(report))
        if report.replay:
            click.echo(report.replay)
        where = (f"replayed {load_inputs}; the export's reports are unchanged" if load_inputs
                 else "reports: validation.json, validation.md, validation.html")
        click.echo(f"\n{'PASS' if report.passed else 'FAIL'}: {export_dir} ({where})")
    if not report.passed:
        from ..errors import ValidationFailedError

        raise ValidationFailedError(f"validation failed: {report.summary()}", report)
