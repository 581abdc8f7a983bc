"""``convbert-export build-ops``: build (or find) the DynamicConv custom-op library for ONNX Runtime."""

from __future__ import annotations

import click

from ._common import emit_json, progress_for, quiet_json_options


@click.command("build-ops")
@click.option("--force", is_flag=True, help="Rebuild even when a library for these sources is cached.")
@quiet_json_options(json_help="Print a JSON object instead of the path.",
                    quiet_help="Do not report build steps on stderr.")
def command(force: bool, quiet: bool, as_json: bool) -> None:
    """Build the DynamicConv custom-op library for ONNX Runtime and print its path.

    First gets the ONNX Runtime headers it compiles against: $ORT_INCLUDE_DIR, else the cache,
    else (Debian-family systems) Debian's libonnxruntime-dev, fetched without installing anything.

    The library is cached under ${CONVBERT_EXPORT_CACHE:-~/.cache/convbert-export}/ops/, keyed by
    the C++ sources, the onnxruntime version and the ONNX Runtime headers' API version.
    """
    from ..custom_ops import ensure_library

    info = ensure_library(build=True, force=force, progress=progress_for(quiet, as_json))
    if as_json:
        emit_json(info.as_dict())
    else:
        click.echo(str(info.path))
