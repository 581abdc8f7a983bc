"""``convbert-export build-ops``: build (or find) the DynamicConv custom-op library for ONNX Runtime."""

from __future__ import annotations

import json

import click

from ..progress import Progress


@click.command("build-ops")
@click.option("--force", is_flag=True, help="Rebuild even when a library for these sources is cached.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of the path.")
@click.option("--quiet", "-q", is_flag=True, help="Do not report build steps on stderr.")
def command(force: bool, as_json: bool, quiet: bool) -> None:
    """Build the DynamicConv custom-op library for ONNX Runtime and print its path.

    First gets the ONNX Runtime headers it compiles against: $ORT_INCLUDE_DIR, else the cache,
    else (Debian-family systems) Debian's libonnxruntime-dev, fetched without installing anything.

    The library is cached under ${CONVBERT_EXPORT_CACHE:-~/.cache/convbert-export}/ops/, keyed by
    the C++ sources, the onnxruntime version and the ONNX Runtime headers' API version.
    """
    from ..custom_ops import ensure_library

    info = ensure_library(build=True, force=force, progress=Progress(enabled=not quiet))
    if as_json:
        click.echo(json.dumps(info.as_dict(), indent=2))
    else:
        click.echo(str(info.path))
