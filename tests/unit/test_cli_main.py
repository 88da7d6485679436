"""The top-level command: version flag and the command list a new user sees."""

from __future__ import annotations

from typer.testing import CliRunner

from wats import __version__
from wats.cli.main import app


def test_version_flag_prints_the_version_and_exits_zero() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"wats-supervisor {__version__}"


def test_help_lists_every_command_group() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("start", "stop", "status", "restart", "instances", "events", "monitor"):
        assert command in result.output
    for command in ("config", "server", "version"):
        assert command in result.output
