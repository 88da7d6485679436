"""Rows of a results table as WATS steps, keeping the statuses and limits the station wrote.

The station's verdict wins: a row's status cell is copied as it is, and limits are only used to
compute a status when the row has none. When both are there and disagree the status is kept and
the disagreement becomes a warning, because a converter that re-judges results hides a station
whose limits differ from the file's (or a file edited by hand).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from wats.api.builder import evaluate_numeric, evaluate_string
from wats.api.models import (
    BooleanMeasurement,
    CompOp,
    GenericStep,
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
from wats.api.models.enums import NUMERIC_COMP_OPS, STRING_COMP_OPS
from wats.converters.builtin._csv_layout import TableRow, normalise, shown

__all__ = [
    "MAX_NAME",
    "RowError",
    "RowReader",
    "build_sequences",
    "given",
    "parse_number",
    "parse_status",
    "worst_status",
]

MAX_NAME = 100
"""WATS caps step names (and misc info texts) at 100 characters."""

STATUS_WORDS: dict[str, StepStatus] = {
    **dict.fromkeys(("pass", "passed", "p", "ok", "good", "true", "yes"), StepStatus.PASSED),
    **dict.fromkeys(("fail", "failed", "f", "ng", "nok", "bad", "false", "no"), StepStatus.FAILED),
    **dict.fromkeys(("skip", "skipped", "s", "notrun", "n/a", "na"), StepStatus.SKIPPED),
    **dict.fromkeys(("done", "d", "info"), StepStatus.DONE),
    **dict.fromkeys(("error", "err", "e"), StepStatus.ERROR),
    **dict.fromkeys(
        ("terminated", "t", "aborted", "abort", "cancelled", "canceled"), StepStatus.TERMINATED
    ),
}
"""Status cell spellings (compared after :func:`normalise`) → WATS step status."""

PASS_FAIL_VALUES: dict[str, bool] = {
    **dict.fromkeys(("pass", "passed", "true"), True),
    **dict.fromkeys(("fail", "failed", "false"), False),
}
"""Values that make a row without limits a pass/fail step rather than a string step."""

COMP_OP_SYMBOLS: dict[str, CompOp] = {
    "==": CompOp.EQ,
    "=": CompOp.EQ,
    "!=": CompOp.NE,
    "<>": CompOp.NE,
    "<": CompOp.LT,
    "<=": CompOp.LE,
    ">": CompOp.GT,
    ">=": CompOp.GE,
    "none": CompOp.LOG,
    "log": CompOp.LOG,
}
"""compOp cell spellings besides the WATS names (``GELE``, ``IgnoreCase``, ...)."""

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")
_SINGLE_LIMIT = frozenset({CompOp.EQ, CompOp.NE, CompOp.LT, CompOp.LE, CompOp.GT, CompOp.GE})
_SEVERITY = {StepStatus.FAILED: 1, StepStatus.ERROR: 2, StepStatus.TERMINATED: 3}


class RowError(ValueError):
    """A row that cannot be read; ``str()`` names the line and column."""


def parse_number(text: str, decimal_comma: bool) -> float | None:
    """The finite number in ``text`` or None. ``1.5``, ``-2e-3``, and with ``decimal_comma``
    also ``1,5``; never ``nan``, ``inf``, hex or Python's ``1_000``."""
    candidate = text.strip()
    if decimal_comma and _DECIMAL_COMMA.fullmatch(candidate):
        candidate = candidate.replace(",", ".")
    if not _NUMBER.fullmatch(candidate):
        return None
    number = float(candidate)
    return number if math.isfinite(number) else None


def parse_status(text: str) -> StepStatus | None:
    """The WATS status a status word stands for, None for an empty cell; ``ValueError`` for a
    word not in :data:`STATUS_WORDS`."""
    word = normalise(text)
    if not word:
        return None
    if word in STATUS_WORDS:
        return STATUS_WORDS[word]
    raise ValueError(text.strip())


def worst_status(statuses: Sequence[StepStatus]) -> StepStatus:
    """The status a parent takes from its children: terminated > error > failed > passed."""
    worst = StepStatus.PASSED
    for status in statuses:
        if _SEVERITY.get(status, 0) > _SEVERITY.get(worst, 0):
            worst = status
    return worst


@dataclass
class RowReader:
    """Turns table rows into steps; collects warnings on the way.

    ``columns`` maps our field names to cell indexes; ``headers`` are the column header texts
    (for messages); ``default_comp_op`` None means "from the limits present".
    """

    columns: dict[str, int]
    headers: list[str]
    decimal_comma: bool
    default_comp_op: CompOp | None
    warnings: list[str] = field(default_factory=list)

    def cell(self, row: TableRow, name: str) -> str:
        """The stripped text of field ``name`` in ``row``; empty when absent or short."""
        index = self.columns.get(name)
        if index is None or index >= len(row.cells):
            return ""
        return row.cells[index].strip()

    def _where(self, row: TableRow, name: str) -> str:
        index = self.columns.get(name)
        header = self.headers[index] if index is not None and index < len(self.headers) else name
        return f"line {row.line}, column {shown(header)}"

    def _number(self, row: TableRow, name: str) -> float | None:
        text = self.cell(row, name)
        if not text:
            return None
        number = parse_number(text, self.decimal_comma)
        if number is None:
            raise RowError(
                f"{self._where(row, name)}: {shown(text)} is not a number{self._hint(text)}"
            )
        return number

    def _hint(self, text: str) -> str:
        if not self.decimal_comma and _DECIMAL_COMMA.fullmatch(text.strip()):
            return ' (it has a decimal comma: set arguments.decimal = ",")'
        return ""

    def step(self, row: TableRow) -> StepBase:
        """The step of one data row (see docs/converters/csv.md for the rules)."""
        name = self.cell(row, "name")
        if not name:
            raise RowError(f"{self._where(row, 'name')}: the step name is empty")
        if len(name) > MAX_NAME:
            self.warnings.append(f"line {row.line}: step name cut to {MAX_NAME} characters")
            name = name[:MAX_NAME]
        try:
            status = parse_status(self.cell(row, "status"))
        except ValueError as exc:
            raise RowError(
                f"{self._where(row, 'status')}: unknown status {shown(exc.args[0])} (expected "
                "PASS/PASSED/OK, FAIL/FAILED/NG, SKIPPED, DONE, ERROR or TERMINATED)"
            ) from None
        comp_op = self._comp_op(row)
        step = self._measured(row, name, status, comp_op)
        seconds = self._number(row, "time")
        if seconds is not None:
            step.tot_time = seconds
        comment = self.cell(row, "comment")
        if comment:
            step.report_text = comment
        return step

    def _comp_op(self, row: TableRow) -> CompOp | None:
        text = self.cell(row, "comp_op")
        if not text:
            return None
        symbol = COMP_OP_SYMBOLS.get(text.replace(" ", "").casefold())
        if symbol is not None:
            return symbol
        try:
            return CompOp(text)
        except ValueError:
            raise RowError(
                f"{self._where(row, 'comp_op')}: unknown comparison {shown(text)} (expected a WATS "
                "compOp such as GELE, GE, LE, EQ, LOG, CASESENSIT, or < <= > >= == !=)"
            ) from None

    def _measured(
        self, row: TableRow, name: str, status: StepStatus | None, comp_op: CompOp | None
    ) -> StepBase:
        value_text = self.cell(row, "value")
        if not value_text:
            if status is None:
                self.warnings.append(
                    f"line {row.line}: step {shown(name)} has no value and no status; "
                    "recorded as an action step with status Done"
                )
            return GenericStep(name=name, status=status or StepStatus.DONE)
        value = parse_number(value_text, self.decimal_comma)
        if value is not None:
            return self._numeric(row, name, value, status, comp_op)
        low_text, high_text = self.cell(row, "low"), self.cell(row, "high")
        verdict = PASS_FAIL_VALUES.get(normalise(value_text))
        if verdict is not None and not low_text and not high_text and comp_op is None:
            return self._pass_fail(row, name, verdict, status)
        numeric_op = comp_op is not None and comp_op in NUMERIC_COMP_OPS - {CompOp.LOG}
        mistaken = bool(self._hint(value_text)) and bool(low_text or high_text or numeric_op)
        if mistaken or any(
            parse_number(text, self.decimal_comma) is not None for text in (low_text, high_text)
        ):
            raise RowError(
                f"{self._where(row, 'value')}: {shown(value_text)} is not a number but the row has "
                f"numeric limits{self._hint(value_text)}"
            )
        return self._string(row, name, value_text, status, comp_op)

    def _numeric(
        self,
        row: TableRow,
        name: str,
        value: float,
        status: StepStatus | None,
        comp_op: CompOp | None,
    ) -> NumericLimitStep:
        low, high = self._number(row, "low"), self._number(row, "high")
        op = comp_op or self.default_comp_op or _comp_op_for(low, high)
        if op in _SINGLE_LIMIT and low is None and high is not None:
            # WATS compares single-limit operators with lowLimit: a lone High cell goes there.
            low, high = high, None
        if op not in NUMERIC_COMP_OPS:
            raise RowError(
                f"{self._where(row, 'comp_op')}: {op.value} compares strings, but the value "
                f"is the number {value:g}"
            )
        try:
            passed: bool | None = evaluate_numeric(value, op, low, high)
        except ValueError as exc:
            if status is None:
                raise RowError(f"line {row.line}: {exc}, and the row has no status") from None
            passed = None
        status = self._judged(row, name, status, passed, f"{value:g} under {op.value}")
        meas = NumericMeasurement(
            status=status,
            comp_op=op,
            value=value,
            **given(unit=self.cell(row, "unit") or None, low_limit=low, high_limit=high),
        )
        return NumericLimitStep(name=name, status=status, numeric_meas=[meas])

    def _pass_fail(
        self, row: TableRow, name: str, verdict: bool, status: StepStatus | None
    ) -> PassFailStep:
        status = self._judged(row, name, status, verdict, "its value")
        meas = BooleanMeasurement(status=status, value=verdict)
        return PassFailStep(name=name, status=status, boolean_meas=[meas])

    def _string(
        self,
        row: TableRow,
        name: str,
        value: str,
        status: StepStatus | None,
        comp_op: CompOp | None,
    ) -> StringValueStep:
        # The expected text: the Limit column, else a non-numeric Low cell (a spreadsheet that
        # puts "expected" in the low-limit column of a string row).
        limit = self.cell(row, "limit") or self.cell(row, "low") or None
        op = comp_op or (CompOp.CASESENSIT if limit is not None else CompOp.LOG)
        if op not in STRING_COMP_OPS:
            raise RowError(
                f"{self._where(row, 'comp_op')}: {op.value} compares numbers, but the value "
                f"{shown(value)} is not a number{self._hint(value)}"
            )
        try:
            passed: bool | None = evaluate_string(value, op, limit)
        except ValueError as exc:
            if status is None:
                raise RowError(f"line {row.line}: {exc}, and the row has no status") from None
            passed = None
        status = self._judged(row, name, status, passed, f"{shown(value)} under {op.value}")
        meas = StringMeasurement(status=status, value=value, comp_op=op, **given(limit=limit))
        return StringValueStep(name=name, status=status, string_meas=[meas])

    def _judged(
        self,
        row: TableRow,
        name: str,
        recorded: StepStatus | None,
        passed: bool | None,
        what: str,
    ) -> StepStatus:
        """The recorded status if there is one (warning when the limits disagree), else the
        status the limits give."""
        computed = None if passed is None else (StepStatus.PASSED if passed else StepStatus.FAILED)
        if recorded is None:
            return computed or StepStatus.DONE
        judged = recorded in (StepStatus.PASSED, StepStatus.FAILED)
        if computed is not None and judged and recorded is not computed:
            self.warnings.append(
                f"line {row.line}: step {shown(name)} is recorded as {recorded.name.lower()} "
                f"but {what} it would be {computed.name.lower()}; the recorded status is kept"
            )
        return recorded


def given(**fields: object) -> dict[str, object]:
    """Only the fields that have a value: a field passed as None would be written as null."""
    return {name: value for name, value in fields.items() if value is not None}


def _comp_op_for(low: float | None, high: float | None) -> CompOp:
    """The operator a row's limits imply: both → GELE, low only → GE, high only → LE, none →
    LOG (recorded only)."""
    if low is not None and high is not None:
        return CompOp.GELE
    if low is not None:
        return CompOp.GE
    if high is not None:
        return CompOp.LE
    return CompOp.LOG


def build_sequences(
    root_name: str,
    entries: Sequence[tuple[str, StepBase]],
    root_status: StepStatus | None,
) -> SequenceCallStep:
    """The root sequence: steps whose ``sequence`` cell is empty sit on the root, consecutive
    steps with the same non-empty cell are wrapped in a sequence call of that name. A sequence
    takes its worst child's status (the file states none for it)."""
    children: list[StepBase] = []
    current: SequenceCallStep | None = None
    for sequence_name, step in entries:
        if not sequence_name:
            current = None
            children.append(step)
            continue
        if current is None or current.name != sequence_name[:MAX_NAME]:
            short = sequence_name[:MAX_NAME]
            current = SequenceCallStep(
                name=short,
                status=StepStatus.PASSED,
                seq_call=SequenceCallInfo(name=short),
                steps=[],
            )
            children.append(current)
        current.steps.append(step)
    for child in children:
        if isinstance(child, SequenceCallStep):
            child.status = worst_status([s.status for s in child.steps])
    status = root_status or worst_status([c.status for c in children])
    root = SequenceCallStep(
        name=root_name, status=status, seq_call=SequenceCallInfo(name=root_name), steps=children
    )
    _number(root, 1)
    return root


def _number(step: StepBase, next_id: int) -> int:
    """Number the steps depth-first from ``next_id``; returns the next free id. Iterative in
    effect: the tree is at most two levels deep (root, sequence, step)."""
    step.id = next_id
    next_id += 1
    if isinstance(step, SequenceCallStep):
        for child in step.steps:
            next_id = _number(child, next_id)
    return next_id
