"""``convbert-export serve``: serve an export or engine directory with Ray Serve on this machine."""

from __future__ import annotations

import click


@click.command("serve")
@click.argument("export_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--replicas", default=1, show_default=True, type=click.IntRange(1))
@click.option("--max-batch-size", default=8, show_default=True, type=click.IntRange(1),
              help="Most records batched into one model call per replica.")
@click.option("--batch-wait-ms", default=5.0, show_default=True, type=click.FloatRange(0, 10_000),
              help="Longest wait for more records once one arrived.")
@click.option("--max-ongoing", default=16, show_default=True, type=click.IntRange(1),
              help="Requests in flight per replica; beyond it (and a queue as long) requests get 503.")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(0),
              help="ONNX Runtime intra-op threads per replica (0 = all cores).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--route-prefix", default="/", show_default=True)
def command(export_dir, replicas, max_batch_size, batch_wait_ms, max_ongoing, threads, port, route_prefix):
    """Serve DIR over HTTP on 127.0.0.1 (POST JSON records, get JSON answers) until Ctrl-C."""
    try:
        from ..serving.ray import RaySettings, serve_forever
    except ImportError as exc:
        from ..errors import MissingDependencyError

        raise MissingDependencyError(f"serve needs Ray Serve ({exc}): pip install 'convbert-export[ray]'") from None
    settings = RaySettings(replicas=replicas, max_batch_size=max_batch_size, batch_wait_ms=batch_wait_ms,
                           max_ongoing=max_ongoing, threads=threads)
    serve_forever(export_dir, settings, port=port, route_prefix=route_prefix,
                  on_ready=lambda url: click.echo(f"serving {export_dir} at {url} (POST JSON records; Ctrl-C stops)"))
