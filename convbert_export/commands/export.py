"""``convbert-export export``: checkpoint or preset -> validated ONNX export directories."""

from __future__ import annotations

import click

from ..errors import ValidationFailedError
from ..manifest import DYNAMIC_CONV_MODES, PADDING_MODES
from ._common import emit_json, progress_for, quiet_json_options


@click.command("export")
@click.option("--model", "model_dir", type=click.Path(file_okay=False), help="HuggingFace-format checkpoint directory, or a Hub model id org/name[@revision] (a local directory of that name wins).")
@click.option("--preset", help="Built-in model shape with seeded random weights (demo, conv-bert-base, ...).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of a preset's random weights.")
@click.option("--task", "tasks", multiple=True,
              help="Task to export (repeatable). 'all': every task of a preset, or a checkpoint's own heads plus "
                   "feature-extraction. Default: the checkpoint's architectures.")
@click.option("--output", "-o", required=True, type=click.Path(), help="Export directory to create.")
@click.option("--opset", type=int, default=18, show_default=True, help="ONNX opset (17 or newer).")
@click.option("--dynamic-conv", type=click.Choice(DYNAMIC_CONV_MODES), default="decomposed", show_default=True,
              help="Lower the dynamic convolution to standard ops, or emit one custom DynamicConv node per layer.")
@click.option("--padding", type=click.Choice(PADDING_MODES), default="exact", show_default=True,
              help="exact: a padded text gives what it gives alone; transformers: reproduce transformers' padding leak.")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@click.option("--no-validate", is_flag=True, help="Skip validation against the PyTorch reference.")
@quiet_json_options
def command(model_dir, preset, seed, tasks, output, opset, dynamic_conv, padding, force, no_validate, quiet, as_json):
    """Export a ConvBERT checkpoint (or a preset) to ONNX and validate every output."""
    from ..export import ExportSettings, ModelSource, export_tasks
    from ..report import summary_table, validation_table

    source = ModelSource.from_options(model_dir, preset, seed)
    settings = ExportSettings(opset=opset, dynamic_conv=dynamic_conv, padding=padding, validate=not no_validate)
    progress = progress_for(quiet, as_json)
    try:
        results = export_tasks(source, list(tasks) or None, output, settings, force=force, progress=progress)
        failed = None
    except ValidationFailedError as exc:
        results = getattr(exc, "results", None)
        if results is None:
            raise
        failed = exc
    if as_json:
        # "passed" is null when nothing was validated (--no-validate): not validated is not passed
        validated = any(r.report is not None for r in results)
        emit_json({"passed": (failed is None) if validated else None, "validated": validated,
                   "exports": [r.to_dict() for r in results]})
    else:
        if not quiet:
            for result in results:
                if result.report is not None:
                    click.echo(f"\n[{result.task}] {result.path}\n{validation_table(result.report)}")
        click.echo("\n" + summary_table([r.summary_row() for r in results]))
    if failed is not None:
        raise failed
