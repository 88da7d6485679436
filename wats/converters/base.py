"""The converter SDK: what a converter is given, what it returns, and the class it extends.

A converter turns one test-station output (a file, a folder, or nothing at all for a scheduled
converter) into WATS reports. It runs inside the sandbox (wats.converters.sandbox), so it gets
everything it needs through :class:`ConverterContext` - the station identity, its typed
arguments, cached reference data and a logger - and nothing that reaches the network. Built-in
converters (wats.converters.builtin) use exactly this API, so a site's own converter is a
first-class citizen. Guide: docs/converters/writing-a-converter.md.
"""

from __future__ import annotations

import difflib
import fnmatch
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar, Literal

import structlog
from pydantic import AliasChoices, BaseModel, ConfigDict, ValidationError

from wats.api.models import UURReport, UUTReport
from wats.api.station import Station

__all__ = [
    "SNIFF_BYTES",
    "ConverterArgumentsError",
    "ConverterBase",
    "ConverterContext",
    "ConverterKind",
    "ConverterResult",
    "ConverterSource",
    "NoArguments",
    "ReferenceLookup",
    "matches_patterns",
    "read_source",
]

ConverterKind = Literal["file", "folder", "scheduled"]
SNIFF_BYTES = 64 * 1024
"""How much of a file ``ConverterSource.read_head`` gives by default."""
AnyReport = UUTReport | UURReport


class NoArguments(BaseModel):
    """The argument schema of a converter that takes none: any key given is an error."""

    model_config = ConfigDict(extra="forbid")


class ConverterArgumentsError(ValueError):
    """A converter's ``arguments`` from the config do not fit its ``Arguments`` schema.

    ``str()`` names the converter and each offending argument, ready to show a user.
    """


def matches_patterns(name: str, patterns: Iterable[str]) -> bool:
    """Whether ``name`` matches any fnmatch pattern, ignoring case on every platform.

    Stations write ``RESULT.XML`` as readily as ``result.xml``; case must not decide whether a
    result is delivered. No patterns means "everything matches".
    """
    patterns = tuple(patterns)
    if not patterns:
        return True
    folded = name.casefold()
    return any(fnmatch.fnmatchcase(folded, pattern.casefold()) for pattern in patterns)


@dataclass(frozen=True)
class ConverterSource:
    """What to convert: a file (file kind) or a folder (folder and scheduled kinds).

    Reading goes through these helpers so a converter never needs to know where the pending
    folder is; the path is there for converters that must hand it to a library.
    """

    path: Path

    @property
    def name(self) -> str:
        """The file or folder name (as the station wrote it)."""
        return self.path.name

    @property
    def is_folder(self) -> bool:
        """True for a folder source (folder and scheduled kinds)."""
        return self.path.is_dir()

    @property
    def size(self) -> int:
        """Size in bytes: the file's, or the sum of the files in the folder."""
        if self.path.is_dir():
            return sum(p.stat().st_size for p in self.files())
        return self.path.stat().st_size

    def read_bytes(self) -> bytes:
        """The whole file's content."""
        return self.path.read_bytes()

    def read_head(self, size: int = SNIFF_BYTES) -> bytes:
        """The file's first ``size`` bytes (all of a shorter file): what ``validate()`` sniffs,
        so telling formats apart costs the same for a 10 MB file as for a 10 KB one."""
        with self.path.open("rb") as handle:
            return handle.read(size)

    def read_text(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        """The whole file as text (UTF-8 by default; a BOM is dropped for UTF-8)."""
        if encoding.replace("-", "").lower() == "utf8":
            encoding = "utf-8-sig"
        return self.path.read_text(encoding=encoding, errors=errors)

    def files(self) -> list[Path]:
        """Every regular file inside a folder source, recursively, sorted by relative path.

        Temp files (``.*.tmp``, written by wats.fsutil) are left out, and so are symlinks: a
        link dropped into a watch folder must not make a converter read (and the pipeline
        upload) a file from elsewhere. A file source returns itself, so a converter can treat
        both kinds alike.
        """
        if not self.path.is_dir():
            return [self.path]
        found = [
            p
            for p in self.path.rglob("*")
            if p.is_file()
            and not p.is_symlink()
            and not (p.name.startswith(".") and p.name.endswith(".tmp"))
        ]
        return sorted(found, key=lambda p: p.relative_to(self.path).as_posix())


def read_source(source: ConverterSource) -> tuple[bytes, str | None]:
    """The source file's bytes, or ``(b"", reason)`` when it cannot be read or is empty.

    Every file converter starts this way; the reason is worded for the operator who reads the
    error file (``cannot read X: Permission denied``, ``the file is empty``), so a converter can
    pass it straight to :meth:`ConverterResult.fail`.
    """
    try:
        data = source.read_bytes()
    except OSError as exc:
        return b"", f"cannot read {source.name}: {exc.strerror or exc}"
    if not data.strip():
        return b"", "the file is empty"
    return data, None


class ReferenceLookup:
    """Reference data (processes) from the sync worker's cache, for converters that only know
    an operation's name or code.

    Read from ``<instance cache>/reference.json`` (written by wats.workers.sync); a missing or
    unreadable cache gives an empty lookup rather than an error, because a station that has
    never been online can still convert reports that carry their process code.
    """

    def __init__(self, processes: Iterable[dict[str, Any]] = ()) -> None:
        self._by_code: dict[int, str] = {}
        self._by_name: dict[str, int] = {}
        for process in processes:
            code, name = process.get("code"), process.get("name")
            if isinstance(code, int) and not isinstance(code, bool) and isinstance(name, str):
                self._by_code.setdefault(code, name)
                self._by_name.setdefault(name.strip().casefold(), code)

    @classmethod
    def from_file(cls, path: Path | None) -> ReferenceLookup:
        """The lookup of a cache file; empty if ``path`` is None, absent or not a cache."""
        if path is None:
            return cls()
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        processes = data.get("processes") if isinstance(data, dict) else None
        if not isinstance(processes, list):
            return cls()
        return cls(p for p in processes if isinstance(p, dict))

    def process_code(self, name: str) -> int | None:
        """The code of the process called ``name`` (case and outer spaces ignored), or None."""
        return self._by_name.get(name.strip().casefold())

    def process_name(self, code: int) -> str | None:
        """The name of the process with ``code``, or None."""
        return self._by_code.get(code)

    def __len__(self) -> int:
        return len(self._by_code)

    def __repr__(self) -> str:
        return f"ReferenceLookup(processes={len(self)})"


def _local_now() -> datetime:
    return datetime.now().astimezone()


@dataclass
class ConverterContext:
    """Everything a conversion may use besides its source. Deliberately no network access and
    no API client: a converter must give the same answer offline, and inside the sandbox.

    ``arguments`` is the converter's validated ``Arguments`` instance; ``station`` is the
    identity the reports will be stamped with (the converter worker stamps it regardless);
    ``now()`` is the clock to use for report start times, so tests can fix it.
    """

    station: Station
    arguments: BaseModel = field(default_factory=NoArguments)
    reference: ReferenceLookup = field(default_factory=ReferenceLookup)
    log: Any = field(default_factory=lambda: structlog.get_logger("wats.converter"))
    clock: Callable[[], datetime] = _local_now

    def now(self) -> datetime:
        """The current time, timezone-aware (local offset), from the context's clock."""
        return self.clock()


@dataclass
class ConverterResult:
    """The outcome of one conversion: the reports, and how sure the converter is of them.

    ``confidence`` (0..1) is compared with the converter's alarm and reject thresholds by the
    converter worker. A failure carries a ``message`` a user can act on (which field, which
    line); it is what lands in ``<file>.error.json``.
    """

    success: bool
    reports: list[AnyReport] = field(default_factory=list)
    confidence: float = 1.0
    message: str = ""
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must be between 0 and 1, got {self.confidence}")

    @classmethod
    def ok(
        cls,
        reports: AnyReport | Iterable[AnyReport],
        confidence: float = 1.0,
        *,
        message: str = "",
        warnings: Iterable[str] = (),
    ) -> ConverterResult:
        """A successful conversion of one report or several."""
        listed = [reports] if isinstance(reports, UUTReport | UURReport) else list(reports)
        return cls(True, listed, confidence, message, list(warnings))

    @classmethod
    def fail(cls, message: str, *, warnings: Iterable[str] = ()) -> ConverterResult:
        """A failed conversion: no reports, confidence 0, and why."""
        return cls(False, [], 0.0, message, list(warnings))


class ConverterBase(ABC):
    """Base class of every converter, built-in or a site's own.

    Subclasses set the class attributes and implement :meth:`convert`; :meth:`validate` is
    optional. Instances are created with no arguments, once per sandbox, and may be reused
    for many sources, so keep per-source state in local variables.
    """

    name: ClassVar[str] = ""
    """Short unique name, used in logs, events and report ids (changing it changes the ids)."""
    version: ClassVar[str] = "1.0"
    file_patterns: ClassVar[tuple[str, ...]] = ()
    """fnmatch patterns (case-insensitive) of the files it takes; a config may override them."""
    kind: ClassVar[ConverterKind] = "file"
    Arguments: ClassVar[type[BaseModel]] = NoArguments
    """Typed argument schema; config ``arguments = {...}`` is validated against it."""
    description: ClassVar[str] = ""
    """One line for ``wats-supervisor converters list`` (defaults to the docstring's first)."""
    source_ids: ClassVar[bool] = False
    """True when the format carries report ids of its own (WSJF, WSXF): the pipeline then keeps
    each report's ``id`` as the converter set it from the source, so references between
    reports (a repair's ``uur.refUUT``) hold. False: every report gets a derived id
    (converter, content hash, index), whatever id the converter put on it."""

    @abstractmethod
    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        """Turn ``source`` into reports. Return ``ConverterResult.fail`` for input you cannot
        read; an exception escaping also fails the file (reason ``exception``)."""

    def validate(self, source: ConverterSource, context: ConverterContext) -> float:
        """How confident (0..1) this converter is that it can read ``source`` without
        converting it. The default only checks the file patterns: 0.5 on a match, else 0."""
        return 0.5 if self.matches(source.name) else 0.0

    @classmethod
    def matches(cls, name: str) -> bool:
        """Whether a file name matches this converter's own ``file_patterns``."""
        return matches_patterns(name, cls.file_patterns)

    @classmethod
    def summary(cls) -> str:
        """One line describing the converter (``description``, else the docstring's first)."""
        if cls.description:
            return cls.description
        doc = (cls.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    @classmethod
    def parse_arguments(cls, raw: dict[str, Any] | None) -> BaseModel:
        """Validate config ``arguments`` against ``Arguments``; ``ConverterArgumentsError``
        naming each bad argument if they do not fit.

        Unknown keys are errors unless the schema says ``extra="allow"``: pydantic's default
        (ignore) would let a misspelt argument silently fall back to its default.
        """
        schema = cls.Arguments
        problems: list[str] = []
        known = set(schema.model_fields)
        known |= {f.alias for f in schema.model_fields.values() if f.alias}
        known |= {  # older names still accepted (openhtf's part_number, say)
            str(choice)
            for f in schema.model_fields.values()
            if isinstance(f.validation_alias, AliasChoices)
            for choice in f.validation_alias.choices
            if isinstance(choice, str)
        }
        if schema.model_config.get("extra") in (None, "ignore") and raw:
            problems += [_unknown_argument(key, known) for key in raw if key not in known]
        parsed: BaseModel | None = None
        try:
            parsed = schema.model_validate(raw or {})
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                where = ".".join(str(p) for p in error["loc"]) or "(arguments)"
                message = error["msg"].removeprefix("Value error, ")
                if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
                    problems.append(_unknown_argument(str(error["loc"][0]), known))
                    continue
                if error["type"] == "extra_forbidden":
                    message = "unknown argument"
                problems.append(f"arguments.{where}: {message}")
        if problems or parsed is None:
            raise ConverterArgumentsError(
                f"converter {cls.name or cls.__name__!r}: " + "; ".join(problems)
            )
        return parsed


def _unknown_argument(key: str, known: set[str]) -> str:
    """``arguments.delimitr: unknown argument (did you mean 'delimiter'?)``."""
    guess = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
    return f"arguments.{key}: unknown argument{hint}"
