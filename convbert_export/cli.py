"""The ``convbert-export`` command line.

Each command is one function in its own module under ``convbert_export/commands/`` (a click
command named ``command``), registered in ``COMMANDS`` below and imported only when it runs, so
``convbert-export predict`` never imports torch. Errors the package raises on purpose become one
line on stderr. Exit status: 0 success, 1 validation failed, 2 bad usage or input (also a missing
optional dependency), 3 internal error (a bug: one line on stderr; set CONVBERT_EXPORT_TRACEBACK=1
for the traceback), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

import click

from .errors import ConvBertExportError, Terminated, reference_errors

#: exit status of an unexpected exception (a bug); 1 stays "validation failed", 2 "bad input"
EXIT_INTERNAL = 3
#: top-level modules of the `export` extra: a command that imports one without it installed
#: says so in one line (exit 2) instead of a traceback
EXPORT_EXTRA_MODULES = frozenset({"torch", "onnx", "onnxscript", "safetensors", "huggingface_hub"})
#: commands that always need the export extra (the PyTorch reference or the ONNX exporter);
#: checked before they start. Others (benchmark --torch-reference...) fail in one line when
#: they reach a missing module.
NEEDS_EXPORT_EXTRA = frozenset({"demo", "export", "validate", "optimize", "evaluate"})

# command name -> module under convbert_export.commands defining `command`
COMMANDS: dict[str, str] = {
    "demo": "demo",
    "export": "export",
    "validate": "validate",
    "predict": "predict",
    "build-ops": "build_ops",
    "optimize": "optimize",
    "benchmark": "benchmark",
    "build-engine": "build_engine",
    "triton": "triton",
    "serve": "serve",
    "evaluate": "evaluate",
}

_HELP = {
    "demo": "Export and validate every head of the built-in demo model.",
    "export": "Export a checkpoint or preset to ONNX and validate it.",
    "validate": "Validate an export directory against the PyTorch reference.",
    "predict": "Run an export directory on texts (JSON lines in, JSON lines out).",
    "build-ops": "Build the DynamicConv custom-op library for ONNX Runtime.",
    "optimize": "Write an optimized (fused, int8 or fp16) copy of an export directory.",
    "benchmark": "Benchmark export directories against the PyTorch reference.",
    "build-engine": "Build a TensorRT (or TensorRT for RTX) engine from an export directory.",
    "triton": "Write a Triton Inference Server model repository for exports or engines.",
    "serve": "Serve an export or engine directory over HTTP with Ray Serve.",
    "evaluate": "Score the reference and exports on labeled data (metrics, intervals, HTML report).",
}


def _available(name: str) -> bool:
    return importlib.util.find_spec(f"convbert_export.commands.{COMMANDS[name]}") is not None


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx):
        return [name for name in COMMANDS if _available(name)]

    def get_command(self, ctx, name):
        if name not in COMMANDS or not _available(name):
            return None
        module = importlib.import_module(f"convbert_export.commands.{COMMANDS[name]}")
        return module.command

    def format_commands(self, ctx, formatter):
        rows = [(name, _HELP.get(name, "")) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="convbert-export")
def cli():
    """Export ConvBERT to ONNX and TensorRT, prove the export right, and serve it."""


def _missing_export_extra(args: list[str]) -> str | None:
    """The first `export` extra module a command that always needs it cannot import (None: all
    there, or not such a command, or only asking for --help)."""
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in NEEDS_EXPORT_EXTRA or "--help" in args or "-h" in args:
        return None
    return next((m for m in ("torch", "onnx", "onnxscript", "safetensors")
                 if importlib.util.find_spec(m) is None), None)


def _export_extra_error(command: str, module: str) -> int:
    click.echo(
        f"error: `convbert-export {command}` needs the export extra ({module} is not installed; the "
        "base install only serves): pip install torch==2.13.0 'convbert-export[export]'", err=True)
    return 2


def main(argv=None) -> int:
    """Console entry point: run the group, turning our errors into one line and an exit code."""
    args = list(argv if argv is not None else sys.argv[1:])
    missing = _missing_export_extra(args)
    if missing:  # before any work or progress output
        return _export_extra_error(next(a for a in args if not a.startswith("-")), missing)
    try:
        with reference_errors():  # the reference model's own errors are ours here too
            cli.main(args=argv, prog_name="convbert-export", standalone_mode=False)
    except ConvBertExportError as exc:
        click.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except click.exceptions.Abort as exc:
        if isinstance(exc.__cause__, Terminated):  # click turns KeyboardInterrupt into Abort
            click.echo("terminated (SIGTERM); partial output removed", err=True)
            return 143
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except Terminated:
        click.echo("terminated (SIGTERM); partial output removed", err=True)
        return 143
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        return 130
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in EXPORT_EXTRA_MODULES:
            return _internal(exc)
        return _export_extra_error(next((a for a in args if a in COMMANDS), "this command"), exc.name)
    except Exception as exc:  # noqa: BLE001 - a bug: its own exit code, never 1 (validation failed)
        return _internal(exc)
    return 0


def _internal(exc: BaseException) -> int:
    """An unexpected exception (a bug): one line and EXIT_INTERNAL, the traceback on request."""
    if os.environ.get("CONVBERT_EXPORT_TRACEBACK"):
        import traceback

        traceback.print_exception(exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    click.echo(
        f"internal error (a bug in convbert-export): {type(exc).__name__}: {first}; rerun with "
        "CONVBERT_EXPORT_TRACEBACK=1 for the traceback and report it", err=True)
    return EXIT_INTERNAL

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
