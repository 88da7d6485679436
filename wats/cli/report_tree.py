"""A WATS report as a readable step tree, for ``wats-supervisor convert --tree``.

A converter author checks a mapping by eye: which steps came out, with which status, value,
limits and unit. JSON is exact but long; this view puts one step per line, indented by
sequence depth, with the header first.
"""

from __future__ import annotations

from collections.abc import Iterable

from wats.api.models import UURReport, UUTReport
from wats.api.models.steps import SequenceCallStep, StepBase

__all__ = ["format_report_tree"]

_STATUS_WORDS = {
    "P": "passed",
    "F": "failed",
    "S": "skipped",
    "D": "done",
    "E": "error",
    "T": "terminated",
}


def _block(prefix: str, text: str) -> list[str]:
    """``prefix`` and ``text``, with each further line of ``text`` indented to start under its
    first one: text from a station (step report text, a validator description) often spans
    lines, and a continuation at column 0 would break the tree's indentation."""
    first, *rest = text.splitlines() or [""]
    pad = " " * len(prefix)
    return [prefix + first, *((pad + line).rstrip() for line in rest)]


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.6g}"


_SINGLE_LIMIT = frozenset({"EQ", "NE", "LT", "LE", "GT", "GE"})
"""Operators that compare the value with ``lowLimit`` alone (see ``evaluate_numeric``)."""


def _comparison(op: str, low: float | None, high: float | None) -> str:
    """The comparison as it reads: ``LE 50`` for a single limit (written in ``lowLimit``, so
    ``limits 50..-`` suggested a range with no top), ``EQT 5 ± 0.1``, ``GELE 0..10``."""
    if op in _SINGLE_LIMIT and low is not None and high is None:
        return f"{op} {_number(low)}"
    if op == "EQT" and low is not None:
        return f"EQT {_number(low)}" + (f" ± {_number(high)}" if high is not None else "")
    if low is not None or high is not None:
        return f"{op}  limits {_number(low)}..{_number(high)}"
    return op


def _numeric_text(meas: object) -> str:
    value = getattr(meas, "value", None)
    unit = getattr(meas, "unit", None) or ""
    low, high = getattr(meas, "low_limit", None), getattr(meas, "high_limit", None)
    op = getattr(getattr(meas, "comp_op", None), "value", "")
    name = getattr(meas, "name", None)
    prefix = f"{name}: " if name else ""
    return f"{prefix}{_number(value)} {unit}".rstrip() + f"  {_comparison(op, low, high)}"


def _measurements(step: StepBase) -> list[str]:
    lines: list[str] = []
    for meas in getattr(step, "numeric_meas", None) or []:
        lines.append(_numeric_text(meas))
    for meas in getattr(step, "string_meas", None) or []:
        op = getattr(getattr(meas, "comp_op", None), "value", "")
        limit = getattr(meas, "limit", None)
        expected = f"  expected {limit!r}" if limit is not None else ""
        lines.append(f"{getattr(meas, 'value', None)!r}  {op}{expected}")
    for meas in getattr(step, "boolean_meas", None) or []:
        name = getattr(meas, "name", None)
        lines.append(f"{name + ': ' if name else ''}{_STATUS_WORDS.get(str(meas.status), '')}")
    return lines


def _step_lines(step: StepBase, depth: int) -> Iterable[str]:
    indent = "  " * depth
    status = _STATUS_WORDS.get(getattr(step.status, "value", str(step.status)), str(step.status))
    timing = f"  {step.tot_time:.3g} s" if step.tot_time is not None else ""
    measured = _measurements(step)
    head = _block(f"{indent}- ", f"[{status}] {step.name}  ({step.step_type}){timing}")
    if len(measured) == 1 and len(head) == 1 and "\n" not in measured[0]:
        yield f"{head[0]}  = {measured[0]}"
    else:
        yield from head
        for line in measured:
            yield from _block(f"{indent}    = ", line)
    if step.report_text:
        yield from _block(f"{indent}    text: ", step.report_text.strip()[:200])
    if step.chart is not None:
        yield f"{indent}    chart: {step.chart.label or ''} ({len(step.chart.series)} series)"
    if isinstance(step, SequenceCallStep):
        for child in step.steps:
            yield from _step_lines(child, depth + 1)


def _count(step: StepBase) -> int:
    if isinstance(step, SequenceCallStep):
        return 1 + sum(_count(child) for child in step.steps)
    return 1


def format_report_tree(report: UUTReport | UURReport) -> str:
    """The header and the step tree of ``report`` as text (no trailing newline)."""
    kind = "UUT test report" if isinstance(report, UUTReport) else "UUR repair report"
    lines = [
        f"{kind} {report.id}",
        f"  serial {report.sn}   part {report.pn}   revision {report.rev}",
        f"  process {report.process_code}   result {_STATUS_WORDS.get(report.result.value, '')}",
        f"  start {report.start.isoformat()}",
        f"  station {report.machine_name}, {report.location}, {report.purpose}",
    ]
    uut = getattr(report, "uut", None)
    if uut is not None:
        facts = [
            f"operator {uut.user}" if uut.user else "",
            f"execution {uut.exec_time:.4g} s" if uut.exec_time is not None else "",
            f"fixture {uut.fixture_id}" if uut.fixture_id else "",
            f"socket {uut.test_socket_index}" if uut.test_socket_index is not None else "",
            f"batch {uut.batch_sn}" if uut.batch_sn else "",
        ]
        if any(facts):
            lines.append("  " + "   ".join(f for f in facts if f))
    for info in report.misc_infos:
        value = info.text if info.text is not None else info.numeric
        lines.extend(_block(f"  misc {info.description}: ", "" if value is None else str(value)))
    for unit in report.sub_units:
        lines.append(f"  sub-unit {unit.part_type}: {unit.pn} {unit.sn} rev {unit.rev}")
    for data in report.binary_data:
        lines.append(f"  binary data {getattr(data, 'name', '') or ''}")
    root = getattr(report, "root", None)
    if root is not None:
        lines.append(f"  steps ({_count(root) - 1} below the root):")
        lines.extend(_step_lines(root, 1))
    return "\n".join(lines)
