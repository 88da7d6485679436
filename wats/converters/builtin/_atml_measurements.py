"""ATML ``<Test>`` results as WATS test steps: numeric (single and multiple), string and
pass/fail measurements with the limits and comparison operators the file states.

A TestStand test writes each measurement as a ``<TestResult>`` with ``<TestData>`` and
``<TestLimits>``; results without limits (other than the step's own ``Numeric``/``String``
result) are additional results TestStand logs alongside, and are not measurements. Statuses are
the recorded ones: a measurement's own ``<Outcome>`` if it has one, else its step's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.etree.ElementTree import Element

from wats.api.models import (
    BooleanMeasurement,
    CompOp,
    MultiNumericLimitStep,
    NumericLimitStep,
    NumericMeasurement,
    PassFailStep,
    StepBase,
    StepStatus,
    StringMeasurement,
    StringValueStep,
)
from wats.converters.builtin._atml_common import (
    AtmlError,
    WalkState,
    attr_value,
    child,
    children,
    describe,
    find,
    flag,
    given,
    outcome_status,
    parse_number,
    short,
    text_of,
)
from wats.xmlsafe import local_name

__all__ = ["build_test"]

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_MULTI_NUMERIC_TYPES = frozenset({"NI_MultipleNumericLimitTest", "MultipleNumericLimitTest"})
_SINGLE_COMPARATORS = frozenset({"EQ", "NE", "GT", "GE", "LT", "LE"})
_LOWER_BOUNDS = frozenset({"GT", "GE"})
_UPPER_BOUNDS = frozenset({"LT", "LE"})
# The labels TestStand gives a step's one measurement result (``name`` in 5.00/6.01, ``ID`` in
# 2.02); they are not measurement names.
_MEASUREMENT_LABELS = frozenset({"Numeric", "String", "PassFail"})


def build_test(
    element: Element,
    step_type: str,
    status: StepStatus,
    state: WalkState,
    fields: dict[str, Any],
) -> StepBase:
    """The WATS test step for a ``<Test>``: its type from the TestStand step type, or from what
    it measured for custom types. ``fields`` are the step fields every kind shares."""
    where = describe(element)
    results = _measurement_results(element)
    kinds = [_datum_kind(find(result, "TestData", "Datum")) for result in results]
    numeric = [r for r, k in zip(results, kinds, strict=True) if k == "numeric"]
    strings = [r for r, k in zip(results, kinds, strict=True) if k == "string"]
    booleans = [r for r, k in zip(results, kinds, strict=True) if k in ("boolean", "none")]

    if (
        step_type == "NumericLimitTest"
        or step_type in _MULTI_NUMERIC_TYPES
        or (step_type not in ("PassFailTest", "StringValueTest") and numeric)
    ):
        # WATS reads a multiple numeric step with one measurement as a single one, and refuses
        # a name on that: one measurement is always ET_NLT, unnamed.
        many = len(numeric) > 1
        metas = [
            _numeric(result, status, state, where, index=index if many else None)
            for index, result in enumerate(numeric)
        ]
        if many or (not metas and step_type in _MULTI_NUMERIC_TYPES):
            return MultiNumericLimitStep(**fields, **given(numeric_meas=metas or None))
        return NumericLimitStep(**fields, **given(numeric_meas=metas or None))
    if step_type == "StringValueTest" or (step_type != "PassFailTest" and strings):
        string_metas = [_string(result, status, state, where) for result in strings]
        many = len(string_metas) > 1
        return StringValueStep(
            **fields,
            step_type="ET_MSVT" if many else "ET_SVT",
            **given(string_meas=string_metas or None),
        )
    bool_metas = [_boolean(result, status, state, where) for result in booleans]
    if not bool_metas and status in (StepStatus.PASSED, StepStatus.FAILED):
        bool_metas = [BooleanMeasurement(status=status)]
    many = len(bool_metas) > 1
    return PassFailStep(
        **fields,
        step_type="ET_MPFT" if many else "ET_PFT",
        **given(boolean_meas=bool_metas or None),
    )


def _label(result: Element) -> str:
    return result.get("name") or result.get("ID") or ""


def _limit_properties(result: Element) -> Iterator[Element]:
    for path in (
        ("Extension", "TSLimitProperties"),
        ("TestLimits", "Limits", "Extension", "TSLimitProperties"),
    ):
        found = find(result, *path)
        if found is not None:
            yield found


def _is_log(result: Element) -> bool:
    return any(flag(child(props, "IsComparisonTypeLog")) for props in _limit_properties(result))


def _measurement_results(element: Element) -> list[Element]:
    """The ``<TestResult>`` elements that are measurements, in order. Others (additional
    results a step logs) are left out, as TestStand's own ATML stylesheets do."""
    return [
        result
        for result in children(element, "TestResult")
        if child(result, "TestLimits") is not None
        or _is_log(result)
        or _label(result) in _MEASUREMENT_LABELS
    ]


def _datum_kind(datum: Element | None) -> str:
    if datum is None:
        return "none"
    declared = (datum.get(_XSI_TYPE) or "").lower()
    if "bool" in declared:
        return "boolean"
    if "string" in declared or (datum.get("value") is None and child(datum, "Value") is not None):
        return "string"
    return "numeric"


def _meas_status(result: Element, status: StepStatus, state: WalkState, where: str) -> StepStatus:
    own = outcome_status(child(result, "Outcome"), state, where)
    return own or status


def _meas_name(result: Element) -> str | None:
    label = _label(result)
    if not label or label in _MEASUREMENT_LABELS or label.startswith("tr-"):
        return None  # the generic labels TestStand uses for a step's only measurement
    return short(label)


def _numeric(
    result: Element, status: StepStatus, state: WalkState, where: str, *, index: int | None
) -> NumericMeasurement:
    """One numeric measurement; ``index`` is given (and a name guaranteed) for multiple steps."""
    datum = find(result, "TestData", "Datum")
    where = f"{where} measurement {_label(result)!r}"
    value = parse_number(datum.get("value") if datum is not None else None, f"{where} value")
    unit = None
    if datum is not None:
        unit = datum.get("nonStandardUnit") or datum.get("unit") or None
    comp_op, low, high = _numeric_limits(result, where)
    name = None if index is None else (_meas_name(result) or f"Measurement {index}")
    return NumericMeasurement(
        status=_meas_status(result, status, state, where),
        comp_op=comp_op,
        **given(name=name, value=value, unit=unit, low_limit=low, high_limit=high),
    )


def _limit_value(limit: Element, where: str) -> float | None:
    datum = child(limit, "Datum")
    if datum is None or datum.get("value") is None:
        raise AtmlError(f"{where}: a limit has no <Datum value=...>")
    return parse_number(datum.get("value"), f"{where} limit")


def _numeric_limits(result: Element, where: str) -> tuple[CompOp, float | None, float | None]:
    """(compOp, low, high) as the ``<TestLimits>`` state them; LOG without limits."""
    limits = find(result, "TestLimits", "Limits")
    if limits is None:
        return CompOp.LOG, None, None
    for item in limits:
        kind = local_name(item.tag)
        if kind == "SingleLimit":
            comparator = (item.get("comparator") or "").upper()
            if comparator not in _SINGLE_COMPARATORS:
                raise AtmlError(f"{where}: unknown comparator {comparator[:20]!r}")
            return CompOp(comparator), _limit_value(item, where), None
        if kind == "LimitPair":
            return _limit_pair(item, where)
        if kind == "Expected":
            return _expected(item, limits, where)
    return CompOp.LOG, None, None


def _limit_pair(pair: Element, where: str) -> tuple[CompOp, float | None, float | None]:
    """A range: ``AND`` of a lower and an upper bound is inside (``GELE``, ...), ``OR`` of them
    outside (``LTGT``, ...). The bounds may come in either order."""
    bounds = {}
    for limit in children(pair, "Limit"):
        comparator = (limit.get("comparator") or "").upper()
        side = "low" if comparator in _LOWER_BOUNDS else ""
        side = "high" if comparator in _UPPER_BOUNDS else side
        if not side or side in bounds:
            raise AtmlError(f"{where}: a <LimitPair> needs one lower and one upper comparator")
        bounds[side] = (comparator, _limit_value(limit, where))
    if len(bounds) != 2:
        raise AtmlError(f"{where}: a <LimitPair> needs two <Limit> elements")
    (low_cmp, low_value), (high_cmp, high_value) = bounds["low"], bounds["high"]
    if (pair.get("operator") or "AND").upper() == "OR":
        # Outside the range: value < a or value > b, where a is the upper-comparator limit.
        return CompOp(high_cmp + low_cmp), high_value, low_value
    return CompOp(low_cmp + high_cmp), low_value, high_value


def _expected(
    expected: Element, limits: Element, where: str
) -> tuple[CompOp, float | None, float | None]:
    """An expected value: ``EQ``/``NE`` as stated, or TestStand's nominal with a tolerance
    (``ts:ThresholdType`` delta, percentage or ppm) as the ``GELE`` range it stands for."""
    props = find(limits, "Extension", "TSLimitProperties")
    threshold = text_of(child(props, "ThresholdType")).lower()
    if threshold:
        raw = child(props, "RawLimits")
        nominal = parse_number(attr_value(child(raw, "Nominal")), f"{where} nominal")
        below = parse_number(attr_value(child(raw, "Low")), f"{where} low threshold")
        above = parse_number(attr_value(child(raw, "High")), f"{where} high threshold")
        scale = {"delta": None, "percentage": 100.0, "ppm": 1_000_000.0}.get(threshold, -1.0)
        if nominal is None or scale == -1.0:
            raise AtmlError(f"{where}: cannot read threshold limits ({threshold[:20]!r})")

        def offset(amount: float | None) -> float | None:
            if amount is None:
                return None
            return amount if scale is None else abs(nominal) * amount / scale

        low_offset, high_offset = offset(below), offset(above)
        low = None if low_offset is None else nominal - low_offset
        high = None if high_offset is None else nominal + high_offset
        return CompOp.GELE, low, high
    comparator = (expected.get("comparator") or "").upper()
    if comparator not in _SINGLE_COMPARATORS:
        raise AtmlError(f"{where}: unknown comparator {comparator[:20]!r}")
    return CompOp(comparator), _limit_value(expected, where), None


def _string(result: Element, status: StepStatus, state: WalkState, where: str) -> StringMeasurement:
    where = f"{where} measurement {_label(result)!r}"
    datum = find(result, "TestData", "Datum")
    value = text_of(child(datum, "Value")) if datum is not None else ""
    comp_op, limit = CompOp.LOG, None
    expected = find(result, "TestLimits", "Limits", "Expected")
    if expected is not None:
        comparator = (expected.get("comparator") or "").upper()
        limit_datum = child(expected, "Datum")
        limit = text_of(child(limit_datum, "Value")) if limit_datum is not None else ""
        if comparator == "CIEQ":
            comp_op = CompOp.IGNORECASE
        elif comparator == "EQ":
            comp_op = CompOp.CASESENSIT
        else:
            state.warn(f"{where}: string comparator {comparator[:20]!r} kept as LOG")
    return StringMeasurement(
        status=_meas_status(result, status, state, where),
        comp_op=comp_op,
        **given(name=_meas_name(result), value=value, limit=limit),
    )


def _boolean(
    result: Element, status: StepStatus, state: WalkState, where: str
) -> BooleanMeasurement:
    datum = find(result, "TestData", "Datum")
    raw = (datum.get("value") or "").strip().lower() if datum is not None else ""
    return BooleanMeasurement(
        status=_meas_status(result, status, state, where),
        **given(name=_meas_name(result), value={"true": True, "false": False}.get(raw)),
    )
