"""The report-level fields of a TestStand XML report: start time, identity, UUT details.

Split from wats.converters.builtin.teststand_xml so that module reads as the converter's flow;
these helpers read one report node's property tree and return WSJF fields, recording warnings
(and the fallbacks that lower confidence) on the :class:`ReportSource` they are given.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wats.converters.base import ConverterContext
from wats.converters.builtin._teststand_props import (
    array_values,
    boolean,
    first_prop,
    integer,
    number,
    prop,
    text,
)
from wats.converters.builtin._teststand_steps import TestStandFormatError
from wats.converters.defaults import HeaderField, refusal

__all__ = [
    "ReportSource",
    "identifier",
    "misc_infos",
    "report_id",
    "start_of",
    "sub_units",
    "text100",
    "time_origin",
    "uut_info",
]

_YEAR = re.compile(r"\b(\d{4})\b")


@dataclass
class ReportSource:
    """One report's elements: the node holding its ``Prop``s and its ``ReportInfo`` pairs."""

    node: ET.Element
    info: dict[str, str]
    warnings: list[str] = field(default_factory=list)
    penalties: set[str] = field(default_factory=set)
    confidence: float = 1.0
    """A cap on the conversion's confidence (header fields taken from built-in defaults)."""

    def warn(self, message: str, penalty: str | None = None) -> None:
        """Record a warning once; a ``penalty`` names a kind of fallback that lowers the
        conversion's confidence (each kind counts once, however often it happens)."""
        if message not in self.warnings:
            self.warnings.append(message)
        if penalty:
            self.penalties.add(penalty)


def start_of(src: ReportSource, context: ConverterContext) -> tuple[datetime, str]:
    """The report's start: ReportInfo ``Start``/``StartUTC`` (with offset, text kept as
    written), else StartDate + StartTime in the station's local offset, with a warning."""
    for key in ("Start", "StartUTC"):
        raw = src.info.get(key)
        parsed = _aware(raw)
        if raw and parsed is not None:
            return parsed, raw
    date, time = prop(src.node, "StartDate"), prop(src.node, "StartTime")
    if date is None or time is None:
        raise TestStandFormatError(
            "no start time: neither ReportInfo 'Start' nor StartDate/StartTime properties"
        )
    year = _year(date)
    parts = [
        integer(date, "Month"),
        integer(date, "MonthDay"),
        integer(time, "Hours"),
        integer(time, "Minutes"),
        integer(time, "Seconds"),
    ]
    millis = integer(time, "Milliseconds") or 0
    if year is None or any(p is None for p in parts):
        raise TestStandFormatError("StartDate/StartTime lack a part (year, month, day, h, m, s)")
    month, day, hours, minutes, seconds = (int(p or 0) for p in parts)
    try:
        local = datetime(
            year, month, day, hours, minutes, seconds, tzinfo=context.now().tzinfo
        ) + timedelta(milliseconds=millis if 0 <= millis < 1000 else 0)
    except (ValueError, OverflowError) as exc:
        raise TestStandFormatError(f"StartDate/StartTime is not a valid date: {exc}") from exc
    src.warn(
        "the report's start time has no UTC offset; the station's local offset "
        f"{local.strftime('%z')} was assumed",
        "local-time",
    )
    return local, local.isoformat()


def _year(date: ET.Element) -> int | None:
    """The year, preferring the 4 digits in the date texts: some TestStand versions write a
    wrong ``Year`` number (a fact WATS's own converter works around)."""
    for path in ("Text", "ShortText"):
        match = _YEAR.search(text(date, path) or "")
        if match:
            return int(match.group(1))
    return integer(date, "Year")


def _aware(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def time_origin(info: dict[str, str], start: datetime, main: ET.Element) -> datetime | None:
    """The instant of TestStand's step clock zero: the engine start the WATS add-on records,
    else the report start minus the main sequence's own start on that clock."""
    engine = _aware(info.get("EngineStarted"))
    if engine is not None:
        return engine.astimezone(start.tzinfo)
    offset = number(main, "TS.StartTime")
    if offset is None or abs(offset) >= 1e8:
        return None
    return start - timedelta(seconds=offset)


def report_id(info: dict[str, str]) -> str:
    """The add-on's ReportInfo ``ID`` when it is a UUID (the pipeline may replace it anyway),
    else a fresh one: the report model requires an id."""
    try:
        return str(uuid.UUID(info.get("ID", "")))
    except ValueError:
        return str(uuid.uuid4())


def identifier(value: str, what: str, src: ReportSource) -> str:
    """A sub-unit's serial or part number exactly as the station wrote it, or a clean failure.

    Checked by the same rule as the report's own (wats.converters.defaults): characters WATS
    refuses or more than 100 characters fail the file rather than being rewritten, since a
    silently altered serial would file the result under another unit.
    """
    problem = refusal(HeaderField.SERIAL_NUMBER, value)
    if problem is not None:
        raise TestStandFormatError(f"{what} {value[:120]!r} {problem}")
    return value


def text100(value: str | None) -> str | None:
    """A header text cut to WATS's 100 characters; None for an absent or empty one."""
    return value[:100] if value else None


def uut_info(uut: ET.Element, station: ET.Element | None, main: ET.Element) -> dict[str, Any]:
    """The WSJF ``uut`` object: operator (login name), execution time (the main sequence's
    total time), comment, fixture, batch and socket, and the UUT's error if one occurred."""
    info: dict[str, Any] = {
        "user": text(station, "LoginName") or None,
        "comment": text(uut, "Comment") or None,
        "execTime": number(main, "TS.TotalTime"),
        "fixtureId": text(uut, "UUT_Fixture_ID") or None,
        "batchSN": text(uut, "BatchSerialNumber") or None,
        "batchLoopIndex": integer(uut, "BatchLoopIndex"),
        "batchFailCount": integer(uut, "BatchFailCount"),
    }
    socket = integer(uut, "TestSocketIndex")
    if socket is not None and socket >= 0:
        info["testSocketIndex"] = socket
    if boolean(main, "Error.Occurred"):
        info["errorCode"] = integer(main, "Error.Code")
        info["errorMessage"] = text(main, "Error.Msg") or None
    return {k: v for k, v in info.items() if v is not None}


def misc_infos(uut: ET.Element) -> list[dict[str, Any]]:
    """``MiscUUTResult.Misc_UUT_Info`` entries (the WATS add-on) as misc infos."""
    found = []
    for value in array_values(uut, "MiscUUTResult.Misc_UUT_Info"):
        item = first_prop(value)
        description = text(item, "Description")
        if not description:
            continue
        entry: dict[str, Any] = {"description": description[:100]}
        data = text(item, "Data_String")
        if data:
            entry["text"] = data[:100]
        numeric = number(item, "Data_Numeric")
        if numeric is not None:
            entry["numeric"] = numeric
        found.append(entry)
    return found


def sub_units(uut: ET.Element, src: ReportSource) -> list[dict[str, Any]]:
    """``MiscUUTResult.UUT_Part_Info`` entries (the WATS add-on) as sub-units."""
    found = []
    for value in array_values(uut, "MiscUUTResult.UUT_Part_Info"):
        item = first_prop(value)
        pn, sn = text(item, "Part_Number"), text(item, "Part_Serial_Number")
        if not pn or not sn:
            continue
        unit = {
            "partType": text(item, "Part_Type") or None,
            "pn": identifier(pn, "sub-unit part number", src),
            "sn": identifier(sn, "sub-unit serial number", src),
            "rev": text(item, "Part_Revision_Number") or None,
        }
        found.append({k: v for k, v in unit.items() if v is not None})
    return found
