"""Help and usage lines in words, not Python type names.

Recent typer versions label every option with the Python annotation it came from
(``--json <bool>``, ``--topic <list[str]>``, ``--count <int range>``) and write required
arguments in braces (``convert [OPTIONS] {file}``). A station user reads a flag as something to
give a value to, and ``<list[str]>`` as noise. The group class below rewrites the parameters of
every command once, when the command tree is built: a flag shows no value at all, an option
shows one word for what it takes (``TEXT``, ``INTEGER``, ``NUMBER``, ``FILE``), an argument is
written as click writes it (``FILE``, ``[WORKER]``). An explicit ``metavar`` is left alone.
"""

from __future__ import annotations

from typing import Any

import click
from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["HELP_OPTION_NAMES", "PlainHelpGroup", "value_word"]

HELP_OPTION_NAMES = ["-h", "--help"]
"""``-h`` works like ``--help`` on every command (sub-commands inherit the root's setting)."""

_WORDS = {
    "str": "TEXT",
    "int": "INTEGER",
    "float": "NUMBER",
    "bool": "BOOLEAN",
    "int range": "INTEGER",
    "float range": "NUMBER",
    "file": "FILE",
    "path": "PATH",
    "directory": "FOLDER",
    "datetime": "DATETIME",
}


def value_word(label: str | None) -> str:
    """One word for what a parameter takes, from typer's ``<label>`` (``<list[int]>`` →
    ``INTEGER``); choices (``<a|b>``) keep their values, as ``[a|b]``."""
    text = (label or "").strip().removeprefix("<").removesuffix(">").strip()
    while text.startswith("list[") and text.endswith("]"):
        text = text[len("list[") : -1]
    if "|" in text:
        return f"[{text}]"
    return _WORDS.get(text, text.upper() or "VALUE")


class _PlainArgument(TyperArgument):
    """An argument shown by name alone: no type column, click's usage spelling."""

    def display_type_rich(self, ctx: click.Context) -> str | None:
        return None

    def get_usage_pieces(self, ctx: click.Context) -> list[str]:
        name = self.display_name_raw
        text = name if self.required else f"[{name}]"
        return [text + ("..." if self.nargs != 1 else "")]


def _plain(param: click.Parameter, ctx: click.Context) -> None:
    if isinstance(param, TyperOption):
        if param.metavar is not None:
            return
        if param.is_flag or param.count:
            param.metavar = ""
        else:
            param.metavar = value_word(param.display_type(ctx))
    elif isinstance(param, TyperArgument):
        if param.metavar is None and param.name:
            param.metavar = param.name.upper()
        param.__class__ = _PlainArgument


def _plain_tree(command: click.Command) -> None:
    ctx = click.Context(command, help_option_names=HELP_OPTION_NAMES)
    for param in command.params:
        _plain(param, ctx)
    # click makes the help option on first use and caches it on the command: make it now, with
    # the names every command inherits from the root, so it is written plainly too
    help_option = command.get_help_option(ctx)
    if help_option is not None:
        _plain(help_option, ctx)
    for sub in getattr(command, "commands", {}).values():
        _plain_tree(sub)


class PlainHelpGroup(TyperGroup):
    """The root group: every command below it gets plain help (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain_tree(self)
