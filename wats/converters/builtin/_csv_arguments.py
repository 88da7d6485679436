"""The arguments of the CSV converter (wats.converters.builtin.csv_table): which column header
texts and header-block keys mean which field, and how the file's text is written.

Every default is a list of spellings seen in real station exports; a site replaces a list by
giving the field (``columns = { value = "Meas" }``), so what matches is always visible in the
config rather than merged invisibly with defaults.
"""

from __future__ import annotations

import codecs
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from wats.api.models import CompOp
from wats.converters.builtin._csv_layout import CANDIDATE_DELIMITERS
from wats.converters.defaults import (
    DefaultIdentifier,
    DefaultText,
    part_number_argument,
    process_code_argument,
    revision_argument,
    serial_number_argument,
)

__all__ = ["CSVArguments", "ColumnNames", "HeaderKeys"]


def _as_names(value: Any) -> Any:
    """A single spelling may be given as a string; the schema keeps a tuple."""
    if isinstance(value, str):
        return (value,)
    return value


def _non_empty(value: tuple[str, ...]) -> tuple[str, ...]:
    names = tuple(name for name in value if name.strip())
    if not names:
        raise ValueError("give at least one non-empty spelling")
    return names


Spellings = Annotated[tuple[str, ...], BeforeValidator(_as_names)]
"""Column header texts or header keys that mean one field, in priority order (first wins)."""


class ColumnNames(BaseModel):
    """Which column header texts mean which step field. Matching ignores case, spaces, ``_``,
    ``-`` and ``.``; giving a field replaces its default spellings (it does not add to them)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Spellings = ("Name", "Step", "Test", "StepName", "TestName", "Description")
    value: Spellings = ("Value", "Measurement", "Measured", "Reading", "Result")
    status: Spellings = ("Status", "Pass/Fail", "PassFail", "Verdict", "Outcome", "Result")
    unit: Spellings = ("Unit", "Units")
    low: Spellings = ("Low", "LowLimit", "Min", "Minimum", "Lower", "LSL")
    high: Spellings = ("High", "HighLimit", "Max", "Maximum", "Upper", "USL")
    comp_op: Spellings = ("CompOp", "Comparison", "Compare", "CompareOp")
    limit: Spellings = ("Limit", "Expected", "ExpectedValue")
    sequence: Spellings = ("Sequence", "Group", "Section", "Block")
    time: Spellings = ("Duration", "TestTime", "ExecTime", "ExecutionTime", "Time(s)", "Elapsed")
    comment: Spellings = ("Comment", "Remark", "Message", "Info")

    @field_validator("*", mode="after")
    @classmethod
    def _spelled(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _non_empty(value)

    def spellings(self) -> dict[str, tuple[str, ...]]:
        """Field → spellings, in resolution order: a column taken by an earlier field (value
        before status) is not offered to a later one."""
        return {name: getattr(self, name) for name in type(self).model_fields}


class HeaderKeys(BaseModel):
    """Which header-block keys mean which report field (same matching as columns)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    serial: Spellings = (
        "SerialNumber", "Serial", "SN", "SerialNo", "UUTSerial", "UUTSerialNumber", "DUTSerial",
    )  # fmt: skip
    part: Spellings = ("PartNumber", "Part", "PN", "PartNo", "Product", "ProductNumber", "Model")
    revision: Spellings = ("Revision", "Rev", "PartRevision", "ProductRevision", "HWRevision")
    operator: Spellings = ("Operator", "User", "OperatorName", "UserName")
    start_time: Spellings = (
        "StartTime", "Start", "DateTime", "Date/Time", "Timestamp", "TestDate", "TestStart", "Date",
    )  # fmt: skip
    start_clock: Spellings = ("Time", "StartClock", "TimeOfDay")
    """Read only when the start time entry holds a date without a time of day."""
    end_time: Spellings = ("EndTime", "End", "StopTime", "TestEnd")
    exec_time: Spellings = ("ExecutionTime", "ExecTime", "TestTime", "Duration", "TotalTime")
    result: Spellings = ("Result", "OverallResult", "UUTResult", "TestResult", "Status", "Verdict")
    process: Spellings = ("Process", "Operation", "ProcessCode", "TestOperation", "ProcessName")
    station: Spellings = ("Station", "StationName", "StationID", "Machine", "MachineName")
    fixture: Spellings = ("Fixture", "FixtureID")
    batch: Spellings = ("Batch", "BatchSerial", "BatchSN", "Lot", "LotNumber")
    socket: Spellings = ("Socket", "TestSocket", "SocketIndex", "Slot")
    comment: Spellings = ("Comment", "Remark", "Notes")

    @field_validator("*", mode="after")
    @classmethod
    def _spelled(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _non_empty(value)


class CSVArguments(BaseModel):
    """Settings of the CSV converter (``arguments = { ... }`` of a ``[[converters]]`` entry)."""

    model_config = ConfigDict(extra="forbid")

    columns: ColumnNames = Field(default_factory=ColumnNames)
    header: HeaderKeys = Field(default_factory=HeaderKeys)
    delimiter: str = "auto"
    """``auto`` (comma, semicolon, tab or pipe, whichever the table header row uses), ``tab``,
    or one character."""
    encoding: str = "utf-8"
    decimal: Literal["auto", ".", ","] = "auto"
    """``auto``: ``.`` always, and ``,`` too unless the delimiter is a comma."""
    time_format: str = "iso"
    """``iso`` (ISO 8601) or a ``strptime`` format such as ``%d.%m.%Y %H:%M:%S``."""
    process_code: int = process_code_argument()
    default_part_number: DefaultIdentifier = part_number_argument()
    default_revision: DefaultText = revision_argument("1")
    default_serial_number: DefaultIdentifier | None = serial_number_argument()
    default_comp_op: Literal["auto"] | CompOp = "auto"
    file_name_pattern: str | None = None
    """A regular expression searched in the file name; its named groups (``serial``, ``part``,
    ``revision``, ``start_time``, ... as in ``header``) fill fields the header block lacks."""
    misc_infos: bool = True
    """Header-block keys not mapped to a report field become misc infos."""

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str) -> str:
        if value.casefold() == "tab":
            return "\t"
        if value == "auto":
            return value
        if len(value) != 1 or value in "\"'\r\n" or value.isalnum():
            raise ValueError("must be 'auto', 'tab' or one punctuation character such as ';'")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}") from None
        return value

    @field_validator("time_format")
    @classmethod
    def _time_format(cls, value: str) -> str:
        if value.casefold() == "iso":
            return "iso"
        if "%" not in value:
            raise ValueError("must be 'iso' or a strptime format such as '%d.%m.%Y %H:%M:%S'")
        return value

    @field_validator("file_name_pattern")
    @classmethod
    def _pattern(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            compiled = re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        unknown = sorted(set(compiled.groupindex) - set(HeaderKeys.model_fields))
        if unknown:
            raise ValueError(
                f"unknown group name(s) {', '.join(unknown)}; use the field names of "
                f"arguments.header: {', '.join(HeaderKeys.model_fields)}"
            )
        if not compiled.groupindex:
            raise ValueError("name at least one group, e.g. (?P<serial>[^_]+)")
        return value

    @model_validator(mode="after")
    def _decimal_not_delimiter(self) -> CSVArguments:
        if self.decimal == "," and self.delimiter == ",":
            raise ValueError("decimal ',' needs a delimiter other than ','")
        return self

    def delimiters(self) -> tuple[str, ...]:
        """The delimiters to try: the fixed one, or the candidates (no comma when the comma is
        the decimal mark)."""
        if self.delimiter != "auto":
            return (self.delimiter,)
        if self.decimal == ",":
            return tuple(d for d in CANDIDATE_DELIMITERS if d != ",")
        return CANDIDATE_DELIMITERS
