"""The TestStand XML converter on the genuine samples (facts read off the files by hand), on
small hand-written reports for what the samples lack, and on hostile input."""

from __future__ import annotations

import random
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from wats.api.models import (
    SequenceCallStep,
    StepBase,
    UUTReport,
    dump_report,
    parse_report,
    walk_steps,
)
from wats.api.station import Station
from wats.converters import (
    ConverterArgumentsError,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    ReferenceLookup,
)
from wats.converters.builtin.teststand_xml import TestStandXMLArguments, TestStandXMLConverter

PLUS_TWO = timezone(timedelta(hours=2))
STATION = Station(name="ICT-01", location="Line 4", purpose="Test")
CONTEXT = ConverterContext(station=STATION, clock=lambda: datetime(2024, 1, 1, tzinfo=PLUS_TWO))
WITHOUT_WATS = "TsWithoutWats.xml"
WITH_WATS = "TSWithWats_TSReport.xml"


def _convert(path: Path, context: ConverterContext = CONTEXT) -> ConverterResult:
    return TestStandXMLConverter().convert(ConverterSource(path), context)


def _one_report(path: Path, context: ConverterContext = CONTEXT) -> UUTReport:
    result = _convert(path, context)
    assert result.success, result.message
    [report] = result.reports
    assert isinstance(report, UUTReport)
    assert parse_report(dump_report(report)) == report
    return report


def _steps(report: UUTReport) -> list[StepBase]:
    assert report.root is not None
    return list(walk_steps(report.root))[1:]


def _step(report: UUTReport, name: str) -> StepBase:
    [found] = [s for s in _steps(report) if s.name == name]
    return found


# -- the default layout: TsWithoutWats.xml ---------------------------------------------------


@pytest.fixture(scope="module")
def plain(samples_dir: Path) -> ConverterResult:
    return _convert(samples_dir / "teststand_xml" / WITHOUT_WATS)


def test_default_layout_header_carries_serial_station_operator_and_result(
    plain: ConverterResult,
) -> None:
    assert plain.success, plain.message
    [report] = plain.reports
    assert isinstance(report, UUTReport)
    assert report.sn == "2342343"
    assert report.result == "P"  # <Report UUTResult='Passed'>
    assert report.machine_name == "TS-2021-BETA"
    assert (report.location, report.purpose) == ("Line 4", "Test")  # not in the file
    assert report.uut is not None
    assert report.uut.user == "administrator"
    assert report.uut.exec_time == pytest.approx(6.0831833)
    assert report.root is not None
    assert report.root.name == "MainSequence Callback"
    assert report.root.seq_call is not None
    assert report.root.seq_call.name == "MainSequence"
    assert report.root.seq_call.version == "21.0.0.49156"


def test_default_layout_without_offset_takes_the_local_offset_and_says_so(
    plain: ConverterResult,
) -> None:
    report = plain.reports[0]
    # StartDate 7/1/2022, StartTime 15:47:48 and 927 ms, no offset in the file.
    assert report.start == datetime(2022, 7, 1, 15, 47, 48, 927000, tzinfo=PLUS_TWO)
    assert any("no UTC offset" in w for w in plain.warnings)
    assert 0.7 <= plain.confidence < 1.0


def test_start_time_offset_follows_the_station_clock(samples_dir: Path) -> None:
    minus_five = timezone(timedelta(hours=-5))
    context = ConverterContext(
        station=STATION, clock=lambda: datetime(2024, 1, 1, tzinfo=minus_five)
    )
    report = _one_report(samples_dir / "teststand_xml" / WITHOUT_WATS, context)
    assert report.start.utcoffset() == timedelta(hours=-5)
    assert (report.start.hour, report.start.minute) == (15, 47)


def test_default_layout_without_part_number_uses_the_argument_and_warns(
    plain: ConverterResult, samples_dir: Path
) -> None:
    report = plain.reports[0]
    assert (report.pn, report.rev, report.process_code) == ("UNKNOWN", "1.0", 10)
    assert (
        "the file names no part number (UUT.PartNumber); using 'UNKNOWN' "
        "(the built-in default of argument default_part_number)"
    ) in plain.warnings
    assert any("using process code 10" in w for w in plain.warnings)
    # Built-in defaults cap the confidence at 0.8 (the missing offset costs 0.05 more).
    assert plain.confidence == pytest.approx(0.8)
    args = TestStandXMLArguments(process_code=50, default_part_number="MB-1", default_revision="B")
    context = ConverterContext(station=STATION, arguments=args, clock=CONTEXT.clock)
    result = _convert(samples_dir / "teststand_xml" / WITHOUT_WATS, context)
    [report] = result.reports
    assert (report.pn, report.rev, report.process_code) == ("MB-1", "B", 50)
    # Values set in the config are the site's own: no warning, no lower confidence (only the
    # missing offset costs some).
    assert not [w for w in result.warnings if "part number" in w or "process code" in w]
    assert result.confidence == pytest.approx(0.95)


def test_default_layout_keeps_all_17_steps_with_their_types(plain: ConverterResult) -> None:
    report = plain.reports[0]
    steps = _steps(report)
    assert len(steps) == 17  # <Report StepCount='17'>
    assert Counter(s.step_type for s in steps) == {
        "ET_PFT": 7,
        "Action": 3,
        "ET_NLT": 2,
        "NI_Flow_If": 2,
        "NI_Flow_End": 2,
        "SequenceCall": 1,
    }
    cpu = _step(report, "CPU Test")
    assert isinstance(cpu, SequenceCallStep)
    assert [s.name for s in cpu.steps] == [
        "Register Test",
        "Instruction Set Test",
        "Cache Test",
        "FPU Test",
    ]
    assert cpu.seq_call is not None and cpu.seq_call.name == "CPU Test"


def test_default_layout_numeric_steps_keep_value_limits_operator_and_unit(
    plain: ConverterResult,
) -> None:
    report = plain.reports[0]
    video = _step(report, "Video Test")
    assert (video.step_type, video.status) == ("ET_NLT", "P")
    [meas] = video.numeric_meas  # type: ignore[attr-defined]
    assert (meas.value, meas.low_limit, meas.high_limit) == (5, 0, 10)
    assert (meas.comp_op, meas.unit, meas.status) == ("GTLT", "microseconds", "P")
    assert video.tot_time == pytest.approx(0.0008776)
    keyboard = _step(report, "Keyboard Test")
    [meas] = keyboard.numeric_meas  # type: ignore[attr-defined]
    assert (meas.value, meas.low_limit, meas.high_limit) == (6, 5, None)
    assert (meas.comp_op, meas.unit) == ("GT", None)


def test_default_layout_keeps_groups_report_text_and_statuses(plain: ConverterResult) -> None:
    report = plain.reports[0]
    assert _step(report, "Simulation Dialog").group == "S"
    assert _step(report, "Turn Vacuum Table On").group == "S"
    assert _step(report, "Turn Vacuum Table Off").group == "C"
    assert _step(report, "Simulation Dialog").status == "D"
    assert _step(report, "Simulation Dialog").tot_time == pytest.approx(5.8377732)
    ifs = [s for s in _steps(report) if s.step_type == "NI_Flow_If"]
    assert [s.report_text for s in ifs] == ["{True}", "{False}"]
    powerup = _step(report, "Powerup Test")
    assert powerup.boolean_meas[0].value is True  # type: ignore[attr-defined]
    assert powerup.ts_guid == "ID#:f8ZLdWPO6BG1UABQVsAACA"


# -- the WATS add-on layout: TSWithWats_TSReport.xml -----------------------------------------


def test_tsreport_header_maps_every_field_the_add_on_writes(samples_dir: Path) -> None:
    report = _one_report(samples_dir / "teststand_xml" / WITH_WATS)
    assert (report.sn, report.pn, report.rev) == ("12345", "PN1", "1.0")
    assert report.process_code == 60  # UUTOperationType / ReportInfo PCode
    assert report.result == "P"
    assert report.start == datetime(2022, 6, 23, 10, 55, 4, 370000, tzinfo=PLUS_TWO)
    assert dump_report(report)["start"] == "2022-06-23T10:55:04.3700000+02:00"
    assert report.machine_name == "VIC-PCBA-003"
    assert (report.location, report.purpose) == ("Norautron Horten", "PCBA Test")
    assert report.uut is not None
    assert report.uut.user == "administrator"
    assert report.uut.exec_time == pytest.approx(0.0539233)
    assert str(report.id) == "f4fb0a29-93b1-4f7f-ada7-672b382774ab"


def test_tsreport_has_its_single_pass_fail_step(samples_dir: Path) -> None:
    result = _convert(samples_dir / "teststand_xml" / WITH_WATS)
    assert result.success and result.confidence == 1.0 and result.warnings == []
    [step] = _steps(result.reports[0])  # type: ignore[arg-type]
    assert (step.name, step.step_type, step.status, step.group) == (
        "Pass/Fail Test",
        "ET_PFT",
        "P",
        "M",
    )
    assert step.boolean_meas[0].value is True  # type: ignore[attr-defined]
    assert step.tot_time == pytest.approx(5.41e-05)
    # Step start = EngineStarted 08:51:29.994Z + TS.StartTime 214.4463569 s.
    assert step.start == datetime(2022, 6, 23, 8, 55, 4, 440357, tzinfo=UTC)


def test_process_code_not_on_the_server_is_kept_with_a_warning(samples_dir: Path) -> None:
    reference = ReferenceLookup([{"code": 10, "name": "SW Debug"}])
    context = ConverterContext(station=STATION, reference=reference, clock=CONTEXT.clock)
    result = _convert(samples_dir / "teststand_xml" / WITH_WATS, context)
    assert result.reports[0].process_code == 60
    assert any("process code 60" in w for w in result.warnings)


# -- what the samples lack: hand-written reports ---------------------------------------------


def _p(name: str, kind: str, value: object) -> str:
    return f"<Prop Name='{name}' Type='{kind}'><Value>{value}</Value></Prop>"


def _te(
    name: str, step_type: str, status: str, data: str = "", ts: str = "", group: str = "Main"
) -> str:
    return (
        f"<Value ID='[0]'><Prop Type='TEResult'>{_p('Status', 'String', status)}{data}"
        f"<Prop Name='TS' Type='Obj'>{_p('StepName', 'String', name)}"
        f"{_p('StepGroup', 'String', group)}{_p('StepType', 'String', step_type)}"
        f"{_p('TotalTime', 'Number', '0.5')}{ts}</Prop></Prop></Value>"
    )


def _call(children: str, sequence: str = "MainSequence") -> str:
    return (
        f"<Prop Name='SequenceCall' Type='Obj'><Prop Name='ResultList' Type='Array'>"
        f"{children}</Prop>{_p('Sequence', 'String', sequence)}</Prop>"
    )


def _report(
    steps: str, result: str = "Passed", serial: str = "SN-7", extra: str = "", part: str = "PCBA-9"
) -> str:
    return (
        f"<Report Type='UUT' UUTResult='{result}'>"
        f"<Prop Name='UUT' Type='Obj'>{_p('SerialNumber', 'String', serial)}"
        f"{_p('PartNumber', 'String', part)}{extra}</Prop>"
        f"<Prop Name='StartTime' Type='Obj'>{_p('Hours', 'Number', 8)}{_p('Minutes', 'Number', 5)}"
        f"{_p('Seconds', 'Number', 9)}{_p('Milliseconds', 'Number', 0)}</Prop>"
        f"<Prop Name='StartDate' Type='Obj'>{_p('Year', 'Number', 2023)}"
        f"{_p('Month', 'Number', 3)}{_p('MonthDay', 'Number', 4)}</Prop>"
        f"<Prop Name='StationInfo' Type='Obj'>{_p('LoginName', 'String', 'op1')}</Prop>"
        f"<Prop Type='TEResult'>{_p('Status', 'String', result)}<Prop Name='TS' Type='Obj'>"
        f"{_p('StepName', 'String', 'MainSequence Callback')}{_call(steps)}</Prop></Prop>"
        f"</Report>"
    )


def _write(tmp_path: Path, body: str, name: str = "report.xml") -> Path:
    path = tmp_path / name
    path.write_text(f"<?xml version='1.0'?>\n{body}", encoding="utf-8")
    return path


NUMERIC_FAILED_INSIDE_LIMITS = _te(
    "Supply",
    "NumericLimitTest",
    "Failed",
    _p("Numeric", "Number", "3.3")
    + _p("Units", "String", "V")
    + _p("Comp", "String", "GELE")
    + "<Prop Name='Limits' Type='Obj'>"
    + _p("Low", "Number", "3.2")
    + _p("High", "Number", "3.4")
    + "</Prop>",
)


def test_station_statuses_win_over_the_limits(tmp_path: Path) -> None:
    path = _write(tmp_path, _report(NUMERIC_FAILED_INSIDE_LIMITS, result="Failed"))
    report = _one_report(path)
    [step] = _steps(report)
    assert step.status == "F"
    [meas] = step.numeric_meas  # type: ignore[attr-defined]
    assert (meas.value, meas.low_limit, meas.high_limit, meas.comp_op, meas.status) == (
        3.3,
        3.2,
        3.4,
        "GELE",
        "F",
    )
    assert report.result == "F"


def test_multiple_numeric_string_and_error_steps_are_mapped(tmp_path: Path) -> None:
    multi = _te(
        "Rails",
        "NI_MultipleNumericLimitTest",
        "Failed",
        "<Prop Name='Measurement' Type='Array'>"
        "<Value ID='[0]'><Prop Name='V5' Type='Obj'>"
        + _p("Data", "Number", "5.01")
        + _p("Comp", "String", "GELE")
        + _p("Status", "String", "Passed")
        + _p("Units", "String", "V")
        + "<Prop Name='Limits' Type='Obj'>"
        + _p("Low", "Number", "4.9")
        + _p("High", "Number", "5.1")
        + "</Prop></Prop></Value>"
        "<Value ID='[1]'><Prop Name='V12' Type='Obj'>"
        + _p("Data", "Number", "13")
        + _p("Comp", "String", "LT")
        + _p("Status", "String", "Failed")
        + "<Prop Name='Limits' Type='Obj'>"
        + _p("Low", "Number", "12.5")
        + "</Prop></Prop></Value></Prop>",
    )
    string = _te(
        "Firmware",
        "StringValueTest",
        "Passed",
        _p("String", "String", "v1.2")
        + _p("Comp", "String", "IgnoreCase")
        + "<Prop Name='Limits' Type='Obj'>"
        + _p("String", "String", "V1.2")
        + "</Prop>",
    )
    error = _te(
        "Instrument",
        "Action",
        "Error",
        "<Prop Name='Error' Type='Obj'>"
        + _p("Code", "Number", "-17502")
        + _p("Msg", "String", "Instrument timed out")
        + _p("Occurred", "Boolean", "True")
        + "</Prop>",
        group="Cleanup",
    )
    report = _one_report(_write(tmp_path, _report(multi + string + error, result="Error")))
    rails, firmware, instrument = _steps(report)
    assert (rails.step_type, rails.status) == ("ET_MNLT", "F")
    v5, v12 = rails.numeric_meas  # type: ignore[attr-defined]
    assert (v5.name, v5.value, v5.comp_op, v5.status, v5.unit) == ("V5", 5.01, "GELE", "P", "V")
    assert (v12.name, v12.low_limit, v12.comp_op, v12.status) == ("V12", 12.5, "LT", "F")
    [text_meas] = firmware.string_meas  # type: ignore[attr-defined]
    assert (firmware.step_type, text_meas.value, text_meas.limit) == ("ET_SVT", "v1.2", "V1.2")
    assert text_meas.comp_op == "IGNORECASE"
    assert (instrument.status, instrument.group) == ("E", "C")
    assert (instrument.error_code, instrument.error_message) == (-17502, "Instrument timed out")
    assert report.result == "E"


def test_every_uut_report_of_a_reports_document_becomes_a_report(tmp_path: Path) -> None:
    body = (
        "<Reports>"
        + _report(NUMERIC_FAILED_INSIDE_LIMITS, result="Failed", serial="A1")
        + _report("", result="Terminated", serial="A2")
        + "<Report Type='Batch'/></Reports>"
    )
    result = _convert(_write(tmp_path, body))
    assert result.success, result.message
    assert [(r.sn, r.result) for r in result.reports] == [("A1", "F"), ("A2", "T")]
    assert any("non-UUT" in w for w in result.warnings)
    assert result.reports[0].uut.user == "op1"  # type: ignore[union-attr]


def test_unknown_comparison_is_logged_with_a_warning(tmp_path: Path) -> None:
    step = NUMERIC_FAILED_INSIDE_LIMITS.replace(">GELE<", ">WITHIN<")
    result = _convert(_write(tmp_path, _report(step)))
    assert result.success, result.message
    [meas] = _steps(result.reports[0])[0].numeric_meas  # type: ignore[arg-type, attr-defined]
    assert meas.comp_op == "LOG"
    assert any("'WITHIN'" in w for w in result.warnings)


def test_serial_with_characters_wats_refuses_fails_the_file_naming_them(tmp_path: Path) -> None:
    result = _convert(_write(tmp_path, _report("", serial="SN/1*2")))
    assert not result.success
    assert "'SN/1*2'" in result.message and "* /" in result.message


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("<Reports><Report Type='UUT'></Report></Reports>", "UUT property"),
        ("<Reports></Reports>", "no UUT report"),
        ("<Other/>", "no UUT report"),
    ],
)
def test_reports_missing_essentials_fail_naming_what_is_missing(
    tmp_path: Path, body: str, expected: str
) -> None:
    result = _convert(_write(tmp_path, body))
    assert not result.success
    assert expected in result.message


# -- validate(): telling the formats apart ---------------------------------------------------


def _all_samples(samples_dir: Path) -> list[Path]:
    return sorted(p for p in samples_dir.rglob("*") if p.is_file() and p.suffix != ".md")


def test_validate_ranks_own_samples_high_and_every_other_sample_low(samples_dir: Path) -> None:
    converter = TestStandXMLConverter()
    samples = _all_samples(samples_dir)
    assert len(samples) > 2
    for path in samples:
        confidence = converter.validate(ConverterSource(path), CONTEXT)
        if path.parent.name == "teststand_xml":
            assert confidence >= 0.9, path.name
        else:
            assert confidence <= 0.1, path.name


# -- hostile input ---------------------------------------------------------------------------


def _assert_clean(result: ConverterResult) -> None:
    assert isinstance(result, ConverterResult)
    if result.success:
        for report in result.reports:
            parse_report(dump_report(report))
    else:
        assert result.message


@pytest.mark.timeout(10)
@pytest.mark.parametrize("name", [WITHOUT_WATS, WITH_WATS])
def test_truncated_samples_fail_cleanly(samples_dir: Path, tmp_path: Path, name: str) -> None:
    data = (samples_dir / "teststand_xml" / name).read_bytes()
    for fraction in (0.01, 0.1, 0.33, 0.5, 0.77, 0.95, 0.999):
        path = tmp_path / "cut.xml"
        path.write_bytes(data[: int(len(data) * fraction)])
        result = _convert(path)
        assert not result.success and result.message, fraction


@pytest.mark.timeout(10)
def test_randomly_mutated_samples_never_raise(samples_dir: Path, tmp_path: Path) -> None:
    rng = random.Random(20240605)
    originals = [
        (samples_dir / "teststand_xml" / n).read_bytes() for n in (WITHOUT_WATS, WITH_WATS)
    ]
    for case in range(50):
        data = bytearray(originals[case % 2])
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"mutated-{case}.xml"
        path.write_bytes(bytes(data))
        _assert_clean(_convert(path))


@pytest.mark.timeout(10)
def test_other_formats_samples_are_refused(samples_dir: Path) -> None:
    for path in _all_samples(samples_dir):
        if path.parent.name != "teststand_xml":
            result = _convert(path)
            assert not result.success and result.message, path.name


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "empty"),
        (b"  \n", "empty"),
        (bytes(range(256)) * 8, "well-formed"),
        (b"\x89PNG\r\n\x1a\n\x00\x00garbage", "well-formed"),
        (
            b"<?xml version='1.0'?><!DOCTYPE r [<!ENTITY a 'aaaa'>]><Reports>&a;</Reports>",
            "DOCTYPE",
        ),
        (b"<Reports>" + b"<a>" * 50_000 + b"</a>" * 50_000 + b"</Reports>", "no UUT report"),
    ],
)
def test_garbage_fails_with_a_reason(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "in.xml"
    path.write_bytes(content)
    result = _convert(path)
    assert not result.success
    assert expected in result.message


@pytest.mark.timeout(10)
def test_sequence_calls_nested_too_deep_fail_cleanly(tmp_path: Path) -> None:
    steps = ""
    for level in range(200):
        steps = _te(f"Level {level}", "SequenceCall", "Passed", ts=_call(steps))
    result = _convert(_write(tmp_path, _report(steps)))
    assert not result.success
    assert "nested deeper" in result.message


def test_moderately_nested_sequence_calls_convert(tmp_path: Path) -> None:
    steps = ""
    for level in range(20):
        steps = _te(f"Level {level}", "SequenceCall", "Passed", ts=_call(steps))
    report = _one_report(_write(tmp_path, _report(steps)))
    assert len(_steps(report)) == 20


_ODD_VALUES = ("", "NaN", "-Inf", "1e400", "-1", "abc", "9" * 40, "True", "2,5", " ", "ÿ\u2028")


def _mangle(root: ET.Element, rng: random.Random) -> None:
    """Well-formed but wrong: props removed, values replaced, names changed."""
    props = [(parent, child) for parent in root.iter() for child in parent if child.tag == "Prop"]
    values = [v for v in root.iter("Value")]
    for _ in range(rng.randint(1, 12)):
        action = rng.randrange(3)
        if action == 0 and props:
            parent, child = props[rng.randrange(len(props))]
            if child in list(parent):
                parent.remove(child)
        elif action == 1 and values:
            values[rng.randrange(len(values))].text = rng.choice(_ODD_VALUES)
        elif props:
            props[rng.randrange(len(props))][1].set("Name", rng.choice(("Status", "TS", "X", "")))


@pytest.mark.timeout(10)
def test_structurally_mangled_samples_convert_or_fail_cleanly(
    samples_dir: Path, tmp_path: Path
) -> None:
    rng = random.Random(5)
    paths = [samples_dir / "teststand_xml" / n for n in (WITHOUT_WATS, WITH_WATS)]
    outcomes = Counter()
    for case in range(60):
        root = ET.fromstring(paths[case % 2].read_bytes())
        _mangle(root, rng)
        path = tmp_path / f"mangled-{case}.xml"
        path.write_bytes(ET.tostring(root, encoding="utf-8"))
        result = _convert(path)
        _assert_clean(result)
        outcomes[result.success] += 1
    assert outcomes[True] and outcomes[False]  # both paths were exercised


ADD_ON_UUT_FIELDS = (
    _p("UUTPartRevisionNumber", "String", "C")
    + _p("Comment", "String", "rework lot")
    + _p("UUT_Fixture_ID", "String", "FIX-3")
    + _p("BatchSerialNumber", "String", "BATCH-8")
    + _p("TestSocketIndex", "Number", "2")
    + "<Prop Name='UUTOperationTypeDetails' Type='Obj'>"
    + _p("OpTypeName", "String", "PCBA test")
    + "</Prop><Prop Name='MiscUUTResult' Type='Obj'>"
    + "<Prop Name='Misc_UUT_Info' Type='Array'><Value ID='[0]'><Prop Type='Obj'>"
    + _p("Description", "String", "Firmware")
    + _p("Data_String", "String", "2.4.1")
    + _p("Data_Numeric", "Number", "0")
    + "</Prop></Value></Prop>"
    + "<Prop Name='UUT_Part_Info' Type='Array'><Value ID='[0]'><Prop Type='Obj'>"
    + _p("Part_Type", "String", "Display")
    + _p("Part_Number", "String", "LCD-2")
    + _p("Part_Serial_Number", "String", "L-77")
    + _p("Part_Revision_Number", "String", "A")
    + "</Prop></Value></Prop></Prop>"
)


def test_add_on_uut_fields_map_to_header_misc_infos_and_sub_units(tmp_path: Path) -> None:
    reference = ReferenceLookup([{"code": 50, "name": "PCBA test"}])
    context = ConverterContext(station=STATION, reference=reference, clock=CONTEXT.clock)
    result = _convert(_write(tmp_path, _report("", extra=ADD_ON_UUT_FIELDS)), context)
    assert result.success, result.message
    [report] = result.reports
    assert (report.pn, report.rev, report.process_code) == ("PCBA-9", "C", 50)
    assert report.uut is not None
    assert (report.uut.comment, report.uut.fixture_id) == ("rework lot", "FIX-3")
    assert (report.uut.batch_sn, report.uut.test_socket_index) == ("BATCH-8", 2)
    [info] = report.misc_infos
    assert (info.description, info.text) == ("Firmware", "2.4.1")
    [part] = report.sub_units
    assert (part.part_type, part.pn, part.sn, part.rev) == ("Display", "LCD-2", "L-77", "A")


def test_operation_name_unknown_to_the_server_falls_back_to_the_argument(tmp_path: Path) -> None:
    result = _convert(_write(tmp_path, _report("", extra=ADD_ON_UUT_FIELDS)))
    assert result.success, result.message
    assert result.reports[0].process_code == 10
    assert any("'PCBA test'" in w for w in result.warnings)


# -- WATS-required header fields the file leaves empty (wats.converters.defaults) -------------


def _socket(index: int) -> str:
    return _p("TestSocketIndex", "Number", index)


def _batch(*reports: str) -> str:
    return "<Reports>" + "".join(reports) + "<Report Type='Batch'/></Reports>"


def _context(**arguments: object) -> ConverterContext:
    args = TestStandXMLConverter.parse_arguments(arguments)
    return ConverterContext(station=STATION, arguments=args, clock=CONTEXT.clock)


def test_a_batch_file_gives_one_report_per_socket_and_defaults_a_missing_part_number(
    tmp_path: Path,
) -> None:
    body = _batch(
        _report("", serial="S-0", extra=_socket(0)),
        _report("", serial="S-1", extra=_socket(1), part=""),
        _report("", serial="S-2", extra=_socket(2)),
    )
    result = _convert(_write(tmp_path, body), _context(process_code=50, default_revision="A"))
    assert result.success, result.message
    assert [(r.sn, r.pn, r.uut.test_socket_index) for r in result.reports] == [  # type: ignore[union-attr]
        ("S-0", "PCBA-9", 0),
        ("S-1", "UNKNOWN", 1),
        ("S-2", "PCBA-9", 2),
    ]
    assert [w for w in result.warnings if "part number" in w] == [
        "report 1: the file names no part number (UUT.PartNumber); using 'UNKNOWN' "
        "(the built-in default of argument default_part_number)"
    ]
    assert result.confidence == pytest.approx(0.8)


def test_a_socket_without_serial_takes_the_default_below_the_alarm_line(tmp_path: Path) -> None:
    body = _batch(
        _report("", serial="S-0", extra=_socket(0)), _report("", serial="", extra=_socket(1))
    )
    path = _write(tmp_path, body)
    result = _convert(path)
    assert result.success and [r.sn for r in result.reports] == ["S-0", "UNKNOWN"]
    assert any(
        "report 1: the file names no serial number (UUT.SerialNumber)" in w
        and "default_serial_number" in w
        for w in result.warnings
    )
    assert result.confidence <= 0.4
    result = _convert(path, _context(default_serial_number="NO-SN"))
    assert [r.sn for r in result.reports] == ["S-0", "NO-SN"]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"part": "PCBA?9"}, "(UUT.PartNumber) 'PCBA?9' contains characters WATS refuses (?)"),
        ({"part": "P" * 101}, "is 101 characters long; WATS allows 100"),
        ({"extra": _p("UUTPartRevisionNumber", "String", "R" * 101)}, "revision (UUT.UUTPart"),
    ],
)
def test_values_wats_refuses_still_fail_naming_the_field(
    tmp_path: Path, kwargs: dict[str, str], expected: str
) -> None:
    result = _convert(_write(tmp_path, _report("", **kwargs)))
    assert not result.success
    assert expected in result.message


@pytest.mark.parametrize(
    "arguments",
    [
        {"default_part_number": "A[1]"},
        {"default_serial_number": ""},
        {"default_revision": "R" * 101},
    ],
)
def test_defaults_wats_would_refuse_are_config_errors(arguments: dict[str, str]) -> None:
    with pytest.raises(ConverterArgumentsError, match=f"arguments.{next(iter(arguments))}"):
        TestStandXMLConverter.parse_arguments(arguments)
