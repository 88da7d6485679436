"""Entry point of the ``wats-supervisor`` console script.

Each command group lives in its own module and registers itself here, so this file stays a table
of contents rather than a pile of commands.
"""

from __future__ import annotations

from typing import Annotated

import typer

from wats import __version__

app = typer.Typer(
    name="wats-supervisor",
    help="Deliver test-station results to a WATS server, and run a WATS-compatible server locally.",
    no_args_is_help=True,
    add_completion=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"wats-supervisor {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Deliver test-station results to a WATS server, and run a WATS-compatible server locally."""


@app.command()
def version() -> None:
    """Print the wats-supervisor version."""
    typer.echo(__version__)


def _register_commands() -> None:
    """Import command modules so they attach to ``app`` (kept late to avoid import cycles)."""
    from wats.cli import (  # noqa: F401
        config_cmd,
        convert_cmd,
        converters_cmd,
        events_cmd,
        keys_cmd,
        login_cmd,
        queue_cmd,
        server_cmd,
        supervisor_cmd,
    )

_register_commands()


if __name__ == "__main__":
    # Run as a script this module is ``__main__``, while the command modules register on
    # ``wats.cli.main.app``: call that one, or no sub-command would exist.
    from wats.cli.main import app as registered_app

    registered_app()
