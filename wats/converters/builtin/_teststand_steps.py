"""TestStand step results (``TEResult`` property trees) as WSJF step dicts.

Used by wats.converters.builtin.teststand_xml for both report layouts, which share the result
tree. Statuses, limits and comparison operators are copied as TestStand recorded them, never
re-judged: a station's verdict is the fact WATS stores. The output is plain WSJF (camelCase
dicts) that the caller validates once with the report models.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from wats.api.models import CompOp, StepStatus
from wats.api.models.enums import NUMERIC_COMP_OPS
from wats.converters.builtin._teststand_props import (
    array_values,
    boolean,
    first_prop,
    integer,
    number,
    prop,
    raw_number,
    text,
)

__all__ = [
    "MAX_SEQUENCE_DEPTH",
    "StepMapping",
    "TestStandFormatError",
    "map_status",
    "result_of",
]

MAX_SEQUENCE_DEPTH = 64
"""Sequence calls nested deeper than this fail the file: real sequences stay far below it, and
a bound keeps a hostile file from exhausting the stack."""

MAX_NAME = 100
"""WATS caps step and measurement names at 100 characters."""

_STATUS = {
    "passed": StepStatus.PASSED,
    "failed": StepStatus.FAILED,
    "error": StepStatus.ERROR,
    "terminated": StepStatus.TERMINATED,
    "aborted": StepStatus.TERMINATED,
    "skipped": StepStatus.SKIPPED,
    "done": StepStatus.DONE,
}

_GROUP = {"setup": "S", "main": "M", "cleanup": "C"}

_STRING_COMP = {
    "log": CompOp.LOG,
    "ignorecase": CompOp.IGNORECASE,
    "casesensitive": CompOp.CASESENSIT,
    "casesensit": CompOp.CASESENSIT,
}

SEQUENCE_TYPES = frozenset({"SequenceCall", "WATS_SeqCall"})
NUMERIC_TYPES = frozenset({"NumericLimitTest", "ET_NLT"})
MULTI_NUMERIC_TYPES = frozenset(
    {"NI_MultipleNumericLimitTest", "MultipleNumericLimitTest", "MultiNumericLimitTest", "ET_MNLT"}
)
PASS_FAIL_TYPES = frozenset({"PassFailTest", "ET_PFT"})
MULTI_PASS_FAIL_TYPES = frozenset({"ET_MPFT"})
STRING_TYPES = frozenset({"StringValueTest", "ET_SVT"})
MULTI_STRING_TYPES = frozenset({"ET_MSVT"})
_TYPED_GENERIC_CLASH = frozenset({"Chart"})
"""Type names the report models read as a typed step whose payload we cannot fill."""


class TestStandFormatError(ValueError):
    """The result tree cannot be read; the message says where."""

    __test__ = False  # not a pytest test class, despite the name


def map_status(raw: str | None) -> StepStatus | None:
    """The WATS status of a TestStand status text (any case); None when unknown."""
    return _STATUS.get((raw or "").strip().casefold())


def result_of(value: ET.Element) -> ET.Element | None:
    """The ``TEResult`` object inside an array element (``<Value><Prop Type='TEResult'>``)."""
    for child in value:
        if child.tag == "Prop" and child.get("Type") == "TEResult":
            return child
    return first_prop(value)


def _clip(name: str) -> str:
    return name[:MAX_NAME]


@dataclass
class StepMapping:
    """Converts one report's result tree; holds the per-report state (step ids, time origin,
    warnings). ``time_origin`` is the wall-clock instant of TestStand's ``TS.StartTime`` 0."""

    time_origin: datetime | None = None
    warnings: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def warn(self, message: str) -> None:
        """Record a warning once (the same problem on many steps is one line)."""
        if message not in self.warnings:
            self.warnings.append(message)

    # -- the tree ------------------------------------------------------------------------

    def root(self, main: ET.Element) -> dict[str, Any]:
        """The WSJF root sequence call of the main ``TEResult``."""
        if prop(main, "TS.SequenceCall") is None:
            raise TestStandFormatError("the main result has no TS.SequenceCall (no step results)")
        step = self._step(main, depth=0)
        step["stepType"] = "SequenceCall"
        return step

    def _step(self, te: ET.Element, depth: int) -> dict[str, Any]:
        step_type = text(te, "TS.StepType") or ""
        name = text(te, "TS.StepName") or step_type or "Step"
        where = f"step {name!r}"
        status = self._status(text(te, "Status"), where)
        step: dict[str, Any] = {
            "id": next(self._ids),
            "name": _clip(name),
            "group": _GROUP.get((text(te, "TS.StepGroup") or "").casefold(), "M"),
            "status": status.value,
        }
        self._common(te, step)
        kind = _kind(te, step_type)
        if kind == "sequence":
            self._sequence(te, step, depth, where)
        elif status is StepStatus.SKIPPED:
            # TestStand leaves stale data in skipped steps; WATS logs no measurement for them.
            step["stepType"] = _wats_type(kind, step_type)
        else:
            self._measurements(te, step, kind, step_type, status, where)
        return step

    def _sequence(self, te: ET.Element, step: dict[str, Any], depth: int, where: str) -> None:
        if depth >= MAX_SEQUENCE_DEPTH:
            raise TestStandFormatError(
                f"{where}: sequence calls nested deeper than {MAX_SEQUENCE_DEPTH} levels"
            )
        call = prop(te, "TS.SequenceCall")
        step["stepType"] = "SequenceCall"
        info = {
            "path": text(call, "SequenceFile") or None,
            "name": text(call, "Sequence") or None,
            "version": text(call, "SequenceFileVersion") or None,
        }
        step["seqCall"] = {k: v for k, v in info.items() if v is not None}
        children = []
        for value in array_values(call, "ResultList"):
            child = result_of(value)
            if child is not None:
                children.append(self._step(child, depth + 1))
        step["steps"] = children

    def _status(self, raw: str | None, where: str) -> StepStatus:
        status = map_status(raw)
        if status is None:
            self.warn(f"{where}: status {raw or '(none)'!r} unknown, recorded as Done")
            return StepStatus.DONE
        return status

    def _common(self, te: ET.Element, step: dict[str, Any]) -> None:
        """Timing, error, report text, loop and failure flags every step may carry."""
        total = number(te, "TS.TotalTime")
        if total is not None and total >= 0:
            step["totTime"] = total
        started = number(te, "TS.StartTime")
        if started is not None and self.time_origin is not None and abs(started) < 1e8:
            step["start"] = (self.time_origin + timedelta(seconds=started)).isoformat()
        occurred = boolean(te, "Error.Occurred")
        code = integer(te, "Error.Code")
        message = text(te, "Error.Msg")
        if occurred or code or message:
            if code is not None:
                step["errorCode"] = code
            if message:
                step["errorMessage"] = message
        report_text = text(te, "ReportText")
        if report_text:
            step["reportText"] = report_text
        guid = text(te, "TS.StepId")
        if guid:
            step["tsGuid"] = guid
        caused = boolean(te, "TS.StepCausedSequenceFailure")
        if caused is not None:
            step["causedSeqFailure"] = caused
        loop = {
            key: integer(te, path)
            for key, path in (
                ("num", "TS.NumLoops"),
                ("endingIndex", "TS.EndingLoopIndex"),
                ("passed", "TS.NumPassed"),
                ("failed", "TS.NumFailed"),
                ("idx", "TS.LoopIndex"),
            )
        }
        if any(v is not None for v in loop.values()):
            step["loop"] = {k: v for k, v in loop.items() if v is not None}

    # -- measurements --------------------------------------------------------------------

    def _measurements(
        self,
        te: ET.Element,
        step: dict[str, Any],
        kind: str,
        step_type: str,
        status: StepStatus,
        where: str,
    ) -> None:
        step["stepType"] = _wats_type(kind, step_type)
        if kind == "numeric":
            meas = self._numeric(te, "Numeric", status, where)
            if meas is not None:
                step["numericMeas"] = [meas]
        elif kind == "passfail":
            value = boolean(te, "PassFail")
            if prop(te, "PassFail") is not None:
                step["booleanMeas"] = [_without_none({"status": status.value, "value": value})]
        elif kind == "string":
            if prop(te, "String") is not None:
                step["stringMeas"] = [self._string(te, "String", "Limits.String", status, where)]
        elif kind in ("multinumeric", "multipassfail", "multistring"):
            self._multi(te, step, kind, status, where)

    def _numeric(
        self, node: ET.Element, value_path: str, status: StepStatus, where: str
    ) -> dict[str, Any] | None:
        present, value = raw_number(node, value_path)
        if not present:
            return None
        if value is None:
            self.warn(f"{where}: measured value {text(node, value_path)!r} is not a finite number")
        comp_text = text(node, "Comp")
        comp = _numeric_comp(comp_text)
        if comp is None:
            self.warn(f"{where}: comparison {comp_text!r} unknown, recorded as LOG")
            comp = CompOp.LOG
        low, high = _limits(node, comp)
        meas = {
            "status": status.value,
            "value": value,
            "unit": text(node, "Units") or None,
            "compOp": comp.value,
            "lowLimit": low,
            "highLimit": high,
        }
        return _without_none(meas)

    def _string(
        self, node: ET.Element, value_path: str, limit_path: str, status: StepStatus, where: str
    ) -> dict[str, Any]:
        comp_text = text(node, "Comp")
        comp = _STRING_COMP.get((comp_text or "log").casefold())
        if comp is None:
            self.warn(f"{where}: string comparison {comp_text!r} unknown, recorded as LOG")
            comp = CompOp.LOG
        meas = {
            "status": status.value,
            "value": text(node, value_path),
            "compOp": comp.value,
            "limit": text(node, limit_path),
        }
        return _without_none(meas)

    def _multi(
        self, te: ET.Element, step: dict[str, Any], kind: str, status: StepStatus, where: str
    ) -> None:
        numeric: list[dict[str, Any]] = []
        booleans: list[dict[str, Any]] = []
        strings: list[dict[str, Any]] = []
        for index, value in enumerate(array_values(te, "Measurement")):
            node = first_prop(value)
            if node is None:
                continue
            name = _clip(node.get("Name") or text(node, "MeasName") or f"Measurement {index}")
            own = map_status(text(node, "Status")) or status
            at = f"{where}, measurement {name!r}"
            if prop(node, "Data") is not None:
                meas = self._numeric(node, "Data", own, at)
                if meas is not None:
                    numeric.append({"name": name, **meas})
            elif prop(node, "StringData") is not None:
                strings.append(
                    {"name": name, **self._string(node, "StringData", "StringLimit", own, at)}
                )
            elif prop(node, "PassFail") is not None:
                booleans.append(
                    _without_none(
                        {"status": own.value, "name": name, "value": boolean(node, "PassFail")}
                    )
                )
        wanted = {"multinumeric": numeric, "multipassfail": booleans, "multistring": strings}
        key = {"multinumeric": "numericMeas", "multipassfail": "booleanMeas"}.get(
            kind, "stringMeas"
        )
        if wanted[kind]:
            step[key] = wanted[kind]
        dropped = sum(len(v) for k, v in wanted.items() if k != kind)
        if dropped:
            self.warn(f"{where}: {dropped} measurement(s) of another kind than {kind} left out")


def _kind(te: ET.Element, step_type: str) -> str:
    """What a step carries, from its TestStand type name, else from the data it holds."""
    if step_type in SEQUENCE_TYPES or prop(te, "TS.SequenceCall") is not None:
        return "sequence"
    by_name = (
        (MULTI_NUMERIC_TYPES, "multinumeric"),
        (MULTI_PASS_FAIL_TYPES, "multipassfail"),
        (MULTI_STRING_TYPES, "multistring"),
        (NUMERIC_TYPES, "numeric"),
        (PASS_FAIL_TYPES, "passfail"),
        (STRING_TYPES, "string"),
    )
    for names, kind in by_name:
        if step_type in names:
            return kind
    values = array_values(te, "Measurement")
    if values:
        first = first_prop(values[0])
        if first is not None and prop(first, "StringData") is not None:
            return "multistring"
        if first is not None and prop(first, "PassFail") is not None:
            return "multipassfail"
        return "multinumeric"
    for path, kind in (("Numeric", "numeric"), ("PassFail", "passfail"), ("String", "string")):
        if prop(te, path) is not None:
            return kind
    return "generic"


def _wats_type(kind: str, step_type: str) -> str:
    typed = {
        "numeric": "ET_NLT",
        "multinumeric": "ET_MNLT",
        "passfail": "ET_PFT",
        "multipassfail": "ET_MPFT",
        "string": "ET_SVT",
        "multistring": "ET_MSVT",
        "sequence": "SequenceCall",
    }
    if kind in typed:
        return typed[kind]
    if not step_type or step_type in _TYPED_GENERIC_CLASH:
        return "Action"
    return step_type


def _numeric_comp(raw: str | None) -> CompOp | None:
    if raw is None or raw == "":
        return CompOp.LOG
    try:
        op = CompOp(raw.strip().upper())
    except ValueError:
        return None
    return op if op in NUMERIC_COMP_OPS else None


def _limits(node: ET.Element, comp: CompOp) -> tuple[float | None, float | None]:
    """The limits as TestStand evaluated them; for EQT with a threshold type, the actual
    limits nominal -/+ threshold (as WATS's own TestStand converter records them)."""
    low, high = number(node, "Limits.Low"), number(node, "Limits.High")
    threshold = (text(node, "Limits.ThresholdType") or "").casefold()
    nominal = number(node, "RawLimits.Nominal")
    if comp is not CompOp.EQT or not threshold or nominal is None:
        return low, high
    raw_low, raw_high = number(node, "RawLimits.Low"), number(node, "RawLimits.High")
    scale = {"percentage": abs(nominal) / 100, "ppm": abs(nominal) / 1e6, "delta": 1.0}
    factor = scale.get(threshold)
    if factor is None:
        return low, high
    return (
        nominal - raw_low * factor if raw_low is not None else low,
        nominal + raw_high * factor if raw_high is not None else high,
    )


def _without_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}
