"""The configurable CSV converter on the layouts sites write: comma with a ``Key: value`` header
block, semicolon with decimal commas, tab without a header block (serial from the file name),
UTF-16 exports; its argument checks, its refusals, and fuzzed input.

Expected values are read off the files below by hand, never computed by the converter's code.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import owned_sample_files
from wats.api.models import (
    GenericStep,
    NumericLimitStep,
    PassFailStep,
    ReportResult,
    SequenceCallStep,
    StringValueStep,
    UUTReport,
    dump_report,
    parse_report,
)
from wats.api.station import Station
from wats.cli.report_tree import format_report_tree
from wats.converters import (
    ConverterArgumentsError,
    ConverterContext,
    ConverterResult,
    ConverterSource,
    ReferenceLookup,
)
from wats.converters.builtin.csv_table import CSVArguments, CSVConverter

PLUS_ONE = timezone(timedelta(hours=1))
STATION = Station(name="FCT-01", location="Plant 1 / Line 4", purpose="Production")
PROCESSES = ReferenceLookup(
    [{"code": 50, "name": "PCBA test"}, {"code": 100, "name": "Final Function"}]
)


def _context(**arguments: Any) -> ConverterContext:
    return ConverterContext(
        station=STATION,
        arguments=CSVConverter.parse_arguments(arguments),
        reference=PROCESSES,
        clock=lambda: datetime(2024, 6, 1, 12, 0, tzinfo=PLUS_ONE),
    )


def _write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def _convert(path: Path, **arguments: Any) -> ConverterResult:
    return CSVConverter().convert(ConverterSource(path), _context(**arguments))


def _report(path: Path, **arguments: Any) -> tuple[UUTReport, ConverterResult]:
    result = _convert(path, **arguments)
    assert result.success, result.message
    [report] = result.reports
    assert isinstance(report, UUTReport)
    # Valid under the wats.api models, through the wire format and back.
    assert parse_report(dump_report(report)) == report
    return report, result


def _steps(report: UUTReport) -> list[Any]:
    assert report.root is not None
    found: list[Any] = []
    pending = list(report.root.steps)
    while pending:
        step = pending.pop(0)
        found.append(step)
        if isinstance(step, SequenceCallStep):
            pending[0:0] = step.steps
    return found


def _step(report: UUTReport, name: str) -> Any:
    return next(step for step in _steps(report) if step.name == name)


def _kinds(report: UUTReport) -> Counter[str]:
    return Counter(step.step_type for step in _steps(report))


# An in-circuit tester's export: a title, "Key: value" / "key,value" / "key=value" header lines
# (one padded by a spreadsheet), a status column, a footer with the result and end time.
ICT_COMMA = """\
ICT Results export
Serial Number: SN-1001
Part Number,PCBA-200,,,,,
Revision=B
Operator: Alice Example
Start Time: 2024-03-05T14:02:11+01:00
Operation: PCBA test
Fixture: FX-7
Socket: 2
Batch: LOT-42
Firmware: 1.4.2

Name,Value,Unit,Low,High,Status,Duration
VCC,3.31,V,3.2,3.4,PASS,0.25
Current,0.72,A,0.4,0.6,FAIL,0.5
Leakage,12.5,uA,,50,PASS,0.1
Boot,PASS,,,,,1.5
FW version,1.4.2,,1.4.2,,PASS,
Visual inspection,,,,,SKIPPED,
-----
Result: FAIL
End Time: 2024-03-05T14:02:41+01:00
"""

# A power-supply tester in a German-locale plant: semicolons, decimal commas, a CompOp and a
# Sequence column, no status column, the date and the time of day on separate lines.
PSU_SEMICOLON = """\
Serial;SN-2002
Part;PSU-9
Rev;3
Operator;Bernd Beispiel
Date;05.03.2024
Time;09:15:00
Station;FCT-LINE2
Step;Measurement;Unit;Min;Max;CompOp;Sequence
Output voltage;12,05;V;11,9;12,1;GELE;Power
Ripple;35,2;mV;;50;LT;Power
Efficiency;0,91;;0,88;;GE;Power
Fan speed;2480;rpm;;;LOG;Cooling
Temperature;41,5;°C;20;45;GELT;Cooling
"""
PSU_ARGUMENTS = {"time_format": "%d.%m.%Y %H:%M:%S"}

# A bench logger: tab-separated, no header block at all; serial and start time are in the file
# name, the part number comes from the config.
BENCH_TAB = (
    "Test\tResult\tUnits\tLowLimit\tHighLimit\tPass/Fail\n"
    "Supply current\t0.120\tA\t0.1\t0.2\tPassed\n"
    "Clock frequency\t1.0E6\tHz\t9.9e5\t1.01e6\tPassed\n"
    "Self test\tFALSE\t\t\t\tFailed\n"
)
BENCH_NAME = "SN-3003_20240305-101500.tsv"
BENCH_ARGUMENTS = {
    "file_name_pattern": r"^(?P<serial>[^_]+)_(?P<start_time>\d{8}-\d{6})",
    "time_format": "%Y%m%d-%H%M%S",
    "default_part_number": "BENCH-1",
}


# -- the comma layout ---------------------------------------------------------------------------


def test_comma_file_header_block_maps_onto_the_report_header(tmp_path: Path) -> None:
    report, result = _report(_write(tmp_path, "ict.csv", ICT_COMMA))
    assert (report.sn, report.pn, report.rev) == ("SN-1001", "PCBA-200", "B")
    assert report.start == datetime(2024, 3, 5, 14, 2, 11, tzinfo=PLUS_ONE)
    assert report.start.utcoffset() == timedelta(hours=1)
    assert report.uut is not None
    assert report.uut.user == "Alice Example"
    assert (report.uut.fixture_id, report.uut.test_socket_index) == ("FX-7", 2)
    assert report.uut.batch_sn == "LOT-42"
    assert report.uut.exec_time == 30.0  # 14:02:11 to 14:02:41
    assert report.process_code == 50  # "PCBA test" in the server's process list
    assert report.result is ReportResult.FAILED  # the footer's "Result: FAIL"
    assert report.machine_name == "FCT-01"  # the file names no station
    assert [(m.description, m.text) for m in report.misc_infos] == [("Firmware", "1.4.2")]
    assert result.confidence == 1.0


def test_comma_file_rows_become_numeric_pass_fail_string_and_action_steps(tmp_path: Path) -> None:
    report, _ = _report(_write(tmp_path, "ict.csv", ICT_COMMA))
    assert _kinds(report) == {"ET_NLT": 3, "ET_PFT": 1, "ET_SVT": 1, "Action": 1}
    vcc = _step(report, "VCC")
    assert isinstance(vcc, NumericLimitStep)
    [meas] = vcc.numeric_meas or []
    assert (meas.value, meas.unit, meas.low_limit, meas.high_limit) == (3.31, "V", 3.2, 3.4)
    assert (meas.comp_op.value, meas.status.value, vcc.status.value) == ("GELE", "P", "P")
    assert vcc.tot_time == 0.25
    current = _step(report, "Current")
    [meas] = current.numeric_meas
    assert (meas.value, meas.unit, meas.low_limit, meas.high_limit) == (0.72, "A", 0.4, 0.6)
    assert (meas.comp_op.value, current.status.value) == ("GELE", "F")


def test_a_lone_high_limit_is_a_le_comparison_against_low_limit(tmp_path: Path) -> None:
    report, _ = _report(_write(tmp_path, "ict.csv", ICT_COMMA))
    [meas] = _step(report, "Leakage").numeric_meas
    # WATS compares single-limit operators with lowLimit, so the High cell (50) goes there.
    assert (meas.value, meas.unit, meas.comp_op.value) == (12.5, "uA", "LE")
    assert (meas.low_limit, meas.high_limit) == (50.0, None)


def test_pass_string_and_empty_value_rows_keep_their_recorded_status(tmp_path: Path) -> None:
    report, _ = _report(_write(tmp_path, "ict.csv", ICT_COMMA))
    boot = _step(report, "Boot")
    assert isinstance(boot, PassFailStep)
    assert [(m.value, m.status.value) for m in boot.boolean_meas or []] == [(True, "P")]
    firmware = _step(report, "FW version")
    assert isinstance(firmware, StringValueStep)
    [meas] = firmware.string_meas or []
    assert (meas.value, meas.limit, meas.comp_op.value, meas.status.value) == (
        "1.4.2", "1.4.2", "CASESENSIT", "P",
    )  # fmt: skip
    visual = _step(report, "Visual inspection")
    assert isinstance(visual, GenericStep)
    assert visual.status.value == "S"


# -- the semicolon layout with decimal commas ---------------------------------------------------


def test_semicolon_file_reads_decimal_commas_and_comp_op_column(tmp_path: Path) -> None:
    report, _ = _report(_write(tmp_path, "psu.csv", PSU_SEMICOLON), **PSU_ARGUMENTS)
    assert (report.sn, report.pn, report.rev) == ("SN-2002", "PSU-9", "3")
    assert report.uut is not None and report.uut.user == "Bernd Beispiel"
    assert report.machine_name == "FCT-LINE2"
    assert report.result is ReportResult.PASSED
    [volts] = _step(report, "Output voltage").numeric_meas
    assert (volts.value, volts.unit, volts.low_limit, volts.high_limit) == (12.05, "V", 11.9, 12.1)
    assert volts.comp_op.value == "GELE"
    [ripple] = _step(report, "Ripple").numeric_meas
    assert (ripple.value, ripple.unit, ripple.comp_op.value, ripple.low_limit) == (
        35.2, "mV", "LT", 50.0,
    )  # fmt: skip
    [temperature] = _step(report, "Temperature").numeric_meas
    assert (temperature.value, temperature.unit, temperature.comp_op.value) == (41.5, "°C", "GELT")
    [fan] = _step(report, "Fan speed").numeric_meas
    assert (fan.value, fan.comp_op.value, fan.low_limit) == (2480.0, "LOG", None)


def test_sequence_column_groups_rows_into_sequence_calls(tmp_path: Path) -> None:
    report, _ = _report(_write(tmp_path, "psu.csv", PSU_SEMICOLON), **PSU_ARGUMENTS)
    assert report.root is not None
    sequences = [(s.name, [c.name for c in s.steps]) for s in report.root.steps]
    assert sequences == [
        ("Power", ["Output voltage", "Ripple", "Efficiency"]),
        ("Cooling", ["Fan speed", "Temperature"]),
    ]
    assert all(isinstance(s, SequenceCallStep) for s in report.root.steps)
    assert _kinds(report) == {"SequenceCall": 2, "ET_NLT": 5}


def test_start_time_without_offset_takes_the_local_offset_and_says_so(tmp_path: Path) -> None:
    report, result = _report(_write(tmp_path, "psu.csv", PSU_SEMICOLON), **PSU_ARGUMENTS)
    # "Date;05.03.2024" and "Time;09:15:00", local time of the context's clock (+01:00).
    assert report.start == datetime(2024, 3, 5, 9, 15, tzinfo=PLUS_ONE)
    assert report.start.utcoffset() == timedelta(hours=1)
    assert any("no UTC offset" in warning for warning in result.warnings)
    assert 0.8 <= result.confidence < 1.0


def test_decimal_point_setting_refuses_decimal_commas_with_a_hint(tmp_path: Path) -> None:
    path = _write(tmp_path, "psu.csv", PSU_SEMICOLON)
    result = _convert(path, decimal=".", **PSU_ARGUMENTS)
    assert not result.success
    assert "line 9" in result.message and "'Measurement'" in result.message
    assert "decimal" in result.message


# -- the tab layout without a header block ------------------------------------------------------


def test_tab_file_without_header_block_takes_serial_and_start_from_the_file_name(
    tmp_path: Path,
) -> None:
    report, _ = _report(_write(tmp_path, BENCH_NAME, BENCH_TAB), **BENCH_ARGUMENTS)
    assert (report.sn, report.pn, report.rev) == ("SN-3003", "BENCH-1", "1")
    assert report.start == datetime(2024, 3, 5, 10, 15, tzinfo=PLUS_ONE)
    assert report.result is ReportResult.FAILED
    assert _kinds(report) == {"ET_NLT": 2, "ET_PFT": 1}
    [clock] = _step(report, "Clock frequency").numeric_meas
    assert (clock.value, clock.unit, clock.low_limit, clock.high_limit) == (
        1.0e6, "Hz", 9.9e5, 1.01e6,
    )  # fmt: skip
    self_test = _step(report, "Self test")
    assert [(m.value, m.status.value) for m in self_test.boolean_meas] == [(False, "F")]


def test_utf16_export_reads_like_its_utf8_twin(tmp_path: Path) -> None:
    utf8, _ = _report(_write(tmp_path, BENCH_NAME, BENCH_TAB), **BENCH_ARGUMENTS)
    (tmp_path / "utf16").mkdir()
    utf16_path = _write(tmp_path / "utf16", BENCH_NAME, BENCH_TAB.encode("utf-16"))
    utf16, _ = _report(utf16_path, **BENCH_ARGUMENTS)
    assert [s.model_dump() for s in _steps(utf16)] == [s.model_dump() for s in _steps(utf8)]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_every_candidate_delimiter_is_detected(tmp_path: Path, delimiter: str) -> None:
    lines = [
        ["Serial", "SN-9"],
        ["Part", "P-9"],
        ["Start", "2024-03-05T08:00:00Z"],
        ["Name", "Value", "Low", "High"],
        ["VCC", "3.3", "3", "3.6"],
    ]
    text = "\n".join(delimiter.join(cells) for cells in lines) + "\n"
    report, _ = _report(_write(tmp_path, "d.txt", text))
    [meas] = _step(report, "VCC").numeric_meas
    assert (report.sn, meas.value, meas.low_limit, meas.high_limit) == ("SN-9", 3.3, 3.0, 3.6)
    assert report.start.utcoffset() == timedelta(0)


# -- statuses are the station's ----------------------------------------------------------------


def test_recorded_status_wins_over_the_limits_with_a_warning(tmp_path: Path) -> None:
    text = "Serial: S1\nPart: P1\nStart: 2024-03-05T08:00:00+01:00\n"
    text += "Name,Value,Low,High,Status\nVCC,3.31,3.2,3.4,FAIL\n"
    report, result = _report(_write(tmp_path, "s.csv", text))
    assert _step(report, "VCC").status.value == "F"
    assert report.result is ReportResult.FAILED
    assert any("line 5" in w and "recorded status is kept" in w for w in result.warnings)


def test_header_result_wins_over_the_steps_with_a_warning(tmp_path: Path) -> None:
    text = "Serial: S1\nPart: P1\nResult: PASS\nStart: 2024-03-05T08:00:00+01:00\n"
    text += "Name,Value,Low,High\nVCC,9.9,3.2,3.4\n"
    report, result = _report(_write(tmp_path, "s.csv", text))
    assert _step(report, "VCC").status.value == "F"
    assert report.result is ReportResult.PASSED
    assert any("header says the unit passed" in w for w in result.warnings)


def test_status_words_map_to_wats_statuses(tmp_path: Path) -> None:
    rows = ["A,1,OK", "B,1,NG", "C,1,Error", "D,1,Aborted", "E,1,Done", "F,1,n/a"]
    text = "Serial: S1\nPart: P1\nStart: 2024-03-05T08:00:00Z\nName,Value,Status\n"
    report, _ = _report(_write(tmp_path, "s.csv", text + "\n".join(rows)))
    assert [s.status.value for s in _steps(report)] == ["P", "F", "E", "T", "D", "S"]
    assert report.result is ReportResult.TERMINATED


# -- header fields -------------------------------------------------------------------------------


def test_process_is_looked_up_by_name_or_taken_as_a_number(tmp_path: Path) -> None:
    body = "Start: 2024-03-05T08:00:00Z\nName,Value\nA,1\n"
    by_name, _ = _report(
        _write(tmp_path, "a.csv", f"SN: 1\nPN: P\nOperation: Final Function\n{body}")
    )
    assert by_name.process_code == 100
    by_code, _ = _report(_write(tmp_path, "b.csv", f"SN: 1\nPN: P\nProcess: 30\n{body}"))
    assert by_code.process_code == 30


def test_unknown_process_name_falls_back_to_the_argument_with_a_warning(tmp_path: Path) -> None:
    text = "SN: 1\nPN: P\nOperation: Hipot\nStart: 2024-03-05T08:00:00Z\nName,Value\nA,1\n"
    report, result = _report(_write(tmp_path, "a.csv", text), process_code=20)
    assert report.process_code == 20
    assert any("'Hipot'" in w and "20" in w for w in result.warnings)


def test_missing_start_time_uses_the_clock_and_lowers_confidence(tmp_path: Path) -> None:
    report, result = _report(_write(tmp_path, "a.csv", "SN: 1\nPN: P\nName,Value\nA,1\n"))
    assert report.start == datetime(2024, 6, 1, 12, 0, tzinfo=PLUS_ONE)
    assert result.confidence <= 0.8
    assert any("no start time" in w for w in result.warnings)


def test_custom_column_and_header_spellings_are_honoured(tmp_path: Path) -> None:
    text = (
        "Seriennummer: DE-1\nSachnummer: SACH-7\nStartzeit: 2024-03-05T08:00:00+01:00\n"
        "Prüfschritt;Messwert;Einheit;Untergrenze;Obergrenze;Urteil\n"
        "Spannung;5,02;V;4,9;5,1;i.O.\n"
    )
    arguments = {
        "columns": {
            "name": "Prüfschritt",
            "value": "Messwert",
            "unit": "Einheit",
            "low": "Untergrenze",
            "high": "Obergrenze",
            "status": "Urteil",
        },
        "header": {"serial": "Seriennummer", "part": "Sachnummer", "start_time": "Startzeit"},
    }
    # "i.O." (in Ordnung) is not a status word: the error names line and column.
    result = _convert(_write(tmp_path, "de.csv", text), **arguments)
    assert not result.success
    assert "line 5, column 'Urteil'" in result.message and "'i.O.'" in result.message
    report, _ = _report(_write(tmp_path, "de.csv", text.replace("i.O.", "OK")), **arguments)
    [meas] = _step(report, "Spannung").numeric_meas
    assert (report.sn, report.pn, meas.value, meas.unit, meas.high_limit) == (
        "DE-1", "SACH-7", 5.02, "V", 5.1,
    )  # fmt: skip


# -- the documentation's worked example -----------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "converters" / "csv.md"


def _fenced_blocks(markdown: str, after: str) -> list[str]:
    section = markdown[markdown.index(after) :]
    parts = section.split("```")
    return [parts[i].split("\n", 1)[1] for i in range(1, len(parts), 2)]


def test_docs_worked_example_converts_to_the_step_tree_shown(tmp_path: Path) -> None:
    blocks = _fenced_blocks(DOCS.read_text(encoding="utf-8"), "## Worked example")
    source, tree = blocks[0], next(b for b in blocks if b.startswith("UUT test report"))
    report, result = _report(_write(tmp_path, "ict-SN-1001.csv", source))
    assert result.warnings == []
    assert (report.sn, report.pn, report.rev, report.process_code) == (
        "SN-1001",
        "PCBA-200",
        "B",
        50,
    )
    shown = [line.strip() for line in tree.splitlines() if line.strip().startswith("- [")]
    produced = [
        line.strip()
        for line in format_report_tree(report).splitlines()
        if line.strip().startswith("- [")
    ]
    assert produced == shown


# -- refusals name the line and the column ------------------------------------------------------

HEAD = "Serial: S1\nPart: P1\nStart: 2024-03-05T08:00:00Z\n"

REFUSALS = {
    "bad limit": (HEAD + "Name,Value,Low,High\nVCC,3.3,abc,3.4\n", ["line 5", "'Low'", "'abc'"]),
    "bad status": (HEAD + "Name,Value,Status\nVCC,3.3,MAYBE\n", ["line 5", "'Status'", "MAYBE"]),
    "bad compop": (HEAD + "Name,Value,CompOp\nVCC,3.3,ABOUT\n", ["line 5", "'CompOp'", "ABOUT"]),
    "text with limits": (HEAD + "Name,Value,Low\nVCC,OVL,3\n", ["line 5", "'Value'", "OVL"]),
    "no name": (HEAD + "Name,Value\n,3.3\n", ["line 5", "'Name'", "empty"]),
    "no data rows": (HEAD + "Name,Value\n", ["line 4", "no data rows"]),
    "no table": ("Serial: S1\nsome notes\n", ["no results table", "step-name column"]),
    "long part": (
        "Serial: S1\nPart: " + "P" * 101 + "\nName,Value\nA,1\n",
        ["line 2", "WATS allows 100"],
    ),
    "long revision": (
        "Serial: S1\nPart: P\nRev: " + "R" * 101 + "\nName,Value\nA,1\n",
        ["revision (line 3, header key 'Rev')", "WATS allows 100"],
    ),
    "bad serial": ("Serial: S/1\nPart: P\nName,Value\nA,1\n", ["line 1", "'S/1'", "/"]),
    "bad time": (
        "Serial: S\nPart: P\nStart: 5th March\nName,Value\nA,1\n",
        ["line 3", "'Start'", "time_format"],
    ),
    "missing limit for compop": (
        HEAD + "Name,Value,CompOp\nVCC,3.3,GELE\n",
        ["line 5", "needs lowLimit"],
    ),
    "string op on number": (HEAD + "Name,Value,CompOp\nV,3,IGNORECASE\n", ["line 5", "strings"]),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_unreadable_input_fails_cleanly_naming_where(tmp_path: Path, case: str) -> None:
    text, fragments = REFUSALS[case]
    result = _convert(_write(tmp_path, "bad.csv", text))
    assert not result.success
    for fragment in fragments:
        assert fragment in result.message


# -- arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [
        ({"decimal": ",", "delimiter": ","}, "decimal ','"),
        ({"colums": {}}, "arguments.colums: unknown argument"),
        ({"columns": {"valeu": "X"}}, "arguments.columns.valeu"),
        ({"columns": {"value": []}}, "at least one"),
        ({"encoding": "klingon"}, "unknown text encoding"),
        ({"delimiter": "ab"}, "one punctuation character"),
        ({"time_format": "dd.mm.yyyy"}, "strptime"),
        ({"file_name_pattern": "(?P<serail>.*)"}, "serail"),
        ({"file_name_pattern": "(unclosed"}, "not a regular expression"),
        ({"default_comp_op": "ABOUT"}, "default_comp_op"),
    ],
)
def test_bad_arguments_are_refused_naming_the_argument(
    arguments: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(ConverterArgumentsError) as caught:
        CSVConverter.parse_arguments(arguments)
    assert fragment in str(caught.value)


def test_arguments_accept_single_spellings_and_tab() -> None:
    args = CSVConverter.parse_arguments({"columns": {"value": "Meas"}, "delimiter": "tab"})
    assert isinstance(args, CSVArguments)
    assert args.columns.value == ("Meas",)
    assert args.delimiter == "\t"
    assert args.columns.name[0] == "Name"  # other fields keep their defaults


# -- validate ----------------------------------------------------------------------------------


def _confidence(path: Path, **arguments: Any) -> float:
    return CSVConverter().validate(ConverterSource(path), _context(**arguments))


def test_validate_ranks_own_layouts_high(tmp_path: Path) -> None:
    assert _confidence(_write(tmp_path, "ict.csv", ICT_COMMA)) == 0.9
    assert _confidence(_write(tmp_path, "psu.csv", PSU_SEMICOLON)) == 0.9
    assert 0.7 <= _confidence(_write(tmp_path, BENCH_NAME, BENCH_TAB)) <= 0.9
    utf16 = _write(tmp_path, "u16.txt", BENCH_TAB.encode("utf-16"))
    assert 0.7 <= _confidence(utf16) <= 0.9


def test_validate_ranks_text_without_a_table_low(tmp_path: Path) -> None:
    assert _confidence(_write(tmp_path, "notes.txt", "Serial: 1\nall fine today\n")) <= 0.1
    assert _confidence(_write(tmp_path, "empty.csv", "")) == 0.0
    assert _confidence(_write(tmp_path, "x.csv", bytes(range(256)) * 8)) == 0.0


def _other_samples(samples_dir: Path) -> list[Path]:
    """The samples of the formats other built-in converters own. Formats with no converter yet
    (tab-separated SoundCheck exports, Klippel value tables) are tables the CSV converter may
    rightly read, so it is not held to refusing them."""
    return [path for path, _ in owned_sample_files(samples_dir)]


def test_validate_ranks_every_other_formats_sample_low(samples_dir: Path) -> None:
    others = _other_samples(samples_dir)
    assert others
    for path in others:
        assert _confidence(path) <= 0.1, path.name


# -- fuzz --------------------------------------------------------------------------------------


def _clean(result: ConverterResult) -> None:
    """Either valid reports or a failure with a reason: never anything else."""
    assert isinstance(result, ConverterResult)
    if result.success:
        for report in result.reports:
            parse_report(dump_report(report))
    else:
        assert result.message


@pytest.mark.timeout(10)
@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.2, 0.4, 0.55, 0.7, 0.85, 0.95, 0.99])
def test_truncated_files_convert_or_fail_cleanly(tmp_path: Path, fraction: float) -> None:
    data = ICT_COMMA.encode("utf-8")
    path = _write(tmp_path, "cut.csv", data[: int(len(data) * fraction)])
    _clean(_convert(path))
    assert CSVConverter().validate(ConverterSource(path), _context()) <= 1.0


@pytest.mark.timeout(10)
def test_randomly_mutated_files_convert_or_fail_cleanly(tmp_path: Path) -> None:
    rng = random.Random(5)
    originals = [ICT_COMMA.encode(), PSU_SEMICOLON.encode(), BENCH_TAB.encode("utf-16")]
    for case in range(50):
        data = bytearray(originals[case % len(originals)])
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(len(data))
            choice = rng.random()
            if choice < 0.1:
                data[position] = rng.randrange(256)
            elif choice < 0.4:
                data[position] = rng.randrange(32, 127)  # mostly text: reach the parser
            elif choice < 0.7:
                data.insert(position, rng.choice(b',;\t|:="\n\r-0.9eE'))
            else:
                del data[position]
        path = _write(tmp_path, f"m{case}.csv", bytes(data))
        _clean(_convert(path, **PSU_ARGUMENTS) if case % 3 == 1 else _convert(path))


@pytest.mark.timeout(10)
def test_other_formats_samples_fail_cleanly(samples_dir: Path) -> None:
    for path in _other_samples(samples_dir):
        result = _convert(path)
        assert not result.success, path.name
        assert result.message


HOSTILE = {
    "empty": b"",
    "blank": b" \r\n\t\n",
    "garbage": bytes(random.Random(7).randrange(256) for _ in range(4096)),
    "all bytes": bytes(range(256)) * 16,
    "nested json": b"[" * 100_000,
    "nested quotes": b'Name,Value\n"' * 50_000,
    "unterminated quote": b'Serial: 1\nPart: 2\nName,Value\nA,"' + b"x" * 200_000,
    "huge field": b"Serial: 1\nPart: 2\nName,Value\nA," + b"9" * 2_000_000 + b"\n",
    "many columns": b"Name,Value" + b",x" * 100_000 + b"\nA,1\n",
    "many lines": b"Serial: 1\n" * 100_000,
    "nul in text": b"Serial: 1\nPart: 2\nName,Value\nA,\x001\n",
    "latin-1 as utf-8": "Serial: 1\nPart: 2\nName,Value\nTemp,41\xb0C\n".encode("latin-1"),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_fails_cleanly_and_quickly(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path, "hostile.csv", HOSTILE[case])
    result = _convert(path)
    _clean(result)
    if case == "many columns":  # wide but well-formed: one step, its serial defaulted
        assert result.success and result.confidence <= 0.4
    else:
        assert not result.success
    assert CSVConverter().validate(ConverterSource(path), _context()) <= 0.9


# -- WATS-required header fields the file leaves empty (wats.converters.defaults) -------------


def test_a_missing_part_number_takes_the_built_in_default_and_lowers_confidence(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "r.csv", "Serial: S1\nRevision: A\nProcess: 50\nName,Value\nA,1\n")
    report, result = _report(path)
    assert report.pn == "UNKNOWN"
    assert [w for w in result.warnings if "part number" in w] == [
        "the file names no part number (header keys PartNumber, Part, PN, PartNo, Product, "
        "ProductNumber, Model); using 'UNKNOWN' (the built-in default of argument "
        "default_part_number)"
    ]
    assert result.confidence <= 0.8


def test_an_explicit_default_part_number_costs_no_confidence(tmp_path: Path) -> None:
    text = "Serial: S1\nRevision: A\nProcess: 50\nStart: 2024-03-05T10:00:00+01:00\n"
    path = _write(tmp_path, "r.csv", text + "Name,Value\nA,1\n")
    report, result = _report(path, default_part_number="FIXED-1")
    assert report.pn == "FIXED-1"
    assert (result.warnings, result.confidence) == ([], 1.0)


def test_a_missing_serial_number_takes_its_default_below_the_alarm_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", "Part: P\nName,Value\nA,1\n")
    report, result = _report(path)
    assert report.sn == "UNKNOWN" and result.confidence <= 0.4
    assert any(
        "no serial number" in w and "arguments.header.serial" in w and "default_serial" in w
        for w in result.warnings
    )
    report, _ = _report(path, default_serial_number="NO-SN")
    assert report.sn == "NO-SN"


@pytest.mark.parametrize(
    "arguments",
    [{"default_part_number": "P^1"}, {"default_serial_number": ""}, {"default_revision": ""}],
)
def test_defaults_wats_would_refuse_are_config_errors(arguments: dict[str, str]) -> None:
    with pytest.raises(ConverterArgumentsError, match=f"arguments.{next(iter(arguments))}"):
        CSVConverter.parse_arguments(arguments)
