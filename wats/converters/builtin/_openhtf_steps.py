"""OpenHTF phases and measurements as WATS steps (the step half of the OpenHTF converter).

OpenHTF records state an outcome for every phase and every measurement; those outcomes are
carried over as they are. Validators are only read for their limits (they are stored as the
text OpenHTF's ``str()`` gives them, e.g. ``"0 <= x <= 10"``); a validator whose text is not
recognised keeps its text in the step's ``reportText`` and the measurement is logged (``LOG``).
Mapping tables: docs/converters/openhtf.md.
"""

from __future__ import annotations

import base64
import binascii
import csv
import hashlib
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from wats.api.models import (
    Attachment,
    BinaryData,
    BooleanMeasurement,
    Chart,
    ChartSeries,
    ChartStep,
    CompOp,
    GenericStep,
    MultiNumericLimitStep,
    NumericLimitStep,
    NumericMeasurement,
    PassFailStep,
    SequenceCallInfo,
    SequenceCallStep,
    StepBase,
    StepStatus,
    StringMeasurement,
    StringValueStep,
)
from wats.converters.builtin._openhtf_limits import (
    Limits,
    finite,
    is_number,
    numeric_limits,
    string_limit,
)

__all__ = [
    "MAX_LIST_MEASUREMENTS",
    "PhaseContext",
    "RecordError",
    "build_phase_steps",
    "expect_dict",
    "expect_list",
    "given",
    "millis_to_datetime",
    "seconds_between",
    "short",
]

MAX_LIST_MEASUREMENTS = 100
"""A plain list of numbers up to this long becomes ET_MNLT; a longer one becomes a chart."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

PHASE_STATUS = {
    "PASS": StepStatus.PASSED,
    "FAIL": StepStatus.FAILED,
    "SKIP": StepStatus.SKIPPED,
    "ERROR": StepStatus.ERROR,
    "MARGINAL_PASS": StepStatus.PASSED,
}
"""OpenHTF PhaseOutcome → step status."""

MEASUREMENT_STATUS = {
    "PASS": StepStatus.PASSED,
    "FAIL": StepStatus.FAILED,
    "UNSET": StepStatus.SKIPPED,
    "PARTIALLY_SET": StepStatus.ERROR,
    "MARGINAL_PASS": StepStatus.PASSED,
}
"""OpenHTF measurement Outcome → status (UNSET: never measured; PARTIALLY_SET: incomplete)."""

SUBTEST_STATUS = {
    "PASS": StepStatus.PASSED,
    "FAIL": StepStatus.FAILED,
    "STOP": StepStatus.TERMINATED,
}
"""OpenHTF SubtestOutcome → status of the subtest's sequence call."""

_EXC_CLASS = re.compile(r"^<class '(?P<name>[^']+)'>$")


class RecordError(ValueError):
    """The record does not have the shape of an OpenHTF test record; says where."""


@dataclass
class PhaseContext:
    """What step building needs besides the phases, and what it collects on the way."""

    tz: tzinfo
    warnings: list[str] = field(default_factory=list)
    binary_data: list[BinaryData] = field(default_factory=list)
    confidence: float = 1.0

    def warn(self, text: str, confidence: float | None = None) -> None:
        """Record a warning once; ``confidence`` caps the result's confidence."""
        if text not in self.warnings:
            self.warnings.append(text)
        if confidence is not None:
            self.confidence = min(self.confidence, confidence)


def expect_dict(value: Any, where: str) -> dict[str, Any]:
    """``value`` as an object, or a RecordError naming ``where``."""
    if not isinstance(value, dict):
        raise RecordError(f"{where}: expected a JSON object, got {_kind(value)}")
    return value


def expect_list(value: Any, where: str) -> list[Any]:
    """``value`` as a list (null counts as empty), or a RecordError naming ``where``."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"{where}: expected a JSON list, got {_kind(value)}")
    return value


def given(**fields: Any) -> dict[str, Any]:
    """Only the fields that have a value: models are dumped with ``exclude_unset``, so a
    field passed as None would be sent to WATS as an explicit null."""
    return {key: value for key, value in fields.items() if value is not None}


def short(text: str, limit: int = 100) -> str:
    """``text`` cut to WATS's field length (names, misc infos)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def millis_to_datetime(value: Any, tz: tzinfo, where: str) -> datetime | None:
    """Epoch milliseconds (OpenHTF's clock) as an aware datetime in ``tz``; None if absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(f"{where}: expected epoch milliseconds, got {_kind(value)}")
    try:
        return (_EPOCH + timedelta(milliseconds=value)).astimezone(tz)
    except (OverflowError, ValueError, OSError) as exc:
        raise RecordError(f"{where}: {value!r} is not a usable time ({exc})") from exc


def seconds_between(start: Any, end: Any) -> float | None:
    """Seconds from ``start`` to ``end`` (epoch milliseconds), None when either is unusable."""
    if not all(is_number(v) and math.isfinite(v) for v in (start, end)) or end < start:
        return None
    return (end - start) / 1000.0


def build_phase_steps(record: dict[str, Any], ctx: PhaseContext) -> list[StepBase]:
    """One sequence call per phase, in record order; phases of a subtest nest in a sequence
    call named after the subtest, placed where its first phase ran."""
    subtests = _subtests_by_name(record.get("subtests"))
    steps: list[StepBase] = []
    open_subtests: dict[str, SequenceCallStep] = {}
    for index, raw in enumerate(expect_list(record.get("phases"), "phases")):
        where = f"phases[{index}]"
        phase = expect_dict(raw, where)
        step = _phase_step(phase, where, ctx)
        subtest = phase.get("subtest_name")
        if not isinstance(subtest, str) or not subtest:
            steps.append(step)
            continue
        if subtest not in open_subtests:
            open_subtests[subtest] = _subtest_step(subtest, subtests.get(subtest), ctx)
            steps.append(open_subtests[subtest])
        open_subtests[subtest].steps.append(step)
    return steps


def _subtests_by_name(raw: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(expect_list(raw, "subtests")):
        subtest = expect_dict(item, f"subtests[{index}]")
        name = subtest.get("name")
        if isinstance(name, str):
            found.setdefault(name, subtest)
    return found


def _subtest_step(name: str, subtest: dict[str, Any] | None, ctx: PhaseContext) -> SequenceCallStep:
    fields: dict[str, Any] = {"name": short(name), "seq_call": SequenceCallInfo(name=name)}
    outcome = subtest.get("outcome") if subtest else None
    status = SUBTEST_STATUS.get(outcome) if isinstance(outcome, str) else None
    if status is None:
        ctx.warn(f"subtest {name!r}: outcome {outcome!r} unknown; recorded as done", 0.8)
        status = StepStatus.DONE
    fields["status"] = status
    if subtest:
        start = millis_to_datetime(subtest.get("start_time_millis"), ctx.tz, f"subtest {name}")
        if start is not None:
            fields["start"] = start
        seconds = seconds_between(subtest.get("start_time_millis"), subtest.get("end_time_millis"))
        if seconds is not None:
            fields["tot_time"] = seconds
        if subtest.get("marginal") is True:
            fields["report_text"] = "marginal pass"
    return SequenceCallStep(**fields)


def _phase_step(phase: dict[str, Any], where: str, ctx: PhaseContext) -> SequenceCallStep:
    name = phase.get("name")
    if not isinstance(name, str) or not name:
        raise RecordError(f"{where}.name: expected the phase's name, got {_kind(name)}")
    outcome = phase.get("outcome")
    status = PHASE_STATUS.get(outcome) if isinstance(outcome, str) else None
    if status is None:
        ctx.warn(f"phase {name!r}: outcome {outcome!r} unknown; recorded as done", 0.8)
        status = StepStatus.DONE
    codeinfo = phase.get("codeinfo")
    code_name = codeinfo.get("name") if isinstance(codeinfo, dict) else None
    fields: dict[str, Any] = {
        "name": short(name),
        "status": status,
        "seq_call": SequenceCallInfo(**given(name=name, path=code_name or None)),
    }
    start = millis_to_datetime(phase.get("start_time_millis"), ctx.tz, f"{where}.start_time_millis")
    if start is not None:
        fields["start"] = start
    seconds = seconds_between(phase.get("start_time_millis"), phase.get("end_time_millis"))
    if seconds is not None:
        fields["tot_time"] = seconds
    notes, error = _phase_notes(phase, name, status, ctx)
    if notes:
        fields["report_text"] = "\n".join(notes)
    if error:
        fields["error_message"] = error
    measurements = phase.get("measurements")
    steps = [
        _measurement_step(key, meas, f"{where}.measurements.{key}", ctx)
        for key, meas in (
            expect_dict(measurements, f"{where}.measurements").items()
            if measurements is not None
            else ()
        )
    ]
    fields["steps"] = steps
    _collect_attachments(phase, name, where, ctx)
    return SequenceCallStep(**fields)


def _phase_notes(
    phase: dict[str, Any], name: str, status: StepStatus, ctx: PhaseContext
) -> tuple[list[str], str]:
    """Report-text lines (phase result, marginal, diagnoses) and an error message, if any."""
    notes: list[str] = []
    error = ""
    result = phase.get("result")
    phase_result = result.get("phase_result") if isinstance(result, dict) else None
    if isinstance(phase_result, str) and phase_result != "CONTINUE":
        notes.append(f"phase result: {phase_result}")
    elif isinstance(phase_result, dict):
        exc_type = str(phase_result.get("exc_type") or "exception")
        matched = _EXC_CLASS.match(exc_type)
        error = f"{matched['name'] if matched else exc_type}: {phase_result.get('exc_val') or ''}"
        error = error.rstrip(": ")
    if phase.get("marginal") is True and status is StepStatus.PASSED:
        notes.append("marginal pass")
        ctx.warn(f"phase {name!r} passed marginally; WATS has no marginal status (kept passed)")
    for key, label in (
        ("diagnosis_results", "diagnosis"),
        ("failure_diagnosis_results", "failure diagnosis"),
    ):
        results = phase.get(key)
        if isinstance(results, list) and results:
            notes.append(f"{label}: " + ", ".join(str(r) for r in results))
    return notes, error


def _collect_attachments(phase: dict[str, Any], name: str, where: str, ctx: PhaseContext) -> None:
    attachments = phase.get("attachments")
    if attachments is None:
        return
    for att_name, raw in expect_dict(attachments, f"{where}.attachments").items():
        att = expect_dict(raw, f"{where}.attachments.{att_name}")
        data = att.get("data")
        if not isinstance(data, str):
            ctx.warn(
                f"phase {name!r}: attachment {att_name!r} has no inline data "
                "(record written without inline attachments); not carried over"
            )
            continue
        try:
            payload = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            ctx.warn(f"phase {name!r}: attachment {att_name!r} is not base64; not carried over")
            continue
        sha1 = att.get("sha1")
        if isinstance(sha1, str) and sha1 and hashlib.sha1(payload).hexdigest() != sha1.lower():
            ctx.warn(f"phase {name!r}: attachment {att_name!r} does not match its sha1", 0.8)
        mimetype = att.get("mimetype")
        content_type = (
            mimetype if isinstance(mimetype, str) and mimetype else "application/octet-stream"
        )
        ctx.binary_data.append(
            BinaryData(name=f"{name}/{att_name}", content_type=content_type, data=data)
        )


def _measurement_step(key: str, raw: Any, where: str, ctx: PhaseContext) -> StepBase:
    meas = expect_dict(raw, where)
    name = meas.get("name") if isinstance(meas.get("name"), str) and meas.get("name") else key
    outcome = meas.get("outcome")
    status = MEASUREMENT_STATUS.get(outcome) if isinstance(outcome, str) else None
    if status is None:
        ctx.warn(f"measurement {name!r}: outcome {outcome!r} unknown; recorded as done", 0.8)
        status = StepStatus.DONE
    validators = [
        v if isinstance(v, str) else json.dumps(v)
        for v in expect_list(meas.get("validators"), f"{where}.validators")
    ]
    notes = []
    if isinstance(meas.get("docstring"), str) and meas["docstring"]:
        notes.append(meas["docstring"])
    if validators:
        notes.append("validators: " + "; ".join(validators))
    if meas.get("marginal") is True:
        notes.append("marginal pass")
        ctx.warn(f"measurement {name!r} passed marginally; WATS has no marginal status")
    common: dict[str, Any] = {"name": short(name), "status": status}
    if notes:
        common["report_text"] = "\n".join(notes)
    unit = _unit_text(meas.get("units"))
    value = meas.get("measured_value")
    dimensions = meas.get("dimensions")
    if (isinstance(dimensions, list) and dimensions) or _is_table(value):
        return _dimensioned_step(name, value, dimensions, unit, common)
    if isinstance(value, bool):
        return PassFailStep(**common, boolean_meas=[BooleanMeasurement(status=status, value=value)])
    if is_number(value) or (value is None and (unit or numeric_limits(validators))):
        return _numeric_step(value, validators, unit, common)
    if isinstance(value, str) or value is None:
        return _string_step(value, validators, common)
    if isinstance(value, list) and value and all(is_number(v) for v in value):
        return _list_step(name, value, validators, unit, common)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=True)
    return StringValueStep(
        **common, string_meas=[StringMeasurement(status=status, value=text, comp_op=CompOp.LOG)]
    )


def _numeric_step(
    value: Any, validators: list[str], unit: str | None, common: dict[str, Any]
) -> NumericLimitStep:
    limits = numeric_limits(validators) or Limits(CompOp.LOG)
    fields: dict[str, Any] = {"status": common["status"], "comp_op": limits.comp_op}
    number = finite(value)
    if number is not None:
        fields["value"] = number
    elif value is not None:
        common = {**common, "report_text": _join(common.get("report_text"), f"value: {value}")}
    for key, limit in (("low_limit", limits.low), ("high_limit", limits.high), ("unit", unit)):
        if limit is not None:
            fields[key] = limit
    return NumericLimitStep(**common, numeric_meas=[NumericMeasurement(**fields)])


def _list_step(
    name: str, values: list[Any], validators: list[str], unit: str | None, common: dict[str, Any]
) -> StepBase:
    if len(values) > MAX_LIST_MEASUREMENTS:
        rows = [[index, v] for index, v in enumerate(values)]
        return _dimensioned_step(name, rows, [{"name": "index"}], unit, common)
    limits = numeric_limits(validators) or Limits(CompOp.LOG)
    metas = []
    for index, value in enumerate(values):
        suffix = f"[{index}]"
        fields: dict[str, Any] = {
            "status": common["status"],
            "name": short(name, 100 - len(suffix)) + suffix,
            "comp_op": limits.comp_op,
        }
        for key, item in (
            ("value", finite(value)),
            ("low_limit", limits.low),
            ("high_limit", limits.high),
            ("unit", unit),
        ):
            if item is not None:
                fields[key] = item
        metas.append(NumericMeasurement(**fields))
    return MultiNumericLimitStep(**common, numeric_meas=metas)


def _string_step(
    value: str | None, validators: list[str], common: dict[str, Any]
) -> StringValueStep:
    fields: dict[str, Any] = {"status": common["status"], "comp_op": CompOp.LOG}
    if value is not None:
        fields["value"] = value
    limit = string_limit(validators)
    if limit is not None:
        fields["comp_op"], fields["limit"] = CompOp.CASESENSIT, limit
    return StringValueStep(**common, string_meas=[StringMeasurement(**fields)])


def _dimensioned_step(
    name: str, value: Any, dimensions: Any, unit: str | None, common: dict[str, Any]
) -> StepBase:
    """A chart when every cell is a finite number, else a CSV attachment: never dropped."""
    dims = dimensions if isinstance(dimensions, list) else []
    rows = value if isinstance(value, list) else []
    if not rows:
        if value is not None:
            common = {**common, "report_text": _join(common.get("report_text"), f"value: {value}")}
        return GenericStep(**common)
    width = max(len(row) if isinstance(row, list) else 1 for row in rows)
    columns = [_dimension_label(d) for d in dims[: width - 1]]
    columns += [f"column {i}" for i in range(len(columns), width - 1)]
    columns.append(f"value [{unit}]" if unit else "value")
    cells = [row if isinstance(row, list) else [row] for row in rows]
    numeric = width >= 2 and all(
        len(row) == width and all(finite(c) is not None for c in row) for row in cells
    )
    if not numeric:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([_cell_text(c) for c in row] for row in cells)
        attachment = Attachment.from_bytes(
            short(f"{name}.csv"),
            buffer.getvalue().encode("utf-8"),
            "text/csv",
            description="multidimensional measurement: dimensions, then the value",
        )
        return GenericStep(**common, attachment=attachment)
    xs = [float(row[0]) for row in cells]
    series = [
        ChartSeries(
            data_type="XYG",
            name=columns[col],
            xdata=ChartSeries.encode(xs),
            ydata=ChartSeries.encode([float(row[col]) for row in cells]),
        )
        for col in range(1, width)
    ]
    chart = Chart(
        **given(
            label=name,
            x_label=columns[0],
            x_unit=_dimension_unit(dims[0]) if dims else None,
            y_label=name,
            y_unit=unit if width == 2 else None,
        ),
        series=series,
    )
    return ChartStep(**common, chart=chart)


def _unit_text(units: Any) -> str | None:
    if isinstance(units, str):
        return units or None
    if isinstance(units, dict):
        for key in ("suffix", "name"):
            if isinstance(units.get(key), str) and units[key]:
                return str(units[key])
    return None


def _dimension_label(dimension: Any) -> str:
    if isinstance(dimension, dict):
        for key in ("name", "description", "suffix", "code"):
            if isinstance(dimension.get(key), str) and dimension[key]:
                label = str(dimension[key])
                unit = _dimension_unit(dimension)
                return f"{label} [{unit}]" if unit and unit != label else label
    return str(dimension) if isinstance(dimension, str | int | float) else "dimension"


def _dimension_unit(dimension: Any) -> str | None:
    if isinstance(dimension, dict) and isinstance(dimension.get("suffix"), str):
        return dimension["suffix"] or None
    return None


def _is_table(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, list) for r in value)


def _cell_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, allow_nan=True)


def _join(first: str | None, second: str) -> str:
    return f"{first}\n{second}" if first else second


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
