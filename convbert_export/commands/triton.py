"""``convbert-export triton``: write a Triton Inference Server model repository."""

from __future__ import annotations

import click

from ._common import emit_json, quiet_json_options


@click.command("triton")
@click.argument("sources", nargs=-1, required=True, metavar="EXPORT_OR_ENGINE_DIR...",
                type=click.Path(exists=True, file_okay=False))
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False), help="Repository directory to write.")
@click.option("--name", help="Model name (one directory only; default: the directory's name).")
@click.option("--max-batch-size", default=8, show_default=True, type=click.IntRange(1))
@click.option("--instances", default=1, show_default=True, type=click.IntRange(1), help="Instances per model.")
@click.option("--kind", default="cpu", show_default=True, type=click.Choice(["cpu", "gpu"]))
@click.option("--max-queue-delay-us", default=1000, show_default=True, type=click.IntRange(0))
@click.option("--max-queue-size", default=64, show_default=True, type=click.IntRange(1),
              help="Requests waiting beyond this are rejected at once.")
@click.option("--ensemble/--no-ensemble", default=True, show_default=True,
              help="Also write the text-in/JSON-out Python steps and the ensemble.")
@click.option("--allow-unsafe-batching", is_flag=True,
              help="Dynamic batching even for a padding-leaking or batch-dependent export.")
@click.option("--repository-mount", default="/models", show_default=True,
              help="Where the repository is mounted in the Triton container (absolute library paths).")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@quiet_json_options
def command(sources, output, name, max_batch_size, instances, kind, max_queue_delay_us, max_queue_size,
            ensemble, allow_unsafe_batching, repository_mount, force, quiet, as_json):
    """Write a Triton model repository for export or TensorRT engine directories."""
    from ..serving.triton import TritonSettings, write_repository

    settings = TritonSettings(
        name=name, max_batch_size=max_batch_size, instances=instances, kind=kind,
        max_queue_delay_us=max_queue_delay_us, max_queue_size=max_queue_size, ensemble=ensemble,
        allow_unsafe_batching=allow_unsafe_batching, repository_mount=repository_mount,
    )
    repo = write_repository(list(sources), output, settings, force=force)
    if as_json:
        emit_json({"repository": str(repo.path), "models": repo.models, "warnings": repo.warnings,
                   "files": [{"path": p, "bytes": n} for p, n in repo.files()]})
        return
    for note in repo.warnings:
        click.echo(f"note: {note}", err=True)
    if not quiet:
        for model in repo.models:
            click.echo(f"{model['name']}: {model['platform']} ({model['task']})")
        click.echo(f"wrote {repo.path}: tritonserver --model-repository {repo.path}")
