"""``convbert-export evaluate``: task metrics on labeled data, reference vs exports."""

from __future__ import annotations

import click

from ._common import emit_json, progress_for, quiet_json_options


@click.command("evaluate")
@click.argument("exports", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--data", required=True, type=click.Path(dir_okay=False),
              help="Labeled examples: JSON lines (.jsonl) or CSV with the task's columns.")
@click.option("--task", help="The task (default: the exports'); must match them.")
@click.option("--column", "columns", multiple=True, metavar="NAME=FIELD",
              help="Read the task's field NAME from the file's FIELD (repeatable), e.g. label=sentiment.")
@click.option("--limit", type=click.IntRange(min=1), help="Evaluate the first N rows only.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--resamples", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Bootstrap resamples for confidence intervals (0: none).")
@click.option("--provider", help="Device or ONNX Runtime provider (cpu, cuda, tensorrt, ...; default: each directory's own).")
@click.option("--model", "model_dir", type=click.Path(file_okay=False),
              help="Reference checkpoint (default: the source recorded in the first export's manifest).")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Report directory to create (evaluation.json, evaluation.md, evaluation.html).")
@click.option("--force", is_flag=True, help="Replace an existing report directory.")
@quiet_json_options
def command(exports, data, task, columns, limit, batch_size, resamples, provider, model_dir, output, force, quiet, as_json):
    """Score the PyTorch reference and each EXPORT (export, optimized or engine directory) on the same labeled data."""
    from ..evaluate import EvaluationSettings, evaluate, parse_columns
    from ..report import evaluation_table

    settings = EvaluationSettings(task=task, columns=tuple(parse_columns(columns).items()), limit=limit,
                                  batch_size=batch_size, resamples=resamples, provider=provider)
    report = evaluate(list(exports), data, settings, model=model_dir, progress=progress_for(quiet, as_json),
                      output=output, force=force)
    if as_json:
        emit_json(report.to_dict())
    else:
        click.echo(evaluation_table(report.to_dict()))
        click.echo(f"\nreports: {output}/evaluation.html, evaluation.md, evaluation.json")
