"""Entry point of the ``wats-supervisor`` console script.

Each command group lives in its own module and registers itself here, so this file stays a table
of contents rather than a pile of commands.
"""

from __future__ import annotations

import inspect
import re
from typing import Annotated

import typer

from wats import __version__
from wats.cli.plain_help import HELP_OPTION_NAMES, PlainHelpGroup

app = typer.Typer(
    name="wats-supervisor",
    help="Deliver test-station results to a WATS server, and run a WATS-compatible server locally.",
    no_args_is_help=True,
    add_completion=False,
    cls=PlainHelpGroup,
    context_settings={"help_option_names": HELP_OPTION_NAMES},
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


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def flow_help(text: str) -> str:
    """``text`` with each paragraph's lines joined, so the help renderer can wrap it.

    Docstrings are wrapped at the source's line length, but typer's rich help keeps the single
    line breaks of every paragraph after the first: at any terminal width but the source's,
    lines then broke mid-sentence. Paragraphs (blank-line separated) stay; a paragraph starting
    with ``\\b`` keeps its lines, as click's convention says, and so does a line starting a
    list item (``- `` or ``* ``). Anything after ``\\f`` (click's cut-off) is left alone.
    """
    head, cut, tail = text.partition("\f")
    paragraphs = []
    for paragraph in _PARAGRAPH_BREAK.split(inspect.cleandoc(head)):
        if paragraph.startswith("\b"):
            paragraphs.append(paragraph)
            continue
        lines: list[str] = []
        for line in paragraph.splitlines():
            stripped = line.strip()
            if lines and not stripped.startswith(("- ", "* ")):
                lines[-1] = f"{lines[-1]} {stripped}"
            else:
                lines.append(stripped)
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs) + cut + tail


def _flow_command_help(group: typer.Typer) -> None:
    """Give every command and sub-group of ``group`` flowing help (see :func:`flow_help`).

    Done once here, after every module registered its commands, so no command's docstring has
    to be written as one long line and none can be forgotten.
    """
    for command in group.registered_commands:
        text = command.help if command.help is not None else inspect.getdoc(command.callback)
        if isinstance(text, str):
            command.help = flow_help(text)
    for sub in group.registered_groups:
        if isinstance(sub.help, str):
            sub.help = flow_help(sub.help)
        if sub.typer_instance is not None:
            if isinstance(sub.typer_instance.info.help, str):
                sub.typer_instance.info.help = flow_help(sub.typer_instance.info.help)
            _flow_command_help(sub.typer_instance)


_register_commands()
_flow_command_help(app)


if __name__ == "__main__":
    # Run as a script this module is ``__main__``, while the command modules register on
    # ``wats.cli.main.app``: call that one, or no sub-command would exist.
    from wats.cli.main import app as registered_app

    registered_app()
