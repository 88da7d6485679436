"""The top-level command: version flag and the command list a new user sees."""

from __future__ import annotations

import re
from typing import Any

import typer
from rich.text import Text
from typer.testing import CliRunner

from wats import __version__
from wats.cli.main import app, flow_help
from wats.cli.plain_help import value_word


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


def _commands() -> list[tuple[list[str], Any]]:
    """Every command and group of the real app, with the words that invoke it."""
    found: list[tuple[list[str], Any]] = []

    def walk(command: Any, path: list[str]) -> None:
        found.append((path, command))
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_help_paragraph_is_one_line_so_the_terminal_wraps_it() -> None:
    # docstrings are wrapped at 100 columns in the source; kept, those breaks split sentences
    # wherever the terminal is not exactly that wide (status, convert, events --help...)
    for path, command in _commands():
        for paragraph in (command.help or "").split("\n\n"):
            if not paragraph.startswith("\b"):
                assert "\n" not in paragraph, f"{' '.join(path)}: {paragraph!r}"


def test_status_help_keeps_a_sentence_on_one_line_on_a_wide_terminal() -> None:
    result = CliRunner().invoke(app, ["status", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert any(
        "Who is logged in where" in line and "not from the supervisor." in line
        for line in result.output.splitlines()
    ), result.output


def test_no_help_text_is_taken_for_rich_markup() -> None:
    # rich (typer's help renderer) reads "[bus]" as a style tag and drops it: "(default:  key_dir)"
    texts = [
        (" ".join(path) or "(root)", text)
        for path, command in _commands()
        for text in [command.help, *(getattr(p, "help", None) for p in command.params)]
        if text
    ]
    for where, text in texts:
        assert Text.from_markup(text).plain == text.replace("\\[", "["), where
        assert "``" not in text, f"{where}: reST double backticks show literally: {text!r}"


def test_flow_help_joins_lines_but_keeps_paragraphs_lists_and_verbatim_blocks() -> None:
    text = "Title line.\n\nOne sentence\nwrapped.\n- item one\n- item two\n\n\bkept\nas is\f cut"
    assert flow_help(text) == (
        "Title line.\n\nOne sentence wrapped.\n- item one\n- item two\n\n\bkept\nas is\f cut"
    )


_PYTHON_TYPE = re.compile(r"<(?:bool|str|int|float|list\[[^\]]*\]|[a-z]+ range|path|file)>")


def test_dash_h_is_help_on_every_command() -> None:
    for path, _command in _commands():
        short = CliRunner().invoke(app, [*path, "-h"], env={"COLUMNS": "120"})
        long = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert short.exit_code == 0, (path, short.output)
        assert short.output == long.output, path


def test_help_and_usage_show_words_not_python_type_names() -> None:
    for path, _command in _commands():
        result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
        assert result.exit_code == 0, (path, result.output)
        assert not _PYTHON_TYPE.search(result.output), (path, result.output)
        usage = next(line for line in result.output.splitlines() if "Usage:" in line)
        assert "{" not in usage, usage
    convert = CliRunner().invoke(app, ["convert", "--help"], env={"COLUMNS": "120"})
    assert "Usage: wats-supervisor convert [OPTIONS] FILE" in convert.output
    flag = next(line for line in convert.output.splitlines() if "--tree" in line)
    assert "BOOLEAN" not in flag and "<" not in flag
    events = CliRunner().invoke(app, ["events", "--help"], env={"COLUMNS": "120"})
    assert re.search(r"--topic\s+TEXT", events.output), events.output
    assert re.search(r"--count\s+INTEGER", events.output), events.output


def test_a_missing_argument_is_named_as_the_usage_line_writes_it() -> None:
    result = CliRunner().invoke(app, ["restart"])
    assert result.exit_code == 2
    assert "Usage: wats-supervisor restart [OPTIONS] WORKER" in result.output
    assert "Missing argument 'WORKER'" in result.output


def test_value_word_turns_type_labels_into_words() -> None:
    assert value_word("<str>") == "TEXT"
    assert value_word("<list[str]>") == "TEXT"
    assert value_word("<int range>") == "INTEGER"
    assert value_word("<float>") == "NUMBER"
    assert value_word("<pending|failed>") == "[pending|failed]"
