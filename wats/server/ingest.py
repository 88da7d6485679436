"""Turn a submitted WSJF/WSXF body into a validated report, its stored text and its header.

Validation is delegated to ``wats.api.models`` (the same models the client validates with before
sending), so the server is exactly as strict as the library: a body the models refuse is answered
with 400 and a message naming the field. This module only adds what the wire needs: JSON decoding
errors with line/column, readable pydantic locations, and the header columns for queries.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from wats.api.models import describe_validation_error as describe_problems
from wats.server.odata import parse_datetime, utc_text
from wats.server.reference import ReferenceData
from wats.server.store import ReportHeader


class ReportRejected(ValueError):
    """The body is not an acceptable report; ``str()`` is the message for the client."""


def describe_validation_error(exc: ValidationError, prefix: str = "Invalid report") -> str:
    """The models' readable ``field.path: problem`` lines, after a prefix naming what failed."""
    return f"{prefix}: {describe_problems(exc, limit=5)}"


def decode_json(body: bytes) -> dict[str, Any]:
    """Parse the request body as a JSON object, or reject it saying where it breaks."""
    if not body.strip():
        raise ReportRejected("Invalid report: the request body is empty")
    try:
        data = json.loads(body)
    except UnicodeDecodeError as exc:
        raise ReportRejected(f"Malformed JSON: body is not UTF-8 ({exc.reason})") from exc
    except json.JSONDecodeError as exc:
        raise ReportRejected(
            f"Malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(data, dict):
        raise ReportRejected(f"Invalid report: expected a JSON object, got {type(data).__name__}")
    return data


def validate_wsjf(data: dict[str, Any]) -> Any:
    """Validate a WSJF dict with the report models; returns the UUT/UUR report model."""
    from wats.api.models import parse_report

    try:
        return parse_report(data)
    except ValidationError as exc:
        raise ReportRejected(describe_validation_error(exc)) from exc
    except ValueError as exc:
        raise ReportRejected(f"Invalid report: {exc}") from exc


def validate_wsxf(body: bytes) -> Any:
    """Convert and validate a WSXF (XML) body; returns the UUT report model."""
    from wats.api.wsxf import wsxf_to_report

    if not body.strip():
        raise ReportRejected("Invalid report: the request body is empty")
    try:
        return wsxf_to_report(body)
    except ValidationError as exc:
        raise ReportRejected(describe_validation_error(exc)) from exc
    except ValueError as exc:  # includes xml.etree.ElementTree.ParseError
        raise ReportRejected(f"Invalid WSXF report: {exc}") from exc


def dump_wsjf(report: Any) -> dict[str, Any]:
    """The report as a WSJF dict (used to store WSXF submissions as JSON)."""
    from wats.api.models import dump_report

    return dump_report(report)


def count_steps(report: Any) -> int:
    """How many steps the report's tree holds (0 for repair reports)."""
    from wats.api.models import iter_steps

    return sum(1 for _ in iter_steps(report))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _start_utc(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return utc_text(value)
    try:
        return utc_text(parse_datetime(str(value)))
    except ValueError:
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _failing_step(root: Any, step_id: int | None) -> tuple[str, str] | None:
    """Name and path (``Numeric tests/Ripple``, below the root) of the step that failed the unit:
    the one ``uut.stepIdCausedUUTFailure`` names, else the first marked ``causedUUTFailure``."""
    flagged: tuple[str, str] | None = None
    stack: list[tuple[Any, tuple[str, ...]]] = [(root, ())]
    while stack:
        step, parents = stack.pop()
        if not isinstance(step, dict):
            continue
        path = (*parents, str(step.get("name") or ""))
        if parents:
            found = (path[-1], "/".join(path[1:]))
            if step_id is not None and step.get("id") == step_id:
                return found
            if flagged is None and step.get("causedUUTFailure") is True:
                if step_id is None:
                    return found
                flagged = found
        children = step.get("steps") or []
        stack.extend((child, path) for child in reversed(children))
    return flagged


def _process_name(reference: ReferenceData, code: Any, fallback: Any) -> str | None:
    process = reference.process_by_code(code) if _int(code) is not None else None
    return process.name if process else _text(fallback)


def header_extras(data: dict[str, Any], reference: ReferenceData) -> dict[str, Any]:
    """The header columns WATS derives from a report's ``uut``/``uur`` block and step tree.

    - ``batchNumber`` ``uut.batchSN``; ``fixtureId``, ``testSocketIndex``, ``errorCode``,
      ``errorMessage`` from ``uut``; ``comment`` from ``uut``/``uur``;
    - ``swFilename``/``swVersion`` from the root sequence call: ``seqCall.name`` (which
      Virinco's pyWATS models as the sequence file name; else the file name of ``seqCall.path``)
      and ``seqCall.version``;
    - ``testOperation``: the test operation's name: the report's process for a test report, the
      failed test operation (``uur.processCode``) for a repair report;
    - ``referencedUut``: ``uur.refUUT``; ``causedUutFailure`` (+ path): the step
      ``uut.stepIdCausedUUTFailure`` names, else the first one marked ``causedUUTFailure``.
    """
    is_repair = data.get("type") == "R"
    info = data.get("uur" if is_repair else "uut") or {}
    root = data.get("root") if not is_repair else None
    seq_call = (root.get("seqCall") if isinstance(root, dict) else None) or {}
    path = str(seq_call.get("path") or "").replace("\\", "/").rsplit("/", 1)[-1]
    sw_filename = _text(seq_call.get("name")) or path or None
    if is_repair:
        test_operation = _process_name(reference, info.get("processCode"), info.get("processName"))
    else:
        test_operation = _process_name(reference, data.get("processCode"), data.get("processName"))
    failing = (
        _failing_step(root, _int(info.get("stepIdCausedUUTFailure")))
        if isinstance(root, dict)
        else None
    )
    ref = info.get("refUUT") if is_repair else None
    return {
        "batch_number": None if is_repair else _text(info.get("batchSN")),
        "fixture_id": None if is_repair else _text(info.get("fixtureId")),
        "sw_filename": sw_filename,
        "sw_version": _text(seq_call.get("version")),
        "test_socket_index": None if is_repair else _int(info.get("testSocketIndex")),
        "comment": _text(info.get("comment")),
        "error_code": None if is_repair else _int(info.get("errorCode")),
        "error_message": None if is_repair else _text(info.get("errorMessage")),
        "test_operation": test_operation,
        "referenced_uut": str(ref).lower() if ref else None,
        "caused_uut_failure": failing[0] if failing else None,
        "caused_uut_failure_path": failing[1] if failing else None,
    }


def build_header(
    data: dict[str, Any],
    step_count: int,
    reference: ReferenceData,
    received: datetime | None = None,
) -> ReportHeader:
    """The query columns of a validated WSJF dict (wire names, so model internals don't matter)."""
    info = data.get("uut") or data.get("uur") or {}
    code = data.get("processCode")
    exec_time = info.get("execTime")
    return ReportHeader(
        uuid=str(data["id"]).lower(),
        report_type=str(data.get("type", "T")),
        serial_number=str(data["sn"]),
        part_number=str(data["pn"]),
        revision=_text(data.get("rev")),
        station_name=_text(data.get("machineName")),
        location=_text(data.get("location")),
        purpose=_text(data.get("purpose")),
        process_code=_int(code),
        process_name=_process_name(reference, code, data.get("processName")),
        result=_text(data.get("result")),
        start_utc=_start_utc(data.get("start")),
        operator=_text(info.get("user")),
        execution_time=float(exec_time) if isinstance(exec_time, int | float) else None,
        step_count=step_count,
        received_utc=utc_text(received or datetime.now(UTC)),
        **header_extras(data, reference),
    )


def stored_header_extras(body: str, reference: ReferenceData) -> dict[str, Any]:
    """``header_extras`` of a stored body (for filling columns added by a newer version)."""
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return header_extras(data, reference) if isinstance(data, dict) else {}
