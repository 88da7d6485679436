"""The example converter of docs/converters/writing-a-converter.md: it runs, and the guide shows
exactly the code that is tested here."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.support.example_converter import LineCsvArguments, LineCsvConverter
from wats.api.models import ReportResult, StepStatus, UUTReport, dump_report, parse_report
from wats.api.station import Station
from wats.converters import (
    ConverterArgumentsError,
    ConverterContext,
    ConverterSource,
    ReferenceLookup,
    load_converter_class,
)

GUIDE = PROJECT_ROOT / "docs" / "converters" / "writing-a-converter.md"
STATION = Station(name="ICT-04", location="Line 4", purpose="Production")
FIXED = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)
GOOD = "serial,SN-0001\npart,PCBA-100\nrevision,A\noperation,ICT\nVCC,3.31,3.20,3.40,V\n"


def _context(arguments: dict[str, object] | None = None, processes: list[dict] | None = None):
    return ConverterContext(
        station=STATION,
        arguments=LineCsvConverter.parse_arguments(arguments),
        reference=ReferenceLookup(processes or [{"code": 30, "name": "ICT"}]),
        clock=lambda: FIXED,
    )


def _source(tmp_path: Path, text: str, name: str = "unit.csv") -> ConverterSource:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return ConverterSource(path)


def test_the_guide_shows_the_tested_example_verbatim() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    match = re.search(
        r"<!-- example: tests/support/example_converter.py -->\n```python\n(.*?)```", guide, re.S
    )
    assert match, "the guide lost its example block"
    code = (PROJECT_ROOT / "tests" / "support" / "example_converter.py").read_text("utf-8")
    assert match.group(1) == code


def test_example_converts_a_passing_unit_with_the_station_and_process_code(
    tmp_path: Path,
) -> None:
    result = LineCsvConverter().convert(_source(tmp_path, GOOD), _context())
    assert result.success, result.message
    [report] = result.reports
    assert isinstance(report, UUTReport)
    assert (report.sn, report.pn, report.rev, report.process_code) == (
        "SN-0001",
        "PCBA-100",
        "A",
        30,
    )
    assert report.machine_name == "ICT-04" and report.result == ReportResult.PASSED
    assert result.warnings == []
    assert parse_report(dump_report(report)) == report  # valid WSJF


def test_example_fails_a_measurement_out_of_limits(tmp_path: Path) -> None:
    text = GOOD + "Current,0.90,0.40,0.60,A\n"
    [report] = LineCsvConverter().convert(_source(tmp_path, text), _context()).reports
    assert report.result == ReportResult.FAILED
    assert report.root is not None and report.root.steps[-1].status == StepStatus.FAILED


def test_example_uses_its_arguments_and_warns_about_an_unknown_operation(tmp_path: Path) -> None:
    text = GOOD.replace(",", ";").replace("ICT", "Burn-in")
    context = _context({"delimiter": ";", "default_process_code": 77}, processes=[])
    result = LineCsvConverter().convert(_source(tmp_path, text), context)
    assert result.success, result.message
    assert result.reports[0].process_code == 77
    assert result.warnings == ["operation 'Burn-in' unknown; using process 77"]


def test_example_reports_bad_rows_and_headers_as_failures(tmp_path: Path) -> None:
    bad_row = LineCsvConverter().convert(_source(tmp_path, GOOD + "VCC,high\n"), _context())
    assert not bad_row.success and bad_row.message.startswith("line 6:")
    no_header = LineCsvConverter().convert(_source(tmp_path, "VCC,1,0,2,V\n"), _context())
    assert not no_header.success and "header rows missing" in no_header.message


def test_example_arguments_are_validated_naming_the_argument() -> None:
    assert isinstance(LineCsvConverter.parse_arguments({}), LineCsvArguments)
    with pytest.raises(ConverterArgumentsError, match=r"arguments\.delimiter: "):
        LineCsvConverter.parse_arguments({"delimiter": ";;"})
    with pytest.raises(ConverterArgumentsError, match=r"arguments\.delimitter: unknown"):
        LineCsvConverter.parse_arguments({"delimitter": ";"})


def test_example_loads_as_a_site_file_and_validates_its_format(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    code = (PROJECT_ROOT / "tests" / "support" / "example_converter.py").read_text("utf-8")
    (site / "line_csv.py").write_text(code, encoding="utf-8")
    cls = load_converter_class("line_csv.py", site)
    assert cls.name == "line-csv" and cls is not LineCsvConverter
    converter = cls()
    assert converter.validate(_source(tmp_path, GOOD), _context()) == 0.9
    assert converter.validate(_source(tmp_path, "hello"), _context()) == 0.1
