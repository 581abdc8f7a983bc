"""Options and output helpers shared by the CLI commands."""

from __future__ import annotations

import json

import click

from ..progress import Progress


def quiet_json_options(func=None, *, json_help: str = "Print machine-readable JSON on stdout.",
                       quiet_help: str = "No progress output."):
    """The shared ``--json`` and ``--quiet/-q`` flags; use bare, or called to reword their help."""
    def decorate(func):
        func = click.option("--json", "as_json", is_flag=True, help=json_help)(func)
        func = click.option("--quiet", "-q", is_flag=True, help=quiet_help)(func)
        return func

    return decorate(func) if func is not None else decorate


def progress_for(quiet: bool, as_json: bool) -> Progress:
    """Progress goes to stderr, so it never mixes with --json output on stdout."""
    return Progress(enabled=not quiet)


def emit_json(data) -> None:
    from ..fileio import json_safe

    click.echo(json.dumps(json_safe(data), indent=2, default=str))
