"""Configurable CSV / delimited text: a key-value header block, then a results table.

The template most sites adapt, so everything a site's files vary in is an argument rather than
code: which column header means what, which header key holds the serial number, the delimiter,
the decimal mark, the date format. The mapping and a worked example: docs/converters/csv.md.

Reading is split in three: wats.converters.builtin._csv_layout finds the table and the header
block, wats.converters.builtin._csv_steps turns rows into steps (keeping the station's
statuses), and this module maps the header block onto the report and ties it together.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from wats.api.models import (
    CompOp,
    MiscInfo,
    ReportResult,
    StepBase,
    StepStatus,
    UUTInfo,
    UUTReport,
)
from wats.api.models.codec import describe_validation_error
from wats.converters.base import (
    SNIFF_BYTES,
    ConverterBase,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    read_source,
)
from wats.converters.builtin._csv_arguments import ColumnNames, CSVArguments, HeaderKeys
from wats.converters.builtin._csv_layout import (
    CsvLayoutError,
    Layout,
    TableRow,
    decode,
    find_layout,
    looks_like_markup,
    normalise,
    parse_key_value,
    shown,
)
from wats.converters.builtin._csv_steps import (
    MAX_NAME,
    RowError,
    RowReader,
    build_sequences,
    parse_number,
    parse_status,
    worst_status,
)
from wats.converters.builtin._csv_steps import (
    given as _given,
)
from wats.converters.defaults import HeaderDefaults, HeaderField, HeaderFieldError

__all__ = ["CSVArguments", "CSVConverter", "ColumnNames", "HeaderKeys"]


ROOT_NAME = "MainSequence Callback"
NEWLINE = b"\n"


class _Refused(Exception):
    """The file cannot be converted; the message is for the operator."""


class CSVConverter(ConverterBase):
    """Delimited text results: a key-value header block, then a table of steps."""

    name = "csv"
    version = "1.0"
    file_patterns = ("*.csv", "*.txt", "*.tsv")
    kind = "file"
    Arguments = CSVArguments

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        """One UUT report per file: header block → report header, table rows → steps."""
        args = _arguments(context)
        data, problem = read_source(source)
        if problem is not None:
            return ConverterResult.fail(problem)
        if looks_like_markup(data[:4096]):
            return ConverterResult.fail("not delimited text: the file starts like JSON or XML")
        try:
            text = decode(data, args.encoding)
        except UnicodeDecodeError as exc:
            return ConverterResult.fail(
                f"line {data.count(NEWLINE, 0, exc.start) + 1}: not {args.encoding} text "
                f"(byte {exc.start} cannot be decoded); "
                "set arguments.encoding to the station's encoding, e.g. 'cp1252'"
            )
        if "\x00" in text:
            line = text.count("\n", 0, text.index("\x00")) + 1
            return ConverterResult.fail(f"line {line}: binary data (a NUL character)")
        if text.lstrip()[:1] in ("{", "[", "<"):
            return ConverterResult.fail("not delimited text: the file starts like JSON or XML")
        try:
            layout = find_layout(text, delimiters=args.delimiters(), spellings=_spellings(args))
            return _ReportReader(args, context, layout, source.name).result()
        except (CsvLayoutError, RowError, _Refused, HeaderFieldError) as exc:
            return ConverterResult.fail(str(exc))

    def validate(self, source: ConverterSource, context: ConverterContext) -> float:
        """0.9 for a table with name and value columns below a header block naming a serial
        number, 0.8 for such a table alone; 0.05 for other text with our file extension, 0 for
        JSON, XML, binary and everything else. Reads only the first 64 KiB."""
        args = _arguments(context)
        try:
            head = source.read_head()
        except OSError:
            return 0.0
        if not head.strip() or looks_like_markup(head):
            return 0.0
        try:
            text = decode(head, args.encoding)
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 4:  # not merely a character cut by the 64 KiB limit
                return 0.0
            try:
                text = decode(head[: exc.start], args.encoding)
            except UnicodeDecodeError:
                return 0.0
        if "\x00" in text or text.lstrip()[:1] in ("{", "[", "<"):
            return 0.0
        if len(head) == SNIFF_BYTES:
            text = text.rsplit("\n", 1)[0]  # the last line may be cut
        spellings = _spellings(args)
        try:
            layout = find_layout(
                text, delimiters=args.delimiters(), spellings=spellings, with_rows=False
            )
        except CsvLayoutError:
            return 0.05 if self.matches(source.name) else 0.0
        serials = {normalise(name) for name in args.header.serial}
        for _, line in layout.block:
            pair = parse_key_value(line, layout.delimiter)
            if pair is not None and normalise(pair[0]) in serials:
                return 0.9
        return 0.8


def _arguments(context: ConverterContext) -> CSVArguments:
    args = context.arguments
    return args if isinstance(args, CSVArguments) else CSVArguments()


def _spellings(args: CSVArguments) -> dict[str, tuple[str, ...]]:
    return args.columns.spellings()


@dataclass(frozen=True)
class _Entry:
    """One header value and where it was read: a header-block or footer line (``line`` >= 1),
    or a named group of ``arguments.file_name_pattern`` (``line`` 0)."""

    line: int
    key: str
    value: str

    @property
    def where(self) -> str:
        if self.line == 0:
            return f"file name group {shown(self.key)}"
        return f"line {self.line}, header key {shown(self.key)}"


class _ReportReader:
    """One file's conversion: the header entries, the steps, the warnings and how sure we are."""

    def __init__(
        self, args: CSVArguments, context: ConverterContext, layout: Layout, file_name: str
    ) -> None:
        self.args = args
        self.context = context
        self.layout = layout
        self.warnings: list[str] = []
        self.confidence = 1.0
        self.decimal_comma = args.decimal == "," or (
            args.decimal == "auto" and layout.delimiter != ","
        )
        # The header block's entries, then footer lines below the table as they are met.
        self.entries: list[_Entry] = []
        for number, line in layout.block:
            pair = parse_key_value(line, layout.delimiter)
            if pair is not None:
                self.entries.append(_Entry(number, *pair))
        self.used: set[int] = set()
        self.from_file_name: dict[str, str] = {}
        if args.file_name_pattern is not None:
            match = re.search(args.file_name_pattern, file_name)
            if match is not None:
                groups = match.groupdict()
                self.from_file_name = {k: v.strip() for k, v in groups.items() if v and v.strip()}

    # -- header -------------------------------------------------------------------------------

    def lookup(self, field_name: str, *, peek: bool = False) -> _Entry | None:
        """A report field's header entry: the first spelling present wins (an empty value
        counts as absent); else the file name's group of that name, if any. The entry is
        marked used (not a misc info) unless ``peek``."""
        for spelling in getattr(self.args.header, field_name):
            wanted = normalise(spelling)
            for entry in self.entries:
                if normalise(entry.key) == wanted and entry.value and entry.line not in self.used:
                    if not peek:
                        self.used.add(entry.line)
                    return entry
        if field_name in self.from_file_name:
            return _Entry(0, field_name, self.from_file_name[field_name])
        return None

    def text(self, field_name: str) -> str | None:
        entry = self.lookup(field_name)
        return entry.value if entry is not None else None

    def required(self, defaults: HeaderDefaults, field: HeaderField, field_name: str) -> str:
        """A WATS-required header text by the shared rule (wats.converters.defaults): the
        file's entry (checked as WATS checks it, the message naming its line), else the
        argument's default; which header keys were looked for is named when none was found."""
        entry = self.lookup(field_name)
        if entry is None:
            keys = ", ".join(getattr(self.args.header, field_name))
            return defaults.text(field, None, f"header keys {keys}")
        return defaults.text(field, entry.value, entry.where)

    def start(self) -> datetime:
        entry = self.lookup("start_time")
        if entry is None:
            self.warnings.append(
                "no start time in the header (keys "
                + ", ".join(self.args.header.start_time)
                + "); the conversion time is used"
            )
            self.confidence = min(self.confidence, 0.8)
            return self.context.now()
        if ":" not in entry.value:
            clock = self.lookup("start_clock")
            if clock is not None:
                entry = _Entry(entry.line, entry.key, f"{entry.value} {clock.value}")
        started = self.timestamp(entry)
        if started.tzinfo is None:
            started = started.replace(tzinfo=self.context.now().tzinfo)
            self.warnings.append(
                f"{entry.where}: the start time {shown(entry.value)} has no UTC offset; "
                f"the station's local offset ({started.strftime('%z')}) is assumed"
            )
            self.confidence = min(self.confidence, 0.9)
        return started

    def timestamp(self, entry: _Entry) -> datetime:
        try:
            if self.args.time_format == "iso":
                return datetime.fromisoformat(entry.value)
            return datetime.strptime(entry.value, self.args.time_format)
        except ValueError:
            expected = (
                "an ISO 8601 date-time"
                if self.args.time_format == "iso"
                else f"a date-time in the format {self.args.time_format!r}"
            )
            raise _Refused(
                f"{entry.where}: {shown(entry.value)} is not {expected}; "
                "set arguments.time_format (e.g. '%d.%m.%Y %H:%M:%S')"
            ) from None

    def process_code(self, defaults: HeaderDefaults) -> int:
        entry = self.lookup("process")
        if entry is None:
            return defaults.code(None)
        if entry.value.isdigit() and len(entry.value) < 10:
            return int(entry.value)
        code = self.context.reference.process_code(entry.value)
        if code is None:
            return defaults.code(
                None, f"{entry.where}: process {shown(entry.value)} is not in the server's list"
            )
        return code

    def exec_time(self, start: datetime, steps_time: float | None) -> float | None:
        entry = self.lookup("exec_time")
        if entry is not None:
            seconds = parse_number(entry.value, self.decimal_comma)
            if seconds is None:
                raise _Refused(f"{entry.where}: {shown(entry.value)} is not a number of seconds")
            return seconds
        end_entry = self.lookup("end_time")
        if end_entry is not None:
            end = self.timestamp(end_entry)
            if end.tzinfo is None:
                end = end.replace(tzinfo=start.tzinfo)
            span = (end - start) / timedelta(seconds=1)
            if span >= 0:
                return span
            self.warnings.append(f"{end_entry.where}: the end time is before the start time")
        return steps_time

    def socket(self) -> int | None:
        entry = self.lookup("socket")
        if entry is None:
            return None
        if entry.value.isdigit() and len(entry.value) < 10:
            return int(entry.value)
        self.warnings.append(
            f"{entry.where}: socket {shown(entry.value)} is not a number; kept as a misc info"
        )
        self.used.discard(entry.line)
        return None

    def recorded_result(self) -> ReportResult | None:
        entry = self.lookup("result")
        if entry is None:
            return None
        try:
            status = parse_status(entry.value)
        except ValueError:
            status = None
        if status is None or status is StepStatus.SKIPPED:
            self.warnings.append(
                f"{entry.where}: {shown(entry.value)} is not a result WATS knows; "
                "the result is taken from the steps"
            )
            return None
        return _RESULT_BY_STATUS[status]

    def misc_infos(self) -> list[MiscInfo]:
        if not self.args.misc_infos:
            return []
        infos: list[MiscInfo] = []
        for entry in self.entries:
            if entry.line in self.used:
                continue
            if len(entry.key) > MAX_NAME or len(entry.value) > MAX_NAME:
                self.warnings.append(
                    f"line {entry.line}: header entry {shown(entry.key, 40)} cut to "
                    f"{MAX_NAME} characters"
                )
            infos.append(
                MiscInfo(description=entry.key[:MAX_NAME], **_given(text=entry.value[:MAX_NAME]))
            )
        return infos

    # -- table --------------------------------------------------------------------------------

    def result(self) -> ConverterResult:
        """Read the table (footer lines join the header entries), then build the report."""
        reader = RowReader(
            columns=self.layout.columns,
            headers=self.layout.headers,
            decimal_comma=self.decimal_comma,
            default_comp_op=None
            if self.args.default_comp_op == "auto"
            else CompOp(self.args.default_comp_op),
            warnings=self.warnings,
        )
        entries: list[tuple[str, StepBase]] = []
        for row in self.layout.rows:
            if not self.footer(row):
                entries.append((reader.cell(row, "sequence"), reader.step(row)))
        if not entries:
            raise _Refused(
                f"line {self.layout.header_line}: the table has a header row but no data rows"
            )
        return self.report(entries)

    def footer(self, row: TableRow) -> bool:
        """Whether ``row`` is a ``Key: value`` line below the table (kept as a header entry)
        or a separator line such as ``-----`` (dropped)."""
        filled = [cell for cell in row.cells if cell.strip()]
        if len(filled) != 1 or not row.cells[0].strip():
            return False
        text = row.cells[0].strip()
        if not any(ch.isalnum() for ch in text):
            return True
        if ":" in text or "=" in text:
            pair = parse_key_value(text, self.layout.delimiter)
            if pair is not None:
                self.entries.append(_Entry(row.line, *pair))
                return True
        return False

    def report(self, entries: Sequence[tuple[str, StepBase]]) -> ConverterResult:
        defaults = HeaderDefaults(self.args, self.warnings.append)
        if self.lookup("serial", peek=True) is None:
            hint = (
                "no serial number in the header: expected a line such as 'Serial Number: 123' "
                f"(keys {', '.join(self.args.header.serial)}); set arguments.header.serial "
                "or arguments.file_name_pattern (or arguments.default_serial_number)"
            )
            if self.args.default_serial_number is None:
                raise _Refused(hint)
            if "default_serial_number" not in self.args.model_fields_set:
                self.warnings.append(hint)  # most often a header spelt another way
        serial = self.required(defaults, HeaderField.SERIAL_NUMBER, "serial")
        part = self.required(defaults, HeaderField.PART_NUMBER, "part")
        revision = self.required(defaults, HeaderField.REVISION, "revision")
        process_code = self.process_code(defaults)
        self.confidence = min(self.confidence, defaults.confidence)
        start = self.start()
        recorded = self.recorded_result()
        steps = [step for _, step in entries]
        computed = worst_status([step.status for step in steps])
        root_status = _STATUS_BY_RESULT[recorded] if recorded is not None else None
        root = build_sequences(ROOT_NAME, entries, root_status)
        result = recorded or _RESULT_BY_STATUS[computed]
        if recorded is ReportResult.PASSED and computed is not StepStatus.PASSED:
            self.warnings.append(
                f"the header says the unit passed but a step is {computed.name.lower()}; "
                "the header's result is kept"
            )
        times = [step.tot_time for step in steps if step.tot_time is not None]
        uut = UUTInfo(
            **_given(
                user=self.text("operator"),
                comment=self.text("comment"),
                exec_time=self.exec_time(start, sum(times) if times else None),
                fixture_id=self.text("fixture"),
                batch_sn=self.text("batch"),
                test_socket_index=self.socket(),
            )
        )
        fields: dict[str, Any] = {
            "id": uuid.uuid4(),
            "pn": part,
            "sn": serial,
            "rev": revision,
            "process_code": process_code,
            "result": result,
            "machine_name": (self.text("station") or self.context.station.name)[:100],
            "location": self.context.station.location,
            "purpose": self.context.station.purpose,
            "start": start,
            "uut": uut,
            "root": root,
        }
        misc = self.misc_infos()
        if misc:
            fields["misc_infos"] = misc
        try:
            report = UUTReport(**fields)
            report = UUTReport.model_validate(report.model_dump(by_alias=True, exclude_unset=True))
        except PydanticValidationError as exc:
            raise _Refused(
                f"the converted report is not valid: {describe_validation_error(exc)}"
            ) from None
        return ConverterResult.ok(report, confidence=self.confidence, warnings=self.warnings)


_RESULT_BY_STATUS = {
    StepStatus.PASSED: ReportResult.PASSED,
    StepStatus.FAILED: ReportResult.FAILED,
    StepStatus.ERROR: ReportResult.ERROR,
    StepStatus.TERMINATED: ReportResult.TERMINATED,
    StepStatus.DONE: ReportResult.DONE,
}
_STATUS_BY_RESULT = {result: status for status, result in _RESULT_BY_STATUS.items()}
