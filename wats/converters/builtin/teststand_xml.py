"""TestStand XML reports: the default ``<Reports><Report>`` layout of NI TestStand's process
models and the ``<TSReport>`` layout written with the WATS TestStand add-on.

Both hold the same TestStand property trees (``Prop`` elements): the UUT and station
information, the start date and time, and the main sequence's ``TEResult`` with every step's
result nested under ``TS.SequenceCall.ResultList``. Each ``<Report>`` of a UUT becomes one WATS
report. Statuses, limits and comparison operators are copied as TestStand recorded them; the
mapping tables are in docs/converters/teststand-xml.md.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from wats.api.models import UUTReport, parse_report
from wats.api.models.codec import describe_validation_error
from wats.converters.base import (
    ConverterBase,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    read_source,
)
from wats.converters.builtin._teststand_header import (
    ReportSource,
    misc_infos,
    report_id,
    start_of,
    sub_units,
    text100,
    time_origin,
    uut_info,
)
from wats.converters.builtin._teststand_props import integer, prop, text
from wats.converters.builtin._teststand_steps import (
    StepMapping,
    TestStandFormatError,
    map_status,
)
from wats.converters.defaults import (
    DefaultIdentifier,
    DefaultText,
    HeaderDefaults,
    HeaderField,
    HeaderFieldError,
    part_number_argument,
    process_code_argument,
    revision_argument,
    serial_number_argument,
)
from wats.xmlsafe import XmlError, local_name, parse_xml, root_element

__all__ = ["TestStandXMLArguments", "TestStandXMLConverter"]


_OLD_STYLESHEET_PI = re.compile(rb"<\?xml:stylesheet[^>]*>")
"""Older TestStand versions write ``<?xml:stylesheet ...?>``, a processing-instruction name
expat refuses; it only names a display stylesheet, so it is dropped before parsing."""

_UUT_PROP = re.compile(rb"<Prop\s[^>]*Name\s*=\s*['\"]UUT['\"]")

_RESULTS = frozenset({"P", "F", "E", "T", "D"})
"""Step statuses that are also report results; a "skipped" UUT has no WATS result."""

MAX_WARNINGS = 20


class TestStandXMLArguments(BaseModel):
    """Settings of the TestStand XML converter (``arguments = { ... }`` in its config)."""

    model_config = ConfigDict(extra="forbid")
    __test__ = False

    process_code: int = process_code_argument()
    """Process (test operation) code when the file names none (the WATS add-on writes one)."""
    default_part_number: DefaultIdentifier = part_number_argument()
    """Part number for reports without one (TestStand's default model records none)."""
    default_revision: DefaultText = revision_argument("1.0")
    """Revision for reports without one ("1.0", as WATS's own TestStand converter)."""
    default_serial_number: DefaultIdentifier | None = serial_number_argument()
    """Serial number for a report whose UUT has none; unset, such a file fails."""


class TestStandXMLConverter(ConverterBase):
    """NI TestStand XML reports (<Reports>/<Report> and the WATS add-on's <TSReport>)."""

    name = "teststand-xml"
    version = "1.0"
    file_patterns = ("*.xml",)
    kind = "file"
    Arguments = TestStandXMLArguments

    def validate(self, source: ConverterSource, context: ConverterContext) -> float:
        """0.95 for <TSReport>; 0.9 for an un-namespaced <Reports>/<Report> whose top holds
        TestStand's UUT property; 0.02 for other XML (WSXF and ATML are namespaced), 0 for
        anything that is not XML. Reads only the file's first 64 KB."""
        try:
            head = source.read_head()
        except OSError:
            return 0.0
        head = _OLD_STYLESHEET_PI.sub(b"", head)
        root = root_element(head)
        if root is None:
            return 0.0
        namespace, local = root
        if namespace:
            return 0.02
        if local == "TSReport":
            return 0.95 if b"<Prop" in head or b"<ReportInfo" in head else 0.5
        if local in ("Reports", "Report"):
            if _UUT_PROP.search(head):
                return 0.9
            return 0.3 if b"<Prop" in head else 0.05
        return 0.02

    def convert(self, source: ConverterSource, context: ConverterContext) -> ConverterResult:
        """One WATS report per UUT <Report>; any unreadable report fails the whole file, so a
        file is never half delivered."""
        args = context.arguments
        if not isinstance(args, TestStandXMLArguments):
            args = TestStandXMLArguments()
        data, problem = read_source(source)
        if problem is not None:
            return ConverterResult.fail(problem)
        try:
            root = parse_xml(_OLD_STYLESHEET_PI.sub(b"", data))
        except XmlError as exc:
            return ConverterResult.fail(str(exc))
        if root.tag.startswith("{"):
            return ConverterResult.fail(
                f"not a TestStand XML report: root element <{local_name(root.tag)}> has a "
                f"namespace; expected <Reports>, <Report> or <TSReport> without one"
            )
        sources, skipped = _report_sources(root)
        if not sources:
            return ConverterResult.fail(
                f"no UUT report found: root element <{root.tag}> holds no <Report> with a "
                f"UUT property (expected <Reports>, <Report> or <TSReport>)"
            )
        reports: list[UUTReport] = []
        warnings = [f"skipped {skipped} non-UUT <Report> element(s)"] if skipped else []
        penalties: set[str] = set()
        ceiling = 1.0
        for index, src in enumerate(sources):
            where = f"report {index}: " if len(sources) > 1 else ""
            try:
                reports.append(_convert_report(src, args, context))
            except (TestStandFormatError, HeaderFieldError) as exc:
                return ConverterResult.fail(f"{where}{exc}")
            except ValidationError as exc:
                return ConverterResult.fail(
                    f"{where}the converted report is not valid: {describe_validation_error(exc)}"
                )
            warnings += [f"{where}{w}" for w in src.warnings]
            penalties |= src.penalties
            ceiling = min(ceiling, src.confidence)
        if len(warnings) > MAX_WARNINGS:
            extra = len(warnings) - MAX_WARNINGS
            warnings = [*warnings[:MAX_WARNINGS], f"... and {extra} more warning(s)"]
        confidence = min(ceiling, max(0.7, 1.0 - 0.05 * len(penalties)))
        return ConverterResult.ok(reports, confidence=confidence, warnings=warnings)


def _report_sources(root: ET.Element) -> tuple[list[ReportSource], int]:
    """The report nodes of a document, and how many non-UUT reports were left out."""
    if root.tag == "TSReport":
        info = _report_info(root)
        if prop(root, "UUT") is not None or prop(root, "MainSequenceResults") is not None:
            return [ReportSource(root, info)], 0
        return _reports_in(root.findall("Report"), info)
    if root.tag == "Reports":
        return _reports_in(root.findall("Report"), {})
    if root.tag == "Report":
        return _reports_in([root], {})
    return [], 0


def _reports_in(elements: list[ET.Element], info: dict[str, str]) -> tuple[list[ReportSource], int]:
    found, skipped = [], 0
    for element in elements:
        kind = element.get("Type")
        if kind is not None and kind != "UUT" and prop(element, "UUT") is None:
            skipped += 1
            continue
        found.append(ReportSource(element, {**info, **_report_info(element)}))
    return found, skipped


def _report_info(element: ET.Element) -> dict[str, str]:
    """``<ReportInfo key=... value=...>`` pairs (the WATS add-on's header)."""
    pairs: dict[str, str] = {}
    for item in element.findall("ReportInfo"):
        key, value = item.get("key"), item.get("value")
        if key and value is not None:
            pairs.setdefault(key, value.strip())
    return pairs


def _main_result(node: ET.Element) -> ET.Element | None:
    named = prop(node, "MainSequenceResults")
    if named is not None:
        return named
    for child in node:
        if child.tag == "Prop" and child.get("Type") == "TEResult":
            return child
    return None


def _convert_report(
    src: ReportSource, args: TestStandXMLArguments, context: ConverterContext
) -> UUTReport:
    """One report node as a validated UUT report; TestStandFormatError for missing essentials."""
    node, info = src.node, src.info
    uut = prop(node, "UUT")
    station = prop(node, "StationInfo")
    main = _main_result(node)
    if uut is None:
        raise TestStandFormatError("no UUT property (Prop Name='UUT') in the report")
    if main is None:
        raise TestStandFormatError("no main sequence result (Prop Type='TEResult') in the report")

    start, start_text = start_of(src, context)
    mapping = StepMapping(time_origin=time_origin(info, start, main))
    root_step = mapping.root(main)
    for warning in mapping.warnings:
        src.warn(warning, "steps")

    defaults = HeaderDefaults(args, src.warn)
    serial = defaults.text(
        HeaderField.SERIAL_NUMBER, text(uut, "SerialNumber") or info.get("SN"), "UUT.SerialNumber"
    )
    part = defaults.text(
        HeaderField.PART_NUMBER,
        text(uut, "UUTPartNumber") or text(uut, "PartNumber") or info.get("PN"),
        "UUT.PartNumber",
    )
    revision = defaults.text(
        HeaderField.REVISION,
        text(uut, "UUTPartRevisionNumber") or info.get("Rev"),
        "UUT.UUTPartRevisionNumber",
    )
    process_code = _process_code(uut, info, context, src, defaults)
    src.confidence = min(src.confidence, defaults.confidence)

    report: dict[str, Any] = {
        "id": report_id(info),
        "type": "T",
        "sn": serial,
        "pn": part,
        "rev": revision,
        "processCode": process_code,
        "result": _result(node, main, src),
        "machineName": text100(text(station, "StationID")) or context.station.name,
        "location": text100(text(station, "Location")) or context.station.location,
        "purpose": text100(text(station, "Purpose")) or context.station.purpose,
        "start": start_text,
        "uut": uut_info(uut, station, main),
        "root": root_step,
    }
    misc = misc_infos(uut)
    if misc:
        report["miscInfos"] = misc
    parts = sub_units(uut, src)
    if parts:
        report["subUnits"] = parts
    parsed = parse_report(report)
    assert isinstance(parsed, UUTReport)
    return parsed


def _process_code(
    uut: ET.Element,
    info: dict[str, str],
    context: ConverterContext,
    src: ReportSource,
    defaults: HeaderDefaults,
) -> int:
    """The operation the file states (the WATS add-on's ``UUTOperationType``/``PCode``, or an
    operation name looked up in the server's processes), else the ``process_code`` argument."""
    code = integer(uut, "UUTOperationType")
    if not code:
        try:
            code = int(info.get("PCode", ""))
        except ValueError:
            code = None
    op_name = text(uut, "UUTOperationTypeDetails.OpTypeName")
    if not code and op_name:
        code = context.reference.process_code(op_name)
        if code is None:
            return defaults.code(None, f"operation {op_name!r} is not among the server's processes")
    if not code:
        return defaults.code(None)
    if len(context.reference) and context.reference.process_name(code) is None:
        src.warn(f"process code {code} is not among the server's processes")
    return code


def _result(node: ET.Element, main: ET.Element, src: ReportSource) -> str:
    """The UUT result as TestStand stated it: ``<Report UUTResult=...>``, else the main
    sequence's status; never recomputed from the steps."""
    raw = node.get("UUTResult") or text(main, "Status")
    status = map_status(raw)
    if status is None or status.value not in _RESULTS:
        src.warn(f"UUT result {raw or '(none)'!r} unknown, recorded as Error", "result")
        return "E"
    return status.value
