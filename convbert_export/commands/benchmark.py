"""``convbert-export benchmark``: latency of export directories (and the PyTorch reference), interleaved."""

from __future__ import annotations

import click

from ..runtime.factory import provider_choices
from ._common import emit_json, progress_for, quiet_json_options


@click.command("benchmark")
@click.argument("export_dirs", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--provider", type=click.Choice(provider_choices()), default=None,
              help="ONNX Runtime provider for export directories (default cpu), or openvino; engine "
                   "directories run on TensorRT.")
@click.option("--torch-reference", is_flag=True, help="Also time the PyTorch reference (fp32 eager).")
@click.option("--batch", "batches", default="1,8,32", show_default=True, help="Batch sizes, comma-separated.")
@click.option("--sequence", "sequences", default="32,128,512", show_default=True, help="Sequence lengths, comma-separated.")
@click.option("--threads", type=click.IntRange(min=1), default=2, show_default=True, help="Intra-op threads of every backend.")
@click.option("--repeats", type=click.IntRange(min=1), default=20, show_default=True, help="Timed calls per backend and grid point.")
@click.option("--warmup", type=click.IntRange(min=0), default=2, show_default=True, help="Untimed calls per backend and grid point.")
@click.option("--budget", type=click.FloatRange(min=0), default=60.0, show_default=True,
              help="Seconds per grid point (all backends); stops repeating early, after at least 3 repeats.")
@click.option("--no-floor", is_flag=True, help="Skip the fp32 GEMM floor measurement.")
@click.option("--json-out", type=click.Path(dir_okay=False), help="Write the full results as JSON to this file.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False),
              help="Write an HTML report (latency against batch size) to this file.")
@quiet_json_options
def command(export_dirs, provider, torch_reference, batches, sequences, threads, repeats, warmup, budget, no_floor,
            json_out, html_out, quiet, as_json):
    """Time EXPORT_DIR... (export or TensorRT engine directories) over a batch x sequence grid:
    p50/p90/p99 latency and throughput."""
    from ..bench import BenchSettings, benchmark, parse_int_list, write_reports

    settings = BenchSettings(
        batches=parse_int_list(batches, "--batch"), sequences=parse_int_list(sequences, "--sequence"), threads=threads,
        repeats=repeats, warmup=warmup, budget_s=budget, torch_reference=torch_reference, floor=not no_floor,
        provider=provider,
    )
    result = benchmark(export_dirs, settings, progress=progress_for(quiet, as_json))
    write_reports(result, json_out=json_out, html_out=html_out)
    if as_json:
        emit_json(result.to_dict())
        return
    click.echo(result.table())
    for note in result.notes:
        click.echo(f"note: {note}")
    if json_out:
        click.echo(f"results: {json_out}")
