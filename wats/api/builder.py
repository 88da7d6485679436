"""Build a UUT report in code, with statuses computed from limits.

WATS stores the statuses a report states; it does not evaluate limits. A station that produces
results in code usually wants the opposite: give values and limits, get statuses, and have a
failed step fail its sequence and the report. :class:`UUTReportBuilder` does that; the pure
functions :func:`evaluate_numeric` and :func:`evaluate_string` hold the operator semantics.

Example::

    builder = UUTReportBuilder(pn="PCBA-1", sn="SN001", rev="A", process_code=10,
                               station_name="ict-01", location="Line 1", purpose="Production")
    with builder.sequence("Power") as power:
        power.numeric("VCC", 3.31, CompOp.GELE, low=3.2, high=3.4, unit="V")
        power.pass_fail("Boot", True)
    report = builder.build()
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from wats.api.models import (
    Attachment,
    BinaryData,
    BooleanMeasurement,
    Chart,
    ChartSeries,
    ChartStep,
    ChartType,
    CompOp,
    GenericStep,
    MiscInfo,
    MultiNumericLimitStep,
    NumericLimitStep,
    NumericMeasurement,
    PassFailStep,
    ReportResult,
    SequenceCallInfo,
    SequenceCallStep,
    StepBase,
    StepGroup,
    StepStatus,
    StringMeasurement,
    StringValueStep,
    SubUnit,
    UUTInfo,
    UUTReport,
)

EQT_RELATIVE_TOLERANCE = 1e-9
"""EQT without a tolerance: values equal within this relative difference pass."""

EQT_ABSOLUTE_TOLERANCE = 1e-12
"""EQT without a tolerance: values within this absolute difference pass (for values near 0)."""


def _need(limit: float | None, which: str, comp_op: CompOp) -> float:
    if limit is None:
        raise ValueError(f"compOp {comp_op.value} needs {which}")
    return limit


def evaluate_numeric(
    value: float, comp_op: CompOp | str, low: float | None = None, high: float | None = None
) -> bool:
    """Whether a numeric value passes its limits under ``comp_op``.

    - ``LOG`` always passes (the value is only recorded).
    - ``EQ NE LT LE GT GE`` compare the value with ``low`` (``GT``: value > low, ...).
    - ``EQT`` tolerant equal: ``low`` is the nominal value and ``high`` the absolute tolerance,
      passing when ``|value - low| <= high``; without ``high`` it is floating-point equality
      (relative ``EQT_RELATIVE_TOLERANCE``, absolute ``EQT_ABSOLUTE_TOLERANCE``).
    - ``GTLT GTLE GELT GELE`` pass inside the range (first pair of letters applies to ``low``,
      second to ``high``; ``GELE`` is low <= value <= high).
    - ``LTGT LTGE LEGT LEGE`` pass outside it (``LTGT`` is value < low or value > high).

    A NaN value fails every operator except ``LOG``. A missing limit the operator needs, or a
    string operator, raises ``ValueError``.
    """
    op = CompOp(comp_op)
    if op is CompOp.LOG:
        return True
    if op in (CompOp.CASESENSIT, CompOp.IGNORECASE):
        raise ValueError(f"compOp {op.value} compares strings, not numbers")
    if op is CompOp.EQT:
        nominal = _need(low, "lowLimit", op)
        if high is None:
            return math.isclose(
                value, nominal, rel_tol=EQT_RELATIVE_TOLERANCE, abs_tol=EQT_ABSOLUTE_TOLERANCE
            )
        return abs(value - nominal) <= high
    lo = _need(low, "lowLimit", op)
    single = {
        CompOp.EQ: value == lo,
        CompOp.NE: value != lo,
        CompOp.LT: value < lo,
        CompOp.LE: value <= lo,
        CompOp.GT: value > lo,
        CompOp.GE: value >= lo,
    }
    if op in single:
        return single[op]
    hi = _need(high, "highLimit", op)
    ranged = {
        CompOp.GTLT: lo < value < hi,
        CompOp.GTLE: lo < value <= hi,
        CompOp.GELT: lo <= value < hi,
        CompOp.GELE: lo <= value <= hi,
        CompOp.LTGT: value < lo or value > hi,
        CompOp.LTGE: value < lo or value >= hi,
        CompOp.LEGT: value <= lo or value > hi,
        CompOp.LEGE: value <= lo or value >= hi,
    }
    return ranged[op]


def evaluate_string(value: str, comp_op: CompOp | str, limit: str | None = None) -> bool:
    """Whether a string value passes: ``LOG`` always, ``CASESENSIT`` when equal to ``limit``,
    ``IGNORECASE`` when equal ignoring case (Unicode case folding)."""
    op = CompOp(comp_op)
    if op is CompOp.LOG:
        return True
    if op not in (CompOp.CASESENSIT, CompOp.IGNORECASE):
        raise ValueError(f"compOp {op.value} is not a string operator")
    expected = _need_text(limit, op)
    if op is CompOp.CASESENSIT:
        return value == expected
    return value.casefold() == expected.casefold()


def _need_text(limit: str | None, comp_op: CompOp) -> str:
    if limit is None:
        raise ValueError(f"compOp {comp_op.value} needs a limit")
    return limit


def _status(passed: bool) -> StepStatus:
    return StepStatus.PASSED if passed else StepStatus.FAILED


# Which status wins when several children fail: terminated > error > failed.
_SEVERITY = {StepStatus.FAILED: 1, StepStatus.ERROR: 2, StepStatus.TERMINATED: 3}

_RESULT_BY_STATUS = {
    StepStatus.PASSED: ReportResult.PASSED,
    StepStatus.FAILED: ReportResult.FAILED,
    StepStatus.ERROR: ReportResult.ERROR,
    StepStatus.TERMINATED: ReportResult.TERMINATED,
    StepStatus.DONE: ReportResult.DONE,
    StepStatus.SKIPPED: ReportResult.PASSED,
}


@dataclass(frozen=True)
class NumericSpec:
    """One measurement of a multiple numeric step."""

    name: str
    value: float
    comp_op: CompOp = CompOp.LOG
    low: float | None = None
    high: float | None = None
    unit: str | None = None


@dataclass
class _Entry:
    node: StepBase | SequenceBuilder
    fails_parent: bool


class SequenceBuilder:
    """A sequence under construction; add steps to it, or nested sequences.

    Usable as a context manager for readability (``with seq.sequence("Sub") as sub:``); steps
    are recorded as soon as they are added, so leaving the block is not required.
    """

    def __init__(
        self,
        name: str,
        *,
        path: str | None = None,
        version: str | None = None,
        group: StepGroup = StepGroup.MAIN,
        status: StepStatus | None = None,
    ) -> None:
        self.name = name
        self.path = path
        self.version = version
        self.group = group
        self.status = status
        self._entries: list[_Entry] = []

    def __enter__(self) -> SequenceBuilder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def _add(self, step: StepBase, fails_parent: bool) -> Any:
        self._entries.append(_Entry(step, fails_parent))
        return step

    def sequence(
        self,
        name: str,
        *,
        path: str | None = None,
        version: str | None = None,
        group: StepGroup = StepGroup.MAIN,
        status: StepStatus | None = None,
        fails_parent: bool = True,
    ) -> SequenceBuilder:
        """Add a nested sequence and return it. ``status`` overrides the computed one."""
        child = SequenceBuilder(name, path=path, version=version, group=group, status=status)
        self._entries.append(_Entry(child, fails_parent))
        return child

    def numeric(
        self,
        name: str,
        value: float,
        comp_op: CompOp | str = CompOp.LOG,
        *,
        low: float | None = None,
        high: float | None = None,
        unit: str | None = None,
        status: StepStatus | None = None,
        group: StepGroup = StepGroup.MAIN,
        fails_parent: bool = True,
    ) -> NumericLimitStep:
        """Add a numeric limit step; its status is evaluated from the limits unless given."""
        op = CompOp(comp_op)
        meas_status = status or _status(evaluate_numeric(value, op, low, high))
        meas = NumericMeasurement(
            status=meas_status,
            name=None,
            value=value,
            unit=unit,
            comp_op=op,
            low_limit=low,
            high_limit=high,
        )
        step = NumericLimitStep(name=name, status=meas_status, group=group, numeric_meas=[meas])
        return self._add(step, fails_parent)

    def multi_numeric(
        self,
        name: str,
        measurements: Sequence[NumericSpec],
        *,
        group: StepGroup = StepGroup.MAIN,
        fails_parent: bool = True,
    ) -> MultiNumericLimitStep:
        """Add a multiple numeric limit step; it fails if any measurement fails."""
        metas = [
            NumericMeasurement(
                status=_status(evaluate_numeric(spec.value, spec.comp_op, spec.low, spec.high)),
                name=spec.name,
                value=spec.value,
                unit=spec.unit,
                comp_op=CompOp(spec.comp_op),
                low_limit=spec.low,
                high_limit=spec.high,
            )
            for spec in measurements
        ]
        passed = all(m.status is StepStatus.PASSED for m in metas)
        step = MultiNumericLimitStep(
            name=name, status=_status(passed), group=group, numeric_meas=metas
        )
        return self._add(step, fails_parent)

    def pass_fail(
        self,
        name: str,
        passed: bool | Mapping[str, bool],
        *,
        group: StepGroup = StepGroup.MAIN,
        fails_parent: bool = True,
    ) -> PassFailStep:
        """Add a pass/fail step: one outcome (``ET_PFT``) or named outcomes (``ET_MPFT``)."""
        if isinstance(passed, Mapping):
            metas = [
                BooleanMeasurement(status=_status(ok), name=meas_name)
                for meas_name, ok in passed.items()
            ]
            step_type, overall = "ET_MPFT", all(passed.values())
        else:
            metas = [BooleanMeasurement(status=_status(passed), name=None)]
            step_type, overall = "ET_PFT", passed
        step = PassFailStep(
            step_type=step_type, name=name, status=_status(overall), group=group, boolean_meas=metas
        )
        return self._add(step, fails_parent)

    def string_value(
        self,
        name: str,
        value: str,
        comp_op: CompOp | str = CompOp.LOG,
        *,
        limit: str | None = None,
        group: StepGroup = StepGroup.MAIN,
        fails_parent: bool = True,
    ) -> StringValueStep:
        """Add a string value step; its status is evaluated from the limit."""
        op = CompOp(comp_op)
        meas_status = _status(evaluate_string(value, op, limit))
        meas = StringMeasurement(
            status=meas_status, name=None, value=value, comp_op=op, limit=limit
        )
        step = StringValueStep(name=name, status=meas_status, group=group, string_meas=[meas])
        return self._add(step, fails_parent)

    def chart(
        self,
        name: str,
        series: Sequence[ChartSeries | tuple[str, Sequence[float], Sequence[float]]],
        *,
        chart_type: ChartType = ChartType.LINE,
        label: str | None = None,
        x_label: str | None = None,
        x_unit: str | None = None,
        y_label: str | None = None,
        y_unit: str | None = None,
        group: StepGroup = StepGroup.MAIN,
    ) -> ChartStep:
        """Add a chart step; series are ``ChartSeries`` or ``(name, xs, ys)`` tuples."""
        built = [
            item
            if isinstance(item, ChartSeries)
            else ChartSeries(
                data_type="XYG",
                name=item[0],
                xdata=ChartSeries.encode(list(item[1])),
                ydata=ChartSeries.encode(list(item[2])),
            )
            for item in series
        ]
        chart = Chart(
            chart_type=chart_type,
            label=label or name,
            x_label=x_label,
            x_unit=x_unit,
            y_label=y_label,
            y_unit=y_unit,
            series=built,
        )
        step = ChartStep(name=name, status=StepStatus.DONE, group=group, chart=chart)
        return self._add(step, fails_parent=False)

    def action(
        self, name: str, *, status: StepStatus = StepStatus.DONE, group: StepGroup = StepGroup.MAIN
    ) -> GenericStep:
        """Add an action step (no measurement)."""
        return self._add(GenericStep(name=name, status=status, group=group), fails_parent=True)

    def attachment(
        self,
        name: str,
        payload: bytes,
        content_type: str,
        *,
        description: str | None = None,
        step_name: str | None = None,
        group: StepGroup = StepGroup.MAIN,
    ) -> GenericStep:
        """Attach a file (bytes + content type) on an action step named ``step_name`` (or the
        file name)."""
        step = GenericStep(
            name=step_name or name,
            status=StepStatus.DONE,
            group=group,
            attachment=Attachment.from_bytes(name, payload, content_type, description),
        )
        return self._add(step, fails_parent=False)

    def _build(self, propagate: bool) -> SequenceCallStep:
        children: list[StepBase] = []
        worst: StepStatus | None = None
        for entry in self._entries:
            step = (
                entry.node._build(propagate)
                if isinstance(entry.node, SequenceBuilder)
                else (entry.node.model_copy(deep=True))
            )
            if propagate and entry.fails_parent and step.status in _SEVERITY:
                step.caused_seq_failure = True
                if worst is None or _SEVERITY[step.status] > _SEVERITY[worst]:
                    worst = step.status
            children.append(step)
        status = self.status or worst or StepStatus.PASSED
        return SequenceCallStep(
            name=self.name,
            status=status,
            group=self.group,
            seq_call=SequenceCallInfo(path=self.path, name=self.name, version=self.version),
            steps=children,
        )


class UUTReportBuilder:
    """Builds a :class:`UUTReport`: header, a root sequence with steps, misc infos, sub-units.

    With ``propagate_failures`` (the default) a failed, error or terminated step fails its
    sequence (marking ``causedSeqFailure``), up to the root, and the root's status sets the
    report result. A step added with ``fails_parent=False``, or an explicit ``status`` on a
    sequence, or ``result`` given to :meth:`build`, stops that.
    """

    def __init__(
        self,
        *,
        pn: str,
        sn: str,
        rev: str,
        process_code: int,
        station_name: str,
        location: str,
        purpose: str,
        operator: str | None = None,
        start: datetime | None = None,
        report_id: uuid.UUID | str | None = None,
        root_name: str = "MainSequence Callback",
        propagate_failures: bool = True,
    ) -> None:
        self.header: dict[str, Any] = {
            "id": report_id or uuid.uuid4(),
            "pn": pn,
            "sn": sn,
            "rev": rev,
            "process_code": process_code,
            "machine_name": station_name,
            "location": location,
            "purpose": purpose,
            "start": start or datetime.now().astimezone(),
        }
        self.operator = operator
        self.comment: str | None = None
        self.exec_time: float | None = None
        self.propagate_failures = propagate_failures
        self.root = SequenceBuilder(root_name)
        self._misc: list[MiscInfo] = []
        self._sub_units: list[SubUnit] = []
        self._binary: list[BinaryData] = []

    # Steps go to the root sequence.
    def sequence(self, name: str, **kwargs: Any) -> SequenceBuilder:
        """Add a sequence under the root (see :meth:`SequenceBuilder.sequence`)."""
        return self.root.sequence(name, **kwargs)

    def numeric(self, name: str, value: float, *args: Any, **kwargs: Any) -> NumericLimitStep:
        """Add a numeric limit step under the root."""
        return self.root.numeric(name, value, *args, **kwargs)

    def multi_numeric(self, name: str, *args: Any, **kwargs: Any) -> MultiNumericLimitStep:
        """Add a multiple numeric limit step under the root."""
        return self.root.multi_numeric(name, *args, **kwargs)

    def pass_fail(self, name: str, *args: Any, **kwargs: Any) -> PassFailStep:
        """Add a pass/fail step under the root."""
        return self.root.pass_fail(name, *args, **kwargs)

    def string_value(self, name: str, *args: Any, **kwargs: Any) -> StringValueStep:
        """Add a string value step under the root."""
        return self.root.string_value(name, *args, **kwargs)

    def chart(self, name: str, *args: Any, **kwargs: Any) -> ChartStep:
        """Add a chart step under the root."""
        return self.root.chart(name, *args, **kwargs)

    def action(self, name: str, **kwargs: Any) -> GenericStep:
        """Add an action step under the root."""
        return self.root.action(name, **kwargs)

    def attachment(
        self, name: str, payload: bytes, content_type: str, **kwargs: Any
    ) -> GenericStep:
        """Attach a file on a step under the root."""
        return self.root.attachment(name, payload, content_type, **kwargs)

    def misc_info(
        self, description: str, text: str | None = None, numeric: float | None = None
    ) -> MiscInfo:
        """Add a header key/value (description and text at most 100 characters)."""
        info = MiscInfo(description=description, text=text, numeric=numeric)
        self._misc.append(info)
        return info

    def sub_unit(self, part_type: str, pn: str, sn: str, rev: str) -> SubUnit:
        """Record a part the unit is built from."""
        unit = SubUnit(part_type=part_type, pn=pn, sn=sn, rev=rev)
        self._sub_units.append(unit)
        return unit

    def binary_data(self, name: str, payload: bytes, content_type: str) -> BinaryData:
        """Attach report-level binary data."""
        data = BinaryData.from_bytes(name, payload, content_type)
        self._binary.append(data)
        return data

    def build(self, result: ReportResult | None = None) -> UUTReport:
        """The finished, validated report. ``result`` overrides the computed one."""
        root = self.root._build(self.propagate_failures)
        _number_steps(root, itertools.count(1))
        computed = (
            _RESULT_BY_STATUS[root.status] if self.propagate_failures else ReportResult.PASSED
        )
        fields: dict[str, Any] = {
            **self.header,
            "result": result or computed,
            "uut": UUTInfo(user=self.operator, comment=self.comment, exec_time=self.exec_time),
            "root": root,
        }
        if self._misc:
            fields["misc_infos"] = list(self._misc)
        if self._sub_units:
            fields["sub_units"] = list(self._sub_units)
        if self._binary:
            fields["binary_data"] = list(self._binary)
        # Validate the whole report once more, so rules spanning fields are checked too.
        return UUTReport.model_validate(
            UUTReport(**fields).model_dump(by_alias=True, exclude_unset=True)
        )


ReportBuilder = UUTReportBuilder
"""Alias: the only report type built in code is the test report."""


def _number_steps(step: StepBase, ids: Iterator[int]) -> None:
    step.id = next(ids)
    if isinstance(step, SequenceCallStep):
        for child in step.steps:
            _number_steps(child, ids)
