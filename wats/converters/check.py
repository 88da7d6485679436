"""Checks of the ``[[converters]]`` entries that need the converter classes themselves.

The config model checks what it can without importing converters (names, folders, thresholds).
Two mistakes need the classes: arguments the converter does not take (``delimitr = ";"``), and
two converters watching one folder for the same files (only one of them would ever see each
file, so the other's files fail with the first one's error). Both used to pass ``config
validate`` and ``start`` and show up only as files in error/. They are refused here, naming the
field, by ``config validate`` and at start.

Built-in converters are ours and are always loaded. A site's converter is the site's code: it
is loaded only where the caller says so (``config validate``, run by a person), not by the
supervisor at start, which never runs converter code outside the sandbox.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from wats.config import (
    ClientConfig,
    ConverterConfig,
    converter_field,
    converter_folders,
    site_converters_dir,
)
from wats.config.builtins import BUILTIN_CONVERTERS
from wats.converters.base import ConverterArgumentsError, ConverterBase
from wats.converters.loader import ConverterLoadError, load_converter_class

__all__ = ["ConverterProblem", "converter_problems", "problem_lines"]


@dataclass(frozen=True)
class ConverterProblem:
    """One problem, with the config field it is about (``[[converters]] "csv" arguments``)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass(frozen=True)
class _Watching:
    index: int
    name: str
    folder: Path
    recursive: bool
    patterns: tuple[str, ...]


def converter_problems(cfg: ClientConfig, *, load_site: bool) -> list[ConverterProblem]:
    """Every problem of the enabled converters in ``cfg``; empty when there is none.

    ``load_site``: also import the site's own converters (their load errors become problems);
    without it they are taken on trust and, when their file patterns come from the class,
    left out of the shared-folder check.
    """
    problems: list[ConverterProblem] = []
    watching: list[_Watching] = []
    code_dir = site_converters_dir(cfg)
    for index, conv in enumerate(cfg.converters):
        if not conv.enabled:
            continue
        cls: type[ConverterBase] | None = None
        if conv.converter.lower() in BUILTIN_CONVERTERS or load_site:
            try:
                cls = load_converter_class(conv.converter, code_dir)
            except ConverterLoadError as exc:
                problems.append(
                    ConverterProblem(converter_field(index, conv.name, ["converter"]), str(exc))
                )
                continue
            try:
                cls.parse_arguments(conv.arguments)
            except ConverterArgumentsError as exc:
                problems.append(
                    ConverterProblem(converter_field(index, conv.name, ["arguments"]), str(exc))
                )
        seen = _watching(cfg, index, conv, cls)
        if seen is not None:
            watching.append(seen)
    problems.extend(_shared_folders(watching))
    return problems


def problem_lines(problems: list[ConverterProblem], source: Path | None) -> list[str]:
    """The problems as every config error is printed: ``error: <file>: <field>: <message>``."""
    where = f"{source}: " if source else ""
    return [f"error: {where}{problem}" for problem in problems]


def _watching(
    cfg: ClientConfig, index: int, conv: ConverterConfig, cls: type[ConverterBase] | None
) -> _Watching | None:
    """What a file converter watches for; None for folder and scheduled ones, or unknown."""
    kind = conv.kind or (cls.kind if cls is not None else None)
    if kind != "file":
        return None
    if conv.file_patterns is not None:
        patterns = tuple(conv.file_patterns)
    elif cls is not None:
        patterns = tuple(cls.file_patterns)
    else:
        return None
    folder = converter_folders(cfg, conv).watch.resolve()
    return _Watching(index, conv.name, folder, conv.recursive, patterns)


def _shared_folders(watching: list[_Watching]) -> list[ConverterProblem]:
    """Two file converters that would compete for the same files."""
    problems = []
    for later_pos, later in enumerate(watching):
        for earlier in watching[:later_pos]:
            if not _folders_meet(earlier, later):
                continue
            clash = _overlap(earlier.patterns, later.patterns)
            if clash is None:
                continue
            problems.append(
                ConverterProblem(
                    converter_field(later.index, later.name, ["file_patterns"]),
                    f"converter {later.name!r} watches {later.folder} for the same files as "
                    f"{earlier.name!r} ({clash}): each file would go to one of them only. Give "
                    "them different watch folders, or file_patterns that do not overlap",
                )
            )
    return problems


def _folders_meet(a: _Watching, b: _Watching) -> bool:
    if a.folder == b.folder:
        return True
    return (a.recursive and a.folder in b.folder.parents) or (
        b.recursive and b.folder in a.folder.parents
    )


def _overlap(first: tuple[str, ...], second: tuple[str, ...]) -> str | None:
    """A description of a file name both pattern lists take, or None when they look disjoint.

    Patterns are compared with each other (a pattern matching the other's text means every name
    the narrower one takes, the wider one takes too), case-folded as the watcher matches names.
    No patterns means everything. Two wildcards that merely intersect (``a*`` and ``*z``) are
    not caught: rare in practice, and exact overlap detection would need more than fnmatch.
    """
    if not first or not second:
        return "one of them takes every file"
    for a in first:
        for b in second:
            fa, fb = a.casefold(), b.casefold()
            if fa == fb or fnmatch.fnmatchcase(fa, fb) or fnmatch.fnmatchcase(fb, fa):
                return f"{a!r} and {b!r}"
    return None
