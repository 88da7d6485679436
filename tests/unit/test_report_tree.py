"""``convert --tree``: the readable step tree keeps every line of a step under that step."""

from __future__ import annotations

from datetime import UTC, datetime

from wats.api.builder import UUTReportBuilder
from wats.api.models import CompOp
from wats.cli.report_tree import format_report_tree


def _report_with_text(text: str) -> str:
    builder = UUTReportBuilder(
        pn="PCBA-1",
        sn="SN-0001",
        rev="B",
        process_code=10,
        station_name="ict-01",
        location="Line 1",
        purpose="Production",
        start=datetime(2026, 1, 30, 21, 1, 41, tzinfo=UTC),
    )
    with builder.sequence("Power") as power:
        step = power.numeric("VCC", 5.0, CompOp.GELE, low=0, high=10, unit="V")
        step.report_text = text
    return format_report_tree(builder.build())


def test_multi_line_step_text_continues_under_its_first_line() -> None:
    # OpenHTF puts a measurement's docstring and its validators on separate lines
    tree = _report_with_text("This measurement is validated.\nvalidators: 0 <= x <= 10")
    lines = tree.splitlines()
    first = next(i for i, line in enumerate(lines) if "text: This measurement" in line)
    column = lines[first].index("This measurement")
    assert lines[first + 1] == " " * column + "validators: 0 <= x <= 10"


def test_single_line_step_text_is_unchanged() -> None:
    tree = _report_with_text("just one line")
    assert "          text: just one line" in tree.splitlines()


def _numeric_tree(*measurements: tuple[str, float, CompOp, float | None, float | None]) -> str:
    builder = UUTReportBuilder(
        pn="PCBA-1",
        sn="SN-0001",
        rev="B",
        process_code=10,
        station_name="ict-01",
        location="Line 1",
        purpose="Production",
    )
    with builder.sequence("Checks") as checks:
        for name, value, op, low, high in measurements:
            checks.numeric(name, value, op, low=low, high=high, unit="mA")
    return format_report_tree(builder.build())


def test_a_single_limit_comparison_shows_as_what_it_is() -> None:
    tree = _numeric_tree(
        ("Idle current", 42.0, CompOp.LE, 50, None),
        ("Leak", 0.2, CompOp.LT, 1, None),
        ("Range", 5.0, CompOp.GELE, 0, 10),
        ("Nominal", 5.02, CompOp.EQT, 5, 0.1),
        ("Logged", 7.0, CompOp.LOG, None, None),
    )
    assert "= 42 mA  LE 50" in tree
    assert "= 0.2 mA  LT 1" in tree
    assert "= 5 mA  GELE  limits 0..10" in tree
    assert "= 5.02 mA  EQT 5 ± 0.1" in tree
    assert "= 7 mA  LOG" in tree
    assert "..-" not in tree
