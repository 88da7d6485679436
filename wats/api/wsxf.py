"""WSXF, the XML twin of WSJF, for test (UUT) reports: read it into a :class:`UUTReport` and
write a report back as WSXF.

The mapping follows WATS's own exports (``Report``/``UUT``/``Process``/``MiscInfo``/
``ReportUnitHierarchy``/``Step`` with ``SequenceCall``, ``NumericLimit``, ``PassFail``,
``StringValue``, ``Chart``/``Series``, ``Loop``, ``MessagePopup``, ``Callexe``, ``ReportText``).
Empty XML attributes mean "no value" (``null`` in WSJF). XML-only bookkeeping (``StepIndex``,
``MeasIndex``, ``MeasOrderNumber``, ``idx``/``order_no`` of misc infos, ``Typedef``,
``Filename``) has no WSJF counterpart and is not carried over; WSJF fields without a WSXF
counterpart here (step ``start``/``tsGuid``, attachments, assets, binary and additional data)
are not written by :func:`report_to_wsxf`. docs/reports.md lists the details.

Untrusted XML is parsed in two passes: first a bare expat pass that refuses any document type
declaration or entity declaration (so no entity expansion bombs and no external entities can
reach the tree builder), then ``xml.etree`` builds the tree from the same bytes.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from wats.api.models import UUTReport, dump_report, parse_report
from wats.xmlsafe import XmlError, parse_xml

NAMESPACE = "http://wats.virinco.com/schemas/WATS/Report/wsxf"
_NS = f"{{{NAMESPACE}}}"

_STATUS_WORDS = {
    "Passed": "P",
    "Failed": "F",
    "Skipped": "S",
    "Done": "D",
    "Error": "E",
    "Terminated": "T",
}
_STATUS_LETTERS = {letter: word for word, letter in _STATUS_WORDS.items()}
_GROUP_WORDS = {"Setup": "S", "Main": "M", "Cleanup": "C"}
_GROUP_LETTERS = {letter: word for word, letter in _GROUP_WORDS.items()}


class WsxfError(ValueError):
    """The XML is not a WSXF UUT report we can read (or is unsafe to parse)."""


# --------------------------------------------------------------------------- reading


def _safe_parse(xml: str | bytes) -> ET.Element:
    try:
        return parse_xml(xml)
    except XmlError as exc:
        raise WsxfError(str(exc).replace("the XML", "WSXF")) from exc


def _opt(element: ET.Element, name: str) -> str | None:
    value = element.get(name)
    return value if value else None


def _int(element: ET.Element, name: str) -> int | None:
    value = _opt(element, name)
    return int(value) if value is not None else None


def _float(element: ET.Element, name: str) -> float | None:
    value = _opt(element, name)
    return float(value) if value is not None else None


def _bool(element: ET.Element, name: str) -> bool | None:
    value = _opt(element, name)
    return value.lower() == "true" if value is not None else None


def _word(table: dict[str, str], element: ET.Element, name: str) -> str | None:
    value = element.get(name)
    if value is None:
        return None
    return table.get(value, value)  # unknown words go through and fail validation by name


def _children(element: ET.Element, tag: str) -> list[ET.Element]:
    return element.findall(_NS + tag)


def _numeric(meas: ET.Element) -> dict[str, Any]:
    return {
        "compOp": meas.get("CompOperator"),
        "name": _opt(meas, "Name"),
        "status": _word(_STATUS_WORDS, meas, "Status"),
        "unit": _opt(meas, "Units"),
        "value": _float(meas, "NumericValue"),
        "highLimit": _float(meas, "HighLimit"),
        "lowLimit": _float(meas, "LowLimit"),
    }


def _string(meas: ET.Element) -> dict[str, Any]:
    return {
        "compOp": meas.get("CompOperator"),
        "name": _opt(meas, "Name"),
        "status": _word(_STATUS_WORDS, meas, "Status"),
        "value": meas.get("StringValue"),
        "limit": _opt(meas, "StringLimit"),
    }


def _chart(chart: ET.Element) -> dict[str, Any]:
    series = [
        {
            "dataType": _opt(item, "DataType"),
            "name": _opt(item, "Name"),
            "xdata": item.findtext(_NS + "xdata"),
            "ydata": item.findtext(_NS + "ydata"),
        }
        for item in _children(chart, "Series")
    ]
    return {
        "chartType": chart.get("ChartType"),
        "label": _opt(chart, "Label"),
        "xLabel": _opt(chart, "XLabel"),
        "xUnit": _opt(chart, "XUnit"),
        "yLabel": _opt(chart, "YLabel"),
        "yUnit": _opt(chart, "YUnit"),
        "series": series,
    }


def _step(element: ET.Element) -> dict[str, Any]:
    step: dict[str, Any] = {
        "id": _int(element, "Id"),
        "group": _word(_GROUP_WORDS, element, "Group"),
        "stepType": element.get("StepType"),
        "name": element.get("Name"),
        "status": _word(_STATUS_WORDS, element, "Status"),
    }
    if element.get("StepErrorCode") is not None:
        step["errorCode"] = _int(element, "StepErrorCode")
    if element.get("StepErrorMessage") is not None:
        step["errorMessage"] = element.get("StepErrorMessage")
    step["totTime"] = _float(element, "total_time")
    if element.get("StepCausedSequenceFailure") is not None:
        step["causedSeqFailure"] = _bool(element, "StepCausedSequenceFailure")
    step["causedUUTFailure"] = _bool(element, "StepCausedUUTFailure")
    report_text = element.find(_NS + "ReportText")
    if report_text is not None:
        step["reportText"] = report_text.text or ""
    loop = element.find(_NS + "Loop")
    if loop is not None:
        step["loop"] = {
            "idx": _int(loop, "index"),
            "num": _int(loop, "num"),
            "endingIndex": _int(loop, "ending_index"),
            "passed": _int(loop, "passed"),
            "failed": _int(loop, "failed"),
        }
    seq = element.find(_NS + "SequenceCall")
    if seq is not None:
        step["seqCall"] = {
            "path": _opt(seq, "Filepath"),
            "name": _opt(seq, "Name"),
            "version": _opt(seq, "Version"),
        }
    numeric = _children(element, "NumericLimit")
    if numeric:
        step["numericMeas"] = [_numeric(m) for m in numeric]
    boolean = _children(element, "PassFail")
    if boolean:
        step["booleanMeas"] = [
            {"name": _opt(m, "Name"), "status": _word(_STATUS_WORDS, m, "Status")} for m in boolean
        ]
    strings = _children(element, "StringValue")
    if strings:
        step["stringMeas"] = [_string(m) for m in strings]
    chart = element.find(_NS + "Chart")
    if chart is not None:
        step["chart"] = _chart(chart)
    popup = element.find(_NS + "MessagePopup")
    if popup is not None:
        step["messagePopup"] = {
            "response": _opt(popup, "Response"),
            "button": _int(popup, "Button"),
        }
    call_exe = element.find(_NS + "Callexe")
    if call_exe is not None:
        step["callExe"] = {"exitCode": _float(call_exe, "ExitCode")}
    children = _children(element, "Step")
    if children or seq is not None:
        step["steps"] = [_step(child) for child in children]
    return step


def wsxf_to_wsjf(xml: str | bytes) -> dict[str, Any]:
    """The WSJF dict of a WSXF UUT report, shaped like a WATS server's JSON export."""
    root = _safe_parse(xml)
    report = root if root.tag == _NS + "Report" else root.find(_NS + "Report")
    if report is None:
        raise WsxfError(f"no <Report> element in namespace {NAMESPACE}")
    if report.get("type") != "UUT":
        raise WsxfError(f"only UUT reports are converted, got type={report.get('type')!r}")
    data: dict[str, Any] = {
        "type": "T",
        "id": report.get("ID"),
        "pn": report.get("PN"),
        "sn": report.get("SN"),
        "rev": report.get("Rev"),
        "productName": _opt(report, "ProductName"),
        "result": _word(_STATUS_WORDS, report, "Result"),
        "machineName": report.get("MachineName"),
        "location": report.get("Location"),
        "purpose": report.get("Purpose"),
        "origin": _opt(report, "origin"),
        "start": report.get("Start"),
        "startUTC": _opt(report, "Start_utc"),
    }
    process = report.find(_NS + "Process")
    if process is not None:
        data["processCode"] = _int(process, "Code")
        data["processName"] = _opt(process, "Name")
    uut = report.find(_NS + "UUT")
    if uut is not None:
        data["uut"] = {
            "execTime": _float(uut, "ExecutionTime"),
            "testSocketIndex": _int(uut, "TestSocketIndex"),
            "batchSN": _opt(uut, "BatchSN"),
            "comment": uut.findtext(_NS + "Comment"),
            "errorCode": _int(uut, "ErrorCode"),
            "errorMessage": _opt(uut, "ErrorMessage"),
            "fixtureId": _opt(uut, "FixtureId"),
            "user": _opt(uut, "UserLoginName"),
            "batchFailCount": _int(uut, "BatchFailCount"),
            "batchLoopIndex": _int(uut, "BatchLoopIndex"),
            "stepIdCausedUUTFailure": _int(uut, "StepIdCausedUUTFailure"),
        }
    top = report.find(_NS + "Step")
    if top is not None:
        data["root"] = _step(top)
    data["miscInfos"] = [
        {
            "description": info.get("Description"),
            "text": info.text if info.text else None,
            "numeric": _int(info, "Numeric"),
        }
        for info in _children(report, "MiscInfo")
    ]
    data["subUnits"] = [
        {
            key: value
            for key, value in {
                "partType": _opt(unit, "PartType"),
                "pn": unit.get("PN"),
                "rev": unit.get("Rev"),
                "sn": unit.get("SN"),
                "idx": _int(unit, "Idx"),
                "parentIdx": _int(unit, "ParentIdx"),
                "position": _int(unit, "Position"),
            }.items()
            if value is not None or key in ("partType", "rev")
        }
        for unit in _children(report, "ReportUnitHierarchy")
    ]
    # WSXF has no asset or additional-data elements; WATS's JSON export writes them empty.
    data["assets"] = []
    data["additionalData"] = []
    return data


def wsxf_to_report(xml: str | bytes) -> UUTReport:
    """Read a WSXF UUT report; raises ``WsxfError`` for XML we cannot read and
    ``pydantic.ValidationError`` (naming the field) for an invalid report."""
    report = parse_report(wsxf_to_wsjf(xml))
    if not isinstance(report, UUTReport):  # pragma: no cover - wsxf_to_wsjf only makes UUTs
        raise WsxfError("not a UUT report")
    return report


# --------------------------------------------------------------------------- writing


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _set(element: ET.Element, name: str, value: Any, *, keep_empty: bool = False) -> None:
    if value is not None or keep_empty:
        element.set(name, _text(value))


def _sub(parent: ET.Element, tag: str) -> ET.Element:
    return ET.SubElement(parent, _NS + tag)


def _write_step(parent: ET.Element, step: dict[str, Any]) -> None:
    element = _sub(parent, "Step")
    _set(element, "Id", step.get("id"))
    _set(element, "Group", _GROUP_LETTERS.get(step.get("group", "M"), step.get("group")))
    _set(element, "Name", step.get("name"))
    _set(element, "StepType", step.get("stepType"))
    status = step.get("status")
    _set(element, "Status", _STATUS_LETTERS.get(status, status))
    _set(element, "total_time", step.get("totTime"))
    _set(element, "StepErrorCode", step.get("errorCode"))
    _set(element, "StepErrorMessage", step.get("errorMessage"))
    _set(element, "StepCausedSequenceFailure", step.get("causedSeqFailure"))
    _set(element, "StepCausedUUTFailure", step.get("causedUUTFailure"))
    if step.get("reportText") is not None:
        _sub(element, "ReportText").text = step["reportText"]
    seq = step.get("seqCall")
    if seq is not None:
        call = _sub(element, "SequenceCall")
        _set(call, "Name", seq.get("name"), keep_empty=True)
        _set(call, "Version", seq.get("version"), keep_empty=True)
        _set(call, "Filepath", seq.get("path"), keep_empty=True)
    for meas in step.get("numericMeas") or []:
        node = _sub(element, "NumericLimit")
        _set(node, "Name", meas.get("name"))
        _set(node, "NumericValue", meas.get("value"))
        _set(node, "Units", meas.get("unit"), keep_empty=True)
        _set(node, "CompOperator", meas.get("compOp"))
        _set(node, "HighLimit", meas.get("highLimit"))
        _set(node, "LowLimit", meas.get("lowLimit"))
        _set(node, "Status", _STATUS_LETTERS.get(meas["status"], meas["status"]))
    for meas in step.get("booleanMeas") or []:
        node = _sub(element, "PassFail")
        _set(node, "Name", meas.get("name"))
        _set(node, "Status", _STATUS_LETTERS.get(meas["status"], meas["status"]))
    for meas in step.get("stringMeas") or []:
        node = _sub(element, "StringValue")
        _set(node, "Name", meas.get("name"))
        _set(node, "CompOperator", meas.get("compOp"))
        _set(node, "StringLimit", meas.get("limit"))
        _set(node, "StringValue", meas.get("value"), keep_empty=True)
        _set(node, "Status", _STATUS_LETTERS.get(meas["status"], meas["status"]))
    chart = step.get("chart")
    if chart is not None:
        node = _sub(element, "Chart")
        for attr, key in (
            ("ChartType", "chartType"),
            ("Label", "label"),
            ("XLabel", "xLabel"),
            ("XUnit", "xUnit"),
            ("YLabel", "yLabel"),
            ("YUnit", "yUnit"),
        ):
            _set(node, attr, chart.get(key), keep_empty=True)
        for series in chart.get("series") or []:
            item = _sub(node, "Series")
            _set(item, "Name", series.get("name"), keep_empty=True)
            _set(item, "DataType", series.get("dataType"), keep_empty=True)
            _sub(item, "ydata").text = series.get("ydata") or ""
            _sub(item, "xdata").text = series.get("xdata") or ""
    loop = step.get("loop")
    if loop is not None:
        node = _sub(element, "Loop")
        _set(node, "num", loop.get("num"))
        _set(node, "passed", loop.get("passed"))
        _set(node, "failed", loop.get("failed"))
        _set(node, "ending_index", loop.get("endingIndex"))
        _set(node, "index", loop.get("idx"))
    popup = step.get("messagePopup")
    if isinstance(popup, dict):
        node = _sub(element, "MessagePopup")
        _set(node, "Button", popup.get("button"))
        _set(node, "Response", popup.get("response"), keep_empty=True)
    call_exe = step.get("callExe")
    if isinstance(call_exe, dict):
        _set(_sub(element, "Callexe"), "ExitCode", call_exe.get("exitCode"))
    for child in step.get("steps") or []:
        _write_step(element, child)


def report_to_wsxf(report: UUTReport) -> str:
    """The WSXF XML text (UTF-8 declaration, WATS namespace) of a UUT report."""
    data = dump_report(report, include_output_only=True)
    ET.register_namespace("", NAMESPACE)
    reports = ET.Element(_NS + "Reports")
    element = _sub(reports, "Report")
    element.set("type", "UUT")
    element.set("ID", data["id"])
    element.set("Start", data["start"])
    _set(element, "Start_utc", data.get("startUTC"))
    element.set("Result", _STATUS_LETTERS[data["result"]])
    for attr, key in (("SN", "sn"), ("PN", "pn"), ("Rev", "rev")):
        element.set(attr, data[key])
    _set(element, "origin", data.get("origin"))
    for attr, key in (("MachineName", "machineName"), ("Location", "location")):
        element.set(attr, data[key])
    element.set("Purpose", data["purpose"])
    _set(element, "ProductName", data.get("productName"))
    uut = data.get("uut")
    if uut is not None:
        node = _sub(element, "UUT")
        for attr, key in (
            ("UserLoginName", "user"),
            ("BatchSN", "batchSN"),
            ("TestSocketIndex", "testSocketIndex"),
            ("ExecutionTime", "execTime"),
            ("FixtureId", "fixtureId"),
            ("ErrorCode", "errorCode"),
            ("ErrorMessage", "errorMessage"),
            ("BatchFailCount", "batchFailCount"),
            ("BatchLoopIndex", "batchLoopIndex"),
            ("StepIdCausedUUTFailure", "stepIdCausedUUTFailure"),
        ):
            _set(node, attr, uut.get(key))
        if uut.get("comment") is not None:
            _sub(node, "Comment").text = uut["comment"]
    process = _sub(element, "Process")
    process.set("Code", str(data["processCode"]))
    _set(process, "Name", data.get("processName"))
    for info in data.get("miscInfos") or []:
        node = _sub(element, "MiscInfo")
        node.set("Description", info["description"])
        _set(node, "Numeric", info.get("numeric"))
        if info.get("text") is not None:
            node.text = info["text"]
    for unit in data.get("subUnits") or []:
        node = _sub(element, "ReportUnitHierarchy")
        _set(node, "PartType", unit.get("partType"), keep_empty=True)
        node.set("PN", unit["pn"])
        node.set("SN", unit["sn"])
        _set(node, "Rev", unit.get("rev"), keep_empty=True)
        _set(node, "Idx", unit.get("idx"))
        _set(node, "ParentIdx", unit.get("parentIdx"))
        _set(node, "Position", unit.get("position"))
    if data.get("root") is not None:
        _write_step(element, data["root"])
    body = ET.tostring(reports, encoding="unicode")
    return '<?xml version="1.0" encoding="utf-8"?>' + body


__all__ = [
    "NAMESPACE",
    "WsxfError",
    "report_to_wsxf",
    "wsxf_to_report",
    "wsxf_to_wsjf",
]
