"""``convbert-export build-engine``: build a TensorRT (or TensorRT for RTX) engine directory."""

from __future__ import annotations

import click

from ..engine.backends import BACKENDS
from ._common import emit_json, progress_for, quiet_json_options

PROFILE_HELP = (
    "Optimization profile, repeatable: BATCH_MIN,OPT,MAX:SEQ_MIN,OPT,MAX (multiple-choice: "
    "BATCH:CHOICES:SEQ, each MIN,OPT,MAX); a single number N means N,N,N. Default: batch "
    "1,8,32, sequence 1,128,max_position_embeddings (choices 1,4,8)."
)


@click.command("build-engine")
@click.argument("export_dir", type=click.Path(file_okay=False))
@click.option("--output", "-o", "output", required=True, type=click.Path(file_okay=False),
              help="Engine directory to write (model.plan, engine.json, tokenizer files).")
@click.option("--backend", type=click.Choice(list(BACKENDS)), default="tensorrt",
              show_default=True, help="TensorRT (data-center GPUs, plugins, FP16/INT8 flags) or "
              "TensorRT for RTX (strongly typed; builds without a GPU).")
@click.option("--fp16", is_flag=True, help="Allow FP16 kernels (TensorRT only; for RTX build from an fp16 export).")
@click.option("--int8", is_flag=True, help="INT8 with calibration (TensorRT only; needs --calibration).")
@click.option("--calibration", type=click.Path(dir_okay=False),
              help="JSON-lines calibration inputs ({\"text\": ...} or {\"input_ids\": ...} per line).")
@click.option("--profile", "profiles", multiple=True, metavar="SPEC", help=PROFILE_HELP)
@click.option("--timing-cache", type=click.Path(dir_okay=False),
              help="Timing cache file, loaded before and saved after the build.")
@click.option("--workspace", type=click.IntRange(min=1), metavar="MB", help="Builder workspace limit in MB.")
@click.option("--plugin", "plugin_library", type=click.Path(dir_okay=False),
              help="DynamicConv plugin library for custom-op exports (TensorRT only; default $CONVBERT_TRT_PLUGIN).")
@click.option("--force", is_flag=True, help="Replace an existing output directory.")
@quiet_json_options
def command(export_dir, output, backend, fp16, int8, calibration, profiles, timing_cache, workspace,
            plugin_library, force, quiet, as_json):
    """Build model.plan + engine.json from EXPORT_DIR (an export directory)."""
    from ..engine import EngineSettings, build_engine, read_engine_info

    settings = EngineSettings(
        backend=backend, fp16=fp16, int8=int8, calibration=calibration, profiles=profiles,
        timing_cache=timing_cache, workspace_mb=workspace, plugin_library=plugin_library, force=force,
    )
    path = build_engine(export_dir, output, settings, progress=progress_for(quiet, as_json))
    info = read_engine_info(path)
    if as_json:
        emit_json({"engine_dir": str(path), **info.to_dict()})
    elif not quiet:
        profiles_text = "; ".join(str(p) for p in info.profiles)
        click.echo(f"built {path}: {info.backend} {info.backend_version}, {info.task}, "
                   f"{info.precision}, target {info.target.get('gpu')}, profiles [{profiles_text}]")
