"""``convbert-export demo``: the main job on the built-in demo model, offline, in seconds."""

from __future__ import annotations

import click

from ..manifest import DYNAMIC_CONV_MODES
from ._common import emit_json, progress_for, quiet_json_options


@click.command("demo")
@click.option("--output", "-o", default="demo_export", show_default=True, type=click.Path(), help="Where to write the exports.")
@click.option("--dynamic-conv", type=click.Choice(DYNAMIC_CONV_MODES), default="decomposed", show_default=True)
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@quiet_json_options
def command(output, dynamic_conv, force, quiet, as_json):
    """Build the demo preset, export all six task heads, validate them, print a summary."""
    import time

    from ..errors import ValidationFailedError
    from ..export import ExportSettings, ModelSource, export_tasks
    from ..report import summary_table

    started = time.perf_counter()
    settings = ExportSettings(dynamic_conv=dynamic_conv)
    try:
        results = export_tasks(ModelSource.from_preset("demo"), ["all"], output, settings, force=force,
                               progress=progress_for(quiet, as_json))
        failed = None
    except ValidationFailedError as exc:
        results, failed = getattr(exc, "results", None), exc
        if results is None:
            raise
    elapsed = time.perf_counter() - started
    if as_json:
        emit_json({"passed": failed is None, "seconds": round(elapsed, 1), "exports": [r.to_dict() for r in results]})
    else:
        click.echo("\n" + summary_table([r.summary_row() for r in results]))
        click.echo(f"\n{len(results)} exports in {output}/ ({elapsed:.0f} s); each has validation.md and manifest.json")
    if failed is not None:
        raise failed
