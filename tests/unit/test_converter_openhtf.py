"""The OpenHTF converter on the genuine OpenHTF 1.6.3 records, on hand-made records that use the
rest of the format, and on hostile input.

Expected values are read off the sample files by hand (``dut_id``, ``start_time_millis``,
measurement values, validators, units); nothing is computed with the converter's own code.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from wats.api.models import (
    ChartStep,
    CompOp,
    GenericStep,
    MultiNumericLimitStep,
    NumericLimitStep,
    PassFailStep,
    ReportResult,
    SequenceCallStep,
    StepBase,
    StepStatus,
    StringValueStep,
    UUTReport,
    dump_report,
    iter_steps,
    parse_report,
    report_to_json,
)
from wats.api.station import Station
from wats.converters import (
    ConverterArgumentsError,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    ReferenceLookup,
)
from wats.converters.builtin.openhtf import OpenHTFArguments, OpenHTFConverter

STATION = Station(name="FCT-07", location="Line 2", purpose="Production")
PROCESSES = [{"code": 100, "name": "Final Function"}, {"code": 20, "name": "ICT"}]
HELLO = "openhtf163_hello_world_PASS.json"
MEASUREMENTS = "openhtf163_measurements_FAIL.json"
BRANCHES = "openhtf163_phase_branches_PASS.json"


def _context(**arguments: Any) -> ConverterContext:
    return ConverterContext(
        station=STATION,
        arguments=OpenHTFArguments(**arguments),
        reference=ReferenceLookup(PROCESSES),
        clock=lambda: datetime(2026, 1, 5, 12, 0, tzinfo=timezone(timedelta(hours=2))),
    )


def _convert(path: Path, **arguments: Any) -> ConverterResult:
    return OpenHTFConverter().convert(ConverterSource(path), _context(**arguments))


def _report(path: Path, **arguments: Any) -> tuple[UUTReport, ConverterResult]:
    result = _convert(path, **arguments)
    assert result.success, result.message
    [report] = result.reports
    assert isinstance(report, UUTReport)
    return report, result


def _step(report: UUTReport, name: str) -> StepBase:
    [found] = [s for s in iter_steps(report) if s.name == name]
    return found


def _phases(report: UUTReport) -> list[SequenceCallStep]:
    assert report.root is not None
    return [s for s in report.root.steps if isinstance(s, SequenceCallStep)]


def _kinds(report: UUTReport) -> Counter[str]:
    return Counter(s.step_type for s in iter_steps(report))


# --- the genuine records -------------------------------------------------------------------


@pytest.mark.parametrize("name", [HELLO, MEASUREMENTS, BRANCHES])
def test_every_sample_converts_to_one_report_the_models_accept(
    samples_dir: Path, name: str
) -> None:
    report, result = _report(samples_dir / "openhtf" / name)
    assert parse_report(dump_report(report)) == parse_report(json.loads(report_to_json(report)))
    assert report.machine_name == "vm"  # station_id
    assert (report.location, report.purpose) == ("Line 2", "Production")
    assert report.process_code == 10  # default: the records name no operation
    assert report.misc_infos[0].description == "test_name"
    assert report.misc_infos[0].text == "openhtf_test"
    # The records carry no part number, revision or operation: the built-in defaults are
    # used, said so, and cap the confidence.
    assert (report.pn, report.rev) == ("UNKNOWN", "1")
    assert [w.split(";")[0] for w in result.warnings] == [
        "the file names no part number (metadata)",
        "the file names no revision (metadata)",
        "the file names no process code",
    ]
    assert result.confidence == pytest.approx(0.8)


def test_hello_world_record_maps_serial_result_start_and_its_string_measurement(
    samples_dir: Path,
) -> None:
    report, _ = _report(samples_dir / "openhtf" / HELLO)
    assert report.sn == "SN-HW-0001"
    assert report.result is ReportResult.PASSED
    # start_time_millis 1795685169832, end_time_millis 1795685169833
    assert report.start == datetime(2026, 11, 26, 9, 26, 9, 832000, tzinfo=UTC)
    assert report.start.utcoffset() == timedelta(0)
    assert report.uut is not None and report.uut.exec_time == pytest.approx(0.001)
    assert report.uut.user is None  # OpenHTF records have no operator unless metadata says so
    assert [p.name for p in _phases(report)] == ["trigger_phase", "hello_world"]
    assert _kinds(report) == {"SequenceCall": 3, "ET_SVT": 1}
    step = _step(report, "hello_world_measurement")
    assert isinstance(step, StringValueStep) and step.string_meas
    assert step.status is StepStatus.PASSED
    assert step.string_meas[0].value == "Hello Again!"
    assert step.string_meas[0].comp_op is CompOp.LOG  # no validator in the record


def test_measurements_record_keeps_failed_result_limits_units_and_phase_statuses(
    samples_dir: Path,
) -> None:
    report, _ = _report(samples_dir / "openhtf" / MEASUREMENTS)
    assert report.sn == "MyDutId"
    assert report.result is ReportResult.FAILED
    assert report.start == datetime(2026, 11, 26, 9, 23, 21, 492000, tzinfo=UTC)
    assert report.uut is not None and report.uut.exec_time == pytest.approx(0.020)
    phases = _phases(report)
    assert len(phases) == 7
    assert [p.status for p in phases].count(StepStatus.FAILED) == 1
    assert _step(report, "inline_phase").status is StepStatus.FAILED
    assert _kinds(report) == {"SequenceCall": 8, "ET_SVT": 7, "ET_NLT": 5, "Chart": 1}

    inline = _step(report, "inline_kwargs")  # 15 Hz against "0 <= x <= 10", outcome FAIL
    assert isinstance(inline, NumericLimitStep) and inline.numeric_meas
    meas = inline.numeric_meas[0]
    assert (meas.value, meas.low_limit, meas.high_limit) == (15, 0, 10)
    assert (meas.comp_op, meas.unit, meas.status) == (CompOp.GELE, "Hz", StepStatus.FAILED)

    resistance = _step(report, "resistance")  # "9 <= x <= 11", ohm
    assert isinstance(resistance, NumericLimitStep) and resistance.numeric_meas
    meas = resistance.numeric_meas[0]
    assert meas.value == pytest.approx(9.991963241393558)
    assert (meas.low_limit, meas.high_limit, meas.comp_op) == (9, 11, CompOp.GELE)
    assert (meas.unit, meas.status) == ("\u2126", StepStatus.PASSED)

    seconds = _step(report, "validated_measurement")
    assert isinstance(seconds, NumericLimitStep) and seconds.numeric_meas
    assert (seconds.numeric_meas[0].value, seconds.numeric_meas[0].unit) == (5, "s")
    assert "This measurement is validated." in (seconds.report_text or "")

    voltage = _step(report, "average_voltage")  # no validator: logged
    assert isinstance(voltage, NumericLimitStep) and voltage.numeric_meas
    assert (voltage.numeric_meas[0].value, voltage.numeric_meas[0].comp_op) == (55.0, CompOp.LOG)


def test_multidimensional_measurement_is_kept_whole_as_a_chart(samples_dir: Path) -> None:
    report, _ = _report(samples_dir / "openhtf" / MEASUREMENTS)
    chart_step = _step(report, "power_time_series")
    assert isinstance(chart_step, ChartStep)
    assert chart_step.status is StepStatus.PASSED
    chart = chart_step.chart
    assert (chart.x_label, chart.x_unit) == ("ms", "ms")
    assert [s.name for s in chart.series] == ["V", "A", "value"]
    volts, amps, value = chart.series
    assert volts.x_values() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    assert volts.y_values() == [10, 20, 30, 40, 50, 60, 70, 80, 90, 100]
    assert amps.y_values()[0] == pytest.approx(1.0003165143495518)
    assert amps.y_values()[-1] == pytest.approx(10.003202367019563)
    assert value.y_values() == [0] * 10


def test_phase_branches_record_carries_diagnoses_and_phase_times(samples_dir: Path) -> None:
    report, _ = _report(samples_dir / "openhtf" / BRANCHES)
    assert report.sn == "SN-PB-0004"
    assert report.result is ReportResult.PASSED
    assert report.start == datetime(2026, 11, 26, 9, 27, 22, 540000, tzinfo=UTC)
    assert report.uut is not None and report.uut.exec_time == pytest.approx(8.006)
    assert len(_phases(report)) == 4
    select = _step(report, "SelectTestingBranchPhase")
    assert select.tot_time == pytest.approx(4.0)  # 1795685242541 .. 1795685246541
    assert "diagnosis: evt" in (select.report_text or "")
    assert [(m.description, m.text) for m in report.misc_infos][1:] == [("diagnosis", "evt")]
    branch = _step(report, "test_branch")
    assert isinstance(branch, StringValueStep) and branch.string_meas
    assert branch.string_meas[0].value == "evt"


def test_validate_ranks_openhtf_samples_high_and_every_other_sample_low(
    samples_dir: Path,
) -> None:
    converter = OpenHTFConverter()
    others = 0
    for path in sorted(p for p in samples_dir.rglob("*") if p.is_file() and p.suffix != ".md"):
        confidence = converter.validate(ConverterSource(path), _context())
        if path.parent.name == "openhtf":
            assert confidence >= 0.9, path.name
        else:
            others += 1
            assert confidence <= 0.1, path.name
    assert others >= 9


# --- hand-made records: the parts of the format the samples do not use ---------------------


def _record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "dut_id": "PCB-0042",
        "station_id": "fct-station-3",
        "start_time_millis": 1767225600000,  # 2026-01-01T00:00:00Z
        "end_time_millis": 1767225612500,
        "outcome": "PASS",
        "outcome_details": [],
        "metadata": {"test_name": "board_test", "test_version": "2.1"},
        "phases": [],
    }
    record.update(overrides)
    return record


def _phase(name: str, measurements: dict[str, Any], **extra: Any) -> dict[str, Any]:
    phase = {
        "name": name,
        "outcome": "PASS",
        "start_time_millis": 1767225601000,
        "end_time_millis": 1767225601250,
        "measurements": measurements,
        "attachments": {},
        "result": {"phase_result": "CONTINUE"},
    }
    phase.update(extra)
    return phase


def _write(tmp_path: Path, record: Any, name: str = "record.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(record), encoding="utf-8")
    return path


def _measure(name: str, value: Any, outcome: str = "PASS", **extra: Any) -> dict[str, Any]:
    return {name: {"name": name, "outcome": outcome, "measured_value": value, **extra}}


def test_metadata_fills_part_revision_operator_fixture_batch_socket_and_process(
    tmp_path: Path,
) -> None:
    metadata = {
        "test_name": "board_test",
        "test_version": "2.1",
        "part_number": "PCBA-100",
        "revision": "C",
        "operator": "op-17",
        "fixture_id": "FX-2",
        "batch_sn": "LOT-9",
        "test_socket_index": 3,
        "process": "Final Function",
        "firmware": "1.4.2",
    }
    report, result = _report(_write(tmp_path, _record(metadata=metadata)))
    assert (report.pn, report.rev, report.process_code) == ("PCBA-100", "C", 100)
    assert report.uut is not None
    uut = report.uut
    assert (uut.user, uut.fixture_id, uut.batch_sn) == ("op-17", "FX-2", "LOT-9")
    assert report.uut.test_socket_index == 3
    assert report.machine_name == "fct-station-3"
    assert report.uut.exec_time == pytest.approx(12.5)
    assert report.root is not None and report.root.seq_call is not None
    assert (report.root.seq_call.name, report.root.seq_call.version) == ("board_test", "2.1")
    assert [(m.description, m.text) for m in report.misc_infos] == [
        ("test_name", "board_test"),
        ("test_version", "2.1"),
        ("firmware", "1.4.2"),
    ]
    assert result.warnings == [] and result.confidence == 1.0


def test_unknown_operation_falls_back_to_the_process_code_argument_with_a_warning(
    tmp_path: Path,
) -> None:
    record = _record(metadata={"operation": "Coating inspection"})
    report, result = _report(
        _write(tmp_path, record), process_code=50, part_number="PCBA-7", revision="A"
    )
    assert report.process_code == 50
    assert report.pn == "PCBA-7"  # given in the config: not a guess, so no warning for it
    assert result.warnings == [
        "operation 'Coating inspection' is not a known process; using process code 50 "
        "(argument process_code)"
    ]
    assert result.confidence == pytest.approx(0.8)


def test_process_code_in_the_metadata_wins_over_the_operation_name(tmp_path: Path) -> None:
    record = _record(metadata={"process_code": 30, "operation": "ICT"})
    report, _ = _report(_write(tmp_path, record), part_number="P")
    assert report.process_code == 30
    record = _record(metadata={"operation": "ict"})  # looked up ignoring case
    report, result = _report(_write(tmp_path, record), part_number="P", default_revision="A")
    assert (report.process_code, result.warnings) == (20, [])


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("PASS", ReportResult.PASSED),
        ("FAIL", ReportResult.FAILED),
        ("ERROR", ReportResult.ERROR),
        ("TIMEOUT", ReportResult.TERMINATED),
        ("ABORTED", ReportResult.TERMINATED),
    ],
)
def test_test_outcome_becomes_the_report_result(
    tmp_path: Path, outcome: str, expected: ReportResult
) -> None:
    report, _ = _report(_write(tmp_path, _record(outcome=outcome)))
    assert report.result is expected
    assert report.root is not None and report.root.status.value == expected.value


def test_outcome_details_become_the_error_code_and_message(tmp_path: Path) -> None:
    details = [{"code": 7, "description": "fixture lid open"}, {"code": "E2", "description": ""}]
    report, _ = _report(_write(tmp_path, _record(outcome="ERROR", outcome_details=details)))
    assert report.uut is not None
    assert (report.uut.error_code, report.uut.error_message) == (7, "7: fixture lid open; E2")


def test_marginal_pass_stays_passed_and_says_so(tmp_path: Path) -> None:
    phase = _phase("trim", _measure("vref", 2.49, validators=["2.4 <= x <= 2.6"], marginal=True))
    phase["marginal"] = True
    report, result = _report(_write(tmp_path, _record(marginal=True, phases=[phase])))
    assert report.result is ReportResult.PASSED
    assert report.uut is not None and "marginal" in (report.uut.comment or "")
    assert _step(report, "trim").status is StepStatus.PASSED
    assert "marginal pass" in (_step(report, "vref").report_text or "")
    assert any("marginal" in w for w in result.warnings)


def test_phase_outcomes_and_exceptions_are_carried_over(tmp_path: Path) -> None:
    phases = [
        _phase("skipped", {}, outcome="SKIP", result={"phase_result": "SKIP"}),
        _phase(
            "crashed",
            {},
            outcome="ERROR",
            result={
                "phase_result": {
                    "exc_type": "<class 'ValueError'>",
                    "exc_val": "boom",
                    "exc_tb": "Traceback ...",
                }
            },
        ),
    ]
    report, _ = _report(_write(tmp_path, _record(outcome="ERROR", phases=phases)))
    skipped, crashed = _step(report, "skipped"), _step(report, "crashed")
    assert skipped.status is StepStatus.SKIPPED
    assert "phase result: SKIP" in (skipped.report_text or "")
    assert (crashed.status, crashed.error_message) == (StepStatus.ERROR, "ValueError: boom")


@pytest.mark.parametrize(
    ("validator", "comp_op", "low", "high"),
    [
        ("0 <= x", CompOp.GE, 0, None),
        ("x <= 5.5", CompOp.LE, 5.5, None),  # single-limit operators use lowLimit
        ("x == 3", CompOp.EQ, 3, None),
        ("1 <= Marginal:2 <= x <= Marginal:8 <= 9", CompOp.GELE, 1, 9),
        ("-1e-05 <= x <= 0.0001", CompOp.GELE, -1e-05, 0.0001),
        ("'x' is within 10% of 50. Marginal: None% of 50", CompOp.GELE, 45, 55),
        ("<function my_check at 0x7f>", CompOp.LOG, None, None),
    ],
)
def test_numeric_validator_texts_become_comp_op_and_limits(
    tmp_path: Path, validator: str, comp_op: CompOp, low: float | None, high: float | None
) -> None:
    phase = _phase("p", _measure("m", 3, validators=[validator], units={"suffix": "V"}))
    report, _ = _report(_write(tmp_path, _record(phases=[phase])))
    step = _step(report, "m")
    assert isinstance(step, NumericLimitStep) and step.numeric_meas
    meas = step.numeric_meas[0]
    assert (meas.comp_op, meas.low_limit, meas.high_limit, meas.unit) == (comp_op, low, high, "V")
    assert validator in (step.report_text or "")


@pytest.mark.parametrize(
    ("validator", "comp_op", "limit"),
    [
        ("'x' matches /^Hello\\ World\\!$/", CompOp.CASESENSIT, "Hello World!"),
        ("'x' matches /^Hello World!$/", CompOp.CASESENSIT, "Hello World!"),
        ("'x' matches /^[A-Z]+ \\w+!$/", CompOp.LOG, None),
        ("'x' is equal to 'Hello World!'", CompOp.CASESENSIT, "Hello World!"),
    ],
)
def test_string_validator_texts_become_case_sensitive_limits_or_log(
    tmp_path: Path, validator: str, comp_op: CompOp, limit: str | None
) -> None:
    phase = _phase("p", _measure("greeting", "Hello World!", validators=[validator]))
    report, _ = _report(_write(tmp_path, _record(phases=[phase])))
    step = _step(report, "greeting")
    assert isinstance(step, StringValueStep) and step.string_meas
    assert (step.string_meas[0].comp_op, step.string_meas[0].limit) == (comp_op, limit)


def test_every_measurement_kind_becomes_its_step_type_with_the_stated_status(
    tmp_path: Path,
) -> None:
    measurements = {
        **_measure("lid_closed", True),
        **_measure("never_taken", None, outcome="UNSET", units={"suffix": "mA"}),
        **_measure("ripple", [0.1, 0.2, 0.9], outcome="FAIL", validators=["0 <= x <= 0.5"]),
        **_measure("config", {"mode": "fast", "gain": [1, 2]}),
        **_measure("not_a_number", float("nan")),
        **_measure("labels", [["ch1", 1.5], ["ch2", 2.5]], dimensions=[{"name": "channel"}]),
    }
    report, _ = _report(_write(tmp_path, _record(phases=[_phase("p", measurements)])))
    lid = _step(report, "lid_closed")
    assert isinstance(lid, PassFailStep) and lid.boolean_meas
    assert (lid.step_type, lid.boolean_meas[0].value) == ("ET_PFT", True)
    unset = _step(report, "never_taken")
    assert isinstance(unset, NumericLimitStep) and unset.numeric_meas
    assert (unset.status, unset.numeric_meas[0].value) == (StepStatus.SKIPPED, None)
    ripple = _step(report, "ripple")
    assert isinstance(ripple, MultiNumericLimitStep) and ripple.numeric_meas
    assert [m.name for m in ripple.numeric_meas] == ["ripple[0]", "ripple[1]", "ripple[2]"]
    assert [m.value for m in ripple.numeric_meas] == [0.1, 0.2, 0.9]
    assert ripple.status is StepStatus.FAILED
    assert {(m.comp_op, m.low_limit, m.high_limit) for m in ripple.numeric_meas} == {
        (CompOp.GELE, 0, 0.5)
    }
    config = _step(report, "config")
    assert isinstance(config, StringValueStep) and config.string_meas
    assert json.loads(config.string_meas[0].value or "") == {"mode": "fast", "gain": [1, 2]}
    nan = _step(report, "not_a_number")
    assert isinstance(nan, NumericLimitStep) and nan.numeric_meas
    assert nan.numeric_meas[0].value is None and "nan" in (nan.report_text or "").lower()
    labels = _step(report, "labels")
    assert isinstance(labels, GenericStep) and labels.attachment is not None
    assert labels.attachment.payload().decode() == "channel,value\nch1,1.5\nch2,2.5\n"
    json.dumps(dump_report(report), allow_nan=False)  # nothing WATS cannot read


def test_phase_attachments_become_report_binary_data(tmp_path: Path) -> None:
    payload = b"\x89PNG fake image bytes"
    attachments = {
        "scope.png": {
            "data": base64.b64encode(payload).decode(),
            "mimetype": "image/png",
            "sha1": hashlib.sha1(payload).hexdigest(),
        },
        "big.bin": {"mimetype": "application/octet-stream", "sha1": "00"},
    }
    phase = _phase("capture", {}, attachments=attachments)
    report, result = _report(_write(tmp_path, _record(phases=[phase])), part_number="P")
    [binary] = report.binary_data
    assert (binary.name, binary.content_type, binary.payload()) == (
        "capture/scope.png",
        "image/png",
        payload,
    )
    assert any("big.bin" in w and "no inline data" in w for w in result.warnings)


def test_local_time_zone_argument_gives_the_station_offset(tmp_path: Path) -> None:
    report, _ = _report(_write(tmp_path, _record()), time_zone="local")
    assert report.start.utcoffset() == timedelta(hours=2)  # the context clock's offset
    assert report.start == datetime(2026, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))


def test_attach_log_adds_the_log_lines_as_text(tmp_path: Path) -> None:
    logs = [
        {
            "level": 20,
            "logger_name": "openhtf.test",
            "timestamp_millis": 1767225601000,
            "message": "Starting",
        }
    ]
    report, _ = _report(_write(tmp_path, _record(log_records=logs)), attach_log=True)
    [log] = report.binary_data
    assert log.name == "openhtf-log.txt"
    assert log.payload().decode() == "2026-01-01T00:00:01.000+00:00 INFO openhtf.test: Starting\n"


def test_phases_of_a_subtest_nest_in_a_sequence_with_the_subtest_outcome(tmp_path: Path) -> None:
    phases = [
        _phase("setup", {}),
        _phase("rail_a", {}, subtest_name="rails", outcome="FAIL"),
        _phase("rail_b", {}, subtest_name="rails", outcome="SKIP"),
    ]
    subtests = [{"name": "rails", "outcome": "FAIL", "start_time_millis": 1767225601000}]
    record = _record(outcome="FAIL", phases=phases, subtests=subtests)
    report, _ = _report(_write(tmp_path, record))
    assert [p.name for p in _phases(report)] == ["setup", "rails"]
    rails = _step(report, "rails")
    assert isinstance(rails, SequenceCallStep) and rails.status is StepStatus.FAILED
    assert [s.name for s in rails.steps] == ["rail_a", "rail_b"]


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ([1, 2, 3], "expected a JSON object"),
        ({"type": "T", "pn": "A"}, "missing dut_id, outcome, phases"),
        (_record(dut_id="A/B"), "serial number (dut_id) 'A/B' contains characters WATS refuses"),
        (_record(dut_id="x" * 101), "serial number (dut_id) 'xxx"),
        (_record(outcome=None), "outcome"),
        (_record(phases={"a": 1}), "phases: expected a JSON list"),
        (_record(phases=[_phase("p", {"m": 5})]), "phases[0].measurements.m"),
        (_record(start_time_millis="yesterday"), "start_time_millis"),
        (_record(start_time_millis=1e300), "start_time_millis"),
    ],
)
def test_unreadable_records_fail_with_a_reason(tmp_path: Path, record: Any, reason: str) -> None:
    result = _convert(_write(tmp_path, record))
    assert not result.success
    assert reason in result.message


def test_validate_judges_a_large_record_by_the_keys_in_its_head(tmp_path: Path) -> None:
    logs = [{"level": 10, "message": "x" * 200, "timestamp_millis": 0}] * 12_000
    big = _write(
        tmp_path, {"code_info": {}, "dut_id": "A", "end_time_millis": 1, "log_records": logs}
    )
    assert big.stat().st_size > 2 * 1024 * 1024
    assert OpenHTFConverter().validate(ConverterSource(big), _context()) >= 0.9
    other = _write(tmp_path, {"type": "T", "pn": "A", "steps": logs}, "wsjf.json")
    assert OpenHTFConverter().validate(ConverterSource(other), _context()) <= 0.1


# --- hostile input: always a clean result, never an exception or a hang --------------------


def _assert_clean(path: Path) -> None:
    result = _convert(path)
    assert isinstance(result, ConverterResult)
    if result.success:
        for report in result.reports:
            parse_report(dump_report(report))
            report_to_json(report)
    else:
        assert result.message


@pytest.mark.timeout(10)
def test_truncated_records_fail_cleanly(samples_dir: Path, tmp_path: Path) -> None:
    data = (samples_dir / "openhtf" / MEASUREMENTS).read_bytes()
    for cut in (1, 2, 17, 100, 1000, len(data) // 2, len(data) - 2):
        path = tmp_path / f"cut{cut}.json"
        path.write_bytes(data[:cut])
        result = _convert(path)
        assert not result.success and result.message, cut
        assert 0.0 <= OpenHTFConverter().validate(ConverterSource(path), _context()) <= 0.1


@pytest.mark.timeout(10)
def test_randomly_mutated_records_give_a_clean_result(samples_dir: Path, tmp_path: Path) -> None:
    data = (samples_dir / "openhtf" / MEASUREMENTS).read_bytes()
    rng = random.Random(20240605)
    alphabet = b'{}[]",:0123456789.-eE truefalsnu\\\x00\xff'
    for case in range(50):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.choice(alphabet)
        path = tmp_path / f"mutated{case}.json"
        path.write_bytes(bytes(mutated))
        _assert_clean(path)


@pytest.mark.timeout(10)
def test_structurally_mutated_records_give_a_clean_result(
    samples_dir: Path, tmp_path: Path
) -> None:
    """Valid JSON with values swapped for other types: the converter's own checks, not the
    JSON parser, must catch these."""
    record = json.loads((samples_dir / "openhtf" / MEASUREMENTS).read_text(encoding="utf-8"))
    rng = random.Random(7)
    odd_values: list[Any] = [None, 0, -1, 1e308, "", "x", [], {}, [[]], True, [None], {"": []}]

    def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        found = [prefix] if prefix else []
        items = (
            node.items()
            if isinstance(node, dict)
            else enumerate(node)
            if isinstance(node, list)
            else ()
        )
        for key, child in items:
            found += paths(child, (*prefix, key))
        return found

    every = paths({k: v for k, v in record.items() if k != "log_records"})
    for case in range(40):
        copy = json.loads(json.dumps(record))
        *parents, leaf = rng.choice(every)
        node = copy
        for key in parents:
            node = node[key]
        node[leaf] = rng.choice(odd_values)
        _assert_clean(_write(tmp_path, copy, f"odd{case}.json"))


@pytest.mark.timeout(10)
def test_other_formats_empty_and_garbage_files_fail_cleanly(
    samples_dir: Path, tmp_path: Path
) -> None:
    others = [p for p in samples_dir.rglob("*") if p.is_file() and p.parent.name != "openhtf"]
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(bytes(random.Random(3).randrange(256) for _ in range(4096)))
    for path in [*others, empty, garbage]:
        result = _convert(path)
        assert not result.success and result.message, path.name


@pytest.mark.timeout(10)
def test_deeply_nested_input_fails_or_converts_cleanly(tmp_path: Path) -> None:
    deep_file = tmp_path / "deep.json"
    deep_file.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    result = _convert(deep_file)
    assert not result.success and "nested" in result.message
    assert OpenHTFConverter().validate(ConverterSource(deep_file), _context()) == 0.0

    nested: Any = 1.0
    for _ in range(900):  # just inside json's own limit: the converter must cope
        nested = [nested]
    record = _record(phases=[_phase("p", _measure("m", nested))])
    _assert_clean(_write(tmp_path, record, "deep-value.json"))


# -- WATS-required header fields the record leaves empty (wats.converters.defaults) ----------


def test_a_missing_part_number_takes_the_built_in_default_and_lowers_confidence(
    tmp_path: Path,
) -> None:
    record = _record(metadata={"revision": "B", "process_code": 30})
    report, result = _report(_write(tmp_path, record))
    assert report.pn == "UNKNOWN"
    assert result.warnings == [
        "the file names no part number (metadata); using 'UNKNOWN' "
        "(the built-in default of argument default_part_number)"
    ]
    assert result.confidence == pytest.approx(0.8)


@pytest.mark.parametrize("name", ["default_part_number", "part_number"])
def test_an_explicit_default_part_number_is_used_under_its_new_and_old_name(
    tmp_path: Path, name: str
) -> None:
    record = _record(metadata={"revision": "B", "process_code": 30})
    arguments = OpenHTFConverter.parse_arguments({name: "PCBA-5"})
    context = ConverterContext(station=STATION, arguments=arguments, clock=_context().clock)
    result = OpenHTFConverter().convert(ConverterSource(_write(tmp_path, record)), context)
    [report] = result.reports
    assert report.pn == "PCBA-5"
    assert (result.warnings, result.confidence) == ([], 1.0)


def test_a_part_number_wats_refuses_still_fails_naming_the_field(tmp_path: Path) -> None:
    result = _convert(_write(tmp_path, _record(metadata={"part_number": "PCB%1"})))
    assert not result.success
    assert "part number (metadata) 'PCB%1' contains characters WATS refuses (%)" in result.message


def test_an_empty_dut_id_takes_the_default_serial_below_the_alarm_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _record(dut_id=""))
    report, result = _report(path)
    assert report.sn == "UNKNOWN" and result.confidence <= 0.4
    assert any("no serial number (dut_id)" in w for w in result.warnings)
    report, _ = _report(path, default_serial_number="NO-DUT")
    assert report.sn == "NO-DUT"


@pytest.mark.parametrize(
    "arguments", [{"part_number": "A!"}, {"default_revision": " "}, {"default_serial_number": "/"}]
)
def test_defaults_wats_would_refuse_are_config_errors(arguments: dict[str, str]) -> None:
    with pytest.raises(ConverterArgumentsError, match=f"arguments.{next(iter(arguments))}"):
        OpenHTFConverter.parse_arguments(arguments)
