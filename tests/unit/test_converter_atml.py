"""The ATML converter on the three genuine TestStand samples (2.02, 5.00, 6.01), on a small
hand-written batch document, and on broken or foreign input.

Expected values below were read off the sample files by hand, not computed by the converter.
"""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from wats.api.models import (
    CompOp,
    ReportResult,
    SequenceCallStep,
    StepBase,
    StepGroup,
    StepStatus,
    UUTReport,
    dump_report,
    iter_steps,
    parse_report,
)
from wats.api.station import Station
from wats.converters import (
    ConverterArgumentsError,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    ReferenceLookup,
)
from wats.converters.builtin.atml import ATMLConverter

STATION = Station(name="ICT-01", location="Line 4", purpose="Test")
LOCAL = timezone(timedelta(hours=2))
SAMPLES = {
    "2.02": "ATML_2.02_TS2017_MotherboardDemo.xml",
    "5.00": "ATML_5.00_TS2017_MotherboardDemo.xml",
    "6.01": "ATML_6.01_TS2017_MotherboardDemo.xml",
}
# Start of each run, as <ResultSet startDateTime> states it (local time, no offset given).
STARTS = {
    "2.02": datetime(2019, 5, 15, 14, 30, 27, 58000, tzinfo=LOCAL),
    "5.00": datetime(2019, 5, 15, 14, 31, 11, 452000, tzinfo=LOCAL),
    "6.01": datetime(2019, 5, 15, 14, 31, 52, 851000, tzinfo=LOCAL),
}


def _context(**arguments: Any) -> ConverterContext:
    return ConverterContext(
        station=STATION,
        arguments=ATMLConverter.parse_arguments(arguments),
        reference=ReferenceLookup([{"code": 50, "name": "PCBA test"}]),
        clock=lambda: datetime(2024, 6, 1, 12, 0, tzinfo=LOCAL),
    )


def _convert(path: Path, **arguments: Any) -> ConverterResult:
    return ATMLConverter().convert(ConverterSource(path), _context(**arguments))


def _only_report(result: ConverterResult) -> UUTReport:
    assert result.success, result.message
    [report] = result.reports
    assert isinstance(report, UUTReport)
    return report


def _step(report: UUTReport, name: str) -> StepBase:
    [step] = [s for s in iter_steps(report) if s.name == name]
    return step


@pytest.fixture(scope="module")
def converted(samples_dir: Path) -> dict[str, UUTReport]:
    """Each sample converted once for the whole module (the tests only read them)."""
    return {v: _only_report(_convert(samples_dir / "atml" / f)) for v, f in SAMPLES.items()}


# -- the genuine samples ------------------------------------------------------------------------


@pytest.mark.parametrize("version", list(SAMPLES))
def test_each_sample_converts_to_one_valid_report_with_the_unit_header(
    converted: dict[str, UUTReport], version: str
) -> None:
    report = converted[version]
    assert report.sn == "123456789"
    assert report.pn == "Ragnar123"
    assert report.result is ReportResult.FAILED
    assert report.machine_name == "TS-2016-BETA"
    assert (report.location, report.purpose) == ("Line 4", "Test")
    assert report.uut is not None and report.uut.user == "administrator"
    assert report.process_code == 10
    assert report.rev == "NA"
    assert parse_report(dump_report(report)) == report


@pytest.mark.parametrize("version", list(SAMPLES))
def test_a_start_time_without_offset_gets_the_station_offset_and_lowers_confidence(
    samples_dir: Path, version: str
) -> None:
    result = _convert(samples_dir / "atml" / SAMPLES[version])
    report = _only_report(result)
    assert report.start == STARTS[version]
    assert report.start.utcoffset() == timedelta(hours=2)
    # No offset (0.9); and no revision or operation either, so the built-in defaults cap it.
    assert result.confidence == pytest.approx(0.8)
    assert any("no UTC offset" in warning for warning in result.warnings)
    result = _convert(
        samples_dir / "atml" / SAMPLES[version], process_code=10, default_revision="NA"
    )
    assert result.confidence == pytest.approx(0.9), result.warnings


@pytest.mark.parametrize("version", list(SAMPLES))
def test_every_step_of_the_sample_is_kept_with_its_type(
    converted: dict[str, UUTReport], version: str
) -> None:
    # Counted in the files: 2 TestGroups + 14 Tests + 8 SessionActions (ResultSet as main
    # sequence in 5.00/6.01); "CPU Diagnostics" is a skipped Test of type SequenceCall.
    types = [step.step_type for step in iter_steps(converted[version])]
    assert len(types) == 24
    assert {t: types.count(t) for t in set(types)} == {
        "SequenceCall": 3,
        "ET_PFT": 10,
        "ET_NLT": 3,
        "Statement": 1,
        "Action": 3,
        "NI_Flow_If": 2,
        "NI_Flow_End": 2,
    }


@pytest.mark.parametrize("version", list(SAMPLES))
def test_numeric_measurements_keep_value_limits_operator_unit_and_status(
    converted: dict[str, UUTReport], version: str
) -> None:
    report = converted[version]
    video = _step(report, "Video Test")  # 5 us, LimitPair GT 0 AND LT 10, Passed
    [meas] = video.numeric_meas
    assert (meas.value, meas.low_limit, meas.high_limit) == (5.0, 0.0, 10.0)
    assert (meas.comp_op, meas.unit, meas.status) == (CompOp.GTLT, "microseconds", "P")
    keyboard = _step(report, "Keyboard Test")  # 4, SingleLimit GT 5, Failed
    [meas] = keyboard.numeric_meas
    assert (meas.value, meas.low_limit, meas.high_limit) == (4.0, 5.0, None)
    assert (meas.comp_op, meas.unit, meas.status) == (CompOp.GT, None, "F")
    assert keyboard.status is StepStatus.FAILED
    assert keyboard.caused_seq_failure is True


@pytest.mark.parametrize("version", list(SAMPLES))
def test_recorded_statuses_groups_and_report_text_are_kept(
    converted: dict[str, UUTReport], version: str
) -> None:
    report = converted[version]
    root = report.root
    assert root is not None and root.name == "MainSequence" and root.status is StepStatus.FAILED
    assert root.seq_call is not None and root.seq_call.path is not None
    assert root.seq_call.path.endswith("Computer Motherboard Test Sequence VIC.seq")
    # Skipped as "Aborted"/"UserDefined" qualified "Skipped" (2.02/5.00) or "NotStarted" (6.01).
    for name in ("CPU Diagnostics", "ROM Diagnostics", "RAM Diagnostics", "Video Diagnostics"):
        assert _step(report, name).status is StepStatus.SKIPPED
    assert _step(report, "Keyboard Diagnostics").status is StepStatus.FAILED
    assert _step(report, "Powerup Test").status is StepStatus.PASSED
    assert _step(report, "Add Partnumber").group is StepGroup.SETUP
    assert _step(report, "Turn Vacuum Table Off").group is StepGroup.CLEANUP
    cpu = _step(report, "CPU Test")
    assert isinstance(cpu, SequenceCallStep) and cpu.status is StepStatus.PASSED
    assert [s.name for s in cpu.steps] == [
        "Register Test",
        "Instruction Set Test",
        "Cache Test",
        "FPU Test",
    ]
    ifs = [s for s in iter_steps(report) if s.step_type == "NI_Flow_If"]
    assert [s.report_text for s in ifs] == ["{True}", "{True}"]


def test_teststand_total_times_become_step_and_report_times(
    converted: dict[str, UUTReport],
) -> None:
    five = converted["5.00"]
    assert five.uut is not None and five.uut.exec_time == pytest.approx(2.6958)
    assert _step(five, "Simulation Dialog").tot_time == pytest.approx(2.4852)
    assert converted["6.01"].uut.exec_time == pytest.approx(2.12798)
    # ATML 2.02 has no ts:TotalTime: times come from start/end (14:30:27.058 → 14:30:29.228).
    two = converted["2.02"]
    assert two.uut is not None and two.uut.exec_time == pytest.approx(2.17)
    assert _step(two, "Simulation Dialog").tot_time == pytest.approx(1.977)


def test_the_critical_failure_stack_marks_the_step_that_failed_the_unit(
    converted: dict[str, UUTReport],
) -> None:
    report = converted["5.00"]  # CriticalFailureStackEntry resultID="69" = "Keyboard Test"
    keyboard = _step(report, "Keyboard Test")
    assert keyboard.caused_uut_failure is True
    assert report.uut is not None and report.uut.step_id_caused_uut_failure == keyboard.id


def _shape(step: StepBase, *, root: bool = False) -> tuple[Any, ...]:
    """What must agree between versions: everything but times, the root's TestStand id and the
    critical-failure marks (ATML 2.02 has no critical failure stack)."""
    data = step.model_dump(
        mode="json",
        exclude={"start", "tot_time", "steps", "caused_uut_failure"},
        exclude_none=True,
    )
    if root:
        data.pop("tsGuid", None)
    kids = tuple(_shape(c) for c in step.steps) if isinstance(step, SequenceCallStep) else ()
    return tuple(sorted((k, repr(v)) for k, v in data.items())), kids


def test_the_three_versions_of_the_same_run_convert_to_the_same_report(
    converted: dict[str, UUTReport],
) -> None:
    two, five, six = converted["2.02"], converted["5.00"], converted["6.01"]
    for other in (five, six):
        assert (other.sn, other.pn, other.rev, other.result) == (
            two.sn,
            two.pn,
            two.rev,
            two.result,
        )
        assert other.machine_name == two.machine_name and other.uut.user == two.uut.user
        assert _shape(other.root, root=True) == _shape(two.root, root=True)
    # Intended differences: the ATML version misc info, and the start times (three runs).
    misc = {v: [(m.description, m.text) for m in r.misc_infos] for v, r in converted.items()}
    for version, infos in misc.items():
        assert infos == [
            ("Sequence file", "Computer Motherboard Test Sequence VIC.seq"),
            ("Model name", "UNKNOWN"),
            ("ATML version", version),
        ]


# -- a hand-written batch document ------------------------------------------------------------

NS = (
    'xmlns:trc="urn:IEEE-1636.1:2013:TestResultsCollection" '
    'xmlns:tr="urn:IEEE-1636.1:2013:TestResults" xmlns:c="urn:IEEE-1671:2010:Common" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xmlns:ts="www.ni.com/TestStand/ATMLTestResults/3.0"'
)


def _props(step_type: str, extra: str = "") -> str:
    return (
        "<tr:Extension><ts:TSStepProperties>"
        f"<ts:StepType>{step_type}</ts:StepType><ts:StepGroup>Main</ts:StepGroup>{extra}"
        "</ts:TSStepProperties></tr:Extension>"
    )


def _datum(value: str, unit: str = "V") -> str:
    return f'<c:Datum value="{value}" xsi:type="ts:TS_double" nonStandardUnit="{unit}"/>'


def _unit(serial: str, socket: int, voltage: str, outcome: str, part: str = "PCBA-100") -> str:
    numbers = (
        f'<c:IdentificationNumbers><c:IdentificationNumber number="{part}" type="Part"/>'
        "</c:IdentificationNumbers>"
        if part
        else ""
    )
    return f"""
<trc:TestResults uuid="u-{socket}">
 <tr:Personnel><tr:SystemOperator ID="op" name="operator1"/></tr:Personnel>
 <tr:ResultSet ID="1" name="C:\\seq\\Board.seq#MainSequence"
   startDateTime="2024-03-01T08:00:0{socket}+01:00" endDateTime="2024-03-01T08:00:09+01:00">
  {_props("SequenceCall", "<ts:TotalTime value='1.5'/>")}
  <tr:Outcome value="{outcome}"/>
  <tr:Test ID="2" name="VCC" startDateTime="2024-03-01T08:00:01+01:00">
   {_props("NumericLimitTest", "<ts:TotalTime value='0.25'/>")}
   <tr:Outcome value="{outcome}"/>
   <tr:TestResult ID="tr-1" name="Numeric">
    <tr:TestData>{_datum(voltage)}</tr:TestData>
    <tr:TestLimits><tr:Limits><c:LimitPair operator="AND">
     <c:Limit comparator="GE">{_datum("3.2")}</c:Limit>
     <c:Limit comparator="LE">{_datum("3.4")}</c:Limit>
    </c:LimitPair></tr:Limits></tr:TestLimits>
   </tr:TestResult>
  </tr:Test>
  <tr:Test ID="3" name="Rails">
   {_props("NI_MultipleNumericLimitTest")}
   <tr:Outcome value="Passed"/>
   <tr:TestResult ID="tr-2" name="V1">
    <tr:TestData>{_datum("1.0")}</tr:TestData>
    <tr:TestLimits><tr:Limits><c:LimitPair operator="OR">
     <c:Limit comparator="GT">{_datum("2")}</c:Limit>
     <c:Limit comparator="LT">{_datum("0.5")}</c:Limit>
    </c:LimitPair></tr:Limits></tr:TestLimits>
   </tr:TestResult>
   <tr:TestResult ID="tr-3" name="V2">
    <tr:TestData>{_datum("0x10", "")}</tr:TestData>
    <tr:Extension><ts:TSLimitProperties><ts:IsComparisonTypeLog value="true"/>
    </ts:TSLimitProperties></tr:Extension>
   </tr:TestResult>
   <tr:TestResult ID="tr-4" name="Extra"><tr:TestData>{_datum("9")}</tr:TestData></tr:TestResult>
  </tr:Test>
  <tr:Test ID="4" name="Firmware">
   {_props("StringValueTest")}
   <tr:Outcome value="Passed"/>
   <tr:TestResult ID="tr-5" name="String">
    <tr:TestData><c:Datum xsi:type="ts:TS_string"><c:Value>V1.2</c:Value></c:Datum></tr:TestData>
    <tr:TestLimits><tr:Limits><c:Expected comparator="CIEQ">
     <c:Datum xsi:type="ts:TS_string"><c:Value>v1.2</c:Value></c:Datum>
    </c:Expected></tr:Limits></tr:TestLimits>
   </tr:TestResult>
  </tr:Test>
  <tr:SessionAction ID="5" name="Power off">
   {_props("Action")}
   <tr:ActionOutcome value="Done" qualifier="Error"/>
  </tr:SessionAction>
 </tr:ResultSet>
 <tr:TestStation><c:SerialNumber>RIG-7</c:SerialNumber></tr:TestStation>
 <tr:UUT><c:Definition version="B"><c:Identification>{numbers}
  </c:Identification></c:Definition>
  <c:SerialNumber>{serial}</c:SerialNumber></tr:UUT>
 <tr:Extension><ts:TSResultSetProperties>
  <ts:TestSocketIndex value="{socket}"/><ts:BatchSerialNumber value="BATCH-9"/>
 </ts:TSResultSetProperties></tr:Extension>
</trc:TestResults>"""


def _batch(tmp_path: Path, *units: str) -> Path:
    path = tmp_path / "batch.xml"
    body = "".join(units) or _unit("SN-A", 0, "3.3", "Passed") + _unit("SN-B", 1, "3.9", "Failed")
    path.write_text(f"<trc:TestResultsCollection {NS}>{body}</trc:TestResultsCollection>")
    return path


def test_a_batch_file_gives_one_report_per_unit_with_its_socket(tmp_path: Path) -> None:
    # ATML names no operation; set in the config, the operation costs no confidence.
    result = _convert(_batch(tmp_path), process_code=50)
    assert result.success, result.message
    assert result.confidence == 1.0, result.warnings
    first, second = result.reports
    assert isinstance(first, UUTReport) and isinstance(second, UUTReport)
    assert [(r.sn, r.pn, r.rev, r.result) for r in (first, second)] == [
        ("SN-A", "PCBA-100", "B", ReportResult.PASSED),
        ("SN-B", "PCBA-100", "B", ReportResult.FAILED),
    ]
    assert [r.uut.test_socket_index for r in (first, second)] == [0, 1]
    assert {r.uut.batch_sn for r in (first, second)} == {"BATCH-9"}
    assert first.start == datetime(2024, 3, 1, 8, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    assert first.machine_name == "RIG-7" and first.uut.user == "operator1"
    assert first.uut.exec_time == 1.5
    for report in (first, second):
        assert parse_report(dump_report(report)) == report


def test_batch_measurements_map_to_wats_step_types_and_operators(tmp_path: Path) -> None:
    first, second = _convert(_batch(tmp_path)).reports
    vcc = _step(first, "VCC")
    [meas] = vcc.numeric_meas
    assert (vcc.step_type, meas.comp_op, meas.low_limit, meas.high_limit) == (
        "ET_NLT",
        CompOp.GELE,
        3.2,
        3.4,
    )
    assert (meas.value, meas.unit, vcc.tot_time) == (3.3, "V", 0.25)
    # The second unit failed VCC: its recorded status is kept, not recomputed.
    assert _step(second, "VCC").status is StepStatus.FAILED
    rails = _step(first, "Rails")
    assert rails.step_type == "ET_MNLT"
    v1, v2 = rails.numeric_meas  # "Extra" has no limits: left out
    assert (v1.name, v1.comp_op, v1.low_limit, v1.high_limit) == ("V1", CompOp.LTGT, 0.5, 2.0)
    assert (v2.name, v2.comp_op, v2.value) == ("V2", CompOp.LOG, 16.0)
    firmware = _step(first, "Firmware")
    [text] = firmware.string_meas
    assert (firmware.step_type, text.value, text.limit, text.comp_op) == (
        "ET_SVT",
        "V1.2",
        "v1.2",
        CompOp.IGNORECASE,
    )
    assert _step(first, "Power off").status is StepStatus.ERROR


def test_an_operation_name_is_looked_up_in_the_reference_data(tmp_path: Path) -> None:
    result = _convert(_batch(tmp_path), process_name="PCBA test")
    assert {r.process_code for r in result.reports} == {50}
    fallback = _convert(_batch(tmp_path), process_name="No such test", process_code=20)
    assert {r.process_code for r in fallback.reports} == {20}
    assert any("No such test" in warning for warning in fallback.warnings)


# -- recognising the format ---------------------------------------------------------------------


def test_validate_claims_the_atml_samples_and_nothing_else(samples_dir: Path) -> None:
    context = _context()
    for path in sorted(samples_dir.rglob("*")):
        if not path.is_file() or path.name.endswith(".md"):
            continue
        confidence = ATMLConverter().validate(ConverterSource(path), context)
        if path.parent.name == "atml":
            assert confidence >= 0.9, path.name
        else:
            assert confidence <= 0.1, path.name


# -- broken and foreign input -------------------------------------------------------------------


def _assert_clean(result: ConverterResult) -> None:
    if result.success:
        for report in result.reports:
            parse_report(dump_report(report))
    else:
        assert result.message and not result.reports


@pytest.mark.timeout(10)
def test_truncated_samples_fail_cleanly(samples_dir: Path, tmp_path: Path) -> None:
    data = (samples_dir / "atml" / SAMPLES["5.00"]).read_bytes()
    for fraction in (0.0005, 0.1, 0.33, 0.5, 0.77, 0.99):
        path = tmp_path / "cut.xml"
        path.write_bytes(data[: int(len(data) * fraction)])
        result = _convert(path)
        assert not result.success and result.message, fraction


@pytest.mark.timeout(10)
def test_randomly_mutated_samples_never_raise(samples_dir: Path, tmp_path: Path) -> None:
    data = (samples_dir / "atml" / SAMPLES["2.02"]).read_bytes()
    rng = random.Random(1636)
    alphabet = b"<>/=\"' &#x0123456789.-abcdefGTLE\x00\xff"
    path = tmp_path / "mutated.xml"
    for _ in range(50):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.choice(alphabet)
        path.write_bytes(bytes(mutated))
        _assert_clean(_convert(path))


@pytest.mark.timeout(10)
def test_other_formats_are_refused_with_a_reason(samples_dir: Path) -> None:
    for path in sorted(samples_dir.rglob("*")):
        if path.is_file() and path.parent.name != "atml" and not path.name.endswith(".md"):
            result = _convert(path)
            assert not result.success and result.message, path.name


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (bytes(random.Random(7).randrange(256) for _ in range(4096)), "XML"),
        (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "DOCTYPE"),
        (f"<trc:TestResultsCollection {NS}/>".encode(), "no <TestResults>"),
        (f"<trc:TestResults {NS}/>".encode(), "no <ResultSet>"),
        (b"<TestResults><ResultSet/></TestResults>", "not ATML"),
    ],
)
def test_unreadable_input_fails_with_a_message(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.xml"
    path.write_bytes(content)
    result = _convert(path)
    assert not result.success
    assert reason in result.message


@pytest.mark.timeout(10)
def test_deeply_nested_sequences_fail_cleanly(tmp_path: Path) -> None:
    depth = 5000
    group = '<tr:TestGroup name="f.seq#S" ID="9"><tr:Outcome value="Passed"/>'
    document = (
        f"<trc:TestResultsCollection {NS}><trc:TestResults>"
        '<tr:ResultSet ID="1" name="f.seq#MainSequence" startDateTime="2024-01-01T00:00:00Z">'
        + group * depth
        + "</tr:TestGroup>" * depth
        + "</tr:ResultSet><tr:UUT><c:Definition><c:Identification><c:ModelName>M</c:ModelName>"
        "</c:Identification></c:Definition><c:SerialNumber>S1</c:SerialNumber></tr:UUT>"
        "</trc:TestResults></trc:TestResultsCollection>"
    )
    path = tmp_path / "deep.xml"
    path.write_text(document)
    result = _convert(path)
    assert not result.success
    assert "nested deeper" in result.message


def test_loops_errors_tolerances_and_unknown_outcomes_are_carried(tmp_path: Path) -> None:
    looped = _props(
        "NumericLimitTest",
        "<ts:LoopingProperties><ts:NumLoops value='3'/><ts:NumPassed value='2'/>"
        "<ts:NumFailed value='1'/><ts:EndingLoopIndex value='2'/></ts:LoopingProperties>",
    )
    document = f"""<trc:TestResultsCollection {NS}><trc:TestResults>
 <tr:ResultSet ID="1" name="b.seq#MainSequence" startDateTime="2024-03-01T07:00:00Z">
  {_props("SequenceCall")}<tr:Outcome value="Failed" qualifier="Error"/>
  <tr:Events><tr:Event ID="Error Code"><tr:Data><c:Datum value="-17502"/></tr:Data></tr:Event>
   <tr:Event ID="Error Message"><tr:Data><c:Datum><c:Value>DMM timed out</c:Value></c:Datum>
   </tr:Data></tr:Event></tr:Events>
  <tr:Test ID="2" name="Trim">{looped}<tr:Outcome value="Passed"/>
   <tr:TestResult ID="tr-1" name="Numeric"><tr:TestData>{_datum("10.1")}</tr:TestData>
    <tr:TestLimits><tr:Limits><c:Expected comparator="EQ">{_datum("10")}</c:Expected>
     <c:Extension><ts:TSLimitProperties><ts:ThresholdType>percentage</ts:ThresholdType>
      <ts:RawLimits><ts:Nominal value="10"/><ts:Low value="5"/><ts:High value="10"/>
      </ts:RawLimits></ts:TSLimitProperties></c:Extension></tr:Limits></tr:TestLimits>
   </tr:TestResult></tr:Test>
  <tr:SessionAction ID="3" name="Odd">{_props("MyCompanyStep")}<tr:ActionOutcome value="Weird"/>
  </tr:SessionAction>
 </tr:ResultSet>
 <tr:UUT><c:Definition><c:Identification><c:ModelName>M-1</c:ModelName></c:Identification>
 </c:Definition><c:SerialNumber>SN-C</c:SerialNumber></tr:UUT>
</trc:TestResults></trc:TestResultsCollection>"""
    path = tmp_path / "loops.xml"
    path.write_text(document)
    result = _convert(path)
    report = _only_report(result)
    assert (report.pn, report.result, report.start.utcoffset()) == (
        "M-1",
        ReportResult.ERROR,
        timedelta(0),
    )
    assert (report.uut.error_code, report.uut.error_message) == (-17502, "DMM timed out")
    trim = _step(report, "Trim")
    assert trim.loop is not None
    assert (trim.loop.num, trim.loop.passed, trim.loop.failed, trim.loop.ending_index) == (
        3,
        2,
        1,
        2,
    )
    [meas] = trim.numeric_meas
    assert (meas.comp_op, meas.low_limit, meas.high_limit) == (CompOp.GELE, 9.5, 11.0)
    odd = _step(report, "Odd")
    assert (odd.step_type, odd.status) == ("Action", StepStatus.DONE)
    assert result.confidence == pytest.approx(0.8)
    assert any("'Weird'" in warning for warning in result.warnings)


# -- WATS-required header fields the file leaves empty (wats.converters.defaults) --------------


def test_a_batch_socket_without_part_number_gets_the_default_and_lowers_confidence(
    tmp_path: Path,
) -> None:
    path = _batch(
        tmp_path,
        _unit("SN-A", 0, "3.3", "Passed", part=""),
        _unit("SN-B", 1, "3.3", "Passed"),
    )
    result = _convert(path, process_code=50)
    assert result.success, result.message
    assert [(r.sn, r.pn, r.uut.test_socket_index) for r in result.reports] == [
        ("SN-A", "UNKNOWN", 0),
        ("SN-B", "PCBA-100", 1),
    ]
    assert result.confidence == pytest.approx(0.8)
    assert [w for w in result.warnings if "part number" in w] == [
        "<TestResults> 1: the file names no part number; using 'UNKNOWN' "
        "(the built-in default of argument default_part_number)"
    ]


def test_an_explicit_default_part_number_is_used_without_lowering_confidence(
    tmp_path: Path,
) -> None:
    path = _batch(tmp_path, _unit("SN-A", 0, "3.3", "Passed", part=""))
    result = _convert(path, process_code=50, default_part_number="BOARD-7")
    report = _only_report(result)
    assert report.pn == "BOARD-7"
    assert result.confidence == 1.0
    assert not [w for w in result.warnings if "part number" in w]  # the site's own value


def test_a_unit_without_serial_takes_the_default_below_the_alarm_line(tmp_path: Path) -> None:
    path = _batch(tmp_path, _unit("SN-A", 0, "3.3", "Passed"), _unit("", 1, "3.3", "Passed"))
    result = _convert(path, process_code=50)
    assert result.success and [r.sn for r in result.reports] == ["SN-A", "UNKNOWN"]
    assert any(
        "<TestResults> 2: the file names no serial number (<UUT><SerialNumber>)" in w
        and "default_serial_number" in w
        for w in result.warnings
    )
    assert result.confidence <= 0.4  # below the default alarm threshold: file.alarm
    result = _convert(path, process_code=50, default_serial_number="NO-SERIAL")
    assert [r.sn for r in result.reports] == ["SN-A", "NO-SERIAL"]


@pytest.mark.parametrize(
    ("serial", "part", "expected"),
    [
        ("SN/1", "PCBA-100", "serial number (<UUT><SerialNumber>) 'SN/1' contains characters "
         "WATS refuses (/)"),
        ("SN-1", "P*1", "part number 'P*1' contains characters WATS refuses (*)"),
        ("SN-1", "P" * 101, "part number 'PPPP"),
        ("S" * 101, "PCBA-100", "is 101 characters long; WATS allows 100"),
    ],
)  # fmt: skip
def test_values_wats_refuses_still_fail_naming_the_field(
    tmp_path: Path, serial: str, part: str, expected: str
) -> None:
    result = _convert(_batch(tmp_path, _unit(serial, 0, "3.3", "Passed", part=part)))
    assert not result.success
    assert expected in result.message


def test_an_over_long_revision_fails_rather_than_being_cut(tmp_path: Path) -> None:
    path = _batch(tmp_path, _unit("SN-1", 0, "3.3", "Passed"))
    path.write_text(path.read_text().replace('version="B"', f'version="{"R" * 101}"'))
    result = _convert(path)
    assert not result.success
    assert "revision (<UUT><Definition> version)" in result.message
    assert "WATS allows 100" in result.message


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ({"default_part_number": "A/B"}, "arguments.default_part_number"),
        ({"default_serial_number": "X" * 101}, "arguments.default_serial_number"),
        ({"default_revision": ""}, "arguments.default_revision"),
        ({"process_code": -1}, "arguments.process_code"),
    ],
)
def test_defaults_wats_would_refuse_are_config_errors(
    arguments: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConverterArgumentsError, match=named):
        ATMLConverter.parse_arguments(arguments)


# -- report ids -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "ATML_2.02_TS2017_MotherboardDemo.xml",
        "ATML_5.00_TS2017_MotherboardDemo.xml",
        "ATML_6.01_TS2017_MotherboardDemo.xml",
    ],
)
def test_a_unit_keeps_the_uuid_its_test_results_carry(samples_dir: Path, name: str) -> None:
    path = samples_dir / "atml" / name
    recorded = re.search(r'TestResults\b[^>]*?\buuid="([^"]+)"', path.read_text("utf-8"))
    assert recorded is not None
    assert str(_only_report(_convert(path)).id) == recorded.group(1).lower()
    assert ATMLConverter.source_ids  # so the pipeline keeps it (wats.converters.provenance)


def test_a_unit_without_a_usable_uuid_leaves_its_id_to_the_pipeline(tmp_path: Path) -> None:
    result = _convert(_batch(tmp_path))  # uuid="u-0", "u-1": not UUIDs
    assert result.success
    assert {r.id.int for r in result.reports} == {0}  # nil: the pipeline derives one
