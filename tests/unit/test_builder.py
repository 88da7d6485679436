"""The builder turns values and limits into statuses and propagates failures upwards."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from wats.api.builder import (
    NumericSpec,
    UUTReportBuilder,
    evaluate_numeric,
    evaluate_string,
)
from wats.api.models import (
    CompOp,
    ReportResult,
    StepStatus,
    dump_report,
    iter_steps,
    parse_report,
    report_to_json,
)

# (operator, low, high, value, passes) - boundaries on both sides of every limit.
NUMERIC_TABLE = [
    (CompOp.LOG, None, None, 1e9, True),
    (CompOp.EQ, 5.0, None, 5.0, True),
    (CompOp.EQ, 5.0, None, 5.0001, False),
    (CompOp.NE, 5.0, None, 5.0, False),
    (CompOp.NE, 5.0, None, 4.0, True),
    (CompOp.LT, 5.0, None, 4.99, True),
    (CompOp.LT, 5.0, None, 5.0, False),
    (CompOp.LE, 5.0, None, 5.0, True),
    (CompOp.LE, 5.0, None, 5.01, False),
    (CompOp.GT, 5.0, None, 5.01, True),
    (CompOp.GT, 5.0, None, 5.0, False),
    (CompOp.GE, 5.0, None, 5.0, True),
    (CompOp.GE, 5.0, None, 4.99, False),
    (CompOp.EQT, 5.0, 0.1, 5.1, True),
    (CompOp.EQT, 5.0, 0.1, 4.9, True),
    (CompOp.EQT, 5.0, 0.1, 5.11, False),
    (CompOp.EQT, 0.3, None, 0.1 + 0.2, True),
    (CompOp.EQT, 0.3, None, 0.31, False),
    (CompOp.GTLT, 1.0, 2.0, 1.0, False),
    (CompOp.GTLT, 1.0, 2.0, 1.5, True),
    (CompOp.GTLT, 1.0, 2.0, 2.0, False),
    (CompOp.GTLE, 1.0, 2.0, 1.0, False),
    (CompOp.GTLE, 1.0, 2.0, 2.0, True),
    (CompOp.GTLE, 1.0, 2.0, 2.01, False),
    (CompOp.GELT, 1.0, 2.0, 1.0, True),
    (CompOp.GELT, 1.0, 2.0, 2.0, False),
    (CompOp.GELT, 1.0, 2.0, 0.99, False),
    (CompOp.GELE, 1.0, 2.0, 1.0, True),
    (CompOp.GELE, 1.0, 2.0, 2.0, True),
    (CompOp.GELE, 1.0, 2.0, 2.01, False),
    (CompOp.GELE, 1.0, 2.0, 0.99, False),
    (CompOp.LTGT, 1.0, 2.0, 0.99, True),
    (CompOp.LTGT, 1.0, 2.0, 1.0, False),
    (CompOp.LTGT, 1.0, 2.0, 2.0, False),
    (CompOp.LTGT, 1.0, 2.0, 2.01, True),
    (CompOp.LTGE, 1.0, 2.0, 1.0, False),
    (CompOp.LTGE, 1.0, 2.0, 2.0, True),
    (CompOp.LTGE, 1.0, 2.0, 1.5, False),
    (CompOp.LEGT, 1.0, 2.0, 1.0, True),
    (CompOp.LEGT, 1.0, 2.0, 2.0, False),
    (CompOp.LEGT, 1.0, 2.0, 2.01, True),
    (CompOp.LEGE, 1.0, 2.0, 1.0, True),
    (CompOp.LEGE, 1.0, 2.0, 2.0, True),
    (CompOp.LEGE, 1.0, 2.0, 1.5, False),
]


@pytest.mark.parametrize(("op", "low", "high", "value", "passes"), NUMERIC_TABLE)
def test_numeric_operator_semantics(
    op: CompOp, low: float | None, high: float | None, value: float, passes: bool
) -> None:
    assert evaluate_numeric(value, op, low, high) is passes


def test_every_numeric_operator_is_covered_by_the_table() -> None:
    numeric_ops = set(CompOp) - {CompOp.CASESENSIT, CompOp.IGNORECASE}
    assert {row[0] for row in NUMERIC_TABLE} == numeric_ops


@pytest.mark.parametrize(
    ("op", "limit", "value", "passes"),
    [
        (CompOp.LOG, None, "anything", True),
        (CompOp.CASESENSIT, "Abc", "Abc", True),
        (CompOp.CASESENSIT, "Abc", "abc", False),
        (CompOp.IGNORECASE, "Abc", "aBC", True),
        (CompOp.IGNORECASE, "Abc", "abd", False),
        ("IgnoreCase", "STRASSE", "straße", True),
    ],
)
def test_string_operator_semantics(
    op: CompOp | str, limit: str | None, value: str, passes: bool
) -> None:
    assert evaluate_string(value, op, limit) is passes


def test_missing_limits_and_wrong_operator_kinds_raise() -> None:
    with pytest.raises(ValueError, match="lowLimit"):
        evaluate_numeric(1.0, CompOp.GE)
    with pytest.raises(ValueError, match="highLimit"):
        evaluate_numeric(1.0, CompOp.GELE, 0.0)
    with pytest.raises(ValueError, match="strings"):
        evaluate_numeric(1.0, CompOp.CASESENSIT, 0.0)
    with pytest.raises(ValueError, match="not a string operator"):
        evaluate_string("a", CompOp.GE, "a")
    with pytest.raises(ValueError, match="limit"):
        evaluate_string("a", CompOp.CASESENSIT)


def test_nan_fails_every_operator_but_log() -> None:
    assert evaluate_numeric(math.nan, CompOp.LOG)
    assert not evaluate_numeric(math.nan, CompOp.GELE, 0.0, 1.0)
    assert not evaluate_numeric(math.nan, CompOp.LTGT, 0.0, 1.0)


def new_builder(**kwargs: object) -> UUTReportBuilder:
    return UUTReportBuilder(
        pn="PCBA-1",
        sn="SN-0001",
        rev="B",
        process_code=10,
        station_name="ict-01",
        location="Line 1",
        purpose="Production",
        operator="op1",
        start=datetime(2026, 1, 30, 21, 1, 41, tzinfo=UTC),
        **kwargs,  # type: ignore[arg-type]
    )


def test_all_passing_steps_give_a_passed_report() -> None:
    builder = new_builder()
    with builder.sequence("Power") as power:
        power.numeric("VCC", 3.3, CompOp.GELE, low=3.2, high=3.4, unit="V")
        power.pass_fail("Boot", True)
        power.string_value("FW", "1.0", CompOp.CASESENSIT, limit="1.0")
    report = builder.build()
    assert report.result is ReportResult.PASSED
    assert all(step.status is not StepStatus.FAILED for step in iter_steps(report))


def test_failed_step_fails_its_sequences_and_the_report() -> None:
    builder = new_builder()
    with builder.sequence("Outer") as outer, outer.sequence("Inner") as inner:
        inner.numeric("VCC", 3.5, CompOp.GELE, low=3.2, high=3.4, unit="V")
    report = builder.build()
    statuses = {step.name: step.status for step in iter_steps(report)}
    assert statuses == {
        "MainSequence Callback": StepStatus.FAILED,
        "Outer": StepStatus.FAILED,
        "Inner": StepStatus.FAILED,
        "VCC": StepStatus.FAILED,
    }
    assert report.result is ReportResult.FAILED
    vcc = next(s for s in iter_steps(report) if s.name == "VCC")
    assert vcc.caused_seq_failure is True


def test_step_added_with_fails_parent_false_does_not_fail_the_sequence() -> None:
    builder = new_builder()
    with builder.sequence("Optional") as seq:
        seq.pass_fail("Informative", False, fails_parent=False)
    report = builder.build()
    assert report.result is ReportResult.PASSED
    assert [s.status for s in iter_steps(report)] == [
        StepStatus.PASSED,
        StepStatus.PASSED,
        StepStatus.FAILED,
    ]


def test_propagation_can_be_switched_off_for_the_whole_report() -> None:
    builder = new_builder(propagate_failures=False)
    builder.numeric("VCC", 9.0, CompOp.LE, low=5.0)
    assert builder.build().result is ReportResult.PASSED


def test_error_outranks_failure_when_propagating() -> None:
    builder = new_builder()
    builder.numeric("VCC", 9.0, CompOp.LE, low=5.0)
    builder.action("Instrument", status=StepStatus.ERROR)
    report = builder.build()
    assert report.result is ReportResult.ERROR


def test_explicit_result_overrides_the_computed_one() -> None:
    builder = new_builder()
    builder.numeric("VCC", 9.0, CompOp.LE, low=5.0)
    assert builder.build(result=ReportResult.TERMINATED).result is ReportResult.TERMINATED


def test_multi_numeric_step_fails_when_one_measurement_fails() -> None:
    builder = new_builder()
    step = builder.multi_numeric(
        "Rails",
        [
            NumericSpec("3V3", 3.3, CompOp.GELE, 3.2, 3.4, "V"),
            NumericSpec("5V", 5.6, CompOp.GELE, 4.8, 5.2, "V"),
        ],
    )
    assert step.status is StepStatus.FAILED
    assert [m.status for m in step.numeric_meas or []] == [StepStatus.PASSED, StepStatus.FAILED]


def test_built_report_carries_everything_and_survives_json_round_trip() -> None:
    builder = new_builder()
    builder.misc_info("Fixture", "F-7")
    builder.sub_unit("PCBA", "SUB-1", "SUBSN-1", "A")
    builder.chart("Ripple", [("trace", [0, 1, 2], [0.5, 0.25, 0.125])], y_unit="V")
    builder.attachment("log.txt", b"hello", "text/plain")
    builder.binary_data("raw.bin", b"\x00\x01", "application/octet-stream")
    report = builder.build()
    data = dump_report(report)
    assert data["type"] == "T"
    assert data["start"] == "2026-01-30T21:01:41+00:00"
    assert data["uut"]["user"] == "op1"
    assert data["miscInfos"][0] == {"description": "Fixture", "text": "F-7", "numeric": None}
    assert data["subUnits"][0]["partType"] == "PCBA"
    chart_step, attach_step = data["root"]["steps"]
    assert chart_step["chart"]["series"][0]["ydata"] == "0.5;0.25;0.125"
    assert attach_step["attachment"]["data"] == "aGVsbG8="
    assert [s.id for s in iter_steps(report)] == [1, 2, 3]
    assert dump_report(parse_report(report_to_json(report))) == data


def test_builder_refuses_invalid_header_values_naming_the_field() -> None:
    builder = UUTReportBuilder(
        pn="PCBA-1",
        sn="bad/serial",
        rev="B",
        process_code=10,
        station_name="ict-01",
        location="Line 1",
        purpose="Production",
    )
    with pytest.raises(ValueError, match="sn"):
        builder.build()
