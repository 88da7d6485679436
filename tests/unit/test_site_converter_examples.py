"""The example site converters in configs/site-converters (named by configs/hub.toml): they load
like a site's own files, convert what their docstrings describe, and the hub config checks out."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.conftest import PROJECT_ROOT
from wats.api.models import ReportResult, StepStatus, UURReport, UUTReport, dump_report
from wats.api.station import Station
from wats.cli.main import app
from wats.converters import (
    ConverterArgumentsError,
    ConverterContext,
    ConverterSource,
    ReferenceLookup,
    load_converter_class,
)

SITE = PROJECT_ROOT / "configs" / "site-converters"
HUB = PROJECT_ROOT / "configs" / "hub.toml"
STATION = Station(name="burnin", location="Reliability lab", purpose="Burn-in")
FIXED = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)


def context(cls: type, arguments: dict[str, Any] | None = None) -> ConverterContext:
    return ConverterContext(
        station=STATION,
        arguments=cls.parse_arguments(arguments),
        reference=ReferenceLookup([{"code": 91, "name": "Burn-in"}]),
        clock=lambda: FIXED,
    )


# -- burn-in rack (folder kind) -----------------------------------------------------------------

BurnIn = load_converter_class("burnin_rack.py:BurnInRackConverter", SITE)

UNIT = """# written by rack R3
serial: SN-0042
part: PSU-200
revision: B
operator: night shift
started: 2024-05-01T22:00:00+02:00
rack: R3
slot: 12
"""
CHAMBER = """cycle,name,value,low,high,unit
1,Case temperature,84.9,80,90,C
2,Case temperature,85.4,80,90,C
"""
PSU = """cycle,name,value,low,high,unit
1,Output voltage,12.02,11.8,12.2,V
2,Output voltage,12.05,11.8,12.2,V
2,Ripple,0.031,,,V
"""


def run_folder(tmp_path: Path, **files: str) -> ConverterSource:
    folder = tmp_path / "run-0042"
    folder.mkdir()
    for name, text in {"COMPLETE.marker": "", **files}.items():
        (folder / name.replace("_csv", ".csv").replace("_txt", ".txt")).write_text(text)
    return ConverterSource(folder)


def steps_of(sequence: Any) -> dict[str, Any]:
    return {step.name: step for step in sequence.steps}


def test_burn_in_run_becomes_one_report_with_a_sequence_per_log(tmp_path: Path) -> None:
    source = run_folder(tmp_path, unit_txt=UNIT, chamber_csv=CHAMBER, psu_csv=PSU)
    result = BurnIn().convert(source, context(BurnIn))
    assert result.success, result.message
    [report] = result.reports
    assert isinstance(report, UUTReport)
    assert (report.sn, report.pn, report.rev) == ("SN-0042", "PSU-200", "B")
    assert report.process_code == 91  # "Burn-in" from the reference data
    assert report.result == ReportResult.PASSED
    assert report.start == datetime.fromisoformat("2024-05-01T22:00:00+02:00")
    assert report.uut is not None and report.uut.user == "night shift"
    assert {(m.description, m.text) for m in report.misc_infos} == {("Rack", "R3"), ("Slot", "12")}
    assert report.root is not None
    chamber, psu = report.root.steps
    assert (chamber.name, psu.name) == ("chamber", "psu")
    assert list(steps_of(chamber)) == ["Case temperature #1", "Case temperature #2"]
    ripple = steps_of(psu)["Ripple #2"].numeric_meas[0]
    assert ripple.comp_op == "LOG" and ripple.low_limit is None
    voltage = steps_of(psu)["Output voltage #1"].numeric_meas[0]
    assert (voltage.value, voltage.low_limit, voltage.high_limit) == (12.02, 11.8, 12.2)
    dump_report(report)  # serialisable as WSJF


def test_a_measurement_outside_its_limits_fails_the_unit(tmp_path: Path) -> None:
    hot = CHAMBER + "3,Case temperature,93.0,80,90,C\n"
    result = BurnIn().convert(run_folder(tmp_path, unit_txt=UNIT, chamber_csv=hot), context(BurnIn))
    [report] = result.reports
    assert report.result == ReportResult.FAILED
    assert steps_of(report.root.steps[0])["Case temperature #3"].status == StepStatus.FAILED


def test_a_run_that_stopped_early_fails_cycles_completed_and_says_so(tmp_path: Path) -> None:
    source = run_folder(tmp_path, unit_txt=UNIT, chamber_csv=CHAMBER)
    result = BurnIn().convert(source, context(BurnIn, {"cycles_expected": 48}))
    [report] = result.reports
    assert report.result == ReportResult.FAILED
    assert steps_of(report.root)["Cycles completed"].status == StepStatus.FAILED
    assert result.warnings == ["the run stopped after cycle 2 of 48"]


def test_temperatures_are_reported_in_the_configured_unit(tmp_path: Path) -> None:
    source = run_folder(tmp_path, unit_txt=UNIT, chamber_csv=CHAMBER)
    result = BurnIn().convert(source, context(BurnIn, {"temperature_unit": "F"}))
    [report] = result.reports
    meas = steps_of(report.root.steps[0])["Case temperature #1"].numeric_meas[0]
    assert (meas.value, meas.low_limit, meas.high_limit, meas.unit) == (184.82, 176.0, 194.0, "F")


def test_unknown_operation_falls_back_to_the_default_process_with_a_warning(
    tmp_path: Path,
) -> None:
    source = run_folder(tmp_path, unit_txt=UNIT, chamber_csv=CHAMBER)
    result = BurnIn().convert(source, context(BurnIn, {"operation": "Soak"}))
    assert result.reports[0].process_code == 90
    assert result.warnings == ["operation 'Soak' unknown; using process 90"]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"chamber_csv": CHAMBER}, "no unit.txt"),
        ({"unit_txt": "serial: SN-1\n", "chamber_csv": CHAMBER}, "missing part, revision"),
        ({"unit_txt": UNIT}, "no *.csv logs"),
        ({"unit_txt": UNIT, "chamber_csv": "a,b\n"}, "chamber.csv: line 1: expected the header"),
        (
            {"unit_txt": UNIT, "chamber_csv": CHAMBER + "3,Case temperature,hot,80,90,C\n"},
            "chamber.csv: line 4",
        ),
    ],
)
def test_unreadable_runs_fail_naming_the_file_and_line(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    result = BurnIn().convert(run_folder(tmp_path, **files), context(BurnIn))
    assert not result.success and message in result.message


def test_burn_in_arguments_are_typed() -> None:
    assert BurnIn.kind == "folder"
    with pytest.raises(ConverterArgumentsError, match="temperature_unit"):
        BurnIn.parse_arguments({"temperature_unit": "K"})
    with pytest.raises(ConverterArgumentsError, match="cycles: unknown argument"):
        BurnIn.parse_arguments({"cycles": 3})


# -- repair export (scheduled kind) -------------------------------------------------------------

RepairExport = load_converter_class("repair_export.py", SITE)


def uur(sn: str, **changes: Any) -> dict[str, Any]:
    return {
        "type": "R",
        "id": str(uuid.uuid4()),
        "pn": "PCBA-100",
        "sn": sn,
        "rev": "A",
        "processCode": 500,
        "result": "P",
        "machineName": "REPAIR-01",
        "location": "Repair",
        "purpose": "Repair",
        "start": "2024-05-01T10:00:00+02:00",
        "uur": {"user": "tech", "processCode": 90, "comment": "replaced U1"},
        **changes,
    }


def export_folder(tmp_path: Path, files: dict[str, Any]) -> ConverterSource:
    folder = tmp_path / "exports"
    folder.mkdir()
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        text = content if isinstance(content, str) else json.dumps(content)
        (folder / name).write_text(text)
    return ConverterSource(folder)


def test_repair_exports_become_uur_reports_and_nothing_is_deleted(tmp_path: Path) -> None:
    source = export_folder(
        tmp_path,
        {
            "a.json": uur("SN-1"),
            "b.json": [uur("SN-2"), uur("SN-3")],
            "late/c.JSON": uur("SN-4"),
            "notes.txt": "not an export",
        },
    )
    result = RepairExport().convert(source, context(RepairExport))
    assert result.success, result.message
    assert all(isinstance(r, UURReport) for r in result.reports)
    assert [r.sn for r in result.reports] == ["SN-1", "SN-2", "SN-3", "SN-4"]
    assert result.reports[0].uur.comment == "replaced U1"
    assert len(list(source.path.rglob("*"))) == 5  # four files and a folder: all still there


def test_an_empty_export_folder_is_a_run_with_no_reports(tmp_path: Path) -> None:
    result = RepairExport().convert(export_folder(tmp_path, {}), context(RepairExport))
    assert result.success and result.reports == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{truncated", "bad.json: not readable JSON"),
        (uur("SN-1", type="T"), 'bad.json: not a repair report (type "R")'),
        ([uur("SN-1"), uur("", result="P")], "bad.json, report 1: "),
    ],
)
def test_one_bad_export_fails_the_whole_run_naming_it(
    tmp_path: Path, content: Any, message: str
) -> None:
    source = export_folder(tmp_path, {"good.json": uur("SN-0"), "bad.json": content})
    result = RepairExport().convert(source, context(RepairExport))
    assert not result.success and message in result.message


def test_repair_export_can_require_the_failed_test_reference(tmp_path: Path) -> None:
    source = export_folder(tmp_path, {"a.json": uur("SN-1")})
    result = RepairExport().convert(source, context(RepairExport, {"require_ref_uut": True}))
    assert not result.success and "refUUT is missing" in result.message
    referenced = uur("SN-1")
    referenced["uur"]["refUUT"] = str(uuid.uuid4())
    (source.path / "a.json").write_text(json.dumps(referenced))
    result = RepairExport().convert(source, context(RepairExport, {"require_ref_uut": True}))
    assert result.success and len(result.reports) == 1


# -- the hub config that names them -------------------------------------------------------------


def test_hub_config_lists_its_converters_and_validates() -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["converters", "list", "--config", str(HUB), "--json"])
    assert listed.exit_code == 0, listed.output
    validated = runner.invoke(app, ["config", "validate", "--elsewhere", "--config", str(HUB)])
    assert validated.exit_code == 0, validated.output
    assert "burnin_rack" in listed.output and "RepairExportConverter" in listed.output
