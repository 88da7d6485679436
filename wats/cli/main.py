"""Entry point of the ``wats-supervisor`` console script.

Each command group lives in its own module and registers itself here, so this file stays a table
of contents rather than a pile of commands.
"""

from __future__ import annotations

import typer

from wats import __version__

app = typer.Typer(
    name="wats-supervisor",
    help="Deliver test-station results to a WATS server, and run a WATS-compatible server locally.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def version() -> None:
    """Print the wats-supervisor version."""
    typer.echo(__version__)


def _register_commands() -> None:
    """Import command modules so they attach to ``app`` (kept late to avoid import cycles)."""
    from wats.cli import (  # noqa: F401
        config_cmd,
        events_cmd,
        server_cmd,
        supervisor_cmd,
    )

_register_commands()
